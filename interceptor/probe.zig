//! Is a listener on this port in the other address family?
//!
//! The daemon's "free" is as old as its last read of the kernel's tables (up to
//! a second). A listener it has not seen yet in the *other* family
//! never makes our real bind fail: an IPv6-only socket and an IPv4 one do not
//! conflict in the kernel. The program would keep the port on this socket and
//! have its next one, of the other family, moved: one server on two ports. So
//! before taking a first "allow", one throwaway bind of the other family's
//! wildcard asks the kernel itself.
//!
//! Raw syscalls, not libc: they cannot reach our own exported `bind`, and they
//! leave errno alone. The socket is close-on-exec and closed before returning,
//! so a fork in another thread never inherits it for long. SO_REUSEADDR makes
//! listeners what counts, as in the daemon's "taken"; connections and TIME_WAIT
//! leftovers count too when their socket lacked SO_REUSEADDR (servers nearly
//! always set it), which only moves the bind, as the daemon does for busy ports.
//! For the few microseconds it is bound, the probe could itself make another
//! program's bind of that port fail, if that bind lacks SO_REUSEADDR.
//!
//! Only for a port newly leased to the caller (the daemon says `newLease`):
//! a listener on a port that was already the caller's may be its own.

const std = @import("std");
const linux = std.os.linux;
const sockaddr = @import("sockaddr.zig");

pub fn otherFamilyListening(family: sockaddr.Family, port: u16) bool {
    const other: u32 = switch (family) {
        .ipv4 => linux.AF.INET6,
        .ipv6 => linux.AF.INET,
    };
    const rc = linux.socket(other, linux.SOCK.STREAM | linux.SOCK.CLOEXEC, 0);
    if (linux.E.init(rc) != .SUCCESS) return false; // no IPv6 here, or out of fds: nothing to learn
    const fd: i32 = @intCast(rc);
    defer _ = linux.close(fd);

    const one: c_int = 1;
    _ = linux.setsockopt(fd, linux.SOL.SOCKET, linux.SO.REUSEADDR, std.mem.asBytes(&one), @sizeOf(c_int));
    const bound = switch (family) {
        .ipv4 => blk: {
            // Only the IPv6 side: a dual-stack wildcard would also see IPv4 listeners, our own family's business.
            _ = linux.setsockopt(fd, linux.IPPROTO.IPV6, linux.IPV6.V6ONLY, std.mem.asBytes(&one), @sizeOf(c_int));
            var a = std.mem.zeroes(linux.sockaddr.in6);
            a.family = linux.AF.INET6;
            a.port = std.mem.nativeToBig(u16, port);
            break :blk linux.bind(fd, @ptrCast(&a), @sizeOf(linux.sockaddr.in6));
        },
        .ipv6 => blk: {
            var a = std.mem.zeroes(linux.sockaddr.in);
            a.family = linux.AF.INET;
            a.port = std.mem.nativeToBig(u16, port);
            break :blk linux.bind(fd, @ptrCast(&a), @sizeOf(linux.sockaddr.in));
        },
    };
    return linux.E.init(bound) == .ADDRINUSE;
}

// ---------------------------------------------------------------- tests

const t = std.testing;

fn listenOn(comptime ip: []const u8, port: u16) !std.net.Server {
    const a = try std.net.Address.parseIp(ip, port);
    return a.listen(.{ .reuse_address = true });
}

test "sees a listener of the other family, and only of the other family" {
    // An IPv4 listener on a kernel-chosen port.
    var v4 = try listenOn("127.0.0.1", 0);
    const port = v4.listen_address.getPort();
    try t.expect(otherFamilyListening(.ipv6, port));
    try t.expect(!otherFamilyListening(.ipv4, port));
    v4.deinit();
    try t.expect(!otherFamilyListening(.ipv6, port));

    // An IPv6-only listener on loopback (skipped where the machine has no IPv6).
    var v6 = listenOn("::1", 0) catch return error.SkipZigTest;
    defer v6.deinit();
    const port6 = v6.listen_address.getPort();
    try t.expect(otherFamilyListening(.ipv4, port6));
    try t.expect(!otherFamilyListening(.ipv6, port6));
}

test "leaves errno alone and keeps no fd" {
    const real = @import("real.zig");
    const saved = real.errno();
    defer real.setErrno(saved);
    real.setErrno(4242);
    const before = try countFds();
    _ = otherFamilyListening(.ipv4, 1);
    _ = otherFamilyListening(.ipv6, 65535);
    try t.expectEqual(@as(c_int, 4242), real.errno());
    try t.expectEqual(before, try countFds());
}

fn countFds() !usize {
    var dir = try std.fs.openDirAbsolute("/proc/self/fd", .{ .iterate = true });
    defer dir.close();
    var it = dir.iterate();
    var n: usize = 0;
    while (try it.next()) |_| n += 1;
    return n;
}
