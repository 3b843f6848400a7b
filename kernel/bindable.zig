//! Could a server that does not set SO_REUSEADDR bind this port now?
//!
//! The kernel answers that from its bind hash in O(1): one throwaway socket,
//! bound to the IPv6 wildcard with V6ONLY off (so it collides with IPv4 and
//! IPv6 sockets alike), never listened on, closed at once. What it finds that
//! a listener query does not: TIME_WAIT sockets and outgoing connections on
//! the port, which sock_diag can only list by walking the whole connection
//! hash (milliseconds on any host, whatever the filter). The daemon asks this
//! only of a port it is about to hand out, never of the port a program asked
//! for (that program may well set SO_REUSEADDR and bind past TIME_WAIT).
//!
//! For the microseconds it is bound, another program's bind of the same port
//! without SO_REUSEADDR would fail; the interceptor's retry covers that.

const std = @import("std");
const linux = std.os.linux;

fn ok(rc: usize) bool {
    return linux.E.init(rc) == .SUCCESS;
}

pub const Answer = enum { free, in_use, unknown };

pub fn bindable(port: u16) Answer {
    const v6 = tryFamily(linux.AF.INET6, port);
    // No IPv6 in this kernel or namespace: the IPv4 wildcard is the whole question.
    return if (v6 == .unknown) tryFamily(linux.AF.INET, port) else v6;
}

fn tryFamily(family: u32, port: u16) Answer {
    const rc = linux.socket(family, linux.SOCK.STREAM | linux.SOCK.CLOEXEC, 0);
    if (!ok(rc)) return .unknown;
    const fd: i32 = @intCast(rc);
    defer _ = linux.close(fd);
    const be_port = std.mem.nativeToBig(u16, port);
    const bound = if (family == linux.AF.INET6) blk: {
        const off: c_int = 0;
        if (!ok(linux.setsockopt(fd, linux.IPPROTO.IPV6, linux.IPV6.V6ONLY, std.mem.asBytes(&off), @sizeOf(c_int)))) return .unknown;
        var sa: linux.sockaddr.in6 = .{ .port = be_port, .flowinfo = 0, .addr = [_]u8{0} ** 16, .scope_id = 0 };
        break :blk linux.bind(fd, @ptrCast(&sa), @sizeOf(linux.sockaddr.in6));
    } else blk: {
        var sa: linux.sockaddr.in = .{ .port = be_port, .addr = 0 };
        break :blk linux.bind(fd, @ptrCast(&sa), @sizeOf(linux.sockaddr.in));
    };
    return switch (linux.E.init(bound)) {
        .SUCCESS => .free,
        .ADDRINUSE => .in_use,
        else => .unknown,
    };
}

test "a port held by a listener is in use; a fresh port is free" {
    const t = std.testing;
    const rc = linux.socket(linux.AF.INET, linux.SOCK.STREAM | linux.SOCK.CLOEXEC, 0);
    try t.expect(ok(rc));
    const fd: i32 = @intCast(rc);
    defer _ = linux.close(fd);
    var sa: linux.sockaddr.in = .{ .port = 0, .addr = std.mem.nativeToBig(u32, 0x7f000001) };
    try t.expect(ok(linux.bind(fd, @ptrCast(&sa), @sizeOf(linux.sockaddr.in))));
    try t.expect(ok(linux.listen(fd, 1)));
    var len: linux.socklen_t = @sizeOf(linux.sockaddr.in);
    try t.expect(ok(linux.getsockname(fd, @ptrCast(&sa), &len)));
    const port = std.mem.bigToNative(u16, sa.port);
    try t.expectEqual(Answer.in_use, bindable(port));
    _ = linux.close(fd);
    // Closed without a connection: nothing left on the port.
    try t.expectEqual(Answer.free, bindable(port));
}
