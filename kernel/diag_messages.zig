//! The inet_diag messages of NETLINK_SOCK_DIAG: the dump request we send, the
//! messages the kernel answers with, and the 32-byte records the addon hands
//! JavaScript. Pure: sockdiag.zig does the socket I/O.

const std = @import("std");
const linux = std.os.linux;

pub const record_len = 32;

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
const INET_DIAG_REQ_BYTECODE: u16 = 1;
const INET_DIAG_BC_S_EQ: u8 = 11;
const TCP_LISTEN = 10;

pub const listen_states: u32 = 1 << TCP_LISTEN;
pub const all_states: u32 = 0xffff_ffff;

const NlHeader = extern struct { len: u32, type: u16, flags: u16, seq: u32, pid: u32 };

const SockId = extern struct {
    sport: u16, // network order
    dport: u16,
    src: [16]u8,
    dst: [16]u8,
    ifindex: u32,
    cookie: [2]u32,
};

const ReqV2 = extern struct {
    family: u8,
    protocol: u8,
    ext: u8 = 0,
    pad: u8 = 0,
    states: u32,
    id: SockId,
};

pub const DiagMsg = extern struct {
    family: u8,
    state: u8,
    timer: u8,
    retrans: u8,
    id: SockId,
    expires: u32,
    rqueue: u32,
    wqueue: u32,
    uid: u32,
    inode: u32,
};

const BcOp = extern struct { code: u8, yes: u8, no: u16 };
const NlAttr = extern struct { len: u16, type: u16 };

/// The request, with the port condition: nlmsghdr, inet_diag_req_v2, one
/// attribute holding two bytecode ops (S_EQ, then the port in the second op's
/// `no`). S_EQ's `yes` steps over both ops to the end, which accepts; its `no`
/// jumps 4 bytes past the end, which rejects (the audit allows up to len + 4).
const Request = extern struct {
    hdr: NlHeader,
    req: ReqV2,
    attr: NlAttr,
    op: BcOp,
    port: BcOp,
};

comptime {
    std.debug.assert(@sizeOf(NlHeader) == 16);
    std.debug.assert(@sizeOf(ReqV2) == 56);
    std.debug.assert(@sizeOf(DiagMsg) == 72);
    std.debug.assert(@sizeOf(Request) == 16 + 56 + 4 + 8);
}

pub fn buildRequest(family: u8, states: u32, port: u16, seq: u32) Request {
    var r = std.mem.zeroes(Request);
    const with_bytecode = port != 0;
    r.hdr = .{
        .len = if (with_bytecode) @sizeOf(Request) else @sizeOf(NlHeader) + @sizeOf(ReqV2),
        .type = SOCK_DIAG_BY_FAMILY,
        .flags = linux.NLM_F_REQUEST | linux.NLM_F_DUMP,
        .seq = seq,
        .pid = 0,
    };
    r.req.family = family;
    r.req.protocol = linux.IPPROTO.TCP;
    r.req.states = states;
    r.req.id.sport = std.mem.nativeToBig(u16, port);
    r.attr = .{ .len = @sizeOf(NlAttr) + 2 * @sizeOf(BcOp), .type = INET_DIAG_REQ_BYTECODE };
    r.op = .{ .code = INET_DIAG_BC_S_EQ, .yes = 2 * @sizeOf(BcOp), .no = 2 * @sizeOf(BcOp) + 4 };
    r.port = .{ .code = 0, .yes = 0, .no = port };
    return r;
}

/// A lookup of one connection by its four-tuple, as seen from the socket we
/// want described: `src`/`sport` its local end, `dst`/`dport` its peer. Not a
/// dump: the kernel finds it in its connection hash (inet_diag_find_one_icsk)
/// and answers with that one socket, or with NLMSG_ERROR ENOENT. No cookie:
/// all ones tells the kernel not to check one.
pub const ExactRequest = extern struct { hdr: NlHeader, req: ReqV2 };

pub fn buildExact(family: u8, src: [16]u8, sport: u16, dst: [16]u8, dport: u16, seq: u32) ExactRequest {
    var r = std.mem.zeroes(ExactRequest);
    r.hdr = .{ .len = @sizeOf(ExactRequest), .type = SOCK_DIAG_BY_FAMILY, .flags = linux.NLM_F_REQUEST, .seq = seq, .pid = 0 };
    r.req.family = family;
    r.req.protocol = linux.IPPROTO.TCP;
    r.req.states = all_states;
    r.req.id.sport = std.mem.nativeToBig(u16, sport);
    r.req.id.dport = std.mem.nativeToBig(u16, dport);
    r.req.id.src = src;
    r.req.id.dst = dst;
    r.req.id.cookie = .{ 0xffff_ffff, 0xffff_ffff };
    return r;
}

/// One socket as the addon hands it to JS, 32 bytes, little-endian:
///   0 u8 family (4 or 6)   1 u8 TCP state   2 u16 local port
///   4 u32 uid   8 u32 inode   12 u32 reserved (0)
///   16 [16]u8 local address, network order (IPv4: first 4 bytes, rest 0)
pub fn pack(m: *const DiagMsg, out: *[record_len]u8) void {
    @memset(out, 0);
    out[0] = if (m.family == linux.AF.INET6) 6 else 4;
    out[1] = m.state;
    std.mem.writeInt(u16, out[2..4], std.mem.bigToNative(u16, m.id.sport), .little);
    std.mem.writeInt(u32, out[4..8], m.uid, .little);
    std.mem.writeInt(u32, out[8..12], m.inode, .little);
    const n: usize = if (m.family == linux.AF.INET6) 16 else 4;
    @memcpy(out[16 .. 16 + n], m.id.src[0..n]);
}

pub const Parsed = union(enum) {
    more,
    done,
    /// The kernel refused the request (NLMSG_ERROR) or ended the dump with an error.
    failed: u16,
};

/// Appends one datagram's sockets to `out` as records. Messages of another
/// sequence number are left out: leftovers of an earlier, abandoned dump.
pub fn parse(gpa: std.mem.Allocator, datagram: []const u8, seq: u32, out: *std.ArrayListUnmanaged(u8), examined: *u64) error{ OutOfMemory, Malformed }!Parsed {
    var rest = datagram;
    while (rest.len >= @sizeOf(NlHeader)) {
        const h = std.mem.bytesToValue(NlHeader, rest[0..@sizeOf(NlHeader)]);
        if (h.len < @sizeOf(NlHeader) or h.len > rest.len) return error.Malformed;
        const body = rest[@sizeOf(NlHeader)..h.len];
        rest = rest[@min(rest.len, std.mem.alignForward(usize, h.len, 4))..];
        if (h.seq != seq) continue;
        switch (h.type) {
            SOCK_DIAG_BY_FAMILY => {
                if (body.len < @sizeOf(DiagMsg)) return error.Malformed;
                const m = std.mem.bytesToValue(DiagMsg, body[0..@sizeOf(DiagMsg)]);
                pack(&m, try out.addManyAsArray(gpa, record_len));
                examined.* += 1;
            },
            NLMSG_DONE => {
                // The dump's own status follows the header (netlink_dump's dump_done_errno).
                if (body.len >= 4) {
                    const e = std.mem.readInt(i32, body[0..4], .little);
                    if (e < 0) return .{ .failed = @intCast(-e) };
                }
                return .done;
            },
            NLMSG_ERROR => {
                if (body.len < 4) return error.Malformed;
                const e = std.mem.readInt(i32, body[0..4], .little);
                // An error of 0 is an acknowledgement; a dump asks for none, but it ends nothing either way.
                if (e == 0) return .done;
                return .{ .failed = @intCast(@min(-@as(i64, e), std.math.maxInt(u16))) };
            },
            NLMSG_OVERRUN => return .{ .failed = @intFromEnum(linux.E.NOBUFS) },
            else => {}, // NOOP and anything newer
        }
    }
    return .more;
}

/// The daemon's one NETLINK_SOCK_DIAG socket and its counters.

// ---------------------------------------------------------------- tests

const t = std.testing;

fn diagMessage(buf: []u8, seq: u32, family: u8, state: u8, port: u16, addr: []const u8, uid: u32, inode: u32) usize {
    const len = @sizeOf(NlHeader) + @sizeOf(DiagMsg) + 8; // plus one attribute, as the kernel sends
    const h: NlHeader = .{ .len = len, .type = SOCK_DIAG_BY_FAMILY, .flags = linux.NLM_F_MULTI, .seq = seq, .pid = 77 };
    var m = std.mem.zeroes(DiagMsg);
    m.family = family;
    m.state = state;
    m.id.sport = std.mem.nativeToBig(u16, port);
    m.id.dport = std.mem.nativeToBig(u16, 5555);
    @memcpy(m.id.src[0..addr.len], addr);
    @memset(&m.id.dst, 0xee);
    m.uid = uid;
    m.inode = inode;
    @memcpy(buf[0..16], std.mem.asBytes(&h));
    @memcpy(buf[16..88], std.mem.asBytes(&m));
    @memset(buf[88..len], 0xaa);
    return len;
}

fn control(buf: []u8, seq: u32, kind: u16, status: i32) usize {
    const h: NlHeader = .{ .len = 20, .type = kind, .flags = linux.NLM_F_MULTI, .seq = seq, .pid = 77 };
    @memcpy(buf[0..16], std.mem.asBytes(&h));
    std.mem.writeInt(i32, buf[16..20], status, .little);
    return 20;
}

test "packs IPv4 and IPv6 sockets into 32-byte records" {
    var m = std.mem.zeroes(DiagMsg);
    m.family = linux.AF.INET;
    m.state = 10;
    m.id.sport = std.mem.nativeToBig(u16, 8080);
    m.id.src = [_]u8{ 127, 0, 0, 1 } ++ [_]u8{0xff} ** 12; // the kernel leaves the rest of an IPv4 address alone
    m.uid = 1000;
    m.inode = 0xdeadbeef;
    var r: [record_len]u8 = undefined;
    pack(&m, &r);
    try t.expectEqualSlices(u8, &([_]u8{ 4, 10, 0x90, 0x1f, 0xe8, 0x03, 0, 0, 0xef, 0xbe, 0xad, 0xde, 0, 0, 0, 0, 127, 0, 0, 1 } ++ [_]u8{0} ** 12), &r);

    m.family = linux.AF.INET6;
    m.state = 1;
    m.id.src = .{ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1 };
    pack(&m, &r);
    try t.expectEqual(@as(u8, 6), r[0]);
    try t.expectEqual(@as(u8, 1), r[1]);
    try t.expectEqual(@as(u16, 8080), std.mem.readInt(u16, r[2..4], .little));
    try t.expectEqualSlices(u8, &m.id.src, r[16..32]);
}

test "parses a dump: records, skipped noise, then done" {
    var buf: [1024]u8 align(4) = undefined;
    var n: usize = 0;
    n += diagMessage(buf[n..], 9, linux.AF.INET, 10, 3000, &.{ 127, 0, 0, 1 }, 1000, 42);
    n += control(buf[n..], 9, NLMSG_NOOP, 0);
    n += diagMessage(buf[n..], 8, linux.AF.INET, 10, 1, &.{ 1, 1, 1, 1 }, 0, 1); // an older dump's
    n += diagMessage(buf[n..], 9, linux.AF.INET6, 6, 3000, &([_]u8{0} ** 15 ++ [_]u8{1}), 0, 0);

    var out: std.ArrayListUnmanaged(u8) = .empty;
    defer out.deinit(t.allocator);
    var examined: u64 = 0;
    try t.expectEqual(Parsed.more, try parse(t.allocator, buf[0..n], 9, &out, &examined));
    try t.expectEqual(@as(u64, 2), examined);
    try t.expectEqual(@as(usize, 2 * record_len), out.items.len);
    try t.expectEqual(@as(u32, 42), std.mem.readInt(u32, out.items[8..12], .little));
    try t.expectEqual(@as(u8, 6), out.items[32]);
    try t.expectEqual(@as(u8, 6), out.items[33]); // TIME_WAIT
    try t.expectEqual(@as(u8, 1), out.items[63]);

    n = control(&buf, 9, NLMSG_DONE, 0);
    try t.expectEqual(Parsed.done, try parse(t.allocator, buf[0..n], 9, &out, &examined));
    try t.expectEqual(@as(u64, 2), examined);
}

test "an NLMSG_ERROR or a failed NLMSG_DONE carries the errno" {
    var buf: [64]u8 align(4) = undefined;
    var out: std.ArrayListUnmanaged(u8) = .empty;
    defer out.deinit(t.allocator);
    var examined: u64 = 0;
    var n = control(&buf, 3, NLMSG_ERROR, -@as(i32, @intFromEnum(linux.E.PERM)));
    try t.expectEqual(Parsed{ .failed = 1 }, try parse(t.allocator, buf[0..n], 3, &out, &examined));
    n = control(&buf, 3, NLMSG_DONE, -@as(i32, @intFromEnum(linux.E.NOENT)));
    try t.expectEqual(Parsed{ .failed = 2 }, try parse(t.allocator, buf[0..n], 3, &out, &examined));
}

test "a message longer than the datagram is malformed, not read past" {
    var buf: [128]u8 align(4) = undefined;
    const n = diagMessage(&buf, 1, linux.AF.INET, 10, 80, &.{ 10, 0, 0, 1 }, 0, 0);
    var out: std.ArrayListUnmanaged(u8) = .empty;
    defer out.deinit(t.allocator);
    var examined: u64 = 0;
    try t.expectError(error.Malformed, parse(t.allocator, buf[0 .. n - 10], 1, &out, &examined));
    var short = buf;
    std.mem.writeInt(u32, short[0..4], 40, .little); // a diag message too short for inet_diag_msg
    try t.expectError(error.Malformed, parse(t.allocator, short[0..40], 1, &out, &examined));
}

test "the request: port in network order, bytecode only with a port" {
    const r = buildRequest(linux.AF.INET6, listen_states, 8080, 5);
    const bytes = std.mem.asBytes(&r);
    try t.expectEqual(@as(u32, 84), r.hdr.len);
    try t.expectEqual(@as(u8, 10), bytes[16]); // sdiag_family
    try t.expectEqual(@as(u8, 6), bytes[17]); // IPPROTO_TCP
    try t.expectEqual(@as(u32, 1 << 10), std.mem.readInt(u32, bytes[20..24], .little));
    try t.expectEqualSlices(u8, &.{ 0x1f, 0x90 }, bytes[24..26]);
    // nlattr {len 12, type 1}, S_EQ {11, yes 8, no 12}, {0, 0, port 8080 host order}
    try t.expectEqualSlices(u8, &.{ 12, 0, 1, 0, 11, 8, 12, 0, 0, 0, 0x90, 0x1f }, bytes[72..84]);
    try t.expectEqual(@as(u32, 72), buildRequest(linux.AF.INET, all_states, 0, 6).hdr.len);
}

test "the exact request: one connection by its four ports and addresses, not a dump" {
    const src = [_]u8{ 127, 0, 0, 1 } ++ [_]u8{0} ** 12;
    const dst = [_]u8{ 127, 0, 0, 2 } ++ [_]u8{0} ** 12;
    const r = buildExact(linux.AF.INET, src, 40000, dst, 9876, 7);
    const bytes = std.mem.asBytes(&r);
    try t.expectEqual(@as(u32, 72), r.hdr.len);
    try t.expectEqual(@as(u16, linux.NLM_F_REQUEST), r.hdr.flags);
    try t.expectEqualSlices(u8, &.{ 0x9c, 0x40, 0x26, 0x94 }, bytes[24..28]); // sport 40000, dport 9876, big-endian
    try t.expectEqualSlices(u8, &src, bytes[28..44]);
    try t.expectEqualSlices(u8, &dst, bytes[44..60]);
    try t.expectEqualSlices(u8, &([_]u8{0xff} ** 8), bytes[64..72]);
}

