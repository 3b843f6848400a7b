//! The interceptor's settings, from the STYXY_* environment variables.
//!
//! Re-read on every hooked bind instead of cached: caching would need global
//! mutable state, and getenv is cheap next to a socket round trip.

const std = @import("std");
const c = std.c;

/// Indirection so tests can supply a fake environment.
pub const Lookup = *const fn (name: [:0]const u8) ?[]const u8;

pub fn processEnv(name: [:0]const u8) ?[]const u8 {
    const v = c.getenv(name.ptr) orelse return null;
    return std.mem.span(v);
}

pub const Notify = enum { stderr, stdout, off };

pub const Config = struct {
    disabled: bool = false,
    min_port: u16 = 1024,
    timeout_ms: u32 = 300,
    reassign: bool = true,
    debug: bool = false,
    notify: Notify = .stderr,
    daemon_port: u16 = 9876,
    /// Null when STYXY_DAEMON_HOST is not a numeric loopback address: the
    /// token must never leave the machine, so TCP is skipped altogether.
    daemon_host: ?[4]u8 = .{ 127, 0, 0, 1 },
    instance_id: ?[]const u8 = null,
    /// STYXY_NAME (`styxy run --name`): the name the daemon gives this program's servers.
    name: ?[]const u8 = null,
};

/// An upper bound keeps a typo like STYXY_TIMEOUT_MS=300000 from hanging a
/// program's startup for minutes.
pub const max_timeout_ms: u32 = 10_000;

pub fn load(get: Lookup) Config {
    var cfg: Config = .{};
    cfg.disabled = isOne(get("STYXY_DISABLE"));
    if (cfg.disabled) return cfg;
    cfg.debug = isOne(get("STYXY_DEBUG"));
    cfg.reassign = !isOne(get("STYXY_DISABLE_REASSIGN"));
    if (get("STYXY_MIN_PORT")) |v| {
        if (std.fmt.parseInt(u16, v, 10)) |p| cfg.min_port = p else |_| {}
    }
    if (get("STYXY_TIMEOUT_MS")) |v| {
        if (std.fmt.parseInt(u32, v, 10)) |ms| cfg.timeout_ms = @min(ms, max_timeout_ms) else |_| {}
    }
    if (get("STYXY_NOTIFY")) |v| {
        if (std.mem.eql(u8, v, "stdout")) cfg.notify = .stdout;
        if (std.mem.eql(u8, v, "off")) cfg.notify = .off;
    }
    if (get("STYXY_DAEMON_PORT")) |v| {
        if (std.fmt.parseInt(u16, v, 10)) |p| {
            if (p != 0) cfg.daemon_port = p;
        } else |_| {}
    }
    if (nonEmpty(get("STYXY_DAEMON_HOST"))) |v| cfg.daemon_host = parseLoopback(v);
    cfg.instance_id = nonEmpty(get("STYXY_INSTANCE_ID"));
    cfg.name = nonEmpty(get("STYXY_NAME"));
    return cfg;
}

fn isOne(v: ?[]const u8) bool {
    return if (v) |s| std.mem.eql(u8, s, "1") else false;
}

/// XDG treats an empty variable as unset; so do we for every path input.
pub fn nonEmpty(v: ?[]const u8) ?[]const u8 {
    const s = v orelse return null;
    return if (s.len == 0) null else s;
}

fn parseLoopback(s: []const u8) ?[4]u8 {
    const a = std.net.Ip4Address.parse(s, 0) catch return null;
    const bytes: [4]u8 = @bitCast(a.sa.addr);
    return if (bytes[0] == 127) bytes else null;
}

// ---------------------------------------------------------------- tests

const t = std.testing;
const FakeEnv = @import("testing.zig").FakeEnv;

test "defaults" {
    const cfg = load(FakeEnv(&.{}).get);
    try t.expectEqual(Config{}, cfg);
}

test "all settings" {
    const cfg = load(FakeEnv(&.{
        .{ "STYXY_DEBUG", "1" },
        .{ "STYXY_DISABLE_REASSIGN", "1" },
        .{ "STYXY_MIN_PORT", "3000" },
        .{ "STYXY_TIMEOUT_MS", "50" },
        .{ "STYXY_NOTIFY", "stdout" },
        .{ "STYXY_DAEMON_PORT", "1234" },
        .{ "STYXY_DAEMON_HOST", "127.0.0.2" },
        .{ "STYXY_INSTANCE_ID", "inst-1" },
        .{ "STYXY_NAME", "web" },
    }).get);
    try t.expect(cfg.debug and !cfg.reassign and !cfg.disabled);
    try t.expectEqual(@as(u16, 3000), cfg.min_port);
    try t.expectEqual(@as(u32, 50), cfg.timeout_ms);
    try t.expectEqual(Notify.stdout, cfg.notify);
    try t.expectEqual(@as(u16, 1234), cfg.daemon_port);
    try t.expectEqual([4]u8{ 127, 0, 0, 2 }, cfg.daemon_host.?);
    try t.expectEqualStrings("inst-1", cfg.instance_id.?);
    try t.expectEqualStrings("web", cfg.name.?);
}

test "bad values fall back to defaults; non-loopback host disables tcp" {
    const cfg = load(FakeEnv(&.{
        .{ "STYXY_DEBUG", "yes" },
        .{ "STYXY_MIN_PORT", "-1" },
        .{ "STYXY_TIMEOUT_MS", "999999999" },
        .{ "STYXY_NOTIFY", "off" },
        .{ "STYXY_DAEMON_PORT", "70000" },
        .{ "STYXY_DAEMON_HOST", "10.0.0.1" },
        .{ "STYXY_INSTANCE_ID", "" },
        .{ "STYXY_NAME", "" },
    }).get);
    try t.expect(!cfg.debug);
    try t.expectEqual(@as(u16, 1024), cfg.min_port);
    try t.expectEqual(max_timeout_ms, cfg.timeout_ms);
    try t.expectEqual(Notify.off, cfg.notify);
    try t.expectEqual(@as(u16, 9876), cfg.daemon_port);
    try t.expect(cfg.daemon_host == null);
    try t.expect(cfg.instance_id == null);
    try t.expect(cfg.name == null);
    try t.expect(load(FakeEnv(&.{.{ "STYXY_DAEMON_HOST", "localhost" }}).get).daemon_host == null);
}

test "disable short-circuits" {
    try t.expect(load(FakeEnv(&.{.{ "STYXY_DISABLE", "1" }}).get).disabled);
    try t.expect(!load(FakeEnv(&.{.{ "STYXY_DISABLE", "0" }}).get).disabled);
}
