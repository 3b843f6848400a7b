//! Reading and rewriting the caller's sockaddr.
//!
//! Works on raw bytes rather than casting to extern structs: the caller's
//! pointer comes from arbitrary C code, so we only trust `len` bytes and make
//! no alignment assumptions.

const std = @import("std");
const native_endian = @import("builtin").cpu.arch.endian();

pub const AF_INET: u16 = std.posix.AF.INET;
pub const AF_INET6: u16 = std.posix.AF.INET6;

/// Kernel minimums: inet_bind wants a full sockaddr_in; inet6_bind accepts the
/// RFC 2133 size (no scope id), so we must too or we'd skip legit binds.
pub const min_len_v4: usize = 16;
pub const min_len_v6: usize = 24;
/// The kernel rejects anything larger than sockaddr_storage (EINVAL), so we
/// never need to rewrite more than this.
pub const storage_len: usize = 128;

pub const Family = enum {
    ipv4,
    ipv6,

    pub fn jsonName(self: Family) []const u8 {
        return switch (self) {
            .ipv4 => "ipv4",
            .ipv6 => "ipv6",
        };
    }
};

pub const Parsed = struct {
    family: Family,
    /// Host byte order.
    port: u16,
    /// IPv4 uses the first 4 bytes.
    addr: [16]u8,
};

/// Returns null for anything that isn't a complete inet/inet6 address; those
/// binds are none of our business and pass through untouched.
pub fn parse(bytes: []const u8) ?Parsed {
    if (bytes.len < 2 or bytes.len > storage_len) return null;
    const fam = std.mem.readInt(u16, bytes[0..2], native_endian);
    var out: Parsed = .{ .family = .ipv4, .port = 0, .addr = [_]u8{0} ** 16 };
    if (fam == AF_INET) {
        if (bytes.len < min_len_v4) return null;
        out.family = .ipv4;
        @memcpy(out.addr[0..4], bytes[4..8]);
    } else if (fam == AF_INET6) {
        if (bytes.len < min_len_v6) return null;
        out.family = .ipv6;
        @memcpy(out.addr[0..16], bytes[8..24]);
    } else return null;
    out.port = std.mem.readInt(u16, bytes[2..4], .big);
    return out;
}

/// The port of a loopback address (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104), read straight from the bytes:
/// connect() asks this of every address it sees, so it parses nothing else. Null for any other address,
/// port 0, or a length the kernel would refuse.
pub fn loopbackPort(bytes: []const u8) ?u16 {
    if (bytes.len < min_len_v4 or bytes.len > storage_len) return null;
    const fam = std.mem.readInt(u16, bytes[0..2], native_endian);
    const port = std.mem.readInt(u16, bytes[2..4], .big);
    if (port == 0) return null;
    if (fam == AF_INET) return if (bytes[4] == 127) port else null;
    if (fam != AF_INET6 or bytes.len < min_len_v6) return null;
    const a = bytes[8..24];
    if (!std.mem.allEqual(u8, a[0..10], 0)) return null;
    const v6_loopback = a[10] == 0 and a[11] == 0 and std.mem.allEqual(u8, a[12..15], 0) and a[15] == 1;
    const v4_mapped = a[10] == 0xff and a[11] == 0xff and a[12] == 127;
    return if (v6_loopback or v4_mapped) port else null;
}

/// Copy of the caller's address with a different port. Kept in a
/// sockaddr_storage-sized, suitably aligned stack buffer so the caller's
/// memory is never written.
pub const Rewritten = struct {
    storage: [storage_len]u8 align(8),
    len: usize,

    pub fn bytes(self: *const Rewritten) []const u8 {
        return self.storage[0..self.len];
    }
};

pub fn withPort(original: []const u8, port: u16) ?Rewritten {
    if (parse(original) == null) return null;
    var r: Rewritten = .{ .storage = [_]u8{0} ** storage_len, .len = original.len };
    @memcpy(r.storage[0..original.len], original);
    std.mem.writeInt(u16, r.storage[2..4], port, .big);
    return r;
}

// ---------------------------------------------------------------- tests

fn v4Bytes(port: u16, addr: [4]u8) [16]u8 {
    var b = [_]u8{0} ** 16;
    std.mem.writeInt(u16, b[0..2], AF_INET, native_endian);
    std.mem.writeInt(u16, b[2..4], port, .big);
    @memcpy(b[4..8], &addr);
    return b;
}

fn v6Bytes(port: u16, addr: [16]u8) [28]u8 {
    var b = [_]u8{0} ** 28;
    std.mem.writeInt(u16, b[0..2], AF_INET6, native_endian);
    std.mem.writeInt(u16, b[2..4], port, .big);
    std.mem.writeInt(u32, b[4..8], 0x12345, .big); // flowinfo must survive rewrite
    @memcpy(b[8..24], &addr);
    std.mem.writeInt(u32, b[24..28], 7, native_endian); // scope id too
    return b;
}

test "parse ipv4 with the system's struct layout" {
    var sin: std.posix.sockaddr.in = .{ .port = std.mem.nativeToBig(u16, 8000), .addr = std.mem.nativeToBig(u32, 0x7f000001) };
    const p = parse(std.mem.asBytes(&sin)).?;
    try std.testing.expectEqual(Family.ipv4, p.family);
    try std.testing.expectEqual(@as(u16, 8000), p.port);
    try std.testing.expectEqualSlices(u8, &.{ 127, 0, 0, 1 }, p.addr[0..4]);
}

test "parse ipv6 with the system's struct layout" {
    var sin6: std.posix.sockaddr.in6 = .{ .port = std.mem.nativeToBig(u16, 443), .flowinfo = 0, .addr = [_]u8{0} ** 15 ++ [_]u8{1}, .scope_id = 0 };
    const p = parse(std.mem.asBytes(&sin6)).?;
    try std.testing.expectEqual(Family.ipv6, p.family);
    try std.testing.expectEqual(@as(u16, 443), p.port);
    try std.testing.expectEqualSlices(u8, &([_]u8{0} ** 15 ++ [_]u8{1}), &p.addr);
}

test "short lengths and foreign families are rejected" {
    const v4 = v4Bytes(80, .{ 1, 2, 3, 4 });
    try std.testing.expect(parse(v4[0..15]) == null);
    try std.testing.expect(parse(v4[0..1]) == null);
    try std.testing.expect(parse(v4[0..0]) == null);
    try std.testing.expect(parse(&v4) != null);
    const v6 = v6Bytes(80, [_]u8{0} ** 16);
    try std.testing.expect(parse(v6[0..23]) == null);
    try std.testing.expect(parse(v6[0..24]) != null); // RFC 2133 size, no scope id
    try std.testing.expect(parse(v4[0..16]) != null);
    var unix = [_]u8{0} ** 110;
    std.mem.writeInt(u16, unix[0..2], std.posix.AF.UNIX, native_endian);
    try std.testing.expect(parse(&unix) == null);
    var huge = [_]u8{0} ** 129;
    std.mem.writeInt(u16, huge[0..2], AF_INET, native_endian);
    try std.testing.expect(parse(&huge) == null);
}

test "loopback ports: 127/8, ::1 and v4-mapped 127/8 only" {
    const lo = [_]u8{0} ** 15 ++ [_]u8{1};
    const mapped = [_]u8{0} ** 10 ++ [_]u8{ 0xff, 0xff, 127, 0, 0, 1 };
    try std.testing.expectEqual(@as(?u16, 8000), loopbackPort(&v4Bytes(8000, .{ 127, 0, 0, 1 })));
    try std.testing.expectEqual(@as(?u16, 8000), loopbackPort(&v4Bytes(8000, .{ 127, 1, 2, 3 })));
    try std.testing.expectEqual(@as(?u16, 443), loopbackPort(&v6Bytes(443, lo)));
    try std.testing.expectEqual(@as(?u16, 443), loopbackPort(v6Bytes(443, lo)[0..24]));
    try std.testing.expectEqual(@as(?u16, 5173), loopbackPort(&v6Bytes(5173, mapped)));
    const others = [_][16]u8{
        v4Bytes(8000, .{ 10, 0, 0, 1 }),
        v4Bytes(8000, .{ 0, 0, 0, 0 }),
        v4Bytes(8000, .{ 128, 0, 0, 1 }),
        v4Bytes(0, .{ 127, 0, 0, 1 }),
    };
    for (others) |o| try std.testing.expectEqual(@as(?u16, null), loopbackPort(&o));
    const others6 = [_][16]u8{
        [_]u8{0} ** 15 ++ [_]u8{2}, // ::2
        [_]u8{0} ** 16, // ::
        [_]u8{0} ** 10 ++ [_]u8{ 0xff, 0xff, 10, 0, 0, 1 }, // ::ffff:10.0.0.1
        [_]u8{0} ** 12 ++ [_]u8{ 127, 0, 0, 1 }, // ::127.0.0.1 (v4-compatible, not mapped)
        [_]u8{ 0xfe, 0x80 } ++ [_]u8{0} ** 13 ++ [_]u8{1}, // fe80::1
    };
    for (others6) |a| try std.testing.expectEqual(@as(?u16, null), loopbackPort(&v6Bytes(8000, a)));
    try std.testing.expectEqual(@as(?u16, null), loopbackPort(v4Bytes(8000, .{ 127, 0, 0, 1 })[0..15]));
    try std.testing.expectEqual(@as(?u16, null), loopbackPort(v6Bytes(8000, lo)[0..23]));
    var unix = [_]u8{0} ** 110;
    std.mem.writeInt(u16, unix[0..2], std.posix.AF.UNIX, native_endian);
    unix[3] = 0x40; // a "port" and a "127" where an inet address would have them
    unix[4] = 127;
    try std.testing.expectEqual(@as(?u16, null), loopbackPort(&unix));
}

test "rewrite changes only the port and leaves the original alone" {
    const v6 = v6Bytes(8000, .{ 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 });
    const r = withPort(&v6, 8001).?;
    try std.testing.expectEqual(@as(usize, 28), r.len);
    try std.testing.expectEqual(@as(u16, 8001), parse(r.bytes()).?.port);
    try std.testing.expectEqualSlices(u8, v6[0..2], r.bytes()[0..2]);
    try std.testing.expectEqualSlices(u8, v6[4..], r.bytes()[4..]);
    try std.testing.expectEqual(@as(u16, 8000), parse(&v6).?.port);

    const v4 = v4Bytes(65535, .{ 192, 168, 1, 2 });
    const r4 = withPort(&v4, 1024).?;
    try std.testing.expectEqual(@as(u16, 1024), parse(r4.bytes()).?.port);
    try std.testing.expectEqualSlices(u8, v4[4..], r4.bytes()[4..]);
    try std.testing.expect(withPort(v4[0..10], 1) == null);
}
