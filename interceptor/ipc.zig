//! One HTTP/1.1 request/response with the daemon, under one deadline: its
//! Unix socket, TCP on loopback only when the socket can't be reached.
//!
//! Our sockets are non-blocking and waited on with poll() so the deadline is
//! real even if the daemon accepts and then hangs. They are never bound, and
//! they connect through libc's connect, not the library's own export, so the
//! interceptor can't re-enter itself.

const std = @import("std");
const c = std.c;
const answer = @import("answer.zig");
const request_body = @import("request_body.zig");
const decision = @import("decision.zig");
const token = @import("token.zig");
const real = @import("real.zig");

const E = std.posix.E;
fn errnoIs(e: E) bool {
    return c._errno().* == @intFromEnum(e);
}

/// The one time bound of an exchange (deadline.zig).
pub const Deadline = @import("deadline.zig").Deadline;


pub const Tcp = struct {
    addr: [4]u8,
    port: u16,
    token_path: [*:0]const u8,
};

pub const Target = struct {
    unix_path: ?[:0]const u8,
    tcp: ?Tcp,
};

pub const request_max = 4096;

/// What one exchange came to: the daemon's decision; a refusal or an answer we cannot read (`fail`: the
/// program binds what it asked for); or no daemon to ask (`down`: no socket, refused, timed out, gone before
/// answering), where the library may move a program off a taken port itself (nearby.zig).
pub const Outcome = union(enum) {
    answer: decision.Decision,
    fail: []const u8,
    down: []const u8,
};

/// The one entry point: send `body` to the daemon and interpret the answer.
pub fn exchange(target: Target, body: []const u8, deadline: Deadline) Outcome {
    var resp: [answer.response_max]u8 = undefined;
    var req: [request_max]u8 = undefined;

    const unix_req = frame(&req, null, body) orelse return .{ .fail = "request too large" };
    if (target.unix_path) |path| {
        if (askUnix(path, unix_req, &resp, deadline)) |out| return out;
    }
    const tcp = target.tcp orelse return .{ .down = "daemon socket unreachable, no tcp fallback" };
    if (deadline.expired()) return .{ .down = "timeout before tcp fallback" };
    // Connected first: a daemon killed with -9 leaves its socket file and token behind, and with nothing on
    // the port the refusal is immediate, where reading /proc/net/tcp below costs milliseconds on every bind.
    // Nothing is sent before the listener is known to be ours.
    const fd = connectTcp(tcp.addr, tcp.port, deadline) orelse return .{ .down = "daemon unreachable (unix and tcp)" };
    defer _ = c.close(fd);
    var tok_buf: [token.token_max]u8 = undefined;
    const tok = token.readToken(tcp.token_path, &tok_buf) orelse
        return .{ .down = "daemon socket unreachable and no token for tcp" };
    if (!@import("owner.zig").listenerIsOurs(tcp.addr, tcp.port, std.os.linux.geteuid()))
        return .{ .down = "no listener of ours on the tcp port: token withheld" };
    const r = frame(&req, .{ .token = tok, .addr = tcp.addr, .port = tcp.port }, body) orelse return .{ .fail = "request too large" };
    return roundTrip(fd, r, &resp, deadline);
}

/// A word to the daemon on its Unix socket that needs no decision back (POST `route`): true when it answered
/// 2xx before the deadline. No TCP fallback: nothing here is worth a token read and a /proc scan.
pub fn tell(unix_path: [:0]const u8, route: []const u8, body: []const u8, deadline: Deadline) bool {
    var req: [request_max]u8 = undefined;
    const framed = frameTo(&req, route, null, body) orelse return false;
    const fd = connectUnix(unix_path, deadline) orelse return false;
    defer _ = c.close(fd);
    if (!sendAll(fd, framed, deadline)) return false;
    var resp: [answer.response_max]u8 = undefined;
    const raw = switch (receive(fd, &resp, deadline)) {
        .ok => |r| r,
        .fail, .down => return false,
    };
    return std.mem.startsWith(u8, raw, "HTTP/1.1 2");
}

/// Null when nothing listens at `path`.
fn askUnix(path: [:0]const u8, req: []const u8, resp: *[answer.response_max]u8, deadline: Deadline) ?Outcome {
    const fd = connectUnix(path, deadline) orelse return null;
    defer _ = c.close(fd);
    return roundTrip(fd, req, resp, deadline);
}

/// Over TCP the daemon accepts only a loopback Host with its own port (its DNS-rebinding guard), and the token.
const TcpAuth = struct { token: []const u8, addr: [4]u8, port: u16 };

fn roundTrip(fd: c_int, req: []const u8, resp: *[answer.response_max]u8, deadline: Deadline) Outcome {
    if (!sendAll(fd, req, deadline)) return .{ .down = "send failed or timed out" };
    const raw = switch (receive(fd, resp, deadline)) {
        .ok => |r| r,
        .fail => |why| return .{ .fail = why },
        .down => |why| return .{ .down = why },
    };
    return switch (answer.parseResponse(raw)) {
        .answer => |d| .{ .answer = d },
        .fail => |why| .{ .fail = why },
    };
}

/// The head is the contract's too: interceptor/contract.zig writes it out for the TypeScript side.
pub fn frame(buf: []u8, tcp: ?TcpAuth, body: []const u8) ?[]const u8 {
    return frameTo(buf, "/v1/bind", tcp, body);
}

fn frameTo(buf: []u8, route: []const u8, tcp: ?TcpAuth, body: []const u8) ?[]const u8 {
    var b = request_body.Buf.init(buf);
    b.append("POST ");
    b.append(route);
    b.append(" HTTP/1.1\r\nHost: ");
    if (tcp) |a| {
        for (a.addr, 0..) |octet, i| {
            if (i > 0) b.append(".");
            b.appendInt(octet);
        }
        b.append(":");
        b.appendInt(a.port);
    } else {
        b.append("localhost");
    }
    b.append("\r\nContent-Type: application/json\r\nConnection: close\r\n");
    if (tcp) |a| {
        b.append("Authorization: Bearer ");
        b.append(a.token);
        b.append("\r\n");
    }
    b.append("Content-Length: ");
    b.appendInt(body.len);
    b.append("\r\n\r\n");
    b.append(body);
    return b.written();
}

// ------------------------------------------------------------- transport

const sock_flags = std.posix.SOCK.STREAM | std.posix.SOCK.NONBLOCK | std.posix.SOCK.CLOEXEC;

fn connectUnix(path: [:0]const u8, deadline: Deadline) ?c_int {
    var sa: std.posix.sockaddr.un = .{ .path = [_]u8{0} ** 108 };
    if (path.len >= sa.path.len) return null;
    @memcpy(sa.path[0..path.len], path);
    const fd = c.socket(std.posix.AF.UNIX, sock_flags, 0);
    if (fd < 0) return null;
    if (finishConnect(fd, @ptrCast(&sa), @sizeOf(@TypeOf(sa)), deadline) and peerIsUs(fd)) return fd;
    _ = c.close(fd);
    return null;
}

const Ucred = extern struct { pid: i32, uid: u32, gid: u32 };

/// The listener must be our own user's. In the default 0700 state directory nobody else can create a socket,
/// but STYXY_SOCKET may name a shared directory, where another user could take the path first and answer our
/// binds.
fn peerIsUs(fd: c_int) bool {
    var cred: Ucred = undefined;
    var len: c.socklen_t = @sizeOf(Ucred);
    if (c.getsockopt(fd, std.posix.SOL.SOCKET, std.posix.SO.PEERCRED, &cred, &len) != 0) return false;
    return cred.uid == std.os.linux.geteuid();
}

fn connectTcp(addr: [4]u8, port: u16, deadline: Deadline) ?c_int {
    const sa: std.posix.sockaddr.in = .{ .port = std.mem.nativeToBig(u16, port), .addr = @bitCast(addr) };
    const fd = c.socket(std.posix.AF.INET, sock_flags, 0);
    if (fd < 0) return null;
    if (finishConnect(fd, @ptrCast(&sa), @sizeOf(@TypeOf(sa)), deadline)) return fd;
    _ = c.close(fd);
    return null;
}

fn finishConnect(fd: c_int, sa: *const c.sockaddr, len: c.socklen_t, deadline: Deadline) bool {
    // libc's connect, never the library's own export: the daemon's port must not be followed.
    if (real.connectFn(0)(fd, sa, len) == 0) return true;
    // Unix sockets report a full backlog as EAGAIN, which poll can't fix;
    // only an in-progress TCP connect is worth waiting for.
    if (!errnoIs(.INPROGRESS) and !errnoIs(.INTR)) return false;
    if (!waitFor(fd, std.posix.POLL.OUT, deadline)) return false;
    var err: c_int = 0;
    var len2: c.socklen_t = @sizeOf(c_int);
    if (c.getsockopt(fd, std.posix.SOL.SOCKET, std.posix.SO.ERROR, &err, &len2) != 0) return false;
    return err == 0;
}

/// True when `events` is ready before the deadline.
fn waitFor(fd: c_int, events: i16, deadline: Deadline) bool {
    while (true) {
        const ms = deadline.remainingMs();
        if (ms == 0) return false;
        var pfd = [1]c.pollfd{.{ .fd = fd, .events = events, .revents = 0 }};
        const n = c.poll(&pfd, 1, ms);
        if (n > 0) return true; // errors/hangups surface on the next syscall
        if (n == 0) return false;
        if (!errnoIs(.INTR)) return false;
    }
}

fn sendAll(fd: c_int, data: []const u8, deadline: Deadline) bool {
    var off: usize = 0;
    while (off < data.len) {
        // MSG_NOSIGNAL: a daemon that hangs up must not SIGPIPE the host program.
        const n = c.send(fd, data[off..].ptr, data.len - off, std.posix.MSG.NOSIGNAL);
        if (n >= 0) {
            off += @intCast(n);
            continue;
        }
        if (errnoIs(.INTR)) continue;
        if (!errnoIs(.AGAIN)) return false;
        if (!waitFor(fd, std.posix.POLL.OUT, deadline)) return false;
    }
    return true;
}

const Received = union(enum) { ok: []const u8, fail: []const u8, down: []const u8 };

/// How long a caller keeps its CPU while its answer is on the way, before it sleeps in poll(): an answer
/// that finds the caller asleep pays for waking it, which virtual machines charge dearly. At most this much
/// CPU per bind, and never past the caller's deadline. sched_yield() in the loop hands the CPU to the daemon
/// whenever it waits for it: a spin without it is a little faster alone and much slower when several
/// programs bind at once (figures: docs/performance.md, History).
pub const spin_ns: i128 = 500 * std.time.ns_per_us;

/// Reads until the response is complete (by Content-Length) or EOF.
fn receive(fd: c_int, buf: *[answer.response_max]u8, deadline: Deadline) Received {
    var len: usize = 0;
    const spin_end = @min(Deadline.nowNs() + spin_ns, deadline.end_ns);
    while (true) {
        if (len == buf.len) return .{ .fail = "response oversized" };
        const n = c.recv(fd, buf[len..].ptr, buf.len - len, 0);
        if (n > 0) {
            len += @intCast(n);
            if (answer.isComplete(buf[0..len])) return .{ .ok = buf[0..len] };
            continue;
        }
        // Closed without a byte: a daemon killed or stopping mid-request is as gone as one never there.
        if (n == 0) return if (len == 0) .{ .down = "daemon closed the connection without answering" } else .{ .ok = buf[0..len] };
        if (errnoIs(.INTR)) continue;
        if (!errnoIs(.AGAIN)) return .{ .down = "receive failed" };
        // A seccomp filter that refuses sched_yield (an error, not a kill) ends the spin: we sleep at once.
        if (Deadline.nowNs() < spin_end and std.os.linux.E.init(std.os.linux.sched_yield()) == .SUCCESS) continue;
        if (!waitFor(fd, std.posix.POLL.IN, deadline)) return .{ .down = "timeout waiting for answer" };
    }
}

// ---------------------------------------------------------------- tests

const t = std.testing;
const testing = @import("testing.zig");

test "request framing" {
    var buf: [512]u8 = undefined;
    const r = frame(&buf, .{ .token = "tok", .addr = .{ 127, 0, 0, 1 }, .port = 9876 }, "{}").?;
    try t.expectEqualStrings("POST /v1/bind HTTP/1.1\r\nHost: 127.0.0.1:9876\r\nContent-Type: application/json\r\n" ++
        "Connection: close\r\nAuthorization: Bearer tok\r\nContent-Length: 2\r\n\r\n{}", r);
    const u = frame(&buf, null, "{\"a\":1}").?;
    try t.expect(std.mem.indexOf(u8, u, "Authorization") == null);
    try t.expect(std.mem.endsWith(u8, u, "Content-Length: 7\r\n\r\n{\"a\":1}"));
    var tiny: [16]u8 = undefined;
    try t.expect(frame(&tiny, null, "{}") == null);
}

/// End to end over a real Unix socket, against the stand-in daemon on a thread of this process (silent for 300
/// ms when `reply` is empty). The answer, the stand-in (holding the request it got), the milliseconds the
/// exchange took, and the CPU time it used.
fn withServer(reply: []const u8, timeout_ms: u32) !struct { Outcome, testing.StandIn, i64, i128 } {
    var tmp = t.tmpDir(.{});
    defer tmp.cleanup();
    var pbuf: [std.fs.max_path_bytes]u8 = undefined;
    const dir = try tmp.dir.realpath(".", &pbuf);
    var path_buf: [256]u8 = undefined;
    const path = try std.fmt.bufPrintZ(&path_buf, "{s}/d.sock", .{dir});

    const lfd = try testing.listenUnix(path);
    defer std.posix.close(lfd);

    const replies = [_][]const u8{reply};
    var server = testing.StandIn{ .fd = lfd, .replies = &replies, .hold_ms = if (reply.len == 0) 300 else 0 };
    const th = try std.Thread.spawn(.{}, testing.StandIn.serve, .{&server});
    const start = std.time.milliTimestamp();
    const cpu = @import("deadline.zig").clockNs(.THREAD_CPUTIME_ID);
    const out = exchange(.{ .unix_path = path, .tcp = null }, "{\"pid\":1}", Deadline.fromNow(timeout_ms));
    const used = @import("deadline.zig").clockNs(.THREAD_CPUTIME_ID) - cpu;
    const took = std.time.milliTimestamp() - start;
    th.join();
    return .{ out, server, took, used };
}

test "exchange over a unix socket" {
    const res = try withServer("HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n{\"action\":\"remap\",\"port\":8123}", 2000);
    try t.expectEqual(decision.Decision{ .action = .remap, .port = 8123 }, res[0].answer);
    const req = res[1].request(0);
    try t.expect(std.mem.startsWith(u8, req, "POST /v1/bind HTTP/1.1\r\n"));
    try t.expect(std.mem.endsWith(u8, req, "\r\n\r\n{\"pid\":1}"));
}

test "exchange times out against a silent daemon, and sleeps through most of the wait" {
    const res = try withServer("", 100);
    try t.expect(res[0] == .down);
    try t.expect(res[2] >= 90 and res[2] < 280);
    // It keeps its CPU for spin_ns (0.5 ms) at most, then sleeps in poll(): spinning to the deadline would use
    // most of the 100 ms.
    try t.expect(res[3] < 25 * std.time.ns_per_ms);
}

test "unreachable socket without tcp fails open quickly" {
    const out = exchange(.{ .unix_path = "/nonexistent/styxy/d.sock", .tcp = null }, "{}", Deadline.fromNow(1000));
    try t.expect(out == .down);
}

test "tcp fallback is used when the socket is missing" {
    var tmp = t.tmpDir(.{});
    defer tmp.cleanup();
    try tmp.dir.writeFile(.{ .sub_path = "token", .data = "tkn\n" });
    var pbuf: [std.fs.max_path_bytes]u8 = undefined;
    const dir = try tmp.dir.realpath(".", &pbuf);
    var tp: [300]u8 = undefined;
    const token_path = try std.fmt.bufPrintZ(&tp, "{s}/token", .{dir});

    const addr = try std.net.Address.parseIp4("127.0.0.1", 0);
    var srv = try addr.listen(.{});
    defer srv.deinit();
    const port = srv.listen_address.getPort();
    const replies = [_][]const u8{"HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n{\"action\":\"deny\"}"};
    var server = testing.StandIn{ .fd = srv.stream.handle, .replies = &replies };
    const th = try std.Thread.spawn(.{}, testing.StandIn.serve, .{&server});
    const out = exchange(.{
        .unix_path = "/nonexistent/styxy/d.sock",
        .tcp = .{ .addr = .{ 127, 0, 0, 1 }, .port = port, .token_path = token_path },
    }, "{}", Deadline.fromNow(2000));
    th.join();
    try t.expectEqual(decision.Action.deny, out.answer.action);
    try t.expect(std.mem.indexOf(u8, server.request(0), "\r\nAuthorization: Bearer tkn\r\n") != null);
}
