//! The request body the interceptor writes, with no allocator: the bind path
//! may run in any thread of any program, so everything lives in
//! caller-provided fixed buffers (the answer it reads: decision.zig).

const std = @import("std");

/// Append-only writer over a fixed buffer. Overflow is sticky so a long chain
/// of appends can be checked once at the end.
pub const Buf = struct {
    data: []u8,
    len: usize = 0,
    overflow: bool = false,

    pub fn init(data: []u8) Buf {
        return .{ .data = data };
    }

    pub fn remaining(self: *const Buf) usize {
        return self.data.len - self.len;
    }

    pub fn append(self: *Buf, s: []const u8) void {
        if (self.overflow or s.len > self.remaining()) {
            self.overflow = true;
            return;
        }
        @memcpy(self.data[self.len..][0..s.len], s);
        self.len += s.len;
    }

    pub fn appendInt(self: *Buf, v: u64) void {
        var tmp: [20]u8 = undefined;
        const s = std.fmt.bufPrint(&tmp, "{d}", .{v}) catch unreachable;
        self.append(s);
    }

    pub fn written(self: *const Buf) ?[]const u8 {
        return if (self.overflow) null else self.data[0..self.len];
    }
};

/// Appends `s` as a quoted JSON string, keeping the escaped content within
/// `max_content` bytes. Truncation happens between whole escapes and whole
/// UTF-8 sequences, so the output is always valid JSON. Bytes that aren't
/// valid UTF-8 (argv can hold anything) become U+FFFD instead of corrupting
/// the document. Returns false if the input had to be truncated.
pub fn appendString(out: *Buf, s: []const u8, max_content: usize) bool {
    out.append("\"");
    var used: usize = 0;
    var i: usize = 0;
    var complete = true;
    while (i < s.len) {
        var esc: [6]u8 = undefined;
        var piece: []const u8 = undefined;
        var consumed: usize = 1;
        const ch = s[i];
        switch (ch) {
            '"' => piece = "\\\"",
            '\\' => piece = "\\\\",
            '\n' => piece = "\\n",
            '\r' => piece = "\\r",
            '\t' => piece = "\\t",
            0x08 => piece = "\\b",
            0x0c => piece = "\\f",
            0x00...0x07, 0x0b, 0x0e...0x1f => {
                const hex = "0123456789abcdef";
                esc = .{ '\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 0xf] };
                piece = &esc;
            },
            0x20...0x21, 0x23...0x5b, 0x5d...0x7f => piece = s[i .. i + 1],
            0x80...0xff => {
                const n = utf8Valid(s[i..]);
                if (n == 0) {
                    piece = "\\ufffd";
                } else {
                    piece = s[i .. i + n];
                    consumed = n;
                }
            },
        }
        if (used + piece.len > max_content) {
            complete = false;
            break;
        }
        out.append(piece);
        used += piece.len;
        i += consumed;
    }
    out.append("\"");
    return complete;
}

/// Length of the valid UTF-8 sequence at the start of `s`, or 0.
fn utf8Valid(s: []const u8) usize {
    const n = std.unicode.utf8ByteSequenceLength(s[0]) catch return 0;
    if (n > s.len) return 0;
    _ = std.unicode.utf8Decode(s[0..n]) catch return 0;
    return n;
}

/// Everything the daemon needs to decide about one bind.
pub const Request = struct {
    pid: i64,
    port: u16,
    command: []const u8,
    cwd: ?[]const u8 = null,
    instance_id: ?[]const u8 = null,
    /// STYXY_PROJECT made absolute; absent, the daemon finds the project from `cwd`.
    project: ?[]const u8 = null,
    /// STYXY_NAME; the daemon makes a host name of whatever it is given.
    name: ?[]const u8 = null,
    reassign: bool = true,
    taken: []const u16 = &.{},
};

pub const max_command_json = 1024;
pub const max_cwd_json = 1024;
pub const max_instance_json = 256;
pub const max_project_json = 1024;
/// A DNS label is 63 characters at most: a longer name is cut (the daemon cuts it anyway).
pub const max_name_json = 128;
/// Room for the largest body: every field at its budget (decide.zig's buffer, the contract's), framed within ipc.request_max.
pub const body_max = 3728;

/// Returns null if the body doesn't fit; the caller then fails open.
pub fn buildBody(buf: []u8, r: *const Request) ?[]const u8 {
    var b = Buf.init(buf);
    b.append("{\"pid\":");
    b.appendInt(@intCast(@max(r.pid, 0)));
    b.append(",\"port\":");
    b.appendInt(r.port);
    b.append(",\"command\":");
    _ = appendString(&b, r.command, max_command_json);
    if (r.cwd) |cwd| {
        // A truncated directory would name the wrong project; omit it instead.
        var probe = b;
        probe.append(",\"cwd\":");
        if (appendString(&probe, cwd, max_cwd_json)) b = probe;
    }
    if (r.instance_id) |id| {
        b.append(",\"instanceId\":");
        _ = appendString(&b, id, max_instance_json);
    }
    if (r.project) |p| {
        // Cut short it would name another project: omit it, and the daemon falls back on cwd.
        var probe = b;
        probe.append(",\"project\":");
        if (appendString(&probe, p, max_project_json)) b = probe;
    }
    if (r.name) |n| {
        // Cut short it is still a name (the daemon sanitizes and shortens names itself).
        b.append(",\"name\":");
        _ = appendString(&b, n, max_name_json);
    }
    b.append(if (r.reassign) ",\"reassign\":true" else ",\"reassign\":false");
    if (r.taken.len > 0) {
        b.append(",\"taken\":[");
        for (r.taken, 0..) |p, idx| {
            if (idx > 0) b.append(",");
            b.appendInt(p);
        }
        b.append("]");
    }
    b.append("}");
    return b.written();
}

// ---------------------------------------------------------------- tests

const t = std.testing;

fn escaped(s: []const u8, max: usize, buf: []u8) []const u8 {
    var b = Buf.init(buf);
    _ = appendString(&b, s, max);
    return b.written().?;
}

test "escaping quotes, backslashes and control bytes" {
    var buf: [256]u8 = undefined;
    try t.expectEqualStrings("\"a\\\"b\\\\c\"", escaped("a\"b\\c", 100, &buf));
    try t.expectEqualStrings("\"\\n\\r\\t\\b\\f\\u0000\\u001f\\u000b\"", escaped("\n\r\t\x08\x0c\x00\x1f\x0b", 100, &buf));
    try t.expectEqualStrings("\"/ ~\x7f\"", escaped("/ ~\x7f", 100, &buf));
}

test "utf-8 passes through, invalid bytes become U+FFFD" {
    var buf: [256]u8 = undefined;
    try t.expectEqualStrings("\"héllo ✓ 🚀\"", escaped("héllo ✓ 🚀", 100, &buf));
    try t.expectEqualStrings("\"a\\ufffdb\"", escaped("a\xffb", 100, &buf));
    // A cut-off sequence: each stray byte is replaced on its own.
    try t.expectEqualStrings("\"\\ufffd\\ufffd\"", escaped("\xe2\x9c", 100, &buf));
    try t.expectEqualStrings("\"\\ufffd\\ufffd\"", escaped("\xc0\xaf", 100, &buf)); // overlong
    try t.expectEqualStrings("\"\\ufffd\\ufffd\\ufffd\"", escaped("\xed\xa0\x80", 100, &buf)); // surrogate
}

test "truncation never splits an escape or a UTF-8 sequence" {
    var buf: [256]u8 = undefined;
    try t.expectEqualStrings("\"ab\"", escaped("ab\"cd", 3, &buf));
    try t.expectEqualStrings("\"ab\\\"\"", escaped("ab\"cd", 4, &buf));
    try t.expectEqualStrings("\"a\"", escaped("a\x01", 6, &buf));
    try t.expectEqualStrings("\"a\\u0001\"", escaped("a\x01", 7, &buf));
    try t.expectEqualStrings("\"a\"", escaped("a🚀", 4, &buf));
    try t.expectEqualStrings("\"a🚀\"", escaped("a🚀", 5, &buf));
    // Every truncation point of a nasty string still yields parseable JSON.
    const nasty = "x\"\\\n\x01é🚀\xff\"end";
    for (0..40) |max| {
        const out = escaped(nasty, max, &buf);
        try t.expect(out.len <= max + 2);
        var arena: [4096]u8 = undefined;
        var fba = std.heap.FixedBufferAllocator.init(&arena);
        const v = try std.json.parseFromSliceLeaky([]const u8, fba.allocator(), out, .{});
        try t.expect(std.unicode.utf8ValidateSlice(v));
    }
}

test "buffer overflow is reported, not truncated silently" {
    var small: [5]u8 = undefined;
    var b = Buf.init(&small);
    b.append("abc");
    b.append("def");
    try t.expect(b.written() == null);
}

test "request body, first ask" {
    var buf: [2048]u8 = undefined;
    const body = buildBody(&buf, &.{
        .pid = 1234,
        .port = 8000,
        .command = "python3 -m http.server 8000",
        .cwd = "/home/x/proj",
        .instance_id = "abc",
    }).?;
    try t.expectEqualStrings(
        \\{"pid":1234,"port":8000,"command":"python3 -m http.server 8000","cwd":"/home/x/proj","instanceId":"abc","reassign":true}
    , body);
}

test "request body with a forced project; one too long is omitted" {
    var buf: [body_max]u8 = undefined;
    const body = buildBody(&buf, &.{ .pid = 9, .port = 8000, .command = "x", .cwd = "/w/b/src", .project = "/w/b" }).?;
    try t.expectEqualStrings(
        \\{"pid":9,"port":8000,"command":"x","cwd":"/w/b/src","project":"/w/b","reassign":true}
    , body);
    const long = "/" ++ "p" ** max_project_json;
    const without = buildBody(&buf, &.{ .pid = 9, .port = 8000, .command = "x", .project = long }).?;
    try t.expect(std.mem.indexOf(u8, without, "project") == null);
    // Every field at its budget still fits.
    const full = buildBody(&buf, &.{
        .pid = 4194304,
        .port = 65535,
        .command = "\"" ** 600,
        .cwd = "/" ++ "c" ** (max_cwd_json - 1),
        .instance_id = "i" ** max_instance_json,
        .project = "/" ++ "p" ** (max_project_json - 1),
        .name = "\"" ** max_name_json,
        .taken = &.{ 65535, 65534, 65533 },
    });
    try t.expect(full != null);
    var framed: [@import("ipc.zig").request_max]u8 = undefined;
    try t.expect(@import("ipc.zig").frame(&framed, .{ .token = "f" ** 64, .addr = .{ 127, 0, 0, 1 }, .port = 65535 }, full.?) != null);
}

test "request body with a name (STYXY_NAME)" {
    var buf: [body_max]u8 = undefined;
    const body = buildBody(&buf, &.{ .pid = 9, .port = 5173, .command = "vite", .name = "web" }).?;
    try t.expectEqualStrings(
        \\{"pid":9,"port":5173,"command":"vite","name":"web","reassign":true}
    , body);
}

test "request body, retry with taken ports and optional fields omitted" {
    var buf: [2048]u8 = undefined;
    const body = buildBody(&buf, &.{
        .pid = 1,
        .port = 3000,
        .command = "node \"server.js\"",
        .reassign = false,
        .taken = &.{ 3001, 3002 },
    }).?;
    try t.expectEqualStrings(
        \\{"pid":1,"port":3000,"command":"node \"server.js\"","reassign":false,"taken":[3001,3002]}
    , body);
}

test "request body with hostile strings is valid JSON; long cwd omitted; too small buffer fails" {
    var buf: [4096]u8 = undefined;
    const long_cwd = "/" ++ "\"" ** 600; // 1200 bytes escaped: over the cwd budget
    const body = buildBody(&buf, &.{
        .pid = 42,
        .port = 8080,
        .command = "\x01" ** 600,
        .cwd = long_cwd,
    }).?;
    try t.expect(std.mem.indexOf(u8, body, "\"cwd\"") == null);
    var arena: [16384]u8 = undefined;
    var fba = std.heap.FixedBufferAllocator.init(&arena);
    const parsed = try std.json.parseFromSliceLeaky(std.json.Value, fba.allocator(), body, .{});
    try t.expectEqual(@as(i64, 8080), parsed.object.get("port").?.integer);
    try t.expect(parsed.object.get("command").?.string.len <= max_command_json / 6);

    var tiny: [40]u8 = undefined;
    try t.expect(buildBody(&tiny, &.{ .pid = 1, .port = 1, .command = "x" }) == null);
}
