//! The follow table's reader under a writer rewriting the table in a loop (follow_table.zig's seqlock):
//! a reader never sees a torn entry.

const std = @import("std");
const follow_table = @import("follow_table.zig");
const testing = @import("testing.zig");
const t = std.testing;
const View = follow_table.View;
const max_entries = follow_table.max_entries;

/// Two consistent states, each entry (project `base + i`, asked `10000 + i`). State 0: 512 entries, slot
/// `i` holding `i` and pointing at asked + 1, and past the count, slots the reader must never use (asked + 3).
/// State 1: all 1024, slot `i` holding `1023 - i`, pointing at asked + 2. A reader mixing the two would take
/// a count from one and slots from the other, or an asked port from one and a port from the other.
const torn_half = max_entries / 2;
fn tornState(state: u1, entries: *[max_entries]testing.TableFile.Entry) usize {
    for (entries, 0..) |*e, slot| {
        const i: u16 = @intCast(if (state == 0) slot else max_entries - 1 - slot);
        const to: u16 = if (state == 1) 2 else if (slot < torn_half) 1 else 3;
        e.* = .{ .project = torn_base + i, .asked = 10000 + i, .port = 10000 + i + to };
    }
    return if (state == 0) torn_half else max_entries;
}
const torn_base: u64 = 0x5eed_0000_0000_0000;

const TornReader = struct {
    view: View,
    rounds: usize,
    plus1: usize = 0,
    plus2: usize = 0,
    none: usize = 0,
    torn: usize = 0,

    fn run(self: *TornReader) void {
        var rng = std.Random.DefaultPrng.init(@intFromPtr(self));
        for (0..self.rounds) |_| {
            const i = rng.random().uintLessThan(u16, max_entries);
            const asked = 10000 + i;
            // None: state 0 for the upper half, or a reader that gave up waiting for a stable copy.
            const got = self.view.lookup(torn_base + i, asked) orelse {
                self.none += 1;
                continue;
            };
            if (got == asked + 1 and i < torn_half) self.plus1 += 1 else if (got == asked + 2) self.plus2 += 1 else self.torn += 1;
        }
    }
};

test "a writer rewriting the table in a loop never shows a reader a torn entry" {
    var entries: [max_entries]testing.TableFile.Entry = undefined;
    var w = try testing.TableFile.create(&.{});
    defer w.remove();
    try w.writeCounted(&entries, tornState(0, &entries));
    var table = w.table();
    defer table.unmap();
    const v = table.view().?;

    var stop = std.atomic.Value(bool).init(false);
    const Writer = struct {
        fn run(file: *testing.TableFile, halt: *std.atomic.Value(bool)) void {
            var all: [max_entries]testing.TableFile.Entry = undefined;
            var state: u1 = 1;
            while (!halt.load(.acquire)) : (state +%= 1) {
                file.writeCounted(&all, tornState(state, &all)) catch return;
            }
        }
    };
    const writer = try std.Thread.spawn(.{}, Writer.run, .{ &w, &stop });
    var readers: [2]TornReader = .{ .{ .view = v, .rounds = 20_000 }, .{ .view = v, .rounds = 20_000 } };
    var threads: [readers.len]std.Thread = undefined;
    for (&readers, &threads) |*r, *th| th.* = try std.Thread.spawn(.{}, TornReader.run, .{r});
    for (threads) |th| th.join();
    stop.store(true, .release);
    writer.join();

    var plus1: usize = 0;
    var plus2: usize = 0;
    for (readers) |r| {
        try t.expectEqual(@as(usize, 0), r.torn);
        plus1 += r.plus1;
        plus2 += r.plus2;
    }
    // Both states were seen (the writer really was rewriting under the readers).
    try t.expect(plus1 > 0 and plus2 > 0);
}
