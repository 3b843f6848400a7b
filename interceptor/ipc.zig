//! One HTTP/1.1 request/response with the daemon, under one deadline: its
//! Unix socket, TCP on loopback only when the socket can't be reached.
//!
//! Our sockets are non-blocking and waited on with poll() so the deadline is
//! real even if the daemon accepts and then hangs. They are connected, never
//! bound, so the interceptor can't re-enter itself.

const std = @import("std");
const c = std.c;
const json = @import("json.zig");

const E = std.posix.E;
fn errnoIs(e: E) bool {
    return c._errno().* == @intFromEnum(e);
}

pub const Deadline = struct {
    end_ns: i128,

    pub fn fromNow(ms: u32) Deadline {
        return .{ .end_ns = nowNs() + @as(i128, ms) * std.time.ns_per_ms };
    }

    /// Rounded up so a sub-millisecond remainder still gets one poll.
    pub fn remainingMs(self: Deadline) i32 {
        const left = self.end_ns - nowNs();
        if (left <= 0) return 0;
        const ms = @divFloor(left + std.time.ns_per_ms - 1, std.time.ns_per_ms);
        return @intCast(@min(ms, std.math.maxInt(i32)));
    }

    pub fn expired(self: Deadline) bool {
        return self.remainingMs() == 0;
    }

    pub fn nowNs() i128 {
        return clockNs(.MONOTONIC);
    }
};

fn clockNs(clock: c.clockid_t) i128 {
    var ts: c.timespec = undefined;
    if (c.clock_gettime(clock, &ts) != 0) return 0;
    return @as(i128, ts.sec) * std.time.ns_per_s + ts.nsec;
}

pub const Tcp = struct {
    addr: [4]u8,
    port: u16,
    token_path: [*:0]const u8,
};

pub const Target = struct {
    unix_path: ?[:0]const u8,
    tcp: ?Tcp,
};

pub const Outcome = union(enum) {
    answer: json.Decision,
    /// Why we are failing open, for the debug line.
    fail: []const u8,
};

pub const response_max = 4096;
pub const request_max = 4096;

/// The one entry point: send `body` to the daemon and interpret the answer.
pub fn exchange(target: Target, body: []const u8, deadline: Deadline) Outcome {
    var resp: [response_max]u8 = undefined;
    var req: [request_max]u8 = undefined;

    const unix_req = frame(&req, null, body) orelse return .{ .fail = "request too large" };
    if (target.unix_path) |path| {
        if (askUnix(path, unix_req, &resp, deadline)) |out| return out;
    }
    const tcp = target.tcp orelse return .{ .fail = "daemon socket unreachable, no tcp fallback" };
    if (deadline.expired()) return .{ .fail = "timeout before tcp fallback" };
    // Connected first: a daemon killed with -9 leaves its socket file and token behind, and with nothing on
    // the port the refusal is immediate, where reading /proc/net/tcp below costs milliseconds on every bind.
    // Nothing is sent before the listener is known to be ours.
    const fd = connectTcp(tcp.addr, tcp.port, deadline) orelse return .{ .fail = "daemon unreachable (unix and tcp)" };
    defer _ = c.close(fd);
    var tok_buf: [256]u8 = undefined;
    const token = @import("env.zig").readToken(tcp.token_path, &tok_buf) orelse
        return .{ .fail = "daemon socket unreachable and no token for tcp" };
    if (!@import("owner.zig").listenerIsOurs(tcp.addr, tcp.port, std.os.linux.geteuid()))
        return .{ .fail = "no listener of ours on the tcp port: token withheld" };
    const r = frame(&req, .{ .token = token, .addr = tcp.addr, .port = tcp.port }, body) orelse return .{ .fail = "request too large" };
    return roundTrip(fd, r, &resp, deadline);
}

/// Null when nothing listens at `path`.
fn askUnix(path: [:0]const u8, req: []const u8, resp: *[response_max]u8, deadline: Deadline) ?Outcome {
    const fd = connectUnix(path, deadline) orelse return null;
    defer _ = c.close(fd);
    return roundTrip(fd, req, resp, deadline);
}

/// Over TCP the daemon accepts only a loopback Host with its own port (its DNS-rebinding guard), and the token.
const TcpAuth = struct { token: []const u8, addr: [4]u8, port: u16 };

fn roundTrip(fd: c_int, req: []const u8, resp: *[response_max]u8, deadline: Deadline) Outcome {
    if (!sendAll(fd, req, deadline)) return .{ .fail = "send failed or timed out" };
    const raw = switch (receive(fd, resp, deadline)) {
        .ok => |r| r,
        .fail => |why| return .{ .fail = why },
    };
    return parseResponse(raw);
}

/// The head is the contract's too: interceptor/contract.zig writes it out for the TypeScript side.
pub fn frame(buf: []u8, tcp: ?TcpAuth, body: []const u8) ?[]const u8 {
    var b = json.Buf.init(buf);
    b.append("POST /v1/bind HTTP/1.1\r\nHost: ");
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
    if (c.connect(fd, sa, len) == 0) return true;
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

const Received = union(enum) { ok: []const u8, fail: []const u8 };

/// How long a caller keeps its CPU while its answer is on the way, before it sleeps in poll(). A typical
/// answer takes ~300 µs; a caller asleep by then costs the daemon's side a wake-up of the caller's CPU, which
/// a virtual machine pays dearly (~60 µs of a bind's p50 on the development VM). At most this much CPU per
/// bind, and never past the caller's deadline.
/// sched_yield() in the loop hands the CPU to the daemon whenever it waits for it: a loop of
/// recv() and a pause instruction answered a lone bind ~40 µs sooner, but halved the rate of 4 or 16
/// programs binding at once (A/B); with sched_yield() that rate is the same as without spinning.
pub const spin_ns: i128 = 500 * std.time.ns_per_us;

/// Reads until the response is complete (by Content-Length) or EOF.
fn receive(fd: c_int, buf: *[response_max]u8, deadline: Deadline) Received {
    var len: usize = 0;
    const spin_end = @min(Deadline.nowNs() + spin_ns, deadline.end_ns);
    while (true) {
        if (len == buf.len) return .{ .fail = "response oversized" };
        const n = c.recv(fd, buf[len..].ptr, buf.len - len, 0);
        if (n > 0) {
            len += @intCast(n);
            if (isComplete(buf[0..len])) return .{ .ok = buf[0..len] };
            continue;
        }
        if (n == 0) return .{ .ok = buf[0..len] };
        if (errnoIs(.INTR)) continue;
        if (!errnoIs(.AGAIN)) return .{ .fail = "receive failed" };
        // A seccomp filter that refuses sched_yield (an error, not a kill) ends the spin: we sleep at once.
        if (Deadline.nowNs() < spin_end and std.os.linux.E.init(std.os.linux.sched_yield()) == .SUCCESS) continue;
        if (!waitFor(fd, std.posix.POLL.IN, deadline)) return .{ .fail = "timeout waiting for answer" };
    }
}

// ---------------------------------------------------------------- HTTP

const Head = struct {
    status: u16,
    body_start: usize,
    content_length: ?usize,
};

const HeadError = error{ Incomplete, Malformed, Chunked };

fn parseHead(raw: []const u8) HeadError!Head {
    const end = std.mem.indexOf(u8, raw, "\r\n\r\n") orelse return error.Incomplete;
    var lines = std.mem.splitSequence(u8, raw[0..end], "\r\n");
    const status_line = lines.next() orelse return error.Malformed;
    if (!std.mem.startsWith(u8, status_line, "HTTP/1.1 ") and !std.mem.startsWith(u8, status_line, "HTTP/1.0 "))
        return error.Malformed;
    const rest = status_line[9..];
    if (rest.len < 3 or (rest.len > 3 and rest[3] != ' ')) return error.Malformed;
    for (rest[0..3]) |ch| if (!std.ascii.isDigit(ch)) return error.Malformed;
    const status = std.fmt.parseInt(u16, rest[0..3], 10) catch return error.Malformed;

    var content_length: ?usize = null;
    while (lines.next()) |line| {
        const colon = std.mem.indexOfScalar(u8, line, ':') orelse return error.Malformed;
        const name = line[0..colon];
        const value = std.mem.trim(u8, line[colon + 1 ..], " \t");
        if (std.ascii.eqlIgnoreCase(name, "transfer-encoding")) {
            if (!std.ascii.eqlIgnoreCase(value, "identity")) return error.Chunked;
        } else if (std.ascii.eqlIgnoreCase(name, "content-length")) {
            if (value.len == 0 or value.len > 9) return error.Malformed;
            for (value) |ch| if (!std.ascii.isDigit(ch)) return error.Malformed;
            const n = std.fmt.parseInt(usize, value, 10) catch return error.Malformed;
            if (content_length) |prev| if (prev != n) return error.Malformed;
            content_length = n;
        }
    }
    return .{ .status = status, .body_start = end + 4, .content_length = content_length };
}

/// Lets us stop reading as soon as the declared body has arrived instead of
/// waiting for the daemon to close the connection.
fn isComplete(raw: []const u8) bool {
    const head = parseHead(raw) catch |e| return e != error.Incomplete;
    const cl = head.content_length orelse return false;
    return raw.len - head.body_start >= cl;
}

/// Any answer other than a well-formed 200 with a valid decision is a fail-open.
/// The daemon's own refusal of the request (any status but 200 and 503).
pub const refused = "daemon answered non-200";

pub fn parseResponse(raw: []const u8) Outcome {
    const head = parseHead(raw) catch |e| return .{ .fail = switch (e) {
        error.Incomplete => "truncated response headers",
        error.Malformed => "malformed response headers",
        error.Chunked => "unsupported transfer-encoding",
    } };
    if (head.status != 200) return .{ .fail = if (head.status == 503) "daemon unavailable (503)" else refused };
    var body = raw[head.body_start..];
    if (head.content_length) |cl| {
        if (body.len < cl) return .{ .fail = "truncated response body" };
        body = body[0..cl];
    }
    const d = json.parseDecision(body) catch |e| return .{ .fail = switch (e) {
        error.Malformed => "malformed json answer",
        error.UnknownAction => "unknown action",
        error.MissingAction => "answer has no action",
        error.BadPort => "remap with invalid port",
    } };
    return .{ .answer = d };
}

// ---------------------------------------------------------------- tests

const t = std.testing;

fn ok(status_and_headers: []const u8, body: []const u8, buf: []u8) []const u8 {
    return std.fmt.bufPrint(buf, "{s}Content-Length: {d}\r\n\r\n{s}", .{ status_and_headers, body.len, body }) catch unreachable;
}

fn expectAnswer(raw: []const u8, want: json.Decision) !void {
    switch (parseResponse(raw)) {
        .answer => |d| try t.expectEqual(want, d),
        .fail => |why| {
            std.debug.print("failed open: {s}\n", .{why});
            return error.TestUnexpectedResult;
        },
    }
}

fn expectFail(raw: []const u8) !void {
    switch (parseResponse(raw)) {
        .answer => |d| {
            std.debug.print("unexpected answer {any} for {s}\n", .{ d, raw });
            return error.TestUnexpectedResult;
        },
        .fail => {},
    }
}

test "valid responses" {
    var buf: [1024]u8 = undefined;
    try expectAnswer(ok("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n",
        \\{"action":"remap","port":8001,"requestedPort":8000,"service":"api","leaseId":"l_x","repeat":false}
    , &buf), .{ .action = .remap, .port = 8001 });
    try expectAnswer(ok("HTTP/1.0 200 OK\r\nconnection: close\r\n",
        \\{"leaseId":"l\"x","repeat":true,"action":"remap","port":9000}
    , &buf), .{ .action = .remap, .port = 9000, .repeat = true });
    // No Content-Length: the body runs to EOF.
    try expectAnswer("HTTP/1.1 200 OK\r\n\r\n{\"action\":\"allow\"}", .{ .action = .allow });
    try expectAnswer("HTTP/1.1 200\r\ncontent-length: 17\r\n\r\n{\"action\":\"deny\"}", .{ .action = .deny });
    try expectAnswer("HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n{\"action\":\"allow\"}", .{ .action = .allow });
}

test "responses that must fail open" {
    var buf: [1024]u8 = undefined;
    const bad = [_][]const u8{
        "",
        "HTTP/1.1 200 OK\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n",
        ok("HTTP/1.1 500 Internal Server Error\r\n", "{\"action\":\"allow\"}", &buf),
        "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 204 No Content\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n{\"action\":\"allow\"}",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n12\r\n{\"action\":\"allow\"}\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}",
        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n{}",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n{\"action\":\"allow\"}",
        "HTTP/2 200\r\n\r\n{\"action\":\"allow\"}",
        "HTTP/1.1 2000 OK\r\n\r\n{\"action\":\"allow\"}",
        "HTTP/1.1 20x OK\r\n\r\n{\"action\":\"allow\"}",
        "http/1.1 200 OK\r\n\r\n{\"action\":\"allow\"}",
        "HTTP/1.1 200 OK\n\n{\"action\":\"allow\"}",
        ok("HTTP/1.1 200 OK\r\n", "{\"action\":\"remap\",\"port\":-5}", &buf),
        ok("HTTP/1.1 200 OK\r\n", "{\"action\":\"remap\",\"port\":70000}", &buf),
        ok("HTTP/1.1 200 OK\r\n", "{\"action\":\"remap\"}", &buf),
        ok("HTTP/1.1 200 OK\r\n", "{\"action\":\"nope\"}", &buf),
        ok("HTTP/1.1 200 OK\r\n", "<html>oops</html>", &buf),
        ok("HTTP/1.1 200 OK\r\n", "{\"action\":\"allow\",\"x\":\"unterminated}", &buf),
    };
    for (bad) |raw| try expectFail(raw);
}

test "completion detection" {
    try t.expect(!isComplete("HTTP/1.1 200 OK\r\nContent-Le"));
    try t.expect(!isComplete("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n{}"));
    try t.expect(isComplete("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"));
    try t.expect(!isComplete("HTTP/1.1 200 OK\r\n\r\n{}")); // no length: wait for EOF
    try t.expect(isComplete("garbage\r\n\r\n")); // hopeless: stop reading early
}

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

test "fuzz: generated garbage never crashes and always decides or fails open" {
    var prng = std.Random.DefaultPrng.init(0x5717_5717);
    const rnd = prng.random();
    const fragments = [_][]const u8{
        "HTTP/1.1 200 OK\r\n",            "HTTP/1.0 200 OK\r\n", "HTTP/1.1 404 x\r\n", "Content-Length: ",
        "Transfer-Encoding: chunked\r\n", "\r\n",                "\r\n\r\n",           "{",
        "}",                              "[",                   "]",                  ",",
        ":",                              "\"action\"",          "\"allow\"",          "\"remap\"",
        "\"deny\"",                       "\"port\"",            "\"repeat\"",         "true",
        "false",                          "null",                "8001",               "-1",
        "65536",                          "\"",                  "\\",                 "\\\"",
        "\\u00",                          "0",                   "17",                 " ",
        "\x00",                           "\xff",                "é",
    };
    var buf: [response_max]u8 = undefined;
    var decided: usize = 0;
    for (0..20_000) |_| {
        var b = json.Buf.init(&buf);
        // Mix structured fragments with raw random bytes.
        const parts = rnd.uintLessThan(usize, 40);
        for (0..parts) |_| {
            if (rnd.boolean()) {
                b.append(fragments[rnd.uintLessThan(usize, fragments.len)]);
            } else {
                var junk: [8]u8 = undefined;
                rnd.bytes(&junk);
                b.append(junk[0..rnd.uintLessThan(usize, junk.len + 1)]);
            }
        }
        const raw = buf[0..b.len];
        switch (parseResponse(raw)) {
            .answer => |d| {
                decided += 1;
                if (d.action == .remap) try t.expect(d.port != 0);
            },
            .fail => |why| try t.expect(why.len > 0),
        }
        _ = isComplete(raw);
        _ = json.parseDecision(raw) catch {};
    }
    // Also mutate a valid response byte by byte.
    var good_buf: [256]u8 = undefined;
    const good = ok("HTTP/1.1 200 OK\r\n", "{\"action\":\"remap\",\"port\":8001,\"repeat\":false,\"s\":\"a\\\"b\"}", &good_buf);
    for (0..20_000) |_| {
        var m: [256]u8 = undefined;
        @memcpy(m[0..good.len], good);
        const flips = 1 + rnd.uintLessThan(usize, 3);
        for (0..flips) |_| m[rnd.uintLessThan(usize, good.len)] = rnd.int(u8);
        const cut = good.len - rnd.uintLessThan(usize, 4);
        switch (parseResponse(m[0..cut])) {
            .answer => |d| if (d.action == .remap) try t.expect(d.port != 0),
            .fail => {},
        }
    }
    try t.expect(decided < 20_000);
}

test "deadline arithmetic" {
    const d = Deadline.fromNow(50);
    const ms = d.remainingMs();
    try t.expect(ms > 0 and ms <= 50);
    try t.expect(Deadline.fromNow(0).expired());
}

// End-to-end over a real Unix socket with a server thread in this process.
const FakeServer = struct {
    listen_fd: std.posix.socket_t,
    reply: []const u8,
    got: [2048]u8 = undefined,
    got_len: usize = 0,

    fn run(self: *FakeServer) void {
        const conn = std.posix.accept(self.listen_fd, null, null, std.posix.SOCK.CLOEXEC) catch return;
        defer std.posix.close(conn);
        // Read until the full request (headers + Content-Length body) arrived.
        while (self.got_len < self.got.len) {
            const n = std.posix.read(conn, self.got[self.got_len..]) catch return;
            if (n == 0) break;
            self.got_len += n;
            if (isCompleteRequest(self.got[0..self.got_len])) break;
        }
        if (self.reply.len > 0) {
            _ = std.posix.write(conn, self.reply) catch {};
        } else std.time.sleep(300 * std.time.ns_per_ms);
    }

    fn isCompleteRequest(raw: []const u8) bool {
        const end = std.mem.indexOf(u8, raw, "\r\n\r\n") orelse return false;
        const cl_at = std.mem.indexOf(u8, raw[0..end], "Content-Length: ") orelse return false;
        const cl_end = std.mem.indexOfScalarPos(u8, raw, cl_at, '\r').?;
        const cl = std.fmt.parseInt(usize, raw[cl_at + 16 .. cl_end], 10) catch return false;
        return raw.len - (end + 4) >= cl;
    }
};

/// The answer, the request the server got (and its length), the milliseconds the exchange took, and the CPU
/// time it used.
fn withServer(reply: []const u8, timeout_ms: u32) !struct { Outcome, [2048]u8, usize, i64, i128 } {
    var tmp = t.tmpDir(.{});
    defer tmp.cleanup();
    var pbuf: [std.fs.max_path_bytes]u8 = undefined;
    const dir = try tmp.dir.realpath(".", &pbuf);
    var path_buf: [256]u8 = undefined;
    const path = try std.fmt.bufPrintZ(&path_buf, "{s}/d.sock", .{dir});

    const lfd = try @import("testing.zig").listenUnix(path);
    defer std.posix.close(lfd);

    var server = FakeServer{ .listen_fd = lfd, .reply = reply };
    const th = try std.Thread.spawn(.{}, FakeServer.run, .{&server});
    const start = std.time.milliTimestamp();
    const cpu = clockNs(.THREAD_CPUTIME_ID);
    const out = exchange(.{ .unix_path = path, .tcp = null }, "{\"pid\":1}", Deadline.fromNow(timeout_ms));
    const used = clockNs(.THREAD_CPUTIME_ID) - cpu;
    const took = std.time.milliTimestamp() - start;
    th.join();
    return .{ out, server.got, server.got_len, took, used };
}

test "exchange over a unix socket" {
    const res = try withServer("HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n{\"action\":\"remap\",\"port\":8123}", 2000);
    try t.expectEqual(json.Decision{ .action = .remap, .port = 8123 }, res[0].answer);
    const req = res[1][0..res[2]];
    try t.expect(std.mem.startsWith(u8, req, "POST /v1/bind HTTP/1.1\r\n"));
    try t.expect(std.mem.endsWith(u8, req, "\r\n\r\n{\"pid\":1}"));
}

test "exchange times out against a silent daemon, and sleeps through most of the wait" {
    const res = try withServer("", 100);
    try t.expect(res[0] == .fail);
    try t.expect(res[3] >= 90 and res[3] < 280);
    // It keeps its CPU for spin_ns (0.5 ms) at most, then sleeps in poll(): spinning to the deadline would use
    // most of the 100 ms.
    try t.expect(res[4] < 25 * std.time.ns_per_ms);
}

test "unreachable socket without tcp fails open quickly" {
    const out = exchange(.{ .unix_path = "/nonexistent/styxy/d.sock", .tcp = null }, "{}", Deadline.fromNow(1000));
    try t.expect(out == .fail);
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
    const Srv = struct {
        fn run(s: *std.net.Server, got: *[2048]u8, got_len: *usize) void {
            const conn = s.accept() catch return;
            defer conn.stream.close();
            while (got_len.* < got.len) {
                const n = conn.stream.read(got[got_len.*..]) catch return;
                if (n == 0) break;
                got_len.* += n;
                if (FakeServer.isCompleteRequest(got[0..got_len.*])) break;
            }
            conn.stream.writeAll("HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n{\"action\":\"deny\"}") catch {};
        }
    };
    var got: [2048]u8 = undefined;
    var got_len: usize = 0;
    const th = try std.Thread.spawn(.{}, Srv.run, .{ &srv, &got, &got_len });
    const out = exchange(.{
        .unix_path = "/nonexistent/styxy/d.sock",
        .tcp = .{ .addr = .{ 127, 0, 0, 1 }, .port = port, .token_path = token_path },
    }, "{}", Deadline.fromNow(2000));
    th.join();
    try t.expectEqual(json.Action.deny, out.answer.action);
    try t.expect(std.mem.indexOf(u8, got[0..got_len], "\r\nAuthorization: Bearer tkn\r\n") != null);
}
