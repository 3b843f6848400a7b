//! The daemon's HTTP answer to one bind, read strictly: anything but a
//! well-formed 200 carrying a valid decision is a fail-open, and the program
//! binds what it asked for.

const std = @import("std");
const decision = @import("decision.zig");

pub const Outcome = union(enum) {
    answer: decision.Decision,
    /// Why we are failing open, for the debug line.
    fail: []const u8,
};

pub const response_max = 4096;

const Head = struct {
    status: u16,
    body_start: usize,
    content_length: ?usize,
};

const HeadError = error{ Incomplete, Malformed, Chunked };

fn parseHead(raw: []const u8) HeadError!Head {
    const end = std.mem.indexOf(u8, raw, "\r\n\r\n") orelse return error.Incomplete;
    var lines = std.mem.splitSequence(u8, raw[0..end], "\r\n");
    const status_line = lines.next() orelse return error.Malformed;
    if (!std.mem.startsWith(u8, status_line, "HTTP/1.1 ") and !std.mem.startsWith(u8, status_line, "HTTP/1.0 "))
        return error.Malformed;
    const rest = status_line[9..];
    if (rest.len < 3 or (rest.len > 3 and rest[3] != ' ')) return error.Malformed;
    for (rest[0..3]) |ch| if (!std.ascii.isDigit(ch)) return error.Malformed;
    const status = std.fmt.parseInt(u16, rest[0..3], 10) catch return error.Malformed;

    var content_length: ?usize = null;
    while (lines.next()) |line| {
        const colon = std.mem.indexOfScalar(u8, line, ':') orelse return error.Malformed;
        const name = line[0..colon];
        const value = std.mem.trim(u8, line[colon + 1 ..], " \t");
        if (std.ascii.eqlIgnoreCase(name, "transfer-encoding")) {
            if (!std.ascii.eqlIgnoreCase(value, "identity")) return error.Chunked;
        } else if (std.ascii.eqlIgnoreCase(name, "content-length")) {
            if (value.len == 0 or value.len > 9) return error.Malformed;
            for (value) |ch| if (!std.ascii.isDigit(ch)) return error.Malformed;
            const n = std.fmt.parseInt(usize, value, 10) catch return error.Malformed;
            if (content_length) |prev| if (prev != n) return error.Malformed;
            content_length = n;
        }
    }
    return .{ .status = status, .body_start = end + 4, .content_length = content_length };
}

/// Lets us stop reading as soon as the declared body has arrived instead of
/// waiting for the daemon to close the connection.
pub fn isComplete(raw: []const u8) bool {
    const head = parseHead(raw) catch |e| return e != error.Incomplete;
    const cl = head.content_length orelse return false;
    return raw.len - head.body_start >= cl;
}

/// Any answer other than a well-formed 200 with a valid decision is a fail-open.
/// The daemon's own refusal of the request (any status but 200 and 503).
pub const refused = "daemon answered non-200";

pub fn parseResponse(raw: []const u8) Outcome {
    const head = parseHead(raw) catch |e| return .{ .fail = switch (e) {
        error.Incomplete => "truncated response headers",
        error.Malformed => "malformed response headers",
        error.Chunked => "unsupported transfer-encoding",
    } };
    if (head.status != 200) return .{ .fail = if (head.status == 503) "daemon unavailable (503)" else refused };
    var body = raw[head.body_start..];
    if (head.content_length) |cl| {
        if (body.len < cl) return .{ .fail = "truncated response body" };
        body = body[0..cl];
    }
    const d = decision.parseDecision(body) catch |e| return .{ .fail = switch (e) {
        error.Malformed => "malformed json answer",
        error.UnknownAction => "unknown action",
        error.MissingAction => "answer has no action",
        error.BadPort => "remap with invalid port",
    } };
    return .{ .answer = d };
}

// ---------------------------------------------------------------- tests

const t = std.testing;

fn ok(status_and_headers: []const u8, body: []const u8, buf: []u8) []const u8 {
    return std.fmt.bufPrint(buf, "{s}Content-Length: {d}\r\n\r\n{s}", .{ status_and_headers, body.len, body }) catch unreachable;
}

fn expectAnswer(raw: []const u8, want: decision.Decision) !void {
    switch (parseResponse(raw)) {
        .answer => |d| try t.expectEqual(want, d),
        .fail => |why| {
            std.debug.print("failed open: {s}\n", .{why});
            return error.TestUnexpectedResult;
        },
    }
}

fn expectFail(raw: []const u8) !void {
    switch (parseResponse(raw)) {
        .answer => |d| {
            std.debug.print("unexpected answer {any} for {s}\n", .{ d, raw });
            return error.TestUnexpectedResult;
        },
        .fail => {},
    }
}

test "valid responses" {
    var buf: [1024]u8 = undefined;
    try expectAnswer(ok("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n",
        \\{"action":"remap","port":8001,"requestedPort":8000,"service":"api","leaseId":"l_x","repeat":false}
    , &buf), .{ .action = .remap, .port = 8001 });
    try expectAnswer(ok("HTTP/1.0 200 OK\r\nconnection: close\r\n",
        \\{"leaseId":"l\"x","repeat":true,"action":"remap","port":9000}
    , &buf), .{ .action = .remap, .port = 9000, .repeat = true });
    // No Content-Length: the body runs to EOF.
    try expectAnswer("HTTP/1.1 200 OK\r\n\r\n{\"action\":\"allow\"}", .{ .action = .allow });
    try expectAnswer("HTTP/1.1 200\r\ncontent-length: 17\r\n\r\n{\"action\":\"deny\"}", .{ .action = .deny });
    try expectAnswer("HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n{\"action\":\"allow\"}", .{ .action = .allow });
}

test "responses that must fail open" {
    var buf: [1024]u8 = undefined;
    const bad = [_][]const u8{
        "",
        "HTTP/1.1 200 OK\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n",
        ok("HTTP/1.1 500 Internal Server Error\r\n", "{\"action\":\"allow\"}", &buf),
        "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 204 No Content\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n{\"action\":\"allow\"}",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n12\r\n{\"action\":\"allow\"}\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}",
        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n{}",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n{\"action\":\"allow\"}",
        "HTTP/2 200\r\n\r\n{\"action\":\"allow\"}",
        "HTTP/1.1 2000 OK\r\n\r\n{\"action\":\"allow\"}",
        "HTTP/1.1 20x OK\r\n\r\n{\"action\":\"allow\"}",
        "http/1.1 200 OK\r\n\r\n{\"action\":\"allow\"}",
        "HTTP/1.1 200 OK\n\n{\"action\":\"allow\"}",
        ok("HTTP/1.1 200 OK\r\n", "{\"action\":\"remap\",\"port\":-5}", &buf),
        ok("HTTP/1.1 200 OK\r\n", "{\"action\":\"remap\",\"port\":70000}", &buf),
        ok("HTTP/1.1 200 OK\r\n", "{\"action\":\"remap\"}", &buf),
        ok("HTTP/1.1 200 OK\r\n", "{\"action\":\"nope\"}", &buf),
        ok("HTTP/1.1 200 OK\r\n", "<html>oops</html>", &buf),
        ok("HTTP/1.1 200 OK\r\n", "{\"action\":\"allow\",\"x\":\"unterminated}", &buf),
    };
    for (bad) |raw| try expectFail(raw);
}

test "completion detection" {
    try t.expect(!isComplete("HTTP/1.1 200 OK\r\nContent-Le"));
    try t.expect(!isComplete("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n{}"));
    try t.expect(isComplete("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"));
    try t.expect(!isComplete("HTTP/1.1 200 OK\r\n\r\n{}")); // no length: wait for EOF
    try t.expect(isComplete("garbage\r\n\r\n")); // hopeless: stop reading early
}

test "fuzz: generated garbage never crashes and always decides or fails open" {
    var prng = std.Random.DefaultPrng.init(0x5717_5717);
    const rnd = prng.random();
    const fragments = [_][]const u8{
        "HTTP/1.1 200 OK\r\n",            "HTTP/1.0 200 OK\r\n", "HTTP/1.1 404 x\r\n", "Content-Length: ",
        "Transfer-Encoding: chunked\r\n", "\r\n",                "\r\n\r\n",           "{",
        "}",                              "[",                   "]",                  ",",
        ":",                              "\"action\"",          "\"allow\"",          "\"remap\"",
        "\"deny\"",                       "\"port\"",            "\"repeat\"",         "true",
        "false",                          "null",                "8001",               "-1",
        "65536",                          "\"",                  "\\",                 "\\\"",
        "\\u00",                          "0",                   "17",                 " ",
        "\x00",                           "\xff",                "é",
    };
    var buf: [response_max]u8 = undefined;
    var decided: usize = 0;
    for (0..20_000) |_| {
        var b = @import("request_body.zig").Buf.init(&buf);
        // Mix structured fragments with raw random bytes.
        const parts = rnd.uintLessThan(usize, 40);
        for (0..parts) |_| {
            if (rnd.boolean()) {
                b.append(fragments[rnd.uintLessThan(usize, fragments.len)]);
            } else {
                var junk: [8]u8 = undefined;
                rnd.bytes(&junk);
                b.append(junk[0..rnd.uintLessThan(usize, junk.len + 1)]);
            }
        }
        const raw = buf[0..b.len];
        switch (parseResponse(raw)) {
            .answer => |d| {
                decided += 1;
                if (d.action == .remap) try t.expect(d.port != 0);
            },
            .fail => |why| try t.expect(why.len > 0),
        }
        _ = isComplete(raw);
        _ = decision.parseDecision(raw) catch {};
    }
    // Also mutate a valid response byte by byte.
    var good_buf: [256]u8 = undefined;
    const good = ok("HTTP/1.1 200 OK\r\n", "{\"action\":\"remap\",\"port\":8001,\"repeat\":false,\"s\":\"a\\\"b\"}", &good_buf);
    for (0..20_000) |_| {
        var m: [256]u8 = undefined;
        @memcpy(m[0..good.len], good);
        const flips = 1 + rnd.uintLessThan(usize, 3);
        for (0..flips) |_| m[rnd.uintLessThan(usize, good.len)] = rnd.int(u8);
        const cut = good.len - rnd.uintLessThan(usize, 4);
        switch (parseResponse(m[0..cut])) {
            .answer => |d| if (d.action == .remap) try t.expect(d.port != 0),
            .fail => {},
        }
    }
    try t.expect(decided < 20_000);
}
