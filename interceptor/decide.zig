//! What happens to a bind that passed the guards: ask the daemon, bind what
//! it says, re-ask if the kernel disagrees, and otherwise get out of the way.
//!
//! Every exit funnels through the original caller-visible contract: the
//! return value and errno are those of the last real bind, and any failure of
//! Styxy itself degrades to the plain bind the program asked for.

const std = @import("std");
const c = std.c;
const debug = @import("debug.zig");
const ipc = @import("ipc.zig");
const request_body = @import("request_body.zig");
const decision = @import("decision.zig");
const nearby = @import("nearby.zig");
const notice = @import("notice.zig");
const paths = @import("paths.zig");
const project = @import("project.zig");
const real = @import("real.zig");
const settings = @import("settings.zig");
const sockaddr = @import("sockaddr.zig");

/// First ask plus two retries: enough to step past a couple of listeners the
/// daemon didn't know about without stalling startup on a confused daemon.
pub const max_asks = 3;

/// `fd` is the socket to bind: the caller's own in the preload library, a
/// pidfd_getfd duplicate of the trapped process's socket in the seccomp
/// supervisor (same open file, so binding it binds theirs). The holder facts
/// name the process the daemon leases to.
pub const Bind = struct {
    fd: c_int,
    original: []const u8,
    parsed: sockaddr.Parsed,
    pid: c_int,
    command: []const u8,
    cwd: ?[]const u8,
    /// Where the move notice goes when not our own stdout/stderr.
    notice_fd: ?c_int = null,
};

/// The address half of "is this bind ours": an IP address with a port at or
/// above the floor, while Styxy is enabled. Pure, so the seccomp supervisor can
/// ask it before it touches the trapped process's socket.
pub fn claimAddress(bytes: []const u8, cfg: *const settings.Config) ?sockaddr.Parsed {
    if (cfg.disabled) return null;
    const parsed = sockaddr.parse(bytes) orelse return null;
    if (parsed.port == 0 or parsed.port < cfg.min_port) return null;
    return parsed;
}

/// Only stream sockets listen; UDP and raw sockets pass through.
pub fn isStream(fd: c_int) bool {
    var so_type: c_int = 0;
    var so_len: c.socklen_t = @sizeOf(c_int);
    if (c.getsockopt(fd, std.posix.SOL.SOCKET, std.posix.SO.TYPE, &so_type, &so_len) != 0) return false;
    return so_type == std.posix.SOCK.STREAM;
}

/// Returns the final real bind's outcome; the caller turns it into rc/errno.
pub fn run(b: *const Bind, cfg: *const settings.Config) real.Result {
    const deadline = ipc.Deadline.fromNow(cfg.timeout_ms);

    // Its socket and token live in the state directory: in one someone else could fill, nothing is sent.
    var dir_buf: paths.PathBuf = undefined;
    if (paths.stateDir(settings.processEnv, &dir_buf)) |dir| switch (paths.trust(dir)) {
        .ok, .missing => {},
        else => |why| {
            debug.line(cfg, "port {d}: fail open: state directory {s} not trusted ({s})", .{ b.parsed.port, dir, @tagName(why) });
            return original(b);
        },
    };

    var sock_buf: paths.PathBuf = undefined;
    var token_buf: paths.PathBuf = undefined;
    const target = daemonTarget(cfg, &sock_buf, &token_buf);

    var project_buf: [request_body.max_project_json]u8 = undefined;
    var req: request_body.Request = .{
        .pid = b.pid,
        .port = b.parsed.port,
        .command = b.command,
        .cwd = b.cwd,
        .instance_id = cfg.instance_id,
        // Relative to the bound process's directory (the trapped one's, under the seccomp supervisor).
        .project = project.forced(settings.processEnv, b.cwd, &project_buf),
        .name = cfg.name,
        .reassign = cfg.reassign,
    };
    return askWithRetries(b, cfg, target, &req, deadline);
}

/// The daemon's socket, and TCP on loopback as the fallback when a token path
/// is known. The paths live in the caller's buffers.
fn daemonTarget(cfg: *const settings.Config, sock_buf: *paths.PathBuf, token_buf: *paths.PathBuf) ipc.Target {
    return .{
        .unix_path = paths.socketPath(settings.processEnv, sock_buf),
        .tcp = tcp: {
            const host = cfg.daemon_host orelse break :tcp null;
            const tp = paths.tokenPath(settings.processEnv, token_buf) orelse break :tcp null;
            break :tcp .{ .addr = host, .port = cfg.daemon_port, .token_path = tp };
        },
    };
}

/// Up to max_asks rounds of ask-then-bind. Each port the kernel showed to be
/// held (a listener that started after the daemon's answer, a TIME_WAIT
/// without SO_REUSEADDR) goes back to the daemon as `taken`, so the next
/// answer steps past it.
fn askWithRetries(b: *const Bind, cfg: *const settings.Config, target: ipc.Target, req: *request_body.Request, deadline: ipc.Deadline) real.Result {
    var taken: [max_asks]u16 = undefined;
    var n_taken: usize = 0;
    var ask: usize = 1;
    while (ask <= max_asks) : (ask += 1) {
        req.taken = taken[0..n_taken];
        var body_buf: [request_body.body_max]u8 = undefined;
        const body = request_body.buildBody(&body_buf, req) orelse {
            debug.line(cfg, "port {d}: request too large, binding unchanged", .{b.parsed.port});
            return original(b);
        };
        const d = switch (ipc.exchange(target, body, deadline)) {
            .answer => |d| d,
            .fail => |why| {
                debug.line(cfg, "port {d} ({s}): fail open: {s}", .{ b.parsed.port, b.parsed.family.jsonName(), why });
                return original(b);
            },
            .down => |why| {
                debug.line(cfg, "port {d} ({s}): fail open: {s}", .{ b.parsed.port, b.parsed.family.jsonName(), why });
                return withoutDaemon(b, cfg);
            },
        };
        debug.line(cfg, "port {d} ({s}) ask {d}: {s} port={d} repeat={}", .{ b.parsed.port, b.parsed.family.jsonName(), ask, @tagName(d.action), d.port, d.repeat });
        switch (bindAndAnnounce(b, cfg, d)) {
            .done => |res| return res,
            .held => |port| markTaken(&taken, &n_taken, port),
        }
    }
    debug.line(cfg, "port {d}: no free port after {d} asks, binding unchanged", .{ b.parsed.port, max_asks });
    return original(b);
}

/// What one answer came to: the caller's final result, or a port someone
/// else turned out to hold (ask again).
const Bound = union(enum) { done: real.Result, held: u16 };

/// Binds what the daemon decided and, when that moved the program, tells the
/// user.
fn bindAndAnnounce(b: *const Bind, cfg: *const settings.Config, d: decision.Decision) Bound {
    const tried: u16, const res: real.Result = switch (d.action) {
        .deny => return .{ .done = original(b) },
        .allow => .{ b.parsed.port, original(b) },
        .remap => blk: {
            // Whoever answers on the socket is our user, but not necessarily a sane daemon: a move below the
            // floor (22, 80) or onto the daemon's own port would hand a privileged or reserved port to the
            // program. Fail open instead.
            if (d.port < cfg.min_port or d.port == cfg.daemon_port) {
                debug.line(cfg, "port {d}: refusing a move to {d} (below {d} or the daemon's port)", .{ b.parsed.port, d.port, cfg.min_port });
                return .{ .done = original(b) };
            }
            const moved = sockaddr.withPort(b.original, d.port) orelse return .{ .done = original(b) };
            break :blk .{ d.port, real.callBytes(b.fd, moved.bytes()) };
        },
    };
    if (res.ok()) {
        if (tried != b.parsed.port and !d.repeat) notice.notice(cfg.notify, b.notice_fd, b.parsed.port, tried, .daemon);
        return .{ .done = res };
    }
    if (res.err != real.E_ADDRINUSE) {
        // Not a conflict Styxy can route around; let the program see its own bind's error.
        debug.line(cfg, "port {d}: bind of {d} failed with errno {d}, binding unchanged", .{ b.parsed.port, tried, res.err });
        return .{ .done = if (tried == b.parsed.port) res else original(b) };
    }
    debug.line(cfg, "port {d}: {d} is in use by an unknown listener", .{ b.parsed.port, tried });
    return .{ .held = tried };
}

/// No daemon to ask: the bind the program asked for, and when another listener holds that port, the next
/// free one up (nearby.zig), unless moves are off. When none is free the caller sees the original EADDRINUSE.
fn withoutDaemon(b: *const Bind, cfg: *const settings.Config) real.Result {
    const res = original(b);
    if (res.ok() or res.err != real.E_ADDRINUSE or !cfg.reassign) return res;
    const port = nearby.bindNearby(b.fd, b.original, b.parsed.port, cfg, nearby.max_tries) orelse {
        debug.line(cfg, "port {d}: in use, and no free port among the next {d}", .{ b.parsed.port, nearby.max_tries });
        return res;
    };
    debug.line(cfg, "port {d}: in use; moved to {d} without the daemon", .{ b.parsed.port, port });
    notice.notice(cfg.notify, b.notice_fd, b.parsed.port, port, .library);
    return .{ .rc = 0, .err = 0 };
}

fn markTaken(taken: *[max_asks]u16, n_taken: *usize, port: u16) void {
    if (std.mem.indexOfScalar(u16, taken[0..n_taken.*], port) == null) {
        taken[n_taken.*] = port;
        n_taken.* += 1;
    }
}

fn original(b: *const Bind) real.Result {
    return real.callBytes(b.fd, b.original);
}

// ---------------------------------------------------------------- tests

const t = std.testing;
const testing = @import("testing.zig");
extern "c" fn setenv(name: [*:0]const u8, value: [*:0]const u8, overwrite: c_int) c_int;
extern "c" fn unsetenv(name: [*:0]const u8) c_int;

/// A stand-in daemon's socket in a temp dir of its own, named by STYXY_SOCKET while it lives.
const DaemonSocket = struct {
    tmp: std.testing.TmpDir,
    path_buf: [300]u8,
    fd: std.posix.socket_t,

    fn open(self: *DaemonSocket) !void {
        self.tmp = t.tmpDir(.{});
        errdefer self.tmp.cleanup();
        var pbuf: [std.fs.max_path_bytes]u8 = undefined;
        const dir = try self.tmp.dir.realpath(".", &pbuf);
        const path = try std.fmt.bufPrintZ(&self.path_buf, "{s}/daemon.sock", .{dir});
        self.fd = try testing.listenUnix(path);
        try t.expectEqual(@as(c_int, 0), setenv("STYXY_SOCKET", path.ptr, 1));
    }

    fn close(self: *DaemonSocket) void {
        _ = unsetenv("STYXY_SOCKET");
        std.posix.close(self.fd);
        self.tmp.cleanup();
    }
};

/// A program's bind of 127.0.0.1:`asked` through `run`, answered by `daemon`: the port it ends on.
fn bindThrough(daemon: *testing.StandIn, asked: u16) !u16 {
    const th = try std.Thread.spawn(.{}, testing.StandIn.serve, .{daemon});
    const fd = try std.posix.socket(std.posix.AF.INET, std.posix.SOCK.STREAM | std.posix.SOCK.CLOEXEC, 0);
    defer std.posix.close(fd);
    const want = try std.net.Address.parseIp4("127.0.0.1", asked);
    const bytes = std.mem.asBytes(&want.in.sa);
    const b: Bind = .{ .fd = fd, .original = bytes, .parsed = sockaddr.parse(bytes).?, .pid = c.getpid(), .command = "test", .cwd = null };
    const res = run(&b, &.{ .notify = .off, .daemon_host = null, .timeout_ms = 2000 });
    th.join();
    try t.expect(res.ok());
    var got: std.posix.sockaddr.in = undefined;
    var len: std.posix.socklen_t = @sizeOf(@TypeOf(got));
    try std.posix.getsockname(fd, @ptrCast(&got), &len);
    return std.mem.bigToNative(u16, got.port);
}

test "remap, retry past an unknown listener, notice suppressed, errno-free result" {
    var sock: DaemonSocket = undefined;
    try sock.open();
    defer sock.close();

    // A listener the daemon doesn't know about sits on the first port it offers.
    const busy_addr = try std.net.Address.parseIp4("127.0.0.1", 0);
    var busy = try busy_addr.listen(.{});
    defer busy.deinit();
    const busy_port = busy.listen_address.getPort();
    const good_port = try testing.freePort();
    const asked_port = try testing.freePort();

    var b1: [96]u8 = undefined;
    var b2: [96]u8 = undefined;
    var r1: [160]u8 = undefined;
    var r2: [160]u8 = undefined;
    const replies = [_][]const u8{
        try testing.answer(&r1, try std.fmt.bufPrint(&b1, "{{\"action\":\"remap\",\"port\":{d},\"repeat\":true}}", .{busy_port})),
        try testing.answer(&r2, try std.fmt.bufPrint(&b2, "{{\"repeat\":true,\"port\":{d},\"action\":\"remap\"}}", .{good_port})),
    };
    var daemon = testing.StandIn{ .fd = sock.fd, .replies = &replies };
    try t.expectEqual(good_port, try bindThrough(&daemon, asked_port));

    const second = daemon.request(1);
    var expect_taken: [32]u8 = undefined;
    try t.expect(std.mem.indexOf(u8, second, try std.fmt.bufPrint(&expect_taken, "\"taken\":[{d}]", .{busy_port})) != null);
    try t.expect(std.mem.indexOf(u8, daemon.request(0), "\"taken\"") == null);
}

test "unreachable daemon: the original address, or the next free port up when another listener holds it" {
    try t.expectEqual(@as(c_int, 0), setenv("STYXY_SOCKET", "/nonexistent/styxy.sock", 1));
    defer _ = unsetenv("STYXY_SOCKET");
    const free = try testing.freePort();
    const busy_addr = try std.net.Address.parseIp4("127.0.0.1", 0);
    var busy = try busy_addr.listen(.{});
    defer busy.deinit();
    const held = busy.listen_address.getPort();
    for ([_]u16{ free, held }) |port| {
        const fd = try std.posix.socket(std.posix.AF.INET, std.posix.SOCK.STREAM | std.posix.SOCK.CLOEXEC, 0);
        defer std.posix.close(fd);
        const want = try std.net.Address.parseIp4("127.0.0.1", port);
        const bytes = std.mem.asBytes(&want.in.sa);
        const b: Bind = .{ .fd = fd, .original = bytes, .parsed = sockaddr.parse(bytes).?, .pid = c.getpid(), .command = "test", .cwd = null };
        const res = run(&b, &.{ .daemon_host = null, .notify = .off });
        try t.expect(res.ok());
        var got: std.posix.sockaddr.in = undefined;
        var len: std.posix.socklen_t = @sizeOf(@TypeOf(got));
        try std.posix.getsockname(fd, @ptrCast(&got), &len);
        const bound = std.mem.bigToNative(u16, got.port);
        if (port == free) try t.expectEqual(port, bound) else try t.expect(bound > port and bound <= port + nearby.max_tries);
    }
}

test "a move below the floor or onto the daemon's port is refused: the original bind goes ahead" {
    var sock: DaemonSocket = undefined;
    try sock.open();
    defer sock.close();
    for ([_]u16{ 22, 9876 }) |target| {
        var body: [96]u8 = undefined;
        var reply: [160]u8 = undefined;
        const replies = [_][]const u8{try testing.answer(&reply, try std.fmt.bufPrint(&body, "{{\"action\":\"remap\",\"port\":{d}}}", .{target}))};
        var daemon = testing.StandIn{ .fd = sock.fd, .replies = &replies };
        const asked = try testing.freePort();
        try t.expectEqual(asked, try bindThrough(&daemon, asked));
    }
}
