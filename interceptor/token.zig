//! The daemon's bearer token, read from its file for the TCP fallback.

const std = @import("std");
const readSmallFile = @import("fdio.zig").readSmallFile;

pub const token_max = 256;

/// First line of the token file, trimmed. Anything that isn't a plain
/// printable token would let the file inject HTTP headers, so it's refused.
pub fn readToken(path: [*:0]const u8, buf: *[token_max]u8) ?[]const u8 {
    const raw = readSmallFile(path, buf) orelse return null;
    return tokenFromFile(raw);
}

fn tokenFromFile(raw: []const u8) ?[]const u8 {
    const line_end = std.mem.indexOfScalar(u8, raw, '\n') orelse raw.len;
    const tok = std.mem.trim(u8, raw[0..line_end], " \t\r");
    if (tok.len == 0) return null;
    for (tok) |ch| if (ch < 0x21 or ch > 0x7e) return null;
    return tok;
}

// ---------------------------------------------------------------- tests

const t = std.testing;

test "token file parsing" {
    try t.expectEqualStrings("abc123", tokenFromFile("  abc123 \r\nsecond line\n").?);
    try t.expectEqualStrings("abc", tokenFromFile("abc").?);
    try t.expect(tokenFromFile("\n") == null);
    try t.expect(tokenFromFile("") == null);
    try t.expect(tokenFromFile("a b") == null);
    try t.expect(tokenFromFile("a\x00b") == null);
}

test "real token file round trip" {
    var tmp = t.tmpDir(.{});
    defer tmp.cleanup();
    try tmp.dir.writeFile(.{ .sub_path = "token", .data = "s3cret\n" });
    var pbuf: [std.fs.max_path_bytes]u8 = undefined;
    const dir = try tmp.dir.realpath(".", &pbuf);
    var zbuf: [std.fs.max_path_bytes + 8]u8 = undefined;
    const p = try std.fmt.bufPrintZ(&zbuf, "{s}/token", .{dir});
    var tbuf: [token_max]u8 = undefined;
    try t.expectEqualStrings("s3cret", readToken(p, &tbuf).?);
    try t.expect(readToken("/nonexistent/styxy/token", &tbuf) == null);
}
