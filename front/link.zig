//! Frames on the front's one link to the daemon (fd 3, a stream socketpair the
//! daemon made when it started us), both ways alike:
//!
//!   u32 payload length | u32 id | payload        (little-endian)
//!
//! front -> daemon: a client's whole request, id naming its connection; and
//!                  once, id 0 with payload "ready", when the front listens.
//! daemon -> front: the HTTP response for that id.
//!
//! An id is a connection slot and that slot's generation, so an answer that
//! comes after its client was dropped never reaches the slot's next client.
//! Generation 0 is the link's own: "ready" (id 0) and "ping"/"pong" (id 1).

const std = @import("std");

pub const header_len = 8;

/// A connection slot (the front has 256) and its generation, wide enough not to wrap while an answer is late.
pub const Slot = u8;
pub const Gen = u24;

/// Generation 0 is no connection's: its ids are the link's own messages.
pub const ready_id: u32 = 0;
/// The daemon asks now and then; a front that does not answer is stuck, and is replaced.
pub const ping_id: u32 = 1;

pub fn id(slot: Slot, gen: Gen) u32 {
    return @as(u32, gen) << 8 | slot;
}

pub fn slotOf(frame_id: u32) Slot {
    return @truncate(frame_id);
}

pub fn genOf(frame_id: u32) Gen {
    return @truncate(frame_id >> 8);
}

pub fn header(len: usize, frame_id: u32) [header_len]u8 {
    var h: [header_len]u8 = undefined;
    std.mem.writeInt(u32, h[0..4], @intCast(len), .little);
    std.mem.writeInt(u32, h[4..8], frame_id, .little);
    return h;
}

pub const Frame = struct { id: u32, payload: []const u8, size: usize };

/// The first whole frame in `bytes`, null if it has not all arrived, an error
/// if it could never fit in a buffer of `cap` bytes.
pub fn next(bytes: []const u8, cap: usize) error{FrameTooLarge}!?Frame {
    if (bytes.len < header_len) return null;
    const len = std.mem.readInt(u32, bytes[0..4], .little);
    if (len > cap - header_len) return error.FrameTooLarge;
    const size = header_len + len;
    if (bytes.len < size) return null;
    return .{ .id = std.mem.readInt(u32, bytes[4..8], .little), .payload = bytes[header_len..size], .size = size };
}

const t = std.testing;

test "frames round-trip, and partial ones wait" {
    var buf: [64]u8 = undefined;
    const h = header(5, id(3, 7));
    @memcpy(buf[0..8], &h);
    @memcpy(buf[8..13], "hello");
    for (0..13) |n| try t.expect((try next(buf[0..n], 64)) == null);
    const f = (try next(buf[0..13], 64)).?;
    try t.expectEqualStrings("hello", f.payload);
    try t.expectEqual(@as(usize, 13), f.size);
    try t.expectEqual(@as(Slot, 3), slotOf(f.id));
    try t.expectEqual(@as(Gen, 7), genOf(f.id));
    try t.expectEqual(@as(Gen, 0), genOf(ping_id));
}

test "a frame bigger than the buffer is an error, not a wait" {
    const h = header(100, 1);
    try t.expectError(error.FrameTooLarge, next(&h, 64));
}
