//! When a client's bytes hold one whole HTTP/1.1 request: the front forwards a
//! request only once it has all of it, and judges nothing else about it (the
//! daemon parses, validates and refuses; one parser of our protocol is enough).

const std = @import("std");

/// Our clients' requests are < 1 KB; anything near this is not one of them.
pub const max = 8192;

pub const State = union(enum) {
    /// Keep reading.
    incomplete,
    /// The request ends at this many bytes.
    complete: usize,
    /// No request we would forward: oversized, or a Content-Length we can't read.
    bad: []const u8,
};

pub fn judge(bytes: []const u8) State {
    const head_end = (std.mem.indexOf(u8, bytes, "\r\n\r\n") orelse
        return if (bytes.len >= max) .{ .bad = "request headers too large" } else .incomplete) + 4;
    const body_len = contentLength(bytes[0..head_end]) orelse return .{ .bad = "unreadable Content-Length" };
    const total = head_end + body_len;
    if (total > max) return .{ .bad = "request too large" };
    return if (bytes.len >= total) .{ .complete = total } else .incomplete;
}

/// 0 when absent (the daemon then refuses the body it lacks); null when present
/// twice or not a plain decimal, so a request smuggled past one reader is not
/// read differently by the next.
fn contentLength(head: []const u8) ?usize {
    var found: ?usize = null;
    var lines = std.mem.splitSequence(u8, head, "\r\n");
    _ = lines.next(); // request line
    while (lines.next()) |line| {
        const colon = std.mem.indexOfScalar(u8, line, ':') orelse continue;
        if (!std.ascii.eqlIgnoreCase(line[0..colon], "content-length")) continue;
        if (found != null) return null;
        const value = std.mem.trim(u8, line[colon + 1 ..], " \t");
        if (value.len == 0 or value.len > 5) return null;
        for (value) |ch| if (!std.ascii.isDigit(ch)) return null;
        found = std.fmt.parseInt(usize, value, 10) catch return null;
    }
    return found orelse 0;
}

const t = std.testing;

test "a request is complete once its body is" {
    const req = "POST /v1/bind HTTP/1.1\r\nHost: localhost\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
    try t.expectEqual(State{ .complete = req.len }, judge(req));
    for (0..req.len) |n| try t.expectEqual(State.incomplete, judge(req[0..n]));
    // Bytes after it (pipelining) are the daemon's to refuse; the front forwards what it read.
    try t.expectEqual(State{ .complete = req.len }, judge(req ++ "GET /"));
}

test "content-length is read strictly" {
    const no_body = "GET / HTTP/1.1\r\nA: b\r\n\r\n";
    try t.expectEqual(State{ .complete = no_body.len }, judge(no_body));
    const spaced = "POST / HTTP/1.1\r\ncontent-LENGTH:  2 \r\n\r\n{}";
    try t.expectEqual(State{ .complete = spaced.len }, judge(spaced));
    const twice = "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx";
    try t.expect(judge(twice) == .bad);
    try t.expect(judge("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n") == .bad);
    try t.expect(judge("POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n") == .bad);
    try t.expect(judge("POST / HTTP/1.1\r\nContent-Length: 999999\r\n\r\n") == .bad);
}

test "oversized requests are refused, not waited for" {
    var big: [max]u8 = undefined;
    @memset(&big, 'a');
    try t.expect(judge(&big) == .bad);
    try t.expectEqual(State.incomplete, judge(big[0 .. max - 1]));
    const head = "POST / HTTP/1.1\r\nContent-Length: 8190\r\n\r\n";
    try t.expect(judge(head) == .bad);
}
