//! Everything the interceptor learns from its surroundings: environment
//! variables, state-dir paths, /proc/self/cmdline, cwd, the token file, and
//! the two ways it talks to the user (notice, debug line).
//!
//! Settings are re-read on every hooked bind instead of cached: caching would
//! need global mutable state, and getenv is cheap next to a socket round trip.

const std = @import("std");
const c = std.c;
const json = @import("json.zig");

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
    return cfg;
}

fn isOne(v: ?[]const u8) bool {
    return if (v) |s| std.mem.eql(u8, s, "1") else false;
}

/// XDG treats an empty variable as unset; so do we for every path input.
fn nonEmpty(v: ?[]const u8) ?[]const u8 {
    const s = v orelse return null;
    return if (s.len == 0) null else s;
}

fn parseLoopback(s: []const u8) ?[4]u8 {
    const a = std.net.Ip4Address.parse(s, 0) catch return null;
    const bytes: [4]u8 = @bitCast(a.sa.addr);
    return if (bytes[0] == 127) bytes else null;
}

// ------------------------------------------------------------------ paths

pub const path_max = 512;
pub const PathBuf = [path_max]u8;

/// $STYXY_HOME, else $XDG_STATE_HOME/styxy, else $HOME/.local/state/styxy.
pub fn stateDir(get: Lookup, buf: *PathBuf) ?[]const u8 {
    if (nonEmpty(get("STYXY_HOME"))) |h| return join(buf, &.{h});
    if (nonEmpty(get("XDG_STATE_HOME"))) |x| return join(buf, &.{ x, "/styxy" });
    if (nonEmpty(get("HOME"))) |h| return join(buf, &.{ h, "/.local/state/styxy" });
    return null;
}

/// NUL-terminated because it goes straight to open()/sockaddr_un.
pub fn socketPath(get: Lookup, buf: *PathBuf) ?[:0]const u8 {
    if (nonEmpty(get("STYXY_SOCKET"))) |s| return joinZ(buf, &.{s});
    var dir_buf: PathBuf = undefined;
    const dir = stateDir(get, &dir_buf) orelse return null;
    return joinZ(buf, &.{ dir, "/daemon.sock" });
}

pub fn tokenPath(get: Lookup, buf: *PathBuf) ?[:0]const u8 {
    var dir_buf: PathBuf = undefined;
    const dir = stateDir(get, &dir_buf) orelse return null;
    return joinZ(buf, &.{ dir, "/token" });
}

fn join(buf: *PathBuf, parts: []const []const u8) ?[]const u8 {
    const z = joinZ(buf, parts) orelse return null;
    return z;
}

fn joinZ(buf: *PathBuf, parts: []const []const u8) ?[:0]const u8 {
    var b = json.Buf.init(buf[0 .. buf.len - 1]);
    for (parts) |p| b.append(p);
    const s = b.written() orelse return null;
    // An embedded NUL would silently name a different file.
    if (std.mem.indexOfScalar(u8, s, 0) != null) return null;
    buf[s.len] = 0;
    return buf[0..s.len :0];
}

// ---------------------------------------------------------- process facts

/// Reads a small file in one go. O_CLOEXEC so a concurrent fork+exec in
/// another thread can't inherit it.
fn readSmallFile(path: [*:0]const u8, buf: []u8) ?[]u8 {
    const fd = c.open(path, .{ .ACCMODE = .RDONLY, .CLOEXEC = true, .NOCTTY = true });
    if (fd < 0) return null;
    defer _ = c.close(fd);
    var n: usize = 0;
    while (n < buf.len) {
        const r = c.read(fd, buf[n..].ptr, buf.len - n);
        if (r < 0) {
            if (c._errno().* == @intFromEnum(std.posix.E.INTR)) continue;
            return null;
        }
        if (r == 0) break;
        n += @intCast(r);
    }
    return buf[0..n];
}

pub const cmdline_max = 512;

/// argv joined by spaces, truncated to the buffer.
pub fn commandLine(buf: *[cmdline_max]u8) []const u8 {
    const raw = readSmallFile("/proc/self/cmdline", buf) orelse return "";
    return cmdlineToText(raw);
}

/// `/proc/<pid>/<leaf>`, NUL-terminated, in a caller-owned buffer.
pub fn procPath(buf: *[64]u8, pid: c_int, leaf: []const u8) ?[:0]const u8 {
    return std.fmt.bufPrintZ(buf, "/proc/{d}/{s}", .{ pid, leaf }) catch null;
}

/// Another process's command line (the seccomp supervisor asks for the
/// process it trapped).
pub fn commandLineOf(pid: c_int, buf: *[cmdline_max]u8) []const u8 {
    var pbuf: [64]u8 = undefined;
    const path = procPath(&pbuf, pid, "cmdline") orelse return "";
    const raw = readSmallFile(path, buf) orelse return "";
    return cmdlineToText(raw);
}

pub fn cwdOf(pid: c_int, buf: *[cwd_max]u8) ?[]const u8 {
    var pbuf: [64]u8 = undefined;
    const path = procPath(&pbuf, pid, "cwd") orelse return null;
    const n = c.readlink(path, buf, buf.len);
    if (n <= 0 or @as(usize, @intCast(n)) >= buf.len) return null;
    const s = buf[0..@intCast(n)];
    if (s[0] != '/') return null;
    return s;
}

/// The thread-group id (the pid users see) of a thread id, from
/// /proc/<tid>/status: seccomp notifications name the thread that trapped.
pub fn tgidOf(tid: c_int) ?c_int {
    var pbuf: [64]u8 = undefined;
    const path = procPath(&pbuf, tid, "status") orelse return null;
    var buf: [512]u8 = undefined;
    const raw = readSmallFile(path, &buf) orelse return null;
    return parseTgid(raw);
}

fn parseTgid(status: []const u8) ?c_int {
    const key = "\nTgid:";
    const at = std.mem.indexOf(u8, status, key) orelse return null;
    const rest = std.mem.trimLeft(u8, status[at + key.len ..], " \t");
    const end = std.mem.indexOfScalar(u8, rest, '\n') orelse rest.len;
    return std.fmt.parseInt(c_int, rest[0..end], 10) catch null;
}

fn cmdlineToText(raw: []u8) []const u8 {
    var s = raw;
    while (s.len > 0 and s[s.len - 1] == 0) s = s[0 .. s.len - 1];
    for (s) |*ch| {
        if (ch.* == 0) ch.* = ' ';
    }
    return s;
}

pub const cwd_max = 1024;

pub fn cwd(buf: *[cwd_max]u8) ?[]const u8 {
    const p = c.getcwd(buf, buf.len) orelse return null;
    const s = std.mem.sliceTo(@as([*:0]const u8, @ptrCast(p)), 0);
    // "(unreachable)/..." is what Linux reports for a cwd outside our root.
    if (s.len == 0 or s[0] != '/') return null;
    return s;
}

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

// ------------------------------------------------------------ talking back

/// The descriptor number a notice goes to in the program that was moved.
pub fn noticeFd(target: Notify) ?c_int {
    return switch (target) {
        .off => null,
        .stderr => 2,
        .stdout => 1,
    };
}

/// One write(2) so the line can't interleave with the program's own output.
/// `to_fd` overrides our own fd 1/2: the seccomp supervisor passes a
/// duplicate of the moved program's, so the line lands with its output.
pub fn notice(target: Notify, to_fd: ?c_int, from: u16, to: u16) void {
    const own = noticeFd(target) orelse return;
    const fd = to_fd orelse own;
    var buf: [96]u8 = undefined;
    const line = std.fmt.bufPrint(&buf, "✓ STYXY: Port {d} was in use, auto-assigned port {d}\n", .{ from, to }) catch return;
    writeAll(fd, line);
}

pub fn debug(cfg: *const Config, comptime fmt: []const u8, args: anytype) void {
    if (!cfg.debug) return;
    var buf: [512]u8 = undefined;
    var line = std.fmt.bufPrint(&buf, "styxy-preload: " ++ fmt ++ "\n", args) catch blk: {
        buf[buf.len - 4 ..][0..4].* = "...\n".*;
        break :blk buf[0..];
    };
    _ = &line;
    writeAll(2, line);
}

fn writeAll(fd: c_int, data: []const u8) void {
    var off: usize = 0;
    while (off < data.len) {
        const r = c.write(fd, data[off..].ptr, data.len - off);
        if (r < 0) {
            if (c._errno().* == @intFromEnum(std.posix.E.INTR)) continue;
            return;
        }
        if (r == 0) return;
        off += @intCast(r);
    }
}

// ---------------------------------------------------------------- tests

const t = std.testing;

/// Fake environments for tests; a comptime table keeps Lookup a plain fn.
fn FakeEnv(comptime pairs: []const [2][]const u8) type {
    return struct {
        fn get(name: [:0]const u8) ?[]const u8 {
            inline for (pairs) |p| if (std.mem.eql(u8, p[0], name)) return p[1];
            return null;
        }
    };
}

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
    }).get);
    try t.expect(cfg.debug and !cfg.reassign and !cfg.disabled);
    try t.expectEqual(@as(u16, 3000), cfg.min_port);
    try t.expectEqual(@as(u32, 50), cfg.timeout_ms);
    try t.expectEqual(Notify.stdout, cfg.notify);
    try t.expectEqual(@as(u16, 1234), cfg.daemon_port);
    try t.expectEqual([4]u8{ 127, 0, 0, 2 }, cfg.daemon_host.?);
    try t.expectEqualStrings("inst-1", cfg.instance_id.?);
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
    }).get);
    try t.expect(!cfg.debug);
    try t.expectEqual(@as(u16, 1024), cfg.min_port);
    try t.expectEqual(max_timeout_ms, cfg.timeout_ms);
    try t.expectEqual(Notify.off, cfg.notify);
    try t.expectEqual(@as(u16, 9876), cfg.daemon_port);
    try t.expect(cfg.daemon_host == null);
    try t.expect(cfg.instance_id == null);
    try t.expect(load(FakeEnv(&.{.{ "STYXY_DAEMON_HOST", "localhost" }}).get).daemon_host == null);
}

test "disable short-circuits" {
    try t.expect(load(FakeEnv(&.{.{ "STYXY_DISABLE", "1" }}).get).disabled);
    try t.expect(!load(FakeEnv(&.{.{ "STYXY_DISABLE", "0" }}).get).disabled);
}

test "state dir precedence" {
    var buf: PathBuf = undefined;
    try t.expectEqualStrings("/s", stateDir(FakeEnv(&.{ .{ "STYXY_HOME", "/s" }, .{ "XDG_STATE_HOME", "/x" }, .{ "HOME", "/h" } }).get, &buf).?);
    try t.expectEqualStrings("/x/styxy", stateDir(FakeEnv(&.{ .{ "STYXY_HOME", "" }, .{ "XDG_STATE_HOME", "/x" }, .{ "HOME", "/h" } }).get, &buf).?);
    try t.expectEqualStrings("/h/.local/state/styxy", stateDir(FakeEnv(&.{.{ "HOME", "/h" }}).get, &buf).?);
    try t.expect(stateDir(FakeEnv(&.{}).get, &buf) == null);
}

test "socket and token paths" {
    var buf: PathBuf = undefined;
    const E1 = FakeEnv(&.{.{ "HOME", "/h" }}).get;
    try t.expectEqualStrings("/h/.local/state/styxy/daemon.sock", socketPath(E1, &buf).?);
    try t.expectEqualStrings("/h/.local/state/styxy/token", tokenPath(E1, &buf).?);
    const E2 = FakeEnv(&.{ .{ "STYXY_HOME", "/s" }, .{ "STYXY_SOCKET", "/run/x.sock" } }).get;
    try t.expectEqualStrings("/run/x.sock", socketPath(E2, &buf).?);
    try t.expectEqualStrings("/s/token", tokenPath(E2, &buf).?);
    const long = "/" ++ "a" ** 600;
    try t.expect(socketPath(FakeEnv(&.{.{ "STYXY_HOME", long }}).get, &buf) == null);
    try t.expect(tokenPath(FakeEnv(&.{.{ "STYXY_HOME", "/a\x00b" }}).get, &buf) == null);
}

test "token file parsing" {
    try t.expectEqualStrings("abc123", tokenFromFile("  abc123 \r\nsecond line\n").?);
    try t.expectEqualStrings("abc", tokenFromFile("abc").?);
    try t.expect(tokenFromFile("\n") == null);
    try t.expect(tokenFromFile("") == null);
    try t.expect(tokenFromFile("a b") == null);
    try t.expect(tokenFromFile("a\x00b") == null);
}

test "cmdline text" {
    var raw = "python3\x00-m\x00http.server\x00".*;
    try t.expectEqualStrings("python3 -m http.server", cmdlineToText(&raw));
    var buf: [cmdline_max]u8 = undefined;
    try t.expect(commandLine(&buf).len > 0);
}

test "cwd is absolute" {
    var buf: [cwd_max]u8 = undefined;
    try t.expect(cwd(&buf).?[0] == '/');
}

test "real token file round trip" {
    var tmp = t.tmpDir(.{});
    defer tmp.cleanup();
    try tmp.dir.writeFile(.{ .sub_path = "token", .data = "s3cret\n" });
    var pbuf: [std.fs.max_path_bytes]u8 = undefined;
    const dir = try tmp.dir.realpath(".", &pbuf);
    var zbuf: PathBuf = undefined;
    const p = joinZ(&zbuf, &.{ dir, "/token" }).?;
    var tbuf: [token_max]u8 = undefined;
    try t.expectEqualStrings("s3cret", readToken(p, &tbuf).?);
    try t.expect(readToken("/nonexistent/styxy/token", &tbuf) == null);
}

test "tgid from a status file" {
    try t.expectEqual(@as(?c_int, 4242), parseTgid("Name:\tnode\nUmask:\t0022\nState:\tS\nTgid:\t4242\nNgid:\t0\n"));
    try t.expectEqual(@as(?c_int, null), parseTgid("Name:\tTgid:\t7\n"));
    try t.expectEqual(@as(?c_int, c.getpid()), tgidOf(c.getpid()));
}

test "another process's facts, read through /proc" {
    var own: [cmdline_max]u8 = undefined;
    var other: [cmdline_max]u8 = undefined;
    try t.expectEqualStrings(commandLine(&own), commandLineOf(c.getpid(), &other));
    var w1: [cwd_max]u8 = undefined;
    var w2: [cwd_max]u8 = undefined;
    try t.expectEqualStrings(cwd(&w1).?, cwdOf(c.getpid(), &w2).?);
    try t.expectEqual(@as(?[]const u8, null), cwdOf(std.math.maxInt(c_int), &w2));
}
