//! The library's exported symbols: bind (the daemon decides where a server
//! listens), connect and getpeername (a client follows its project's moved
//! server: follow.zig). Everything the guards reject goes to the real call
//! untouched, so programs that never bind a TCP port above the floor, nor
//! connect to a moved one, can't tell Styxy is loaded.

const std = @import("std");
const c = std.c;
const decide = @import("decide.zig");
const follow = @import("follow.zig");
const proc = @import("proc.zig");
const real = @import("real.zig");
const settings = @import("settings.zig");
const sockaddr = @import("sockaddr.zig");

export fn bind(fd: c_int, addr: ?*const anyopaque, len: c.socklen_t) c_int {
    const saved_errno = real.errno();
    const hooked = guard(fd, addr, len) orelse {
        // The guards may have touched errno (getsockopt); the real bind must
        // start from the caller's value so success leaves it as it was.
        real.setErrno(saved_errno);
        return real.call(fd, addr, len).rc;
    };
    var cmd_buf: [proc.cmdline_max]u8 = undefined;
    var cwd_buf: [proc.cwd_max]u8 = undefined;
    var b = hooked.bind;
    b.pid = c.getpid();
    b.command = proc.commandLine(&cmd_buf);
    b.cwd = proc.cwd(&cwd_buf);
    const res = decide.run(&b, &hooked.cfg);
    real.setErrno(if (res.ok()) saved_errno else res.err);
    return res.rc;
}

export fn connect(fd: c_int, addr: ?*const anyopaque, len: c.socklen_t) c_int {
    return follow.process.connect(fd, addr, len, real.connectFn(@intFromPtr(&connect)));
}

export fn getpeername(fd: c_int, addr: ?*anyopaque, len: ?*c.socklen_t) c_int {
    return follow.process.getpeername(fd, addr, len, real.getpeernameFn(@intFromPtr(&getpeername)));
}

/// A bug here must not drag the stack-trace machinery (signal handlers, TLS,
/// debug-info parsing) into every process; say what happened and abort.
pub const panic = std.debug.FullPanic(panicAbort);

fn panicAbort(msg: []const u8, _: ?usize) noreturn {
    @branchHint(.cold);
    const prefix = "styxy-preload: panic: ";
    _ = c.write(2, prefix, prefix.len);
    _ = c.write(2, msg.ptr, msg.len);
    _ = c.write(2, "\n", 1);
    c.abort();
}

const Hooked = struct { bind: decide.Bind, cfg: settings.Config };

fn guard(fd: c_int, addr: ?*const anyopaque, len: c.socklen_t) ?Hooked {
    real.setSelf(&bind);
    const p = addr orelse return null;
    if (len > sockaddr.storage_len) return null;
    const bytes = @as([*]const u8, @ptrCast(p))[0..len];
    const cfg = settings.load(settings.processEnv);
    const parsed = decide.claimAddress(bytes, &cfg) orelse return null;
    if (!decide.isStream(fd)) return null;
    return .{ .bind = .{ .fd = fd, .original = bytes, .parsed = parsed, .pid = 0, .command = "", .cwd = null }, .cfg = cfg };
}
