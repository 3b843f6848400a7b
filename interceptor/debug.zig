//! STYXY_DEBUG=1: one line on our stderr per step of a hooked bind, so a user
//! can see why a bind was (or wasn't) moved.

const std = @import("std");
const Config = @import("settings.zig").Config;
const writeAll = @import("fdio.zig").writeAll;

pub fn line(cfg: *const Config, comptime fmt: []const u8, args: anytype) void {
    if (!cfg.debug) return;
    var buf: [512]u8 = undefined;
    const text = std.fmt.bufPrint(&buf, "styxy-preload: " ++ fmt ++ "\n", args) catch blk: {
        // Too long for the buffer: say so rather than drop the line.
        buf[buf.len - 4 ..][0..4].* = "...\n".*;
        break :blk buf[0..];
    };
    writeAll(2, text);
}
