//! Generated daemon answers, end to end: a stand-in daemon on a real Unix
//! socket answers each bind with a truncated, oversized, garbled, silent or
//! hung-up reply, and the real bind path (decide.run) must leave the program
//! with a working bind: the port it asked for whenever the answer was not a
//! valid decision, else the decided one. Run by `zig build test`; the seed
//! is fixed so a failure replays.

const std = @import("std");
const answer = @import("answer.zig");
const decide = @import("decide.zig");
const sockaddr = @import("sockaddr.zig");
const testing = @import("testing.zig");

const t = std.testing;
const posix = std.posix;
extern "c" fn setenv(name: [*:0]const u8, value: [*:0]const u8, overwrite: c_int) c_int;
extern "c" fn unsetenv(name: [*:0]const u8) c_int;

pub const cases = 400;

const Kind = enum { valid, truncated, oversized, garbled, wrong_status, hang_up, silent };

fn reply(buf: []u8, kind: Kind, port: u16, rnd: std.Random) []const u8 {
    var body_buf: [128]u8 = undefined;
    const body = std.fmt.bufPrint(&body_buf, "{{\"action\":\"remap\",\"port\":{d},\"requestedPort\":1,\"leaseId\":\"l-x\",\"repeat\":false}}", .{port}) catch unreachable;
    const status = if (kind == .wrong_status) ([_][]const u8{ "500 Internal", "404 Not Found", "503 x", "507 Full", "301 Moved" })[rnd.uintLessThan(usize, 5)] else "200 OK";
    const full = std.fmt.bufPrint(buf, "HTTP/1.1 {s}\r\nContent-Type: application/json\r\nContent-Length: {d}\r\n\r\n{s}", .{ status, body.len, body }) catch unreachable;
    switch (kind) {
        .valid, .wrong_status => return full,
        .truncated => return full[0..rnd.uintLessThan(usize, full.len)],
        .garbled => {
            for (0..1 + rnd.uintLessThan(usize, 4)) |_| full[rnd.uintLessThan(usize, full.len)] = rnd.int(u8);
            return full;
        },
        .oversized => {
            // Larger than the interceptor's fixed buffer, declared as such.
            const big = std.fmt.bufPrint(buf, "HTTP/1.1 200 OK\r\nContent-Length: 6000\r\n\r\n{{\"action\":\"remap\",\"port\":{d},\"pad\":\"", .{port}) catch unreachable;
            var len = big.len;
            while (len < 6000) : (len += 1) buf[len] = 'x';
            return buf[0..len];
        },
        .hang_up, .silent => return "",
    }
}

test "fuzz: generated daemon answers leave the program with a working bind (its own port unless the answer is a valid decision)" {
    var tmp = t.tmpDir(.{});
    defer tmp.cleanup();
    var pbuf: [std.fs.max_path_bytes]u8 = undefined;
    const dir = try tmp.dir.realpath(".", &pbuf);
    var sock_buf: [300]u8 = undefined;
    const sock = try std.fmt.bufPrintZ(&sock_buf, "{s}/daemon.sock", .{dir});
    const lfd = try testing.listenUnix(sock);
    defer posix.close(lfd);
    try t.expectEqual(@as(c_int, 0), setenv("STYXY_SOCKET", sock.ptr, 1));
    defer _ = unsetenv("STYXY_SOCKET");

    var prng = std.Random.DefaultPrng.init(0x0057_1775);
    const rnd = prng.random();
    var counts = std.enums.EnumArray(Kind, usize).initFill(0);
    var moved: usize = 0;
    var reply_buf: [8192]u8 = undefined;
    for (0..cases) |_| {
        // Hung connections cost the whole deadline each: keep them a small share.
        const kind: Kind = if (rnd.uintLessThan(u8, 100) < 4) .silent else @enumFromInt(rnd.uintLessThan(u8, 6));
        counts.getPtr(kind).* += 1;
        const asked = try testing.freePort();
        const offered = try testing.freePort();
        const raw = reply(&reply_buf, kind, offered, rnd);
        // What the answer means, by the parser's own verdict: only a complete valid decision may move the bind.
        const verdict = if (raw.len == 0 or raw.len >= answer.response_max) null else switch (answer.parseResponse(raw)) {
            .answer => |d| d,
            .fail => null,
        };
        // Hold a silent connection open past the client's deadline; a hang-up closes at once.
        const replies = [_][]const u8{raw};
        var daemon = testing.StandIn{ .fd = lfd, .replies = &replies, .hold_ms = if (kind == .silent) 80 else 0 };
        const th = try std.Thread.spawn(.{}, testing.StandIn.serve, .{&daemon});

        const fd = try posix.socket(posix.AF.INET, posix.SOCK.STREAM | posix.SOCK.CLOEXEC, 0);
        defer posix.close(fd);
        const want = try std.net.Address.parseIp4("127.0.0.1", asked);
        const bytes = std.mem.asBytes(&want.in.sa);
        const b: decide.Bind = .{ .fd = fd, .original = bytes, .parsed = sockaddr.parse(bytes).?, .pid = std.c.getpid(), .command = "fuzz", .cwd = null };
        const res = decide.run(&b, &.{ .notify = .off, .daemon_host = null, .timeout_ms = 50 });
        th.join();

        try t.expect(res.ok());
        var got: posix.sockaddr.in = undefined;
        var len: posix.socklen_t = @sizeOf(@TypeOf(got));
        try posix.getsockname(fd, @ptrCast(&got), &len);
        const bound = std.mem.bigToNative(u16, got.port);
        const expected: u16 = if (verdict) |d| (if (d.action == .remap) d.port else asked) else asked;
        if (bound != expected) {
            std.debug.print("kind {s}: bound {d}, expected {d}; reply: {s}\n", .{ @tagName(kind), bound, expected, raw });
            return error.TestUnexpectedResult;
        }
        if (bound != asked) moved += 1;
    }
    // Every kind was exercised, and valid answers did move binds (the harness can tell the difference).
    for (std.enums.values(Kind)) |k| try t.expect(counts.get(k) > 0);
    try t.expect(moved >= counts.get(.valid));
}
