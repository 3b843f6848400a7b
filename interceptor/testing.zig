//! Helpers for the unit tests only (imported from test code, never part of the library).

const std = @import("std");
const posix = std.posix;

/// A listening Unix socket at `path`: the stand-in daemon end of an IPC test.
pub fn listenUnix(path: []const u8) !posix.socket_t {
    const fd = try posix.socket(posix.AF.UNIX, posix.SOCK.STREAM | posix.SOCK.CLOEXEC, 0);
    errdefer posix.close(fd);
    var sa: posix.sockaddr.un = .{ .path = [_]u8{0} ** 108 };
    if (path.len >= sa.path.len) return error.NameTooLong;
    @memcpy(sa.path[0..path.len], path);
    try posix.bind(fd, @ptrCast(&sa), @sizeOf(@TypeOf(sa)));
    try posix.listen(fd, 4);
    return fd;
}

/// The stand-in daemon, run on a thread of the test: on the listening socket `fd` (Unix or TCP), each
/// connection in turn has its whole request read and kept, gets the next reply written as given (raw HTTP;
/// empty for none), and is held open `hold_ms` before it closes, so a test can make the daemon go silent
/// past the client's deadline.
pub const StandIn = struct {
    pub const max_replies = 4;
    pub const request_max = 4096;

    fd: posix.socket_t,
    replies: []const []const u8,
    hold_ms: u64 = 0,
    requests: [max_replies][request_max]u8 = undefined,
    lens: [max_replies]usize = .{0} ** max_replies,

    pub fn serve(self: *StandIn) void {
        std.debug.assert(self.replies.len <= max_replies);
        for (self.replies, 0..) |reply, i| {
            const conn = posix.accept(self.fd, null, null, posix.SOCK.CLOEXEC) catch return;
            defer posix.close(conn);
            const buf = &self.requests[i];
            while (self.lens[i] < buf.len) {
                const n = posix.read(conn, buf[self.lens[i]..]) catch return;
                if (n == 0) break;
                self.lens[i] += n;
                if (isCompleteRequest(buf[0..self.lens[i]])) break;
            }
            if (reply.len > 0) _ = posix.write(conn, reply) catch {};
            if (self.hold_ms > 0) std.time.sleep(self.hold_ms * std.time.ns_per_ms);
        }
    }

    /// The `i`th request as received (headers and body).
    pub fn request(self: *const StandIn, i: usize) []const u8 {
        return self.requests[i][0..self.lens[i]];
    }
};

/// Headers and the Content-Length body have arrived: the client waits for an answer now, not for us to read
/// more, so waiting for EOF would deadlock.
pub fn isCompleteRequest(raw: []const u8) bool {
    const end = std.mem.indexOf(u8, raw, "\r\n\r\n") orelse return false;
    const cl_at = std.mem.indexOf(u8, raw[0..end], "Content-Length: ") orelse return false;
    const cl_end = std.mem.indexOfScalarPos(u8, raw, cl_at, '\r').?;
    const cl = std.fmt.parseInt(usize, raw[cl_at + 16 .. cl_end], 10) catch return false;
    return raw.len - (end + 4) >= cl;
}

/// `body` as the daemon's 200 answer, framed in `buf`.
pub fn answer(buf: []u8, body: []const u8) ![]const u8 {
    return std.fmt.bufPrint(buf, "HTTP/1.1 200 OK\r\nContent-Length: {d}\r\n\r\n{s}", .{ body.len, body });
}

/// A loopback port nothing listens on right now (the kernel's pick, released again).
pub fn freePort() !u16 {
    const a = try std.net.Address.parseIp4("127.0.0.1", 0);
    var s = try a.listen(.{});
    defer s.deinit();
    return s.listen_address.getPort();
}

/// Fake environments for tests; a comptime table keeps settings.Lookup a plain fn.
pub fn FakeEnv(comptime pairs: []const [2][]const u8) type {
    return struct {
        pub fn get(name: [:0]const u8) ?[]const u8 {
            inline for (pairs) |p| if (std.mem.eql(u8, p[0], name)) return p[1];
            return null;
        }
    };
}

/// A follow table file (docs/follow-table.md) in a temp dir of its own, written the way the daemon writes
/// it: created at full size, then rewritten in place under the seq protocol, one pwrite per step.
pub const TableFile = struct {
    const follow_table = @import("follow_table.zig");
    pub const Entry = struct { project: u64, asked: u16, port: u16 };

    tmp: std.testing.TmpDir,
    dir: std.fs.Dir,
    file: std.fs.File,
    path_buf: [std.fs.max_path_bytes + 1]u8 = undefined,
    path_len: usize = 0,
    seq: u32 = 0,

    pub fn create(entries: []const Entry) !TableFile {
        var self: TableFile = .{ .tmp = std.testing.tmpDir(.{}), .dir = undefined, .file = undefined };
        errdefer self.tmp.cleanup();
        self.dir = self.tmp.dir;
        var dir_buf: [std.fs.max_path_bytes]u8 = undefined;
        const dir = try self.dir.realpath(".", &dir_buf);
        const full = try std.fmt.bufPrintZ(&self.path_buf, "{s}/follow", .{dir});
        self.path_len = full.len;
        self.file = try self.dir.createFile("follow", .{ .read = true });
        try self.fill(entries);
        return self;
    }

    /// A new file in place of a deleted one, as a daemon starting after the reader would make it.
    pub fn recreate(self: *TableFile, entries: []const Entry) !void {
        self.file.close();
        self.file = try self.dir.createFile("follow", .{ .read = true });
        self.seq = 0;
        try self.fill(entries);
    }

    fn fill(self: *TableFile, entries: []const Entry) !void {
        var head = [_]u8{0} ** follow_table.off_bitmap;
        std.mem.writeInt(u32, head[0..4], follow_table.magic, .little);
        std.mem.writeInt(u32, head[4..8], follow_table.version, .little);
        try self.file.pwriteAll(&head, 0);
        try self.file.setEndPos(follow_table.size);
        try self.write(entries);
    }

    /// One rewrite: seq odd, bitmap and entries, count, seq even.
    pub fn write(self: *TableFile, entries: []const Entry) !void {
        try self.writeCounted(entries, entries.len);
    }

    /// A rewrite whose slots past `count` hold `entries[count..]`: what a reader must never see.
    pub fn writeCounted(self: *TableFile, entries: []const Entry, count: usize) !void {
        std.debug.assert(entries.len <= follow_table.max_entries and count <= entries.len);
        var body = [_]u8{0} ** (follow_table.size - follow_table.off_bitmap);
        for (entries, 0..) |e, i| {
            if (i < count) body[e.asked >> 3] |= @as(u8, 1) << @intCast(e.asked & 7);
            const at = follow_table.off_entries - follow_table.off_bitmap + i * follow_table.entry_size;
            std.mem.writeInt(u64, body[at..][0..8], e.project, .little);
            std.mem.writeInt(u16, body[at + 8 ..][0..2], e.asked, .little);
            std.mem.writeInt(u16, body[at + 10 ..][0..2], e.port, .little);
        }
        try self.setSeq(self.seq + 1);
        try self.file.pwriteAll(&body, follow_table.off_bitmap);
        var count_bytes: [4]u8 = undefined;
        std.mem.writeInt(u32, &count_bytes, @intCast(count), .little);
        try self.file.pwriteAll(&count_bytes, follow_table.off_count);
        try self.setSeq(self.seq + 1);
    }

    pub fn setSeq(self: *TableFile, seq: u32) !void {
        var b: [4]u8 = undefined;
        std.mem.writeInt(u32, &b, seq, .little);
        try self.file.pwriteAll(&b, follow_table.off_seq);
        self.seq = seq;
    }

    pub fn pwriteAt(self: *TableFile, off: u64, bytes: []const u8) !void {
        try self.file.pwriteAll(bytes, off);
    }

    pub fn pathZ(self: *const TableFile) [:0]const u8 {
        return self.path_buf[0..self.path_len :0];
    }

    /// A reader of this file (its clock the real one).
    pub fn table(self: *const TableFile) follow_table.Table {
        return .{ .file = self.pathZ().ptr };
    }

    pub fn remove(self: *TableFile) void {
        self.file.close();
        self.tmp.cleanup();
    }
};
