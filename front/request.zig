//! When a client's bytes hold one whole HTTP/1.1 request: the front forwards a
//! request only once it has all of it, and judges nothing else about it (the
//! daemon parses, validates and refuses; one parser of our protocol is enough).

const std = @import("std");

/// Our clients' requests are < 1 KB; anything near this is not one of them.
pub const max = 8192;

/// What the front answers itself, for bytes it will not forward: the daemon's codes for the same faults.
pub const Refusal = struct {
    status: u16,
    code: []const u8,
    message: []const u8,

    pub fn reason(self: Refusal) []const u8 {
        return switch (self.status) {
            413 => "Payload Too Large",
            431 => "Request Header Fields Too Large",
            503 => "Service Unavailable",
            else => "Bad Request",
        };
    }
};

pub const State = union(enum) {
    /// Keep reading.
    incomplete,
    /// The request ends at this many bytes.
    complete: usize,
    /// Not a request we would forward.
    bad: Refusal,
};

const not_http: Refusal = .{ .status = 400, .code = "BAD_REQUEST", .message = "not an HTTP/1.1 request" };
const bad_length: Refusal = .{ .status = 400, .code = "BAD_REQUEST", .message = "unreadable Content-Length" };
const head_too_large: Refusal = .{ .status = 431, .code = "HEADERS_TOO_LARGE", .message = "request headers too large" };
const too_large: Refusal = .{ .status = 413, .code = "PAYLOAD_TOO_LARGE", .message = "request too large for this socket" };
pub const cut_short: Refusal = .{ .status = 400, .code = "BAD_REQUEST", .message = "the request ended before it was whole" };
pub const busy: Refusal = .{ .status = 503, .code = "DAEMON_BUSY", .message = "the daemon is not reading requests; try again" };

pub fn judge(bytes: []const u8) State {
    const found = std.mem.indexOf(u8, bytes, "\r\n\r\n");
    // Junk is refused as soon as it shows, as the daemon's parser would, rather than waited on until the
    // idle bound: a request line and headers are text.
    for (bytes[0 .. found orelse bytes.len]) |ch| {
        if ((ch < 0x20 and ch != '\t' and ch != '\r' and ch != '\n') or ch == 0x7f) return .{ .bad = not_http };
    }
    const head_end = (found orelse return if (bytes.len >= max) .{ .bad = head_too_large } else .incomplete) + 4;
    const body_len = contentLength(bytes[0..head_end]) orelse return .{ .bad = bad_length };
    const total = head_end + body_len;
    if (total > max) return .{ .bad = too_large };
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
    try t.expectEqual(@as(u16, 431), judge(&big).bad.status);
    try t.expectEqual(State.incomplete, judge(big[0 .. max - 1]));
    const head = "POST / HTTP/1.1\r\nContent-Length: 8190\r\n\r\n";
    try t.expectEqual(@as(u16, 413), judge(head).bad.status);
}

test "junk is refused before its end" {
    try t.expectEqualStrings("BAD_REQUEST", judge("\x16\x03\x01").bad.code);
    try t.expectEqualStrings("not an HTTP/1.1 request", judge("GET / HTTP/1.1\r\nX: a\x01b").bad.message);
    // Text that may still become a request is waited for; a body may hold any bytes.
    try t.expectEqual(State.incomplete, judge("GET / HT"));
    const req = "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n\x00\xff";
    try t.expectEqual(State{ .complete = req.len }, judge(req));
}
