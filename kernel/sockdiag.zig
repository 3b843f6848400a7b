//! TCP sockets of this network namespace, asked of the kernel over
//! NETLINK_SOCK_DIAG (inet_diag) instead of read from /proc/net/tcp{,6}.
//!
//! Why the port goes in twice. The kernel's TCP dump (inet_diag_dump_icsk;
//! tcp_diag_dump in tcp_diag.c once that moved there in 2025) compares
//! `id.idiag_sport` with each socket of the listening hash and of the
//! established hash before formatting it: sockets on other ports cost a
//! comparison, not a message. Its walk of bound but inactive sockets
//! (TCP_BOUND_INACTIVE, state bit 13, in our "every state") has no such
//! comparison: on 6.18, every state on port 1 without bytecode returned a bound
//! socket of another port. So a port condition in INET_DIAG_REQ_BYTECODE
//! filters there; elsewhere it only runs for sockets already on the port.
//!
//! What a query costs: there is no lookup by port. Listeners only walks the
//! listening hash (tens of microseconds). Every state also walks every bucket
//! of the established hash and touches every socket in it, TIME_WAIT included,
//! once per family: milliseconds, growing with the table.
//!
//! TIME_WAIT and SYN_RECV entries carry uid 0 and inode 0: they have no owner
//! left (the kernel fills those fields with zero for both). A socket bound but
//! not listening comes as state 7 (CLOSE).


const std = @import("std");
const linux = std.os.linux;
const msg = @import("diag_messages.zig");
const record_len = msg.record_len;
const TCP_LISTEN = 10;

pub const Diag = struct {
    fd: linux.fd_t = -1,
    seq: u32 = 0,
    queries: u64 = 0,
    examined: u64 = 0,
    /// Which call failed, for the error JS sees.
    failed_call: []const u8 = "",
    errno: u16 = 0,

    pub const Failure = error{ Kernel, OutOfMemory };

    pub fn close(self: *Diag) void {
        if (self.fd >= 0) _ = linux.close(self.fd);
        self.fd = -1;
    }

    fn fail(self: *Diag, call: []const u8, e: linux.E) Failure {
        self.failed_call = call;
        self.errno = @intFromEnum(e);
        // Whatever the socket still holds belongs to a dump we gave up on: start clean next time.
        self.close();
        return error.Kernel;
    }

    fn open(self: *Diag) Failure!void {
        if (self.fd >= 0) return;
        const rc = linux.socket(linux.AF.NETLINK, linux.SOCK.DGRAM | linux.SOCK.CLOEXEC, linux.NETLINK.SOCK_DIAG);
        if (linux.E.init(rc) != .SUCCESS) return self.fail("socket(NETLINK_SOCK_DIAG)", linux.E.init(rc));
        self.fd = @intCast(rc);
        // The kernel answers a dump at once; a receive that still waits after a
        // second means a bug here, and the daemon's event loop must not hang on it.
        const tv: linux.timeval = .{ .sec = 1, .usec = 0 };
        _ = linux.setsockopt(self.fd, linux.SOL.SOCKET, linux.SO.RCVTIMEO, std.mem.asBytes(&tv), @sizeOf(linux.timeval));
    }

    /// Appends the TCP sockets of both families on `port` (every port when 0)
    /// to `out`, listeners only or in every state.
    pub fn query(self: *Diag, gpa: std.mem.Allocator, out: *std.ArrayListUnmanaged(u8), port: u16, listen_only: bool) Failure!void {
        self.queries += 1;
        try self.open();
        const states = if (listen_only) msg.listen_states else msg.all_states;
        for ([_]u8{ linux.AF.INET, linux.AF.INET6 }) |family| {
            try self.dump(gpa, out, family, states, port);
        }
    }

    /// Appends the one TCP socket whose local end is src:sport and whose peer
    /// is dst:dport to `out`; false when the kernel has no such connection.
    pub fn connection(self: *Diag, gpa: std.mem.Allocator, out: *std.ArrayListUnmanaged(u8), family: u8, src: [16]u8, sport: u16, dst: [16]u8, dport: u16) Failure!bool {
        self.queries += 1;
        try self.open();
        self.seq +%= 1;
        const req = msg.buildExact(family, src, sport, dst, dport, self.seq);
        try self.send(std.mem.asBytes(&req)[0..req.hdr.len]);
        var buf: [4096]u8 align(4) = undefined;
        const before = out.items.len;
        // One answer, not a dump: the socket, or an error. A datagram of an
        // abandoned earlier request (another seq) is skipped by parse.
        while (true) {
            const got = try self.receive(gpa, &buf, out);
            if (out.items.len > before) return true;
            switch (got) {
                .more => {},
                .done => return false,
                .failed => |errno| {
                    if (errno == @intFromEnum(linux.E.NOENT)) return false;
                    return self.fail("SOCK_DIAG_BY_FAMILY", @enumFromInt(errno));
                },
            }
        }
    }

    /// One datagram of the kernel's answer, its sockets appended to `out`.
    fn receive(self: *Diag, gpa: std.mem.Allocator, buf: []align(4) u8, out: *std.ArrayListUnmanaged(u8)) Failure!msg.Parsed {
        while (true) {
            // MSG_TRUNC: the real length even when it did not fit, so a cut datagram is an error, not lost sockets.
            const rc = linux.recvfrom(self.fd, buf.ptr, buf.len, linux.MSG.TRUNC, null, null);
            switch (linux.E.init(rc)) {
                .SUCCESS => {},
                .INTR => continue,
                else => |e| return self.fail("recv(NETLINK_SOCK_DIAG)", e),
            }
            if (rc > buf.len) return self.fail("recv(NETLINK_SOCK_DIAG)", .MSGSIZE);
            return msg.parse(gpa, buf[0..rc], self.seq, out, &self.examined) catch |err| switch (err) {
                error.OutOfMemory => {
                    self.close();
                    return error.OutOfMemory;
                },
                error.Malformed => return self.fail("recv(NETLINK_SOCK_DIAG)", .PROTO),
            };
        }
    }

    fn send(self: *Diag, bytes: []const u8) Failure!void {
        const kernel: linux.sockaddr.nl = .{ .pid = 0, .groups = 0 };
        while (true) {
            const rc = linux.sendto(self.fd, bytes.ptr, bytes.len, 0, @ptrCast(&kernel), @sizeOf(linux.sockaddr.nl));
            switch (linux.E.init(rc)) {
                .SUCCESS => return,
                .INTR => continue,
                else => |e| return self.fail("sendto(NETLINK_SOCK_DIAG)", e),
            }
        }
    }

    fn dump(self: *Diag, gpa: std.mem.Allocator, out: *std.ArrayListUnmanaged(u8), family: u8, states: u32, port: u16) Failure!void {
        self.seq +%= 1;
        const req = msg.buildRequest(family, states, port, self.seq);
        try self.send(std.mem.asBytes(&req)[0..req.hdr.len]);
        // The kernel sizes a dump's datagrams by the reader's largest receive, up to 32 KiB.
        var buf: [32 * 1024]u8 align(4) = undefined;
        while (true) {
            const got = try self.receive(gpa, &buf, out);
            switch (got) {
                .more => {},
                .done => return,
                .failed => |errno| return self.fail("SOCK_DIAG_BY_FAMILY", @enumFromInt(errno)),
            }
        }
    }
};

// ---------------------------------------------------------------- tests

const t = std.testing;

test "asks the kernel: a listener of ours shows up with our uid, and only on its port" {
    const a = try std.net.Address.parseIp("127.0.0.1", 0);
    var server = try a.listen(.{ .reuse_address = true });
    defer server.deinit();
    const port = server.listen_address.getPort();

    var d: Diag = .{};
    defer d.close();
    var out: std.ArrayListUnmanaged(u8) = .empty;
    defer out.deinit(t.allocator);
    d.query(t.allocator, &out, port, true) catch |err| {
        if (err == error.Kernel and (d.errno == @intFromEnum(linux.E.PROTONOSUPPORT) or d.errno == @intFromEnum(linux.E.NOENT)))
            return error.SkipZigTest; // no sock_diag here
        return err;
    };
    try t.expectEqual(@as(usize, record_len), out.items.len);
    try t.expectEqual(@as(u8, 4), out.items[0]);
    try t.expectEqual(@as(u8, TCP_LISTEN), out.items[1]);
    try t.expectEqual(port, std.mem.readInt(u16, out.items[2..4], .little));
    try t.expectEqual(linux.getuid(), std.mem.readInt(u32, out.items[4..8], .little));
    try t.expect(std.mem.readInt(u32, out.items[8..12], .little) != 0);
    try t.expectEqualSlices(u8, &.{ 127, 0, 0, 1 }, out.items[16..20]);
    try t.expectEqual(@as(u64, 1), d.examined);
    try t.expectEqual(@as(u64, 1), d.queries);
}

test "asks for one connection exactly: our end of a loopback connection, with our uid; none once it is gone" {
    const a = try std.net.Address.parseIp("127.0.0.1", 0);
    var server = try a.listen(.{ .reuse_address = true });
    defer server.deinit();
    const port = server.listen_address.getPort();
    const client = try std.net.tcpConnectToAddress(server.listen_address);
    var accepted = try server.accept();
    defer accepted.stream.close();
    var local: linux.sockaddr.in = undefined;
    var len: linux.socklen_t = @sizeOf(linux.sockaddr.in);
    _ = linux.getsockname(client.handle, @ptrCast(&local), &len);
    const cport = std.mem.bigToNative(u16, local.port);
    const lo = [_]u8{ 127, 0, 0, 1 } ++ [_]u8{0} ** 12;

    var d: Diag = .{};
    defer d.close();
    var out: std.ArrayListUnmanaged(u8) = .empty;
    defer out.deinit(t.allocator);
    const found = d.connection(t.allocator, &out, linux.AF.INET, lo, cport, lo, port) catch |err| {
        if (err == error.Kernel and (d.errno == @intFromEnum(linux.E.PROTONOSUPPORT) or d.errno == @intFromEnum(linux.E.NOENT)))
            return error.SkipZigTest;
        return err;
    };
    try t.expect(found);
    try t.expectEqual(@as(usize, record_len), out.items.len);
    try t.expectEqual(@as(u8, 1), out.items[1]); // ESTABLISHED
    try t.expectEqual(cport, std.mem.readInt(u16, out.items[2..4], .little));
    try t.expectEqual(linux.getuid(), std.mem.readInt(u32, out.items[4..8], .little));
    // The peer's port swapped for another: no such connection, and nothing appended.
    try t.expect(!try d.connection(t.allocator, &out, linux.AF.INET, lo, cport, lo, port +% 1));
    try t.expectEqual(@as(usize, record_len), out.items.len);
    client.close();
}

