//! The one time bound of a bind's exchange with the daemon: every wait (connect, send, poll) takes what is left.

const std = @import("std");
const c = std.c;

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

pub fn clockNs(clock: c.clockid_t) i128 {
    var ts: c.timespec = undefined;
    if (c.clock_gettime(clock, &ts) != 0) return 0;
    return @as(i128, ts.sec) * std.time.ns_per_s + ts.nsec;
}

// ---------------------------------------------------------------- tests

const t = std.testing;

test "deadline arithmetic" {
    const d = Deadline.fromNow(50);
    const ms = d.remainingMs();
    try t.expect(ms > 0 and ms <= 50);
    try t.expect(Deadline.fromNow(0).expired());
}
