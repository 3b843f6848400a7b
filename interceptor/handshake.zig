//! The supervisor's handshake with its child, between fork and exec: the
//! parent checks it can serve a filter (pidfd_getfd) before the child installs
//! one, the child passes the filter's listener back over a socketpair, or says
//! why it fell back to LD_PRELOAD, or that exec failed.

const std = @import("std");
const linux = std.os.linux;
const fdpass = @import("fdpass.zig");
const filter = @import("filter.zig");
const settings = @import("settings.zig");
const supervisor = @import("supervisor.zig");
const Args = supervisor.Args;
const say = supervisor.say;

/// Parent side. Tests pidfd_getfd on the waiting child (on its end of our
/// socketpair, a descriptor we know it has) before it commits to a filter:
/// once installed, a filter can't be taken back, and a filter nobody can serve
/// would fail every bind. Returns the listener, or null when the child runs
/// under preload (or without interception) instead.
pub fn setUp(child: linux.pid_t, sock: linux.fd_t, child_end: linux.fd_t, args: *const Args) ?linux.fd_t {
    var verdict: u8 = 'S';
    const pidfd_rc = linux.pidfd_open(child, 0);
    if (linux.E.init(pidfd_rc) != .SUCCESS) {
        fallbackNotice("pidfd_open", linux.E.init(pidfd_rc), args);
        verdict = 'P';
    } else {
        const pidfd: linux.fd_t = @intCast(pidfd_rc);
        const dup = linux.pidfd_getfd(pidfd, child_end, 0);
        if (linux.E.init(dup) != .SUCCESS) {
            fallbackNotice("pidfd_getfd", linux.E.init(dup), args);
            verdict = 'P';
        } else _ = linux.close(@intCast(dup));
        _ = linux.close(pidfd);
    }
    _ = linux.write(sock, @ptrCast(&verdict), 1);

    var listener: ?linux.fd_t = null;
    while (true) {
        var msg: fdpass.Message = .{};
        switch (fdpass.receive(sock, &msg)) {
            .eof => return listener,
            .failed => return listener,
            .got => {},
        }
        switch (msg.kind) {
            'L' => listener = msg.fd,
            'F' => fallbackNotice(std.mem.sliceTo(&msg.text, 0), @enumFromInt(msg.errno), args),
            'E' => {
                const name = if (args.command) |cmd| std.mem.span(cmd) else "";
                if (msg.errno == @intFromEnum(linux.E.NOENT)) say("cannot run {s}: command not found", .{name}) else say("cannot run {s}: {s}", .{ name, @tagName(@as(linux.E, @enumFromInt(msg.errno))) });
                return listener;
            },
            else => {},
        }
    }
}

fn fallbackNotice(step: []const u8, e: linux.E, args: *const Args) void {
    if (args.probe) {
        say("seccomp backend unavailable: {s} refused ({s})", .{ step, @tagName(e) });
    } else if (args.preload != null) {
        say("seccomp backend unavailable here ({s}: {s}); using LD_PRELOAD instead", .{ step, @tagName(e) });
    } else {
        say("seccomp backend unavailable here ({s}: {s}); running without interception", .{ step, @tagName(e) });
    }
}

extern "c" fn execvp(file: [*:0]const u8, argv: [*:null]const ?[*:0]const u8) c_int;
extern "c" fn setenv(name: [*:0]const u8, value: [*:0]const u8, overwrite: c_int) c_int;

/// Child side, between fork and exec. Single-threaded (we are), so setenv is safe here.
pub fn childSide(sock: linux.fd_t, args: *const Args) noreturn {
    var verdict: u8 = 0;
    if (linux.read(sock, @ptrCast(&verdict), 1) != 1) linux.exit_group(127);
    if (verdict == 'S') {
        switch (filter.install()) {
            .listener => |fd| {
                fdpass.sendFd(sock, fd);
                _ = linux.close(fd);
            },
            .refused => |r| {
                fdpass.sendText(sock, 'F', @intFromEnum(r.errno), r.step);
                usePreload(args.preload);
            },
        }
    } else usePreload(args.preload);

    if (args.probe) {
        // Nothing to exec: the parent waits for our end to close before it serves.
        _ = linux.close(sock);
        probeBind();
    }
    _ = execvp(args.command.?, args.argv);
    const err = std.c._errno().*;
    fdpass.sendText(sock, 'E', err, "exec");
    linux.exit_group(if (err == @intFromEnum(linux.E.NOENT)) 127 else 126);
}

/// The library first, then whatever the program already preloads.
fn usePreload(lib: ?[*:0]const u8) void {
    const l = lib orelse return;
    var buf: [4096]u8 = undefined;
    const value = if (settings.processEnv("LD_PRELOAD")) |existing|
        std.fmt.bufPrintZ(&buf, "{s}:{s}", .{ std.mem.span(l), existing }) catch return
    else
        std.fmt.bufPrintZ(&buf, "{s}", .{std.mem.span(l)}) catch return;
    _ = setenv("LD_PRELOAD", value.ptr, 1);
}

/// --probe: one UDP bind to port 0, which the filter traps like any other.
fn probeBind() noreturn {
    const s = linux.socket(linux.AF.INET, linux.SOCK.DGRAM | linux.SOCK.CLOEXEC, 0);
    if (linux.E.init(s) != .SUCCESS) linux.exit_group(3);
    var sin: linux.sockaddr.in = .{ .port = 0, .addr = std.mem.nativeToBig(u32, 0x7f000001) };
    const rc = linux.bind(@intCast(s), @ptrCast(&sin), @sizeOf(@TypeOf(sin)));
    linux.exit_group(if (linux.E.init(rc) == .SUCCESS) 0 else 4);
}
