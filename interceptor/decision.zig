//! The daemon's answer, read with no allocator: a fixed-size scan of one JSON
//! object, where every malformed input is a fail-open (the request the
//! interceptor writes: request_body.zig).

const std = @import("std");

pub const Action = enum { allow, remap, deny };

pub const Decision = struct {
    action: Action,
    /// Only meaningful for remap; validated to be 1..65535 there.
    port: u16 = 0,
    repeat: bool = false,
};

pub const ParseError = error{
    Malformed,
    UnknownAction,
    MissingAction,
    BadPort,
};

/// Extracts action/port/repeat from the top-level object, in any order,
/// skipping every other field whatever its type.
pub fn parseDecision(body: []const u8) ParseError!Decision {
    var sc = Scanner{ .s = body };
    var action: ?Action = null;
    var action_unknown = false;
    var port: ?u16 = null;
    var port_bad = false;
    var repeat = false;

    sc.skipWs();
    try sc.expect('{');
    sc.skipWs();
    if (sc.peek() == '}') {
        sc.i += 1;
    } else while (true) {
        sc.skipWs();
        const key = try sc.string();
        sc.skipWs();
        try sc.expect(':');
        sc.skipWs();
        if (std.mem.eql(u8, key, "action")) {
            if (sc.peek() == '"') {
                const v = try sc.string();
                action = std.meta.stringToEnum(Action, v);
                action_unknown = action == null;
            } else {
                try sc.skipValue();
                action = null;
                action_unknown = true;
            }
        } else if (std.mem.eql(u8, key, "port")) {
            const tok = try sc.scalar();
            port = parsePort(tok);
            port_bad = port == null and !std.mem.eql(u8, tok, "null");
        } else if (std.mem.eql(u8, key, "repeat")) {
            const tok = try sc.scalar();
            repeat = std.mem.eql(u8, tok, "true");
        } else {
            try sc.skipValue();
        }
        sc.skipWs();
        const ch = sc.next() orelse return error.Malformed;
        if (ch == '}') break;
        if (ch != ',') return error.Malformed;
    }
    sc.skipWs();
    if (sc.i != sc.s.len) return error.Malformed;

    if (action_unknown) return error.UnknownAction;
    const a = action orelse return error.MissingAction;
    if (a == .remap) {
        if (port_bad) return error.BadPort;
        const p = port orelse return error.BadPort;
        if (p == 0) return error.BadPort;
        return .{ .action = a, .port = p, .repeat = repeat };
    }
    return .{ .action = a, .port = port orelse 0, .repeat = repeat };
}

/// Plain decimal integer within u16, no sign, fraction or exponent.
fn parsePort(tok: []const u8) ?u16 {
    if (tok.len == 0 or tok.len > 5) return null;
    var v: u32 = 0;
    for (tok) |ch| {
        if (ch < '0' or ch > '9') return null;
        v = v * 10 + (ch - '0');
    }
    if (v > 65535) return null;
    return @intCast(v);
}

/// Lenient-but-safe scanner: it validates strings precisely (so a quote
/// inside an escaped string never ends a value early) and tracks nesting with
/// a counter (no recursion, no depth limit to blow the stack).
const Scanner = struct {
    s: []const u8,
    i: usize = 0,

    fn peek(self: *const Scanner) ?u8 {
        return if (self.i < self.s.len) self.s[self.i] else null;
    }

    fn next(self: *Scanner) ?u8 {
        const ch = self.peek() orelse return null;
        self.i += 1;
        return ch;
    }

    fn skipWs(self: *Scanner) void {
        while (self.peek()) |ch| switch (ch) {
            ' ', '\t', '\r', '\n' => self.i += 1,
            else => return,
        };
    }

    fn expect(self: *Scanner, want: u8) ParseError!void {
        if (self.next() != want) return error.Malformed;
    }

    /// Returns the raw (still escaped) contents between the quotes.
    fn string(self: *Scanner) ParseError![]const u8 {
        try self.expect('"');
        const start = self.i;
        while (true) {
            const ch = self.next() orelse return error.Malformed;
            switch (ch) {
                '"' => return self.s[start .. self.i - 1],
                '\\' => {
                    const e = self.next() orelse return error.Malformed;
                    switch (e) {
                        '"', '\\', '/', 'b', 'f', 'n', 'r', 't' => {},
                        'u' => for (0..4) |_| {
                            const h = self.next() orelse return error.Malformed;
                            if (!std.ascii.isHex(h)) return error.Malformed;
                        },
                        else => return error.Malformed,
                    }
                },
                0x00...0x1f => return error.Malformed,
                else => {},
            }
        }
    }

    /// A number or literal token; strings/containers are an error here.
    fn scalar(self: *Scanner) ParseError![]const u8 {
        const start = self.i;
        while (self.peek()) |ch| switch (ch) {
            'a'...'z', 'A'...'Z', '0'...'9', '+', '-', '.' => self.i += 1,
            else => break,
        };
        const tok = self.s[start..self.i];
        if (tok.len == 0) return error.Malformed;
        return tok;
    }

    fn skipValue(self: *Scanner) ParseError!void {
        const first = self.peek() orelse return error.Malformed;
        switch (first) {
            '"' => _ = try self.string(),
            '{', '[' => {
                var depth: usize = 0;
                while (true) {
                    const ch = self.peek() orelse return error.Malformed;
                    switch (ch) {
                        '"' => {
                            _ = try self.string();
                            continue;
                        },
                        '{', '[' => depth += 1,
                        '}', ']' => {
                            depth -= 1;
                            if (depth == 0) {
                                self.i += 1;
                                return;
                            }
                        },
                        else => {},
                    }
                    self.i += 1;
                }
            },
            else => _ = try self.scalar(),
        }
    }
};

// ---------------------------------------------------------------- tests

const t = std.testing;

fn expectDecision(body: []const u8, want: Decision) !void {
    const got = try parseDecision(body);
    try t.expectEqual(want, got);
}

test "decision: valid, reordered, extra fields, escaped strings" {
    try expectDecision(
        \\{"action":"remap","port":8001,"requestedPort":8000,"service":"api","leaseId":"l_x","repeat":false}
    , .{ .action = .remap, .port = 8001 });
    try expectDecision(
        \\{"repeat":true,"leaseId":"l_x","port":8001,"action":"remap"}
    , .{ .action = .remap, .port = 8001, .repeat = true });
    try expectDecision(
        \\ { "action" : "allow" , "port" : 8000 }
    , .{ .action = .allow, .port = 8000 });
    try expectDecision(
        \\{"action":"deny","reason":"held by \"other\" \\ {\"action\":\"remap\"}","port":null}
    , .{ .action = .deny });
    try expectDecision(
        \\{"meta":{"action":"remap","port":1,"nested":[1,{"x":"]}"}],"e":{}},"list":[],"action":"allow","n":-1.5e3,"z":null,"u":"\u00e9"}
    , .{ .action = .allow });
    try expectDecision("{\"action\":\"allow\"}\r\n", .{ .action = .allow });
    try expectDecision(
        \\{"action":"allow","port":3000,"leaseId":"l-3000-9f2c4a1b","repeat":false,"newLease":true}
    , .{ .action = .allow, .port = 3000 });
    try expectDecision(
        \\{"newLease":false,"action":"allow","port":3000,"repeat":false}
    , .{ .action = .allow, .port = 3000 });
}

test "decision: everything malformed fails" {
    const bad = [_][]const u8{
        "",
        "{",
        "{}",
        "[]",
        "null",
        "{\"action\":\"remap\"}",
        "{\"action\":\"remap\",\"port\":-1}",
        "{\"action\":\"remap\",\"port\":0}",
        "{\"action\":\"remap\",\"port\":65536}",
        "{\"action\":\"remap\",\"port\":8001.5}",
        "{\"action\":\"remap\",\"port\":1e3}",
        "{\"action\":\"remap\",\"port\":\"8001\"}",
        "{\"action\":\"remap\",\"port\":99999999999999999999}",
        "{\"action\":\"explode\"}",
        "{\"action\":\"Allow\"}",
        "{\"action\":\"\\u0061llow\"}",
        "{\"action\":1}",
        "{\"action\":\"allow\"",
        "{\"action\":\"allow\",}",
        "{\"action\":\"allow\"} trailing",
        "{\"action\":\"all",
        "{\"x\":\"\\q\",\"action\":\"allow\"}",
        "{\"x\":[1,2,\"action\":\"allow\"}",
        "{\"action\" \"allow\"}",
        "{action:\"allow\"}",
    };
    for (bad) |b| {
        if (parseDecision(b)) |d| {
            std.debug.print("unexpectedly parsed: {s} -> {any}\n", .{ b, d });
            return error.TestUnexpectedResult;
        } else |_| {}
    }
}
