//! `styxy-seccomp`: runs a command with its bind(2) calls handed to us by a
//! seccomp user-notification filter, so programs that never go through the
//! dynamic libc (Go, static and musl binaries, cleared environments) are
//! covered as well as the preload library covers the rest.
//!
//!   styxy-seccomp [--preload LIB] [--report-fd N] [--group] -- COMMAND [ARGS...]
//!   styxy-seccomp --probe
//!
//! It behaves like the command it runs: same stdio, same process group, its
//! exit code (128 + signal when killed), SIGTERM/SIGHUP passed on. With
//! --group the caller signals our whole process group itself (`styxy run`
//! does, so that what the command started goes too): a signal from our parent
//! has then reached the command already and is not passed on twice. Where the
//! kernel or a sandbox refuses the filter or pidfd_getfd it says so once and
//! runs the command under LD_PRELOAD instead (--preload).

const std = @import("std");
const linux = std.os.linux;
const posix = std.posix;
const handshake = @import("handshake.zig");
const proc = @import("proc.zig");
const seccomp_notify = @import("seccomp_notify.zig");
const settings = @import("settings.zig");

pub const panic = std.debug.FullPanic(panicExit);

fn panicExit(msg: []const u8, _: ?usize) noreturn {
    @branchHint(.cold);
    say("panic: {s}", .{msg});
    linux.exit_group(70);
}

pub fn say(comptime fmt: []const u8, args: anytype) void {
    var buf: [512]u8 = undefined;
    const line = std.fmt.bufPrint(&buf, "styxy: " ++ fmt ++ "\n", args) catch return;
    _ = linux.write(2, line.ptr, line.len);
}

pub const Args = struct {
    preload: ?[*:0]const u8 = null,
    report_fd: ?linux.fd_t = null,
    probe: bool = false,
    /// Signals from our parent were sent to the whole group: not passed on.
    group: bool = false,
    argv: [*:null]const ?[*:0]const u8 = undefined,
    command: ?[*:0]const u8 = null,
};

fn usage() noreturn {
    say("usage: styxy-seccomp [--preload LIB] [--report-fd N] [--group] -- COMMAND [ARGS...] | styxy-seccomp --probe", .{});
    linux.exit_group(2);
}

fn parseArgs() Args {
    const argv = std.os.argv;
    var a: Args = .{};
    var i: usize = 1;
    while (i < argv.len) : (i += 1) {
        const arg = std.mem.span(argv[i]);
        if (std.mem.eql(u8, arg, "--probe")) {
            a.probe = true;
        } else if (std.mem.eql(u8, arg, "--group")) {
            a.group = true;
        } else if (std.mem.eql(u8, arg, "--preload") and i + 1 < argv.len) {
            i += 1;
            a.preload = argv[i];
        } else if (std.mem.eql(u8, arg, "--report-fd") and i + 1 < argv.len) {
            i += 1;
            const fd = std.fmt.parseInt(linux.fd_t, std.mem.span(argv[i]), 10) catch usage();
            // It was handed to us, not to the command: keep it out of the exec.
            if (linux.E.init(linux.fcntl(fd, linux.F.SETFD, linux.FD_CLOEXEC)) == .SUCCESS) a.report_fd = fd;
        } else if (std.mem.eql(u8, arg, "--")) {
            i += 1;
            break;
        } else usage();
    }
    if (a.probe) return a;
    if (i >= argv.len) usage();
    // The kernel's argv is NULL-terminated: the tail after "--" is one too.
    a.argv = @ptrCast(argv.ptr + i);
    a.command = argv[i];
    return a;
}

/// Signals we take through a signalfd instead of handlers: blocked before the
/// fork so none is lost in between, unblocked in the child before exec.
const watched = [_]u6{ linux.SIG.CHLD, linux.SIG.TERM, linux.SIG.HUP, linux.SIG.INT, linux.SIG.QUIT };

pub fn main() u8 {
    const args = parseArgs();
    const cfg = settings.load(settings.processEnv);

    // A notice to a stderr whose reader has gone (the caller's pipe, after we
    // returned its status from a lingering copy) must not kill us mid-answer.
    setPipeSignal(linux.SIG.IGN);

    var mask = linux.empty_sigset;
    for (watched) |s| linux.sigaddset(&mask, s);
    var old_mask: linux.sigset_t = undefined;
    _ = linux.sigprocmask(linux.SIG.BLOCK, &mask, &old_mask);
    const sfd_rc = linux.signalfd(-1, &mask, linux.SFD.CLOEXEC);
    if (linux.E.init(sfd_rc) != .SUCCESS) {
        say("seccomp backend: signalfd failed ({s})", .{@tagName(linux.E.init(sfd_rc))});
        return 70;
    }

    var pair: [2]i32 = undefined;
    if (linux.E.init(linux.socketpair(linux.AF.UNIX, linux.SOCK.SEQPACKET | linux.SOCK.CLOEXEC, 0, &pair)) != .SUCCESS) {
        say("seccomp backend: socketpair failed", .{});
        return 70;
    }
    const child = posix.fork() catch {
        say("seccomp backend: fork failed", .{});
        return 70;
    };
    if (child == 0) {
        _ = linux.close(pair[0]);
        _ = linux.sigprocmask(linux.SIG.SETMASK, &old_mask, null);
        // An ignored signal stays ignored across exec; the command gets the default.
        setPipeSignal(linux.SIG.DFL);
        handshake.childSide(pair[1], &args);
    }
    _ = linux.close(pair[1]);

    const listener = handshake.setUp(child, pair[0], pair[1], &args);
    _ = linux.close(pair[0]);
    if (args.report_fd) |fd| reportPid(fd, child);

    var sup: Supervisor = .{ .child = child, .signals = @intCast(sfd_rc), .listener = listener, .cfg = &cfg, .probe = args.probe, .group = args.group };
    return sup.loop();
}

fn setPipeSignal(handler: ?linux.Sigaction.handler_fn) void {
    const act: linux.Sigaction = .{ .handler = .{ .handler = handler }, .mask = linux.empty_sigset, .flags = 0 };
    _ = linux.sigaction(linux.SIG.PIPE, &act, null);
}

fn reportPid(fd: linux.fd_t, pid: linux.pid_t) void {
    var buf: [16]u8 = undefined;
    const line = std.fmt.bufPrint(&buf, "{d}\n", .{pid}) catch return;
    _ = linux.write(fd, line.ptr, line.len);
    _ = linux.close(fd);
}

// ---------------------------------------------------------------- the loop

const Supervisor = struct {
    child: linux.pid_t,
    signals: linux.fd_t,
    listener: ?linux.fd_t,
    cfg: *const settings.Config,
    probe: bool,
    group: bool = false,
    exit_code: ?u8 = null,
    probe_failed: ?seccomp_notify.Step = null,
    probe_seen: bool = false,

    fn loop(self: *Supervisor) u8 {
        while (true) {
            var fds = [_]linux.pollfd{
                .{ .fd = self.signals, .events = linux.POLL.IN, .revents = 0 },
                .{ .fd = self.listener orelse -1, .events = linux.POLL.IN, .revents = 0 },
            };
            const rc = linux.poll(&fds, fds.len, -1);
            if (linux.E.init(rc) == .INTR) continue;
            if (linux.E.init(rc) != .SUCCESS) return self.exit_code orelse 70;
            if (fds[1].revents & linux.POLL.IN != 0) self.serve();
            if (fds[0].revents & linux.POLL.IN != 0) self.onSignals();
            if (self.exit_code) |code| {
                if (self.probe) return self.probeVerdict(code);
                // Nobody else runs under the filter any more: we're done.
                const hup = fds[1].revents & linux.POLL.HUP != 0;
                if (self.listener == null or hup or !self.othersRemain()) return code;
                self.linger(code);
            }
        }
    }

    fn serve(self: *Supervisor) void {
        const l = self.listener orelse return;
        const n = seccomp_notify.receive(l) orelse return;
        if (self.probe) {
            self.probe_seen = true;
            self.probe_failed = probeSteps(l, &n);
            seccomp_notify.respond(l, seccomp_notify.proceed(n.id));
            return;
        }
        seccomp_notify.respond(l, seccomp_notify.handle(l, &n, self.cfg));
    }

    fn onSignals(self: *Supervisor) void {
        var info: linux.signalfd_siginfo = undefined;
        const n = linux.read(self.signals, @ptrCast(&info), @sizeOf(linux.signalfd_siginfo));
        if (n != @sizeOf(linux.signalfd_siginfo)) return;
        if (self.group and info.signo != linux.SIG.CHLD and info.pid == @as(u32, @intCast(linux.getppid()))) return;
        switch (info.signo) {
            linux.SIG.CHLD => self.reap(),
            // A terminal's Ctrl-C or Ctrl-\ already reached the child (same
            // foreground process group); passing it on again would make many
            // tools skip their graceful shutdown.
            linux.SIG.INT, linux.SIG.QUIT => if (std.c.isatty(0) == 0) self.forward(info.signo),
            else => self.forward(info.signo),
        }
    }

    fn forward(self: *Supervisor, sig: u32) void {
        if (self.exit_code == null) _ = linux.kill(self.child, @intCast(sig));
    }

    fn reap(self: *Supervisor) void {
        while (true) {
            var status: u32 = 0;
            const rc = linux.waitpid(-1, &status, linux.W.NOHANG);
            if (linux.E.init(rc) != .SUCCESS or rc == 0) return;
            if (@as(linux.pid_t, @intCast(rc)) != self.child) continue;
            self.exit_code = if (linux.W.IFEXITED(status))
                linux.W.EXITSTATUS(status)
            else if (linux.W.IFSIGNALED(status))
                @truncate(128 + linux.W.TERMSIG(status))
            else
                1;
        }
    }

    /// A zero-timeout look at the listener: HUP means every process that
    /// carried the filter has exited.
    fn othersRemain(self: *Supervisor) bool {
        var fds = [_]linux.pollfd{.{ .fd = self.listener.?, .events = linux.POLL.IN, .revents = 0 }};
        _ = linux.poll(&fds, 1, 0);
        return fds[0].revents & linux.POLL.HUP == 0;
    }

    /// The command is gone but something it started still runs under the
    /// filter (a server left in the background). Its binds would fail with
    /// ENOSYS if we closed the listener, so a copy of us stays behind to serve
    /// them, and this process returns the command's status to the caller.
    fn linger(self: *Supervisor, code: u8) noreturn {
        const pid = posix.fork() catch linux.exit_group(code);
        if (pid != 0) linux.exit_group(code);
        // Out of the terminal's process group and off the caller's stdio, so a
        // caller reading our output to its end isn't held open by us (move
        // notices go to the moved program's own stderr); plain signals end us again.
        _ = linux.setsid();
        const devnull = linux.open("/dev/null", .{ .ACCMODE = .RDWR, .CLOEXEC = true }, 0);
        if (linux.E.init(devnull) == .SUCCESS) {
            for ([_]linux.fd_t{ 0, 1, 2 }) |fd| _ = linux.dup2(@intCast(devnull), fd);
            _ = linux.close(@intCast(devnull));
        }
        var none = linux.empty_sigset;
        _ = linux.sigprocmask(linux.SIG.SETMASK, &none, null);
        self.exit_code = null;
        self.child = -1;
        while (true) {
            var fds = [_]linux.pollfd{.{ .fd = self.listener.?, .events = linux.POLL.IN, .revents = 0 }};
            const rc = linux.poll(&fds, 1, -1);
            if (linux.E.init(rc) == .INTR) continue;
            if (linux.E.init(rc) != .SUCCESS) linux.exit_group(0);
            if (fds[0].revents & linux.POLL.IN != 0) self.serve() else if (fds[0].revents & (linux.POLL.HUP | linux.POLL.ERR) != 0) linux.exit_group(0);
        }
    }

    fn probeVerdict(self: *Supervisor, code: u8) u8 {
        if (self.listener == null) return 1; // the reason was said in setUp
        if (!self.probe_seen) {
            say("seccomp backend unavailable: the filter did not trap bind", .{});
            return 1;
        }
        if (self.probe_failed) |step| {
            say("seccomp backend unavailable: {s} refused", .{@tagName(step)});
            return 1;
        }
        if (code != 0) {
            say("seccomp backend unavailable: the probe's bind failed (status {d})", .{code});
            return 1;
        }
        return 0;
    }
};

/// Every step the real path takes, without deciding anything.
fn probeSteps(listener: linux.fd_t, n: *const seccomp_notify.Notif) ?seccomp_notify.Step {
    const t = switch (seccomp_notify.readAddress(listener, n)) {
        .ok => |t| t,
        .skip => return .read_memory,
        .failed => |s| return s,
    };
    const tgid = proc.tgidOf(t.tid) orelse return .pid_gone;
    const pidfd = switch (seccomp_notify.openProcess(listener, &t, tgid)) {
        .pidfd => |fd| fd,
        .failed => |s| return s,
    };
    defer _ = linux.close(pidfd);
    const dup = seccomp_notify.duplicate(pidfd, t.fd) orelse return .pidfd_getfd;
    _ = linux.close(dup);
    return null;
}
