//! The interceptor's word to the daemon that this process followed a moved
//! port (POST /v1/follows), for `styxy tail`'s connect.followed event: once
//! per process and port, so a client's thousands of connects cost one
//! exchange, on the first. Unix socket only, a short deadline, and any failure
//! is silent: the follow itself has already happened.

const std = @import("std");
const linux = std.os.linux;
const ipc = @import("ipc.zig");
const paths = @import("paths.zig");
const request_body = @import("request_body.zig");
const settings = @import("settings.zig");

/// However long STYXY_TIMEOUT_MS allows a bind, a connect waits no longer than this for its report.
pub const max_wait_ms: u32 = 100;

/// The ports this process has told of. A forked child is another process: the first report it makes finds
/// another pid here and starts a new set.
pub const Told = struct {
    pid: std.atomic.Value(i32) = .init(0),
    bits: [65536 / 64]std.atomic.Value(u64) = @splat(.init(0)),

    /// True the first time this process asks for `port`.
    pub fn first(self: *Told, pid: i32, port: u16) bool {
        const was = self.pid.load(.acquire);
        if (was != pid and self.pid.cmpxchgStrong(was, pid, .acq_rel, .acquire) == null) {
            for (&self.bits) |*w| w.store(0, .monotonic);
        }
        const bit = @as(u64, 1) << @intCast(port & 63);
        const word = &self.bits[port >> 6];
        if (word.load(.monotonic) & bit != 0) return false;
        return word.fetchOr(bit, .acq_rel) & bit == 0;
    }
};

pub var process: Told = .{};

pub fn body(buf: []u8, pid: i32, asked: u16, to: u16, project: ?[]const u8) ?[]const u8 {
    var b = request_body.Buf.init(buf);
    b.append("{\"pid\":");
    b.appendInt(@intCast(@max(pid, 0)));
    b.append(",\"port\":");
    b.appendInt(asked);
    b.append(",\"to\":");
    b.appendInt(to);
    if (project) |p| {
        // Cut short it would name another project: left out, the daemon finds it from the pid.
        var probe = b;
        probe.append(",\"project\":");
        if (request_body.appendString(&probe, p, request_body.max_project_json)) b = probe;
    }
    b.append("}");
    return b.written();
}

pub fn tell(env: settings.Lookup, cfg: *const settings.Config, pid: i32, asked: u16, to: u16, project: ?[]const u8) bool {
    var buf: [request_body.max_project_json + 64]u8 = undefined;
    const b = body(&buf, pid, asked, to, project) orelse return false;
    var sock_buf: paths.PathBuf = undefined;
    const sock = paths.socketPath(env, &sock_buf) orelse return false;
    return ipc.tell(sock, "/v1/follows", b, ipc.Deadline.fromNow(@min(cfg.timeout_ms, max_wait_ms)));
}

pub fn getpid() i32 {
    return linux.getpid();
}

// ---------------------------------------------------------------- tests

const t = std.testing;

test "the report's body" {
    var buf: [request_body.max_project_json + 64]u8 = undefined;
    try t.expectEqualStrings(
        \\{"pid":5151,"port":8000,"to":8002,"project":"/home/dev/wt-b"}
    , body(&buf, 5151, 8000, 8002, "/home/dev/wt-b").?);
    try t.expectEqualStrings(
        \\{"pid":1,"port":3000,"to":3001}
    , body(&buf, 1, 3000, 3001, null).?);
    try t.expectEqualStrings(
        \\{"pid":1,"port":3000,"to":3001}
    , body(&buf, 1, 3000, 3001, "/" ++ "x" ** request_body.max_project_json).?);
}

test "told once per process and port" {
    const told = try t.allocator.create(Told);
    defer t.allocator.destroy(told);
    told.* = .{};
    try t.expect(told.first(10, 8000));
    try t.expect(!told.first(10, 8000));
    try t.expect(told.first(10, 8001));
    try t.expect(told.first(10, 0) and told.first(10, 65535) and !told.first(10, 65535));
    // A forked child (another pid) tells of its own.
    try t.expect(told.first(11, 8000));
    try t.expect(!told.first(11, 8000));
}
