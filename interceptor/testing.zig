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
