//! Connect-follow (issue 19, docs/follow-table.md): a TCP connect() to a
//! loopback address on a port that a server of this process's project asked
//! for and was moved from goes to where that server is now.
//!
//! The hot path is a loopback check and one bit of the mapped table; only a
//! set bit costs more (SO_TYPE, the project, a seqlock lookup). Everything
//! else reaches the real connect with the caller's own arguments. The real
//! connect's return value and errno are what the caller sees, EINPROGRESS
//! included; the caller's memory is never written (the moved address is a
//! copy on our stack).

const std = @import("std");
const c = std.c;
const linux = std.os.linux;
const debug = @import("debug.zig");
const follow_report = @import("follow_report.zig");
const follow_table = @import("follow_table.zig");
const notice = @import("notice.zig");
const peers = @import("peers.zig");
const project = @import("project.zig");
const real = @import("real.zig");
const settings = @import("settings.zig");
const sockaddr = @import("sockaddr.zig");

const E_INPROGRESS: c_int = @intFromEnum(std.posix.E.INPROGRESS);
const E_INTR: c_int = @intFromEnum(std.posix.E.INTR);

pub const Follower = struct {
    table: *follow_table.Table,
    project: *project.Cache,
    peers: *peers.Peers,
    told: *follow_report.Told,
    env: settings.Lookup = settings.processEnv,
    /// The pid that said it follows: the first follow in each process says so once.
    announced: std.atomic.Value(i32) = .init(0),

    pub fn connect(self: *Follower, fd: c_int, addr: ?*const anyopaque, len: c.socklen_t, next: real.ConnectFn) c_int {
        const p = addr orelse return next(fd, addr, len);
        const bytes = @as([*]const u8, @ptrCast(p))[0..@min(len, sockaddr.storage_len + 1)];
        const asked = sockaddr.loopbackPort(bytes) orelse return next(fd, addr, len);
        const view = self.table.view() orelse return next(fd, addr, len);
        if (!view.moved(asked)) return next(fd, addr, len);
        return self.followed(view, fd, bytes, asked, next);
    }

    /// Some server asked for `asked` and was moved: ours, if it is this project's.
    noinline fn followed(self: *Follower, view: follow_table.View, fd: c_int, bytes: []const u8, asked: u16, next: real.ConnectFn) c_int {
        const saved = real.errno();
        const to = self.target(view, fd, asked) orelse {
            real.setErrno(saved);
            return next(fd, bytes.ptr, @intCast(bytes.len));
        };
        const moved = sockaddr.withPort(bytes, to) orelse {
            real.setErrno(saved);
            return next(fd, bytes.ptr, @intCast(bytes.len));
        };
        real.setErrno(saved);
        const rc = next(fd, moved.bytes().ptr, @intCast(bytes.len));
        const err = real.errno();
        // Connected, or connecting in the background (non-blocking, or a blocking connect a signal cut short):
        // the socket's peer is `to` from now on either way.
        if (rc == 0 or err == E_INPROGRESS or err == E_INTR) {
            self.peers.record(fd, asked, to);
            self.announce(asked, to);
        }
        real.setErrno(err);
        return rc;
    }

    fn target(self: *Follower, view: follow_table.View, fd: c_int, asked: u16) ?u16 {
        if (isOne(self.env("STYXY_DISABLE"))) return null;
        if (!isStream(fd)) return null;
        const h = self.project.get(self.env) orelse return null;
        return view.lookup(h, asked);
    }

    /// The user's line, the first time in this process; the daemon's word (`styxy tail`), the first time in
    /// this process for this port. Otherwise nothing: no IPC on a client's later connects.
    fn announce(self: *Follower, asked: u16, to: u16) void {
        const pid = follow_report.getpid();
        // Loads first: a client's every followed connect passes here, and a read-modify-write each time would
        // bounce the cache line between its threads.
        const say = self.announced.load(.monotonic) != pid and self.announced.swap(pid, .monotonic) != pid;
        const tell = self.told.first(pid, asked);
        if (!say and !tell) return;
        const cfg = settings.load(self.env);
        if (say) {
            debug.line(&cfg, "connect to port {d} followed this project's server to {d}", .{ asked, to });
            notice.followed(cfg.notify, asked, to);
        }
        if (tell and !follow_report.tell(self.env, &cfg, pid, asked, to, self.project.path()))
            debug.line(&cfg, "port {d}: the daemon was not told of the follow", .{asked});
    }

    /// The real getpeername, with the asked port put back for a socket we followed. The caller's length is
    /// read before the call only for such a socket (it bounds what we may rewrite).
    pub fn getpeername(self: *Follower, fd: c_int, addr: ?*anyopaque, len: ?*c.socklen_t, next: real.GetpeernameFn) c_int {
        if (!self.peers.has(fd)) return next(fd, addr, len);
        const l = len orelse return next(fd, addr, len);
        const room = l.*;
        const rc = next(fd, addr, len);
        if (rc == 0) self.peers.rewrite(fd, addr, room, l.*);
        return rc;
    }
};

pub var process: Follower = .{ .table = &follow_table.process, .project = &project.process, .peers = &peers.process, .told = &follow_report.process };

fn isOne(v: ?[]const u8) bool {
    return if (v) |s| std.mem.eql(u8, s, "1") else false;
}

/// SOCK_STREAM only: UDP "connects" to loopback are left alone. Raw syscall: errno stays the caller's.
fn isStream(fd: c_int) bool {
    var so_type: c_int = 0;
    var so_len: linux.socklen_t = @sizeOf(c_int);
    const rc = linux.getsockopt(fd, linux.SOL.SOCKET, linux.SO.TYPE, std.mem.asBytes(&so_type), &so_len);
    return linux.E.init(rc) == .SUCCESS and so_type == linux.SOCK.STREAM;
}
