//! The supervisor's handshake with its own child over a SEQPACKET socketpair:
//! one message per datagram, the seccomp listener fd carried by SCM_RIGHTS.
//! Kinds: 'L' listener (with fd), 'F' filter refused, 'E' exec failed.

const std = @import("std");
const linux = std.os.linux;

pub const Message = struct {
    kind: u8 = 0,
    errno: u16 = 0,
    text: [48]u8 = [_]u8{0} ** 48,
    fd: ?linux.fd_t = null,
};

/// <sys/socket.h>; std's SCM namespace lacks it in this Zig version.
const SCM_RIGHTS: i32 = 1;

const Wire = extern struct {
    kind: u8,
    pad: u8 = 0,
    errno: u16,
    text: [48]u8,
};

/// struct cmsghdr followed by one int, padded as CMSG_SPACE(sizeof(int)).
const FdControl = extern struct {
    len: usize,
    level: i32,
    type: i32,
    fd: i32,
    pad: i32 = 0,
};

pub fn sendText(sock: linux.fd_t, kind: u8, errno: anytype, text: []const u8) void {
    var w: Wire = .{ .kind = kind, .errno = @intCast(errno), .text = [_]u8{0} ** 48 };
    const n = @min(text.len, w.text.len - 1);
    @memcpy(w.text[0..n], text[0..n]);
    _ = linux.write(sock, @ptrCast(&w), @sizeOf(Wire));
}

pub fn sendFd(sock: linux.fd_t, fd: linux.fd_t) void {
    var w: Wire = .{ .kind = 'L', .errno = 0, .text = [_]u8{0} ** 48 };
    const iov = [_]std.posix.iovec_const{.{ .base = @ptrCast(&w), .len = @sizeOf(Wire) }};
    var ctl: FdControl = .{ .len = @offsetOf(FdControl, "fd") + @sizeOf(i32), .level = linux.SOL.SOCKET, .type = SCM_RIGHTS, .fd = fd };
    const msg: linux.msghdr_const = .{ .name = null, .namelen = 0, .iov = &iov, .iovlen = 1, .control = &ctl, .controllen = @sizeOf(FdControl), .flags = 0 };
    _ = linux.sendmsg(sock, &msg, linux.MSG.NOSIGNAL);
}

pub fn receive(sock: linux.fd_t, out: *Message) enum { got, eof, failed } {
    var w: Wire = undefined;
    var iov = [_]std.posix.iovec{.{ .base = @ptrCast(&w), .len = @sizeOf(Wire) }};
    var ctl: FdControl = std.mem.zeroes(FdControl);
    var msg: linux.msghdr = .{ .name = null, .namelen = 0, .iov = &iov, .iovlen = 1, .control = &ctl, .controllen = @sizeOf(FdControl), .flags = 0 };
    while (true) {
        const rc = linux.recvmsg(sock, &msg, linux.MSG.CMSG_CLOEXEC);
        switch (linux.E.init(rc)) {
            .SUCCESS => {},
            .INTR => continue,
            else => return .failed,
        }
        if (rc == 0) return .eof;
        if (rc != @sizeOf(Wire)) return .failed;
        break;
    }
    out.* = .{ .kind = w.kind, .errno = w.errno, .text = w.text };
    out.text[out.text.len - 1] = 0;
    if (msg.controllen >= @offsetOf(FdControl, "fd") + @sizeOf(i32) and ctl.level == linux.SOL.SOCKET and ctl.type == SCM_RIGHTS) out.fd = ctl.fd;
    return .got;
}

test "an fd and a text travel over a socketpair" {
    var pair: [2]i32 = undefined;
    try std.testing.expectEqual(@as(usize, 0), linux.socketpair(linux.AF.UNIX, linux.SOCK.SEQPACKET | linux.SOCK.CLOEXEC, 0, &pair));
    defer _ = linux.close(pair[0]);
    const p = try std.posix.pipe2(.{ .CLOEXEC = true });
    defer std.posix.close(p[0]);
    sendFd(pair[1], p[1]);
    std.posix.close(p[1]);
    sendText(pair[1], 'E', 2, "exec");
    _ = linux.close(pair[1]);

    var m: Message = .{};
    try std.testing.expectEqual(.got, receive(pair[0], &m));
    try std.testing.expectEqual(@as(u8, 'L'), m.kind);
    // The received fd is the pipe's write end: a byte written there comes out of p[0].
    _ = try std.posix.write(m.fd.?, "x");
    std.posix.close(m.fd.?);
    var b: [1]u8 = undefined;
    try std.testing.expectEqual(@as(usize, 1), try std.posix.read(p[0], &b));

    try std.testing.expectEqual(.got, receive(pair[0], &m));
    try std.testing.expectEqual(@as(u8, 'E'), m.kind);
    try std.testing.expectEqual(@as(u16, 2), m.errno);
    try std.testing.expectEqualStrings("exec", std.mem.sliceTo(&m.text, 0));
    try std.testing.expectEqual(.eof, receive(pair[0], &m));
}
