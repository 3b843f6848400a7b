//! The daemon's `connect.followed` event (issue 19: `styxy tail` shows a follow at most once per process and
//! port). The first follow of each port in a process is told to the daemon over its Unix socket, fire and
//! forget: no answer is read on a connect() path. No socket (a daemon that is down, TCP only): no event, and
//! the port is not told again; the follow itself never depends on this.

const std = @import("std");
const c = std.c;
const ipc = @import("ipc.zig");
const paths = @import("paths.zig");
const project = @import("project.zig");
const request_body = @import("request_body.zig");
const settings = @import("settings.zig");

/// Enough for a Unix connect and a few hundred bytes to a live daemon; bounds a hung one.
const deadline_ms: u32 = 50;

pub const Reporter = struct {
    /// One bit per port, set by the thread that tells it (fetchOr: two threads following one port tell once).
    /// 8 KiB, in the library's .bss for the process's reporter. A forked child inherits what was told.
    told: [65536 / 64]std.atomic.Value(u64) = [_]std.atomic.Value(u64){.init(0)} ** (65536 / 64),

    /// Tell the daemon, once per port, that this process followed `asked` to `to`. Clobbers errno.
    pub fn tell(self: *Reporter, env: settings.Lookup, asked: u16, to: u16) void {
        const bit = @as(u64, 1) << @intCast(asked & 63);
        if (self.told[asked >> 6].fetchOr(bit, .monotonic) & bit != 0) return;
        send(env, asked, to);
    }
};

pub var process: Reporter = .{};

fn send(env: settings.Lookup, asked: u16, to: u16) void {
    @branchHint(.cold);
    var sock_buf: paths.PathBuf = undefined;
    const sock = paths.socketPath(env, &sock_buf) orelse return;
    var body_buf: [request_body.max_project_json + 96]u8 = undefined;
    const body = buildBody(&body_buf, env, c.getpid(), asked, to) orelse return;
    var req_buf: [ipc.request_max]u8 = undefined;
    const req = ipc.frameTo(&req_buf, "/v1/follows", null, body) orelse return;
    _ = ipc.tell(sock, req, ipc.Deadline.fromNow(deadline_ms));
}

/// `{"pid","port","to","project"?}`: the project as this process found it (the daemon would otherwise take
/// the worktree of the process's cwd, missing STYXY_PROJECT); left out when it does not fit.
pub fn buildBody(buf: []u8, env: settings.Lookup, pid: c.pid_t, asked: u16, to: u16) ?[]const u8 {
    var b = request_body.Buf.init(buf);
    b.append("{\"pid\":");
    b.appendInt(@intCast(@max(pid, 0)));
    b.append(",\"port\":");
    b.appendInt(asked);
    b.append(",\"to\":");
    b.appendInt(to);
    var pbuf: project.Buf = undefined;
    if (project.find(env, &pbuf)) |p| {
        var probe = b;
        probe.append(",\"project\":");
        if (request_body.appendString(&probe, p, request_body.max_project_json)) b = probe;
    }
    b.append("}");
    return b.written();
}

// ---------------------------------------------------------------- tests

const t = std.testing;
const testing = @import("testing.zig");

test "the body names the process, the ports and the forced project, escaped" {
    var buf: [request_body.max_project_json + 96]u8 = undefined;
    const env = testing.FakeEnv(&.{.{ "STYXY_PROJECT", "/w/\"b\"" }}).get;
    try t.expectEqualStrings("{\"pid\":42,\"port\":8000,\"to\":8002,\"project\":\"/w/\\\"b\\\"\"}", buildBody(&buf, env, 42, 8000, 8002).?);
}

test "a port is told once per reporter, on the daemon's Unix socket, without waiting for an answer" {
    var tmp = t.tmpDir(.{});
    defer tmp.cleanup();
    var dir_buf: [std.fs.max_path_bytes]u8 = undefined;
    const dir = try tmp.dir.realpath(".", &dir_buf);
    const sock_path = try std.fmt.allocPrint(t.allocator, "{s}/daemon.sock", .{dir});
    defer t.allocator.free(sock_path);
    var server = try (try std.net.Address.initUnix(sock_path)).listen(.{ .force_nonblocking = true });
    defer server.deinit();

    const Env = struct {
        var state_dir: []const u8 = "";
        fn get(name: [:0]const u8) ?[]const u8 {
            if (std.mem.eql(u8, name, "STYXY_HOME")) return state_dir;
            if (std.mem.eql(u8, name, "STYXY_PROJECT")) return "/tmp/wt-b";
            return null;
        }
    };
    Env.state_dir = dir;
    var r: Reporter = .{};
    r.tell(Env.get, 8000, 8002);
    r.tell(Env.get, 8000, 8002);
    r.tell(Env.get, 5432, 5433);

    var bufs: [2][1024]u8 = undefined;
    var got: [2][]const u8 = undefined;
    for (&got, &bufs) |*g, *b| {
        const conn = try server.accept();
        defer conn.stream.close();
        g.* = b[0..try conn.stream.read(b)];
    }
    // Nobody else asked: the repeat sent nothing.
    try t.expectError(error.WouldBlock, server.accept());
    var want: [2][128]u8 = undefined;
    const pid = c.getpid();
    const bodies = [2][]const u8{
        try std.fmt.bufPrint(&want[0], "{{\"pid\":{d},\"port\":8000,\"to\":8002,\"project\":\"/tmp/wt-b\"}}", .{pid}),
        try std.fmt.bufPrint(&want[1], "{{\"pid\":{d},\"port\":5432,\"to\":5433,\"project\":\"/tmp/wt-b\"}}", .{pid}),
    };
    for (got, bodies) |g, body| {
        try t.expect(std.mem.startsWith(u8, g, "POST /v1/follows HTTP/1.1\r\nHost: localhost\r\n"));
        try t.expect(std.mem.endsWith(u8, g, body));
    }
}
