//! Before the token goes over TCP: is the listener on that loopback port ours? Port 9876 is one port for
//! every user of the machine; if another user's process holds it, sending our token there would hand it
//! our daemon. /proc/net/tcp names each socket's owner uid, so the check needs no privilege.

const std = @import("std");
const c = std.c;

const line_max = 256;

/// True when /proc/net/tcp shows a listener on `addr:port` (or on 0.0.0.0:port) owned by `uid`.
/// Any doubt (unreadable file, no such listener, another owner) answers false: no token is sent.
pub fn listenerIsOurs(addr: [4]u8, port: u16, uid: u32) bool {
    const fd = c.open("/proc/net/tcp", .{ .ACCMODE = .RDONLY, .CLOEXEC = true });
    if (fd < 0) return false;
    defer _ = c.close(fd);
    var chunk: [4096]u8 = undefined;
    var line: [line_max]u8 = undefined;
    var len: usize = 0;
    var skipping = false; // inside a line longer than line_max: not a format we know, ignore it
    var first = true;
    while (true) {
        const n = c.read(fd, &chunk, chunk.len);
        if (n < 0 and c._errno().* == @intFromEnum(std.posix.E.INTR)) continue;
        if (n <= 0) break;
        for (chunk[0..@intCast(n)]) |ch| {
            if (ch != '\n') {
                if (len == line.len) skipping = true else if (!skipping) {
                    line[len] = ch;
                    len += 1;
                }
                continue;
            }
            defer {
                len = 0;
                skipping = false;
                first = false;
            }
            if (skipping or first) continue; // the first line is the header
            if (lineMatches(line[0..len], addr, port, uid)) return true;
        }
    }
    return false;
}

/// One /proc/net/tcp row: "sl: LOCAL:PORT REMOTE:PORT ST TX:RX TR:WHEN RETR UID ...", addresses in host
/// order hex. A LISTEN row (0A) on our address or the wildcard, on our port, owned by `uid`.
fn lineMatches(row: []const u8, addr: [4]u8, port: u16, uid: u32) bool {
    var it = std.mem.tokenizeScalar(u8, row, ' ');
    _ = it.next() orelse return false; // sl
    const local = it.next() orelse return false;
    _ = it.next() orelse return false; // remote
    const state = it.next() orelse return false;
    _ = it.next() orelse return false; // tx:rx queues
    _ = it.next() orelse return false; // timer
    _ = it.next() orelse return false; // retransmits
    const owner = it.next() orelse return false;
    if (!std.mem.eql(u8, state, "0A")) return false;
    if (local.len != 13 or local[8] != ':') return false;
    const a = std.fmt.parseInt(u32, local[0..8], 16) catch return false;
    const p = std.fmt.parseInt(u16, local[9..13], 16) catch return false;
    const want: u32 = std.mem.readInt(u32, &addr, .little); // /proc prints the host-order (little-endian) word
    if (p != port or (a != want and a != 0)) return false;
    return (std.fmt.parseInt(u32, owner, 10) catch return false) == uid;
}

const t = std.testing;

test "a listener row is ours only on our port, address (or wildcard) and uid" {
    const row = "   3: 0100007F:2694 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 12345 1 0000000000000000 100 0 0 10 0";
    try t.expect(lineMatches(row, .{ 127, 0, 0, 1 }, 9876, 1000));
    try t.expect(!lineMatches(row, .{ 127, 0, 0, 1 }, 9876, 1001)); // another user's
    try t.expect(!lineMatches(row, .{ 127, 0, 0, 1 }, 9877, 1000));
    try t.expect(!lineMatches(row, .{ 127, 0, 0, 2 }, 9876, 1000));
    const wildcard = "   4: 00000000:2694 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0";
    try t.expect(lineMatches(wildcard, .{ 127, 0, 0, 1 }, 9876, 0));
    const established = "   5: 0100007F:2694 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 7 1 0";
    try t.expect(!lineMatches(established, .{ 127, 0, 0, 1 }, 9876, 1000));
    try t.expect(!lineMatches("garbage", .{ 127, 0, 0, 1 }, 9876, 1000));
    try t.expect(!lineMatches("", .{ 127, 0, 0, 1 }, 9876, 1000));
}

test "finds this process's own listener in the real table" {
    const a = try std.net.Address.parseIp4("127.0.0.1", 0);
    var s = try a.listen(.{});
    defer s.deinit();
    const port = s.listen_address.getPort();
    try t.expect(listenerIsOurs(.{ 127, 0, 0, 1 }, port, std.os.linux.geteuid()));
    try t.expect(!listenerIsOurs(.{ 127, 0, 0, 1 }, port, std.os.linux.geteuid() +% 1));
}
