//! The connect path (follow.zig) on real loopback sockets, against a table file written the way the daemon
//! writes it. Each test has its own reader of its own file and a fixed project, as a process would have.

const std = @import("std");
const posix = std.posix;
const c = std.c;
const follow = @import("follow.zig");
const follow_report = @import("follow_report.zig");
const follow_table = @import("follow_table.zig");
const peers = @import("peers.zig");
const project = @import("project.zig");
const real = @import("real.zig");
const settings = @import("settings.zig");
const testing = @import("testing.zig");
const t = std.testing;

const ours: u64 = 0x2bda3cfb70d2f7bc; // "/tmp/wt-b"
const theirs: u64 = 0xeaa3273df6d7b751; // "/home/dev/proj"

// No daemon socket anywhere: the follow reports fail at once.
const quiet = testing.FakeEnv(&.{ .{ "STYXY_NOTIFY", "off" }, .{ "STYXY_SOCKET", "/nonexistent/styxy.sock" } }).get;
const disabled = testing.FakeEnv(&.{ .{ "STYXY_NOTIFY", "off" }, .{ "STYXY_SOCKET", "/nonexistent/styxy.sock" }, .{ "STYXY_DISABLE", "1" } }).get;

/// A table file, a process's view of it, and two loopback listeners: `holder` really holds the asked port,
/// `moved` is where this project's server went.
const Setup = struct {
    file: testing.TableFile,
    table: follow_table.Table,
    cache: project.Cache,
    peers: *peers.Peers,
    told: *follow_report.Told,
    f: follow.Follower,
    holder: std.net.Server,
    moved: std.net.Server,

    fn open(self: *Setup, ip: []const u8, entries_for: u64, env: @TypeOf(quiet)) !void {
        self.holder = try (try std.net.Address.parseIp(ip, 0)).listen(.{ .force_nonblocking = true });
        errdefer self.holder.deinit();
        self.moved = try (try std.net.Address.parseIp(ip, 0)).listen(.{ .force_nonblocking = true });
        errdefer self.moved.deinit();
        self.file = try testing.TableFile.create(&.{.{ .project = entries_for, .asked = self.asked(), .port = self.to() }});
        errdefer self.file.remove();
        self.table = self.file.table();
        self.cache = project.Cache.fixed("/tmp/wt-b");
        self.peers = try t.allocator.create(peers.Peers);
        self.peers.* = .{};
        self.told = try t.allocator.create(follow_report.Told);
        self.told.* = .{};
        self.f = .{ .table = &self.table, .project = &self.cache, .peers = self.peers, .told = self.told, .env = env };
    }

    fn close(self: *Setup) void {
        self.table.unmap();
        t.allocator.destroy(self.peers);
        t.allocator.destroy(self.told);
        self.file.remove();
        self.moved.deinit();
        self.holder.deinit();
    }

    fn asked(self: *const Setup) u16 {
        return self.holder.listen_address.getPort();
    }

    fn to(self: *const Setup) u16 {
        return self.moved.listen_address.getPort();
    }

    /// Which listener the connection landed on.
    fn reached(self: *Setup) !enum { holder, moved } {
        if (accepted(&self.moved)) return .moved;
        if (accepted(&self.holder)) return .holder;
        return error.NobodyAccepted;
    }

    fn connect(self: *Setup, fd: posix.socket_t, addr: *const std.net.Address) c_int {
        return self.f.connect(fd, &addr.any, addr.getOsSockLen(), real.connectFn(0));
    }

    /// getpeername as the program sees it through the hook.
    fn peerPort(self: *Setup, fd: posix.socket_t) !u16 {
        var sa: posix.sockaddr.storage = undefined;
        var len: c.socklen_t = @sizeOf(posix.sockaddr.storage);
        if (self.f.getpeername(fd, &sa, &len, real.getpeernameFn(0)) != 0) return error.GetpeernameFailed;
        return std.mem.readInt(u16, std.mem.asBytes(&sa)[2..4], .big);
    }
};

fn accepted(server: *std.net.Server) bool {
    const conn = server.accept() catch return false;
    conn.stream.close();
    return true;
}

fn socket(family: u32, kind: u32) !posix.socket_t {
    return posix.socket(family, kind | posix.SOCK.CLOEXEC, 0);
}

/// The kernel's own answer, not the hook's.
fn realPeerPort(fd: posix.socket_t) !u16 {
    var sa: posix.sockaddr.storage = undefined;
    var len: posix.socklen_t = @sizeOf(posix.sockaddr.storage);
    try posix.getpeername(fd, @ptrCast(&sa), &len);
    return std.mem.readInt(u16, std.mem.asBytes(&sa)[2..4], .big);
}

test "IPv4: this project's client reaches the moved server, sees the asked port; errno untouched" {
    var s: Setup = undefined;
    try s.open("127.0.0.1", ours, quiet);
    defer s.close();
    const fd = try socket(posix.AF.INET, posix.SOCK.STREAM);
    defer posix.close(fd);
    real.setErrno(4242);
    try t.expectEqual(@as(c_int, 0), s.connect(fd, &s.holder.listen_address));
    try t.expectEqual(@as(c_int, 4242), real.errno());
    try t.expectEqual(.moved, try s.reached());
    try t.expectEqual(s.to(), try realPeerPort(fd));
    try t.expectEqual(s.asked(), try s.peerPort(fd));
}

test "another project's move, or STYXY_DISABLE=1: the port's holder is reached" {
    var s: Setup = undefined;
    try s.open("127.0.0.1", theirs, quiet);
    defer s.close();
    const fd = try socket(posix.AF.INET, posix.SOCK.STREAM);
    defer posix.close(fd);
    try t.expectEqual(@as(c_int, 0), s.connect(fd, &s.holder.listen_address));
    try t.expectEqual(.holder, try s.reached());

    var d: Setup = undefined;
    try d.open("127.0.0.1", ours, disabled);
    defer d.close();
    const fd2 = try socket(posix.AF.INET, posix.SOCK.STREAM);
    defer posix.close(fd2);
    try t.expectEqual(@as(c_int, 0), d.connect(fd2, &d.holder.listen_address));
    try t.expectEqual(.holder, try d.reached());
}

test "IPv6 ::1 is followed" {
    var s: Setup = undefined;
    try s.open("::1", ours, quiet);
    defer s.close();
    const fd = try socket(posix.AF.INET6, posix.SOCK.STREAM);
    defer posix.close(fd);
    try t.expectEqual(@as(c_int, 0), s.connect(fd, &s.holder.listen_address));
    try t.expectEqual(.moved, try s.reached());
    try t.expectEqual(s.asked(), try s.peerPort(fd));
}

test "v4-mapped ::ffff:127.0.0.1 on an IPv6 socket is followed to the IPv4 server" {
    var s: Setup = undefined;
    try s.open("127.0.0.1", ours, quiet);
    defer s.close();
    const fd = try socket(posix.AF.INET6, posix.SOCK.STREAM);
    defer posix.close(fd);
    const mapped = try std.net.Address.parseIp6("::ffff:127.0.0.1", s.asked());
    try t.expectEqual(@as(c_int, 0), s.connect(fd, &mapped));
    try t.expectEqual(.moved, try s.reached());
    try t.expectEqual(s.asked(), try s.peerPort(fd));
}

test "non-blocking: EINPROGRESS passes through, and the socket completes to the moved server" {
    var s: Setup = undefined;
    try s.open("127.0.0.1", ours, quiet);
    defer s.close();
    const fd = try socket(posix.AF.INET, posix.SOCK.STREAM | posix.SOCK.NONBLOCK);
    defer posix.close(fd);
    const rc = s.connect(fd, &s.holder.listen_address);
    try t.expectEqual(@as(c_int, -1), rc);
    try t.expectEqual(@as(c_int, @intFromEnum(posix.E.INPROGRESS)), real.errno());
    var pfd = [1]posix.pollfd{.{ .fd = fd, .events = posix.POLL.OUT, .revents = 0 }};
    try t.expectEqual(@as(usize, 1), try posix.poll(&pfd, 5000));
    try posix.getsockoptError(fd);
    try t.expectEqual(s.to(), try realPeerPort(fd));
    try t.expectEqual(s.asked(), try s.peerPort(fd));
    // Asked again, as event loops do: the kernel's answers for this socket (0 once it sees the connection
    // made, then EISCONN), never a second connection.
    try t.expectEqual(@as(c_int, 0), s.connect(fd, &s.holder.listen_address));
    try t.expectEqual(@as(c_int, -1), s.connect(fd, &s.holder.listen_address));
    try t.expectEqual(@as(c_int, @intFromEnum(posix.E.ISCONN)), real.errno());
    try t.expectEqual(.moved, try s.reached());
    try t.expectError(error.NobodyAccepted, s.reached());
}

test "a followed connect that fails fails as the real one does" {
    var s: Setup = undefined;
    try s.open("127.0.0.1", ours, quiet);
    defer s.close();
    // Nobody listens where the table points now.
    const gone = try testing.freePort();
    try s.file.write(&.{.{ .project = ours, .asked = s.asked(), .port = gone }});
    const fd = try socket(posix.AF.INET, posix.SOCK.STREAM);
    defer posix.close(fd);
    try t.expectEqual(@as(c_int, -1), s.connect(fd, &s.holder.listen_address));
    try t.expectEqual(@as(c_int, @intFromEnum(posix.E.CONNREFUSED)), real.errno());
    try t.expect(!s.peers.has(fd));
}

test "left alone: a non-loopback address (0.0.0.0), UDP, a Unix socket, an unmoved port" {
    var s: Setup = undefined;
    try s.open("127.0.0.1", ours, quiet);
    defer s.close();
    // Linux connects 0.0.0.0 to the local host: a real connection, to whoever holds the port.
    const any = try std.net.Address.parseIp4("0.0.0.0", s.asked());
    const fd = try socket(posix.AF.INET, posix.SOCK.STREAM);
    defer posix.close(fd);
    try t.expectEqual(@as(c_int, 0), s.connect(fd, &any));
    try t.expectEqual(.holder, try s.reached());

    const udp = try socket(posix.AF.INET, posix.SOCK.DGRAM);
    defer posix.close(udp);
    try t.expectEqual(@as(c_int, 0), s.connect(udp, &s.holder.listen_address));
    try t.expectEqual(s.asked(), try realPeerPort(udp));

    var tmp = t.tmpDir(.{});
    defer tmp.cleanup();
    var pbuf: [std.fs.max_path_bytes]u8 = undefined;
    const dir = try tmp.dir.realpath(".", &pbuf);
    var sock_path: [200]u8 = undefined;
    const unix_listener = try testing.listenUnix(try std.fmt.bufPrint(&sock_path, "{s}/s", .{dir}));
    defer posix.close(unix_listener);
    const unix_addr = try std.net.Address.initUnix(sock_path[0 .. dir.len + 2]);
    const ufd = try socket(posix.AF.UNIX, posix.SOCK.STREAM);
    defer posix.close(ufd);
    try t.expectEqual(@as(c_int, 0), s.connect(ufd, &unix_addr));

    // The bit for the moved server's own port is clear: a connect straight to it is not touched.
    const direct = try socket(posix.AF.INET, posix.SOCK.STREAM);
    defer posix.close(direct);
    try t.expectEqual(@as(c_int, 0), s.connect(direct, &s.moved.listen_address));
    try t.expectEqual(.moved, try s.reached());
    try t.expectEqual(s.to(), try s.peerPort(direct));
}

test "the move ending reaches the holder again, without remapping" {
    var s: Setup = undefined;
    try s.open("127.0.0.1", ours, quiet);
    defer s.close();
    const fd = try socket(posix.AF.INET, posix.SOCK.STREAM);
    defer posix.close(fd);
    try t.expectEqual(@as(c_int, 0), s.connect(fd, &s.holder.listen_address));
    try t.expectEqual(.moved, try s.reached());
    try s.file.write(&.{});
    const fd2 = try socket(posix.AF.INET, posix.SOCK.STREAM);
    defer posix.close(fd2);
    try t.expectEqual(@as(c_int, 0), s.connect(fd2, &s.holder.listen_address));
    try t.expectEqual(.holder, try s.reached());
}

extern "c" fn setenv(name: [*:0]const u8, value: [*:0]const u8, overwrite: c_int) c_int;
extern "c" fn unsetenv(name: [*:0]const u8) c_int;

test "the daemon is told of a follow once per process and port, with the project" {
    var s: Setup = undefined;
    try s.open("127.0.0.1", ours, settings.processEnv);
    defer s.close();
    const other_asked = try testing.freePort();
    try s.file.write(&.{ .{ .project = ours, .asked = s.asked(), .port = s.to() }, .{ .project = ours, .asked = other_asked, .port = s.to() } });
    var tmp = t.tmpDir(.{});
    defer tmp.cleanup();
    var pbuf: [std.fs.max_path_bytes]u8 = undefined;
    const dir = try tmp.dir.realpath(".", &pbuf);
    var sock_buf: [300]u8 = undefined;
    const sock = try std.fmt.bufPrintZ(&sock_buf, "{s}/daemon.sock", .{dir});
    const listener = try testing.listenUnix(sock);
    defer posix.close(listener);
    try t.expectEqual(@as(c_int, 0), setenv("STYXY_SOCKET", sock.ptr, 1));
    defer _ = unsetenv("STYXY_SOCKET");
    try t.expectEqual(@as(c_int, 0), setenv("STYXY_NOTIFY", "off", 1));
    defer _ = unsetenv("STYXY_NOTIFY");
    var reply: [128]u8 = undefined;
    const ok = try testing.answer(&reply, "{\"published\":true}");
    var daemon = testing.StandIn{ .fd = listener, .replies = &.{ ok, ok } };
    const th = try std.Thread.spawn(.{}, testing.StandIn.serve, .{&daemon});
    for ([_]u16{ s.asked(), s.asked(), other_asked }) |port| {
        const fd = try socket(posix.AF.INET, posix.SOCK.STREAM);
        defer posix.close(fd);
        const to = try std.net.Address.parseIp4("127.0.0.1", port);
        try t.expectEqual(@as(c_int, 0), s.connect(fd, &to));
        try t.expectEqual(.moved, try s.reached());
    }
    th.join();
    var want: [2][160]u8 = undefined;
    for ([_]u16{ s.asked(), other_asked }, 0..) |port, i| {
        const req = daemon.request(i);
        try t.expect(std.mem.startsWith(u8, req, "POST /v1/follows HTTP/1.1\r\n"));
        const body = try std.fmt.bufPrint(&want[i], "\r\n\r\n{{\"pid\":{d},\"port\":{d},\"to\":{d},\"project\":\"/tmp/wt-b\"}}", .{ std.os.linux.getpid(), port, s.to() });
        try t.expect(std.mem.endsWith(u8, req, body));
    }
}

test "the process's own follower: the table from STYXY_HOME, the project from STYXY_PROJECT" {
    var s: Setup = undefined;
    try s.open("127.0.0.1", ours, quiet);
    defer s.close();
    var home_buf: [std.fs.max_path_bytes]u8 = undefined;
    const home = try std.fmt.bufPrintZ(&home_buf, "{s}", .{std.fs.path.dirname(s.file.pathZ()).?});
    try t.expectEqual(@as(c_int, 0), setenv("STYXY_HOME", home.ptr, 1));
    defer _ = unsetenv("STYXY_HOME");
    try t.expectEqual(@as(c_int, 0), setenv("STYXY_PROJECT", "/tmp/wt-b/", 1));
    defer _ = unsetenv("STYXY_PROJECT");
    try t.expectEqual(@as(c_int, 0), setenv("STYXY_NOTIFY", "off", 1));
    defer _ = unsetenv("STYXY_NOTIFY");
    const fd = try socket(posix.AF.INET, posix.SOCK.STREAM);
    defer posix.close(fd);
    try t.expectEqual(@as(c_int, 0), follow.process.connect(fd, &s.holder.listen_address.any, s.holder.listen_address.getOsSockLen(), real.connectFn(0)));
    try t.expectEqual(.moved, try s.reached());
    try t.expectEqual(ours, project.process.get(testing.FakeEnv(&.{}).get).?);
}
