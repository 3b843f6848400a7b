//! One trapped bind(2), from the supervisor's side: read the address out of
//! the trapped thread's memory, take a duplicate of its socket, decide as the
//! preload library does, and answer the kernel.
//!
//! Two races shape this file. The thread that trapped can die and its pid be
//! reused while we look at it: every /proc or pidfd step is followed by a
//! notification-id check, which is only still valid while the very same
//! system call is waiting. And another thread of the program can rewrite the
//! address after we read it: for a bind we claim, we bind our own copy on the
//! duplicate and answer the call ourselves, so what was decided is what gets
//! bound. Only binds we leave alone are answered "continue".

const std = @import("std");
const linux = std.os.linux;
const SECCOMP = linux.SECCOMP;
const decide = @import("decide.zig");
const notice = @import("notice.zig");
const proc = @import("proc.zig");
const settings = @import("settings.zig");
const sockaddr = @import("sockaddr.zig");

pub const Notif = SECCOMP.notif;
pub const Resp = SECCOMP.notif_resp;

fn ok(rc: usize) bool {
    return linux.E.init(rc) == .SUCCESS;
}

/// Null when there is nothing to answer: interrupted, or the trapped thread
/// died between the wake-up and the receive (ENOENT).
pub fn receive(listener: linux.fd_t) ?Notif {
    // The kernel refuses a buffer that isn't zeroed.
    var n = std.mem.zeroes(Notif);
    if (!ok(linux.ioctl(listener, SECCOMP.IOCTL_NOTIF.RECV, @intFromPtr(&n)))) return null;
    return n;
}

pub fn stillWaiting(listener: linux.fd_t, id: u64) bool {
    var v = id;
    return ok(linux.ioctl(listener, SECCOMP.IOCTL_NOTIF.ID_VALID, @intFromPtr(&v)));
}

/// A failed send means the trapped thread is gone (killed by a signal): nothing to do.
pub fn respond(listener: linux.fd_t, resp: Resp) void {
    var r = resp;
    _ = linux.ioctl(listener, SECCOMP.IOCTL_NOTIF.SEND, @intFromPtr(&r));
}

pub fn proceed(id: u64) Resp {
    return .{ .id = id, .val = 0, .@"error" = 0, .flags = SECCOMP.USER_NOTIF_FLAG_CONTINUE };
}

fn answered(id: u64, rc: c_int, err: c_int) Resp {
    return .{ .id = id, .val = 0, .@"error" = if (rc == 0) 0 else -err, .flags = 0 };
}

/// The trapped bind's arguments, with the address copied out of its memory.
pub const Trapped = struct {
    id: u64,
    tid: linux.pid_t,
    fd: linux.fd_t,
    buf: [sockaddr.storage_len]u8 = undefined,
    len: usize = 0,

    pub fn address(self: *const Trapped) []const u8 {
        return self.buf[0..self.len];
    }
};

pub const Step = enum { read_memory, pid_gone, pidfd_open, pidfd_getfd };

/// Copies the sockaddr out of the trapped thread. Null when the call doesn't
/// carry one we could ever claim (null, too short, larger than any sockaddr).
pub fn readAddress(listener: linux.fd_t, n: *const Notif) union(enum) { ok: Trapped, skip, failed: Step } {
    const args = n.data;
    const len: usize = @as(u32, @truncate(args.arg2));
    if (args.arg1 == 0 or len < 2 or len > sockaddr.storage_len) return .skip;
    var t: Trapped = .{ .id = n.id, .tid = @intCast(n.pid), .fd = @bitCast(@as(u32, @truncate(args.arg0))), .len = len };
    if (!stillWaiting(listener, n.id)) return .{ .failed = .pid_gone };
    const local = [_]std.posix.iovec{.{ .base = &t.buf, .len = len }};
    const remote = [_]std.posix.iovec_const{.{ .base = @ptrFromInt(args.arg1), .len = len }};
    const got = linux.process_vm_readv(t.tid, &local, &remote, 0);
    if (!ok(got) or got != len) return .{ .failed = .read_memory };
    // After the read: the pid we read from was still the trapped thread.
    if (!stillWaiting(listener, n.id)) return .{ .failed = .pid_gone };
    return .{ .ok = t };
}

/// The trapped process, as a pidfd (close-on-exec), checked to be the one
/// whose call is waiting.
pub fn openProcess(listener: linux.fd_t, t: *const Trapped, tgid: linux.pid_t) union(enum) { pidfd: linux.fd_t, failed: Step } {
    const rc = linux.pidfd_open(tgid, 0);
    if (!ok(rc)) return .{ .failed = .pidfd_open };
    // The tgid was read from a file: make sure it still names the trapped process.
    if (!stillWaiting(listener, t.id)) {
        _ = linux.close(@intCast(rc));
        return .{ .failed = .pid_gone };
    }
    return .{ .pidfd = @intCast(rc) };
}

/// A duplicate of one of its descriptors: the same open file (a socket we
/// then bind, a stderr whose offset we then share). Close-on-exec, per the kernel.
pub fn duplicate(pidfd: linux.fd_t, fd: linux.fd_t) ?linux.fd_t {
    const rc = linux.pidfd_getfd(pidfd, fd, 0);
    return if (ok(rc)) @intCast(rc) else null;
}

/// Everything from the trapped call to the kernel's answer, failing open at
/// every step: whatever goes wrong, the program's own bind runs.
pub fn handle(listener: linux.fd_t, n: *const Notif, cfg: *const settings.Config) Resp {
    if (n.data.nr != @intFromEnum(linux.SYS.bind)) return proceed(n.id);
    const t = switch (readAddress(listener, n)) {
        .ok => |t| t,
        .skip, .failed => return proceed(n.id),
    };
    const parsed = decide.claimAddress(t.address(), cfg) orelse return proceed(n.id);
    const pid = proc.tgidOf(t.tid) orelse return proceed(n.id);
    const pidfd = switch (openProcess(listener, &t, pid)) {
        .pidfd => |fd| fd,
        .failed => return proceed(n.id),
    };
    defer _ = linux.close(pidfd);
    const sock = duplicate(pidfd, t.fd) orelse return proceed(n.id);
    defer _ = linux.close(sock);
    if (!decide.isStream(sock)) return proceed(n.id);
    // The notice goes to the program's own stderr (or stdout), wherever it
    // points now, not to ours: the program may have redirected it, and a
    // supervisor staying behind for a background server has none.
    const notice_fd = if (notice.noticeFd(cfg.notify)) |which| duplicate(pidfd, which) else null;
    defer if (notice_fd) |fd| {
        _ = linux.close(fd);
    };

    var cmd_buf: [proc.cmdline_max]u8 = undefined;
    var cwd_buf: [proc.cwd_max]u8 = undefined;
    const b: decide.Bind = .{
        .fd = sock,
        .original = t.address(),
        .parsed = parsed,
        .pid = pid,
        .command = proc.commandLineOf(pid, &cmd_buf),
        .cwd = proc.cwdOf(pid, &cwd_buf),
        .notice_fd = notice_fd,
    };
    const res = decide.run(&b, cfg);
    return answered(n.id, res.rc, res.err);
}
