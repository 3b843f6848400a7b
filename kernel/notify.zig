//! sd_notify(3) without libsystemd: one datagram ("READY=1", "STOPPING=1")
//! to the AF_UNIX socket systemd names in $NOTIFY_SOCKET. Node has no Unix
//! datagram sockets, and `systemd-notify` would send from its own pid, which
//! the default NotifyAccess=main refuses (and which systemd may fail to place
//! in our unit once that short-lived process is gone). Sent from the daemon's
//! own process, the kernel's credentials on it are the main pid's.
//!
//! A path starting with '@' is in the abstract namespace (the '@' becomes a
//! NUL, and the address length counts no terminator), as systemd writes it.

const std = @import("std");
const linux = std.os.linux;

/// Sends `msg` as one datagram to `path`; the errno when it could not.
pub fn send(path: []const u8, msg: []const u8) linux.E {
    var addr: linux.sockaddr.un = .{ .family = linux.AF.UNIX, .path = [_]u8{0} ** 108 };
    const abstract = path.len > 0 and path[0] == '@';
    // A filesystem path needs room for its terminating NUL; an abstract name does not.
    if (path.len == 0 or path.len > addr.path.len - @intFromBool(!abstract)) return .INVAL;
    @memcpy(addr.path[0..path.len], path);
    if (abstract) addr.path[0] = 0;
    const len: linux.socklen_t = @intCast(@offsetOf(linux.sockaddr.un, "path") + path.len + @intFromBool(!abstract));

    const rc = linux.socket(linux.AF.UNIX, linux.SOCK.DGRAM | linux.SOCK.CLOEXEC, 0);
    if (linux.E.init(rc) != .SUCCESS) return linux.E.init(rc);
    const fd: i32 = @intCast(rc);
    defer _ = linux.close(fd);
    const sent = linux.sendto(fd, msg.ptr, msg.len, linux.MSG.NOSIGNAL, @ptrCast(&addr), len);
    return linux.E.init(sent);
}

fn receiver(abstract_name: ?[]const u8, path: ?[*:0]const u8) !i32 {
    const rc = linux.socket(linux.AF.UNIX, linux.SOCK.DGRAM | linux.SOCK.CLOEXEC, 0);
    try std.testing.expect(linux.E.init(rc) == .SUCCESS);
    const fd: i32 = @intCast(rc);
    var addr: linux.sockaddr.un = .{ .family = linux.AF.UNIX, .path = [_]u8{0} ** 108 };
    var len: usize = @offsetOf(linux.sockaddr.un, "path");
    if (abstract_name) |n| {
        @memcpy(addr.path[1 .. 1 + n.len], n);
        len += 1 + n.len;
    } else {
        const p = std.mem.span(path.?);
        @memcpy(addr.path[0..p.len], p);
        len += p.len + 1;
    }
    try std.testing.expect(linux.E.init(linux.bind(fd, @ptrCast(&addr), @intCast(len))) == .SUCCESS);
    return fd;
}

fn expectReceived(fd: i32, want: []const u8) !void {
    var buf: [64]u8 = undefined;
    const n = linux.recvfrom(fd, &buf, buf.len, linux.MSG.DONTWAIT, null, null);
    try std.testing.expect(linux.E.init(n) == .SUCCESS);
    try std.testing.expectEqualStrings(want, buf[0..n]);
}

test "a datagram reaches an abstract-namespace socket named with '@'" {
    var name_buf: [40]u8 = undefined;
    const name = try std.fmt.bufPrint(&name_buf, "styxy-notify-test-{d}", .{linux.getpid()});
    const fd = try receiver(name, null);
    defer _ = linux.close(fd);
    var at_buf: [41]u8 = undefined;
    const at = try std.fmt.bufPrint(&at_buf, "@{s}", .{name});
    try std.testing.expectEqual(linux.E.SUCCESS, send(at, "READY=1"));
    try expectReceived(fd, "READY=1");
}

test "a datagram reaches a socket in the filesystem" {
    var path_buf: [64]u8 = undefined;
    const path = try std.fmt.bufPrintZ(&path_buf, "/tmp/styxy-notify-test-{d}.sock", .{linux.getpid()});
    _ = linux.unlink(path);
    const fd = try receiver(null, path);
    defer {
        _ = linux.close(fd);
        _ = linux.unlink(path);
    }
    try std.testing.expectEqual(linux.E.SUCCESS, send(path, "STOPPING=1"));
    try expectReceived(fd, "STOPPING=1");
}

test "no socket there, an empty or an overlong path: the errno, nothing sent" {
    try std.testing.expectEqual(linux.E.CONNREFUSED, send("@styxy-nobody-listens-here-at-all", "READY=1"));
    try std.testing.expectEqual(linux.E.NOENT, send("/nonexistent/styxy/notify.sock", "READY=1"));
    try std.testing.expectEqual(linux.E.INVAL, send("", "READY=1"));
    try std.testing.expectEqual(linux.E.INVAL, send("/" ++ "x" ** 107, "READY=1"));
}
