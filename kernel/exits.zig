//! Process exits, told by the kernel: one pidfd per watched process, all in
//! one epoll set whose readiness the addon hands to libuv.
//!
//! A pidfd turns readable when its process exits (becomes a zombie), before
//! anyone reaps it, and stays readable: a process that exits between
//! pidfd_open and EPOLL_CTL_ADD is reported on the next turn, not missed.
//! What pidfd_open cannot tell is whether the pid is still the process the
//! caller means: it names whatever holds the pid now. The daemon must check
//! the process's start time after watch() said true, as it does for its leases.

const std = @import("std");
const linux = std.os.linux;

pub const pid_t = linux.pid_t;

pub const Watcher = struct {
    epfd: linux.fd_t = -1,
    /// pid -> its pidfd. The epoll data holds both too, so an event needs no lookup to be undone.
    fds: std.AutoHashMapUnmanaged(pid_t, linux.fd_t) = .empty,
    /// The errno of the last failed call, for the error JS sees.
    errno: u16 = 0,
    failed_call: []const u8 = "",

    pub const Error = error{ Kernel, OutOfMemory };

    fn fail(self: *Watcher, call: []const u8, e: linux.E) error{Kernel} {
        self.failed_call = call;
        self.errno = @intFromEnum(e);
        return error.Kernel;
    }

    pub fn open(self: *Watcher) Error!void {
        if (self.epfd >= 0) return;
        const rc = linux.epoll_create1(linux.EPOLL.CLOEXEC);
        if (linux.E.init(rc) != .SUCCESS) return self.fail("epoll_create1", linux.E.init(rc));
        self.epfd = @intCast(rc);
    }

    /// true: watching (already or now). false: no such process (exited and reaped).
    /// error.Kernel with errno ENOSYS: this kernel has no pidfd_open (before 5.3).
    pub fn watch(self: *Watcher, gpa: std.mem.Allocator, pid: pid_t) Error!bool {
        if (self.fds.contains(pid)) return true;
        try self.open();
        try self.fds.ensureUnusedCapacity(gpa, 1);
        // No flags: pidfd_open's fd is close-on-exec already (the man page, and the test below).
        const rc = linux.pidfd_open(pid, 0);
        switch (linux.E.init(rc)) {
            .SUCCESS => {},
            .SRCH => return false,
            else => |e| return self.fail("pidfd_open", e),
        }
        const fd: linux.fd_t = @intCast(rc);
        var ev: linux.epoll_event = .{ .events = linux.EPOLL.IN, .data = .{ .u64 = pack(pid, fd) } };
        const add = linux.epoll_ctl(self.epfd, linux.EPOLL.CTL_ADD, fd, &ev);
        if (linux.E.init(add) != .SUCCESS) {
            _ = linux.close(fd);
            return self.fail("epoll_ctl", linux.E.init(add));
        }
        self.fds.putAssumeCapacity(pid, fd);
        return true;
    }

    /// false when the pid was not watched.
    pub fn unwatch(self: *Watcher, pid: pid_t) bool {
        const entry = self.fds.fetchRemove(pid) orelse return false;
        forget(self.epfd, entry.value);
        return true;
    }

    pub fn count(self: *const Watcher) usize {
        return self.fds.count();
    }

    /// Takes every exited process out of the set and appends its pid to `out`.
    /// Never blocks. On OutOfMemory the exits not yet taken stay ready in the
    /// set (epoll is level-triggered here) and come back on the next call.
    pub fn drain(self: *Watcher, gpa: std.mem.Allocator, out: *std.ArrayListUnmanaged(pid_t)) Error!void {
        if (self.epfd < 0) return;
        var events: [64]linux.epoll_event = undefined;
        while (true) {
            const rc = linux.epoll_wait(self.epfd, &events, events.len, 0);
            switch (linux.E.init(rc)) {
                .SUCCESS => {},
                .INTR => continue,
                else => |e| return self.fail("epoll_wait", e),
            }
            try out.ensureUnusedCapacity(gpa, rc);
            for (events[0..rc]) |ev| {
                const pid = unpackPid(ev.data.u64);
                const fd = unpackFd(ev.data.u64);
                // Only the pidfd we filed for this pid: an event is never older than its fd, but be sure.
                if (self.fds.get(pid) == fd) _ = self.fds.remove(pid);
                forget(self.epfd, fd);
                out.appendAssumeCapacity(pid);
            }
            if (rc < events.len) return;
        }
    }

    pub fn deinit(self: *Watcher, gpa: std.mem.Allocator) void {
        var it = self.fds.valueIterator();
        while (it.next()) |fd| _ = linux.close(fd.*);
        self.fds.deinit(gpa);
        if (self.epfd >= 0) _ = linux.close(self.epfd);
        self.* = .{};
    }
};

fn forget(epfd: linux.fd_t, fd: linux.fd_t) void {
    _ = linux.epoll_ctl(epfd, linux.EPOLL.CTL_DEL, fd, null);
    _ = linux.close(fd);
}

fn pack(pid: pid_t, fd: linux.fd_t) u64 {
    return (@as(u64, @as(u32, @bitCast(pid))) << 32) | @as(u32, @bitCast(fd));
}

fn unpackPid(data: u64) pid_t {
    return @bitCast(@as(u32, @truncate(data >> 32)));
}

fn unpackFd(data: u64) linux.fd_t {
    return @bitCast(@as(u32, @truncate(data)));
}

// ---------------------------------------------------------------- tests

const t = std.testing;

fn spawnSleeper() !pid_t {
    const rc = linux.fork();
    if (linux.E.init(rc) != .SUCCESS) return error.Fork;
    if (rc == 0) {
        // The child: wait to be killed.
        while (true) _ = linux.pause();
    }
    return @intCast(rc);
}

fn reap(pid: pid_t) void {
    var status: u32 = 0;
    _ = linux.wait4(pid, &status, 0, null);
}

fn waitReadable(epfd: linux.fd_t) !void {
    var ev: [1]linux.epoll_event = undefined;
    const rc = linux.epoll_wait(epfd, &ev, 1, 5000);
    if (linux.E.init(rc) != .SUCCESS or rc != 1) return error.NoExitSeen;
}

test "pid and fd survive the round trip through epoll data" {
    try t.expectEqual(@as(pid_t, 4194304), unpackPid(pack(4194304, 1023)));
    try t.expectEqual(@as(linux.fd_t, 1023), unpackFd(pack(4194304, 1023)));
}

test "reports a killed child once, closes its pidfd, and forgets it" {
    var w: Watcher = .{};
    defer w.deinit(t.allocator);
    const pid = try spawnSleeper();
    defer reap(pid);
    const watched = w.watch(t.allocator, pid) catch |err| {
        _ = linux.kill(pid, linux.SIG.KILL);
        if (err == error.Kernel and w.errno == @intFromEnum(linux.E.NOSYS)) return error.SkipZigTest;
        return err;
    };
    try t.expect(watched);
    try t.expect(try w.watch(t.allocator, pid)); // twice is once
    try t.expectEqual(@as(usize, 1), w.count());

    const fd = w.fds.get(pid).?;
    const flags = linux.fcntl(fd, linux.F.GETFD, 0);
    try t.expect(flags & linux.FD_CLOEXEC != 0);

    var pids: std.ArrayListUnmanaged(pid_t) = .empty;
    defer pids.deinit(t.allocator);
    try w.drain(t.allocator, &pids);
    try t.expectEqual(@as(usize, 0), pids.items.len); // alive: nothing yet

    _ = linux.kill(pid, linux.SIG.KILL);
    try waitReadable(w.epfd);
    try w.drain(t.allocator, &pids);
    try t.expectEqualSlices(pid_t, &.{pid}, pids.items);
    try t.expectEqual(@as(usize, 0), w.count());
    try t.expectEqual(linux.E.BADF, linux.E.init(linux.fcntl(fd, linux.F.GETFD, 0)));
}

test "a reaped pid is not watched; unwatch closes the pidfd" {
    var w: Watcher = .{};
    defer w.deinit(t.allocator);
    const pid = try spawnSleeper();
    _ = linux.kill(pid, linux.SIG.KILL);
    reap(pid);
    try t.expect(!(w.watch(t.allocator, pid) catch |err| {
        if (err == error.Kernel and w.errno == @intFromEnum(linux.E.NOSYS)) return error.SkipZigTest;
        return err;
    }));

    const other = try spawnSleeper();
    defer reap(other);
    defer _ = linux.kill(other, linux.SIG.KILL);
    try t.expect(try w.watch(t.allocator, other));
    const fd = w.fds.get(other).?;
    try t.expect(w.unwatch(other));
    try t.expect(!w.unwatch(other));
    try t.expectEqual(@as(usize, 0), w.count());
    try t.expectEqual(linux.E.BADF, linux.E.init(linux.fcntl(fd, linux.F.GETFD, 0)));
}
