//! getpeername() on a followed socket reports the port the program asked
//! for: the program connected to localhost:8000 and may check, log or compare
//! what it is connected to (Node's socket.remotePort, a driver's sanity check).
//!
//! One slot per descriptor below max_fds, holding the asked and real ports and
//! the low half of the socket's cookie (SO_COOKIE: unique per socket for the
//! boot). Descriptors are reused without our knowing (close is not hooked), so
//! a slot is only believed when the socket's peer is loopback on the real port
//! and its cookie matches: a reused descriptor is never misreported.

const std = @import("std");
const linux = std.os.linux;
const c = std.c;
const sockaddr = @import("sockaddr.zig");

/// Descriptors past this are followed all the same; their getpeername reports the real port. The table is
/// 32 KiB of zero pages until a follow touches one.
pub const max_fds = 4096;

pub const Peers = struct {
    slots: [max_fds]std.atomic.Value(u64) = @splat(.init(0)),

    /// `fd` was connected to `to` in place of `asked`.
    pub fn record(self: *Peers, fd: c_int, asked: u16, to: u16) void {
        if (fd < 0 or fd >= max_fds) return;
        // Without a cookie a reused descriptor could not be told apart: leave the real port showing.
        const cookie = socketCookie(fd) orelse return;
        self.slots[@intCast(fd)].store(@as(u64, @as(u32, @truncate(cookie))) << 32 | @as(u64, asked) << 16 | to, .release);
    }

    /// One load: whether `fd` may be a socket we followed.
    pub inline fn has(self: *Peers, fd: c_int) bool {
        return fd >= 0 and fd < max_fds and self.slots[@intCast(fd)].load(.monotonic) != 0;
    }

    /// After the real getpeername succeeded: the address it wrote (`room` bytes of buffer, `full` the
    /// address's whole length) gets the asked port back when `fd` is a socket we followed.
    pub fn rewrite(self: *Peers, fd: c_int, addr: ?*anyopaque, room: c.socklen_t, full: c.socklen_t) void {
        if (fd < 0 or fd >= max_fds) return;
        const slot = self.slots[@intCast(fd)].load(.acquire);
        if (slot == 0) return;
        const to: u16 = @truncate(slot);
        const asked: u16 = @truncate(slot >> 16);
        const p: [*]u8 = @ptrCast(addr orelse return);
        const bytes = p[0..@min(room, full)];
        if (sockaddr.loopbackPort(bytes) != to) return;
        const cookie = socketCookie(fd) orelse return;
        if (@as(u32, @truncate(cookie)) != @as(u32, @truncate(slot >> 32))) {
            // Another socket now: forget the slot (unless it was just recorded anew).
            _ = self.slots[@intCast(fd)].cmpxchgStrong(slot, 0, .monotonic, .monotonic);
            return;
        }
        std.mem.writeInt(u16, bytes[2..4], asked, .big);
    }
};

pub var process: Peers = .{};

/// Raw syscall: errno stays the caller's.
fn socketCookie(fd: c_int) ?u64 {
    var cookie: u64 = 0;
    var len: linux.socklen_t = @sizeOf(u64);
    const rc = linux.getsockopt(fd, linux.SOL.SOCKET, linux.SO.COOKIE, std.mem.asBytes(&cookie), &len);
    if (linux.E.init(rc) != .SUCCESS or len != @sizeOf(u64) or cookie == 0) return null;
    return cookie;
}

// ---------------------------------------------------------------- tests

const t = std.testing;
const posix = std.posix;

fn peerPort(peers: *Peers, fd: posix.socket_t, room: c.socklen_t) !u16 {
    var sa: posix.sockaddr.storage = undefined;
    var len: posix.socklen_t = room;
    try posix.getpeername(fd, @ptrCast(&sa), &len);
    peers.rewrite(fd, &sa, room, len);
    return std.mem.readInt(u16, std.mem.asBytes(&sa)[2..4], .big);
}

fn connected(to: *const std.net.Address) !posix.socket_t {
    const fd = try posix.socket(posix.AF.INET, posix.SOCK.STREAM | posix.SOCK.CLOEXEC, 0);
    errdefer posix.close(fd);
    try posix.connect(fd, &to.any, to.getOsSockLen());
    return fd;
}

test "a followed socket's peer shows the asked port; a reused descriptor shows its own" {
    const peers = try t.allocator.create(Peers);
    defer t.allocator.destroy(peers);
    peers.* = .{};
    const any = try std.net.Address.parseIp4("127.0.0.1", 0);
    var server = try any.listen(.{});
    defer server.deinit();
    const to = server.listen_address.getPort();

    const followed = try connected(&server.listen_address);
    peers.record(followed, 8000, to);
    try t.expectEqual(@as(u16, 8000), try peerPort(peers, followed, @sizeOf(posix.sockaddr.storage)));
    // A buffer too small to hold the address: nothing to check it by, so nothing is rewritten.
    var tiny: [8]u8 align(4) = undefined;
    var tiny_len: posix.socklen_t = tiny.len;
    try posix.getpeername(followed, @ptrCast(&tiny), &tiny_len);
    peers.rewrite(followed, &tiny, tiny.len, tiny_len);
    try t.expectEqual(to, std.mem.readInt(u16, tiny[2..4], .big));
    posix.close(followed);

    // The same descriptor number, for a socket connected straight to the same loopback port: its own peer.
    const direct = try connected(&server.listen_address);
    defer posix.close(direct);
    try t.expectEqual(followed, direct);
    try t.expectEqual(to, try peerPort(peers, direct, @sizeOf(posix.sockaddr.storage)));
    try t.expectEqual(@as(u64, 0), peers.slots[@intCast(direct)].load(.monotonic));
}

test "descriptors past the table are left alone" {
    const peers = try t.allocator.create(Peers);
    defer t.allocator.destroy(peers);
    peers.* = .{};
    peers.record(max_fds, 8000, 8002);
    peers.record(-1, 8000, 8002);
    for (&peers.slots) |*s| try t.expectEqual(@as(u64, 0), s.load(.monotonic));
}
