//! Where the daemon's socket, token file and follow table are: the state-directory rules
//! src/paths.ts applies too, so the interceptor needs no setting of its own.

const std = @import("std");
const request_body = @import("request_body.zig");
const settings = @import("settings.zig");

const Lookup = settings.Lookup;
const nonEmpty = settings.nonEmpty;

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

/// The follow table the daemon publishes (docs/follow-table.md).
pub fn followPath(get: Lookup, buf: *PathBuf) ?[:0]const u8 {
    var dir_buf: PathBuf = undefined;
    const dir = stateDir(get, &dir_buf) orelse return null;
    return joinZ(buf, &.{ dir, "/follow" });
}

fn join(buf: *PathBuf, parts: []const []const u8) ?[]const u8 {
    const z = joinZ(buf, parts) orelse return null;
    return z;
}

fn joinZ(buf: *PathBuf, parts: []const []const u8) ?[:0]const u8 {
    var b = request_body.Buf.init(buf[0 .. buf.len - 1]);
    for (parts) |p| b.append(p);
    const s = b.written() orelse return null;
    // An embedded NUL would silently name a different file.
    if (std.mem.indexOfScalar(u8, s, 0) != null) return null;
    buf[s.len] = 0;
    return buf[0..s.len :0];
}

// ---------------------------------------------------------------- tests

const t = std.testing;
const FakeEnv = @import("testing.zig").FakeEnv;

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
    try t.expectEqualStrings("/s/follow", followPath(E2, &buf).?);
    try t.expectEqualStrings("/h/.local/state/styxy/follow", followPath(E1, &buf).?);
    const long = "/" ++ "a" ** 600;
    try t.expect(socketPath(FakeEnv(&.{.{ "STYXY_HOME", long }}).get, &buf) == null);
    try t.expect(tokenPath(FakeEnv(&.{.{ "STYXY_HOME", "/a\x00b" }}).get, &buf) == null);
}
