//! With the daemon down (not running, restarting, too slow to answer), a
//! program asking for a port another listener holds would fail with
//! EADDRINUSE, as without Styxy. The library moves it itself instead: the next
//! ports up, tried with real binds on the program's own socket, a bounded
//! number of times. The daemon, once back, sees the listener in the kernel's
//! tables like any other.

const std = @import("std");
const c = std.c;
const real = @import("real.zig");
const settings = @import("settings.zig");
const sockaddr = @import("sockaddr.zig");

/// Ports tried past the asked one. Each try is one bind(2), no waiting, so the
/// search stays inside the ask's time bound even when the ask used all of it.
pub const max_tries = 16;

/// The ports to try after `asked`, in order: never below the floor, never the
/// daemon's own port (neither counts as a try), never past 65535.
pub const Candidates = struct {
    cfg: *const settings.Config,
    limit: usize,
    port: u32,
    tries: usize = 0,

    pub fn init(asked: u16, cfg: *const settings.Config, limit: usize) Candidates {
        return .{ .cfg = cfg, .limit = limit, .port = asked };
    }

    pub fn next(self: *Candidates) ?u16 {
        while (self.tries < self.limit) {
            self.port += 1;
            if (self.port > std.math.maxInt(u16)) return null;
            if (self.port < self.cfg.min_port or self.port == self.cfg.daemon_port) continue;
            self.tries += 1;
            return @intCast(self.port);
        }
        return null;
    }
};

/// Binds `fd` to the first free candidate after `asked` (the original address
/// with another port): that port, or null when every try was taken or a bind
/// failed for another reason. A failed bind leaves the socket unbound, so the
/// caller can still report the original bind's error.
pub fn bindNearby(fd: c_int, original: []const u8, asked: u16, cfg: *const settings.Config, limit: usize) ?u16 {
    var it = Candidates.init(asked, cfg, limit);
    while (it.next()) |port| {
        const moved = sockaddr.withPort(original, port) orelse return null;
        const res = real.callBytes(fd, moved.bytes());
        if (res.ok()) return port;
        if (res.err != real.E_ADDRINUSE) return null;
    }
    return null;
}

// ---------------------------------------------------------------- tests

const t = std.testing;

test "candidates: the next ports up, bounded, past the daemon's port, never past 65535" {
    const cfg: settings.Config = .{ .daemon_port = 5002, .min_port = 1024 };
    var it = Candidates.init(5000, &cfg, 4);
    var got: [8]u16 = undefined;
    var n: usize = 0;
    while (it.next()) |p| : (n += 1) got[n] = p;
    try t.expectEqualSlices(u16, &.{ 5001, 5003, 5004, 5005 }, got[0..n]);

    var top = Candidates.init(65534, &cfg, max_tries);
    try t.expectEqual(@as(?u16, 65535), top.next());
    try t.expectEqual(@as(?u16, null), top.next());
}

/// `n` consecutive loopback ports, all free when found (held meanwhile by listeners the caller closes).
fn holdRun(comptime n: usize, held: *[n]std.net.Server) !u16 {
    var base: u16 = 20000;
    outer: while (base < 30000) : (base += n + 1) {
        for (0..n) |i| {
            const a = try std.net.Address.parseIp4("127.0.0.1", base + @as(u16, @intCast(i)));
            held[i] = a.listen(.{}) catch {
                for (held[0..i]) |*s| s.deinit();
                continue :outer;
            };
        }
        return base;
    }
    return error.NoFreeRun;
}

fn boundPort(fd: std.posix.socket_t) !u16 {
    var got: std.posix.sockaddr.in = undefined;
    var len: std.posix.socklen_t = @sizeOf(@TypeOf(got));
    try std.posix.getsockname(fd, @ptrCast(&got), &len);
    return std.mem.bigToNative(u16, got.port);
}

test "bindNearby: real binds step past held ports to the first free one, and give up after the limit" {
    // Held: base (the asked port), base+1 and base+2; base+3 is the first free one.
    var held: [3]std.net.Server = undefined;
    const base = try holdRun(3, &held);
    defer for (&held) |*s| s.deinit();
    const want = try std.net.Address.parseIp4("127.0.0.1", base);
    const bytes = std.mem.asBytes(&want.in.sa);
    const cfg: settings.Config = .{};

    const fd = try std.posix.socket(std.posix.AF.INET, std.posix.SOCK.STREAM | std.posix.SOCK.CLOEXEC, 0);
    defer std.posix.close(fd);
    // Two tries cover base+1 and base+2 only: both held, so no port, and the socket is still unbound.
    try t.expectEqual(@as(?u16, null), bindNearby(fd, bytes, base, &cfg, 2));
    try t.expectEqual(@as(u16, 0), try boundPort(fd));
    // With the daemon's port on base+3 it is skipped too.
    const skip: settings.Config = .{ .daemon_port = base + 3 };
    const got = bindNearby(fd, bytes, base, &skip, max_tries).?;
    try t.expect(got >= base + 4 and got <= base + max_tries + 1);
    try t.expectEqual(got, try boundPort(fd));
}
