//! The interceptor's half of the bind exchange's contract. The daemon's schemas
//! (src/protocol/schemas.ts) are the definition; neither side restates the
//! other's bytes. This file writes what the interceptor sends, for fixed
//! inputs, into test/fixtures/contract for the TypeScript side to validate
//! (test/contract), and its tests hold this code to those committed files and
//! parse the daemon's real answers committed there with answer.zig's parser.
//!
//! `make contract` rewrites the fixtures: `zig build contract -- DIR` runs
//! `main` below, then test/contract/generate.ts asks a real daemon.

const std = @import("std");
const request_body = @import("request_body.zig");
const decision = @import("decision.zig");
const ipc = @import("ipc.zig");
const answer = @import("answer.zig");
const follow_report = @import("follow_report.zig");

/// Inputs that reach every branch of the encoder: each optional field present
/// and absent, a retry, and strings it must escape, replace or cut.
pub const cases = [_]request_body.Request{
    .{
        .pid = 1234,
        .port = 8000,
        .command = "python3 -m http.server 8000",
        .cwd = "/home/dev/proj",
        .instance_id = "team/api",
    },
    .{
        .pid = 1,
        .port = 3000,
        .command = "node \"server.js\"",
        .reassign = false,
        .taken = &.{ 3001, 3002, 3003 },
    },
    .{
        .pid = 4194304,
        .port = 65535,
        .command = "tab\there \x01 é 🚀 \xff" ++ "x" ** 1100,
        // Over the budget once escaped: the encoder leaves it out.
        .cwd = "/" ++ "\"" ** 600,
        .instance_id = "i" ** 300,
    },
    .{
        .pid = 77,
        .port = 5173,
        .command = "",
        .cwd = "/tmp/\\\\back\\slashes",
    },
    .{
        .pid = 5150,
        .port = 8000,
        .command = "python3 -m http.server",
        .cwd = "/tmp/wt-b/api",
        .project = "/tmp/wt-b",
    },
    .{
        .pid = 4242,
        .port = 5173,
        .command = "node vite.js",
        .cwd = "/tmp/wt-b",
        .name = "web.\"quoted\" é",
    },
};

/// Room for the largest body any case makes, as decide.zig's buffer is.
const body_max = request_body.body_max;

/// One body per line: JSON strings escape every newline, so a line is a body.
pub fn writeRequests(out: anytype) !void {
    for (&cases) |*r| {
        var buf: [body_max]u8 = undefined;
        try out.writeAll(request_body.buildBody(&buf, r) orelse return error.BodyTooLarge);
        try out.writeAll("\n");
    }
}

/// The whole request the interceptor writes to the daemon's Unix socket for the first case.
pub fn writeFramed(out: anytype) !void {
    var body_buf: [body_max]u8 = undefined;
    const body = request_body.buildBody(&body_buf, &cases[0]) orelse return error.BodyTooLarge;
    var req: [ipc.request_max]u8 = undefined;
    try out.writeAll(ipc.frame(&req, null, body) orelse return error.RequestTooLarge);
}

/// The follow report (POST /v1/follows) for fixed inputs: with a project, without, and one too long to send.
pub fn writeFollows(out: anytype) !void {
    const projects = [_]?[]const u8{ "/home/dev/wt-b", null, "/" ++ "p" ** request_body.max_project_json, "/tmp/\"quoted\" é" };
    for (projects, 0..) |p, i| {
        var buf: [request_body.max_project_json + 64]u8 = undefined;
        const port: u16 = @intCast(8000 + i);
        try out.writeAll(follow_report.body(&buf, @intCast(5151 + i), port, port + 2, p) orelse return error.BodyTooLarge);
        try out.writeAll("\n");
    }
}

pub const requests_file = "requests.jsonl";
pub const framed_file = "request.http";
pub const follows_file = "follows.jsonl";

/// `styxy-contract DIR`: writes the three files above into DIR.
pub fn main() !void {
    var arena = std.heap.ArenaAllocator.init(std.heap.page_allocator);
    defer arena.deinit();
    const alloc = arena.allocator();
    const args = try std.process.argsAlloc(alloc);
    if (args.len != 2) {
        std.debug.print("usage: styxy-contract DIR\n", .{});
        std.process.exit(2);
    }
    var dir = try std.fs.cwd().makeOpenPath(args[1], .{});
    defer dir.close();
    inline for (.{ .{ requests_file, writeRequests }, .{ framed_file, writeFramed }, .{ follows_file, writeFollows } }) |file| {
        var text = std.ArrayList(u8).init(alloc);
        try file[1](text.writer());
        try dir.writeFile(.{ .sub_path = file[0], .data = text.items });
    }
}

// ---------------------------------------------------------------- tests
// The fixtures are embedded under these names by build.zig (they live outside
// this module's directory).

const t = std.testing;

fn expectFresh(comptime name: []const u8, comptime write: anytype) !void {
    var text = std.ArrayList(u8).init(t.allocator);
    defer text.deinit();
    try write(text.writer());
    const committed = @embedFile("contract/" ++ name);
    if (!std.mem.eql(u8, committed, text.items)) {
        std.debug.print("test/fixtures/contract/{s} is not what the interceptor sends now: run `make contract` to refresh it\n", .{name});
        try t.expectEqualStrings(committed, text.items);
    }
}

test "contract: requests.jsonl is what the encoder writes for the fixed inputs" {
    try expectFresh(requests_file, writeRequests);
}

test "contract: request.http is what the interceptor frames on the Unix socket" {
    try expectFresh(framed_file, writeFramed);
}

test "contract: follows.jsonl is what the follow report's encoder writes" {
    try expectFresh(follows_file, writeFollows);
}

fn field(obj: std.json.ObjectMap, comptime key: []const u8, comptime tag: std.meta.Tag(std.json.Value)) !@FieldType(std.json.Value, @tagName(tag)) {
    const v = obj.get(key) orelse {
        std.debug.print("the daemon's answer has no \"{s}\"\n", .{key});
        return error.TestUnexpectedResult;
    };
    if (v != tag) {
        std.debug.print("the daemon's answer has \"{s}\" of another type than {s}\n", .{ key, @tagName(tag) });
        return error.TestUnexpectedResult;
    }
    return @field(v, @tagName(tag));
}

/// The daemon's answers, as the daemon wrote them (test/contract/generate.ts).
const answers = .{
    .{ decision.Action.allow, @embedFile("contract/answer-allow.http") },
    .{ decision.Action.remap, @embedFile("contract/answer-remap.http") },
    .{ decision.Action.deny, @embedFile("contract/answer-deny.http") },
};

test "contract: the daemon's real answers parse to what their bodies say" {
    inline for (answers) |a| {
        const raw: []const u8 = a[1];
        const got = switch (answer.parseResponse(raw)) {
            .answer => |d| d,
            .fail => |why| {
                std.debug.print("the interceptor fails open on the daemon's {s} answer: {s}\n", .{ @tagName(a[0]), why });
                return error.TestUnexpectedResult;
            },
        };
        // What the body says, read by a full JSON parser: every field the interceptor reads must be there, with
        // its type, or a renamed field would pass here as its default.
        const body = raw[std.mem.indexOf(u8, raw, "\r\n\r\n").? + 4 ..];
        const parsed = try std.json.parseFromSlice(std.json.Value, t.allocator, body, .{});
        defer parsed.deinit();
        const obj = parsed.value.object;
        try t.expectEqualStrings(@tagName(a[0]), try field(obj, "action", .string));
        try t.expectEqual(a[0], got.action);
        try t.expectEqual(try field(obj, "port", .integer), got.port);
        try t.expectEqual(try field(obj, "repeat", .bool), got.repeat);
    }
}
