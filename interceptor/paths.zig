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
/// Trailing slashes go: "dir/" would make lstat follow a link at "dir".
pub fn stateDir(get: Lookup, buf: *PathBuf) ?[:0]const u8 {
    if (nonEmpty(get("STYXY_HOME"))) |h| return joinZ(buf, &.{trimSlashes(h)});
    if (nonEmpty(get("XDG_STATE_HOME"))) |x| return joinZ(buf, &.{ x, "/styxy" });
    if (nonEmpty(get("HOME"))) |h| return joinZ(buf, &.{ h, "/.local/state/styxy" });
    return null;
}

fn trimSlashes(p: []const u8) []const u8 {
    var end = p.len;
    while (end > 1 and p[end - 1] == '/') end -= 1;
    return p[0..end];
}

/// Whether a state directory may be used: the rule of src/shared/state-dir-trust.ts. A symbolic link,
/// another user's directory or one writable by group or others may hold another user's socket or token.
pub const Trust = enum {
    ok,
    /// Not there (yet): nothing in it to trust or distrust; its socket cannot answer.
    missing,
    link,
    not_dir,
    not_ours,
    writable,
    /// The kernel would not say (a seccomp filter refusing fstatat, say): not trusted.
    unknown,
};

/// One fstatat(AT_SYMLINK_NOFOLLOW), by raw syscall: no libc errno to restore, nothing allocated.
pub fn trust(dir: [:0]const u8) Trust {
    const linux = std.os.linux;
    var st: linux.Stat = undefined;
    switch (linux.E.init(linux.fstatat(linux.AT.FDCWD, dir.ptr, &st, linux.AT.SYMLINK_NOFOLLOW))) {
        .SUCCESS => {},
        .NOENT, .NOTDIR => return .missing,
        else => return .unknown,
    }
    if (linux.S.ISLNK(st.mode)) return .link;
    if (!linux.S.ISDIR(st.mode)) return .not_dir;
    if (st.uid != linux.geteuid()) return .not_ours;
    if (st.mode & 0o022 != 0) return .writable;
    return .ok;
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
    try t.expectEqualStrings("/s", stateDir(FakeEnv(&.{.{ "STYXY_HOME", "/s//" }}).get, &buf).?);
    try t.expectEqualStrings("/", stateDir(FakeEnv(&.{.{ "STYXY_HOME", "/" }}).get, &buf).?);
}

test "trust: a private directory of ours, not a link, a missing one, nor one open to writes" {
    var tmp = t.tmpDir(.{});
    defer tmp.cleanup();
    try tmp.dir.makeDir("private");
    try std.posix.fchmodat(tmp.dir.fd, "private", 0o700, 0);
    try tmp.dir.makeDir("loose");
    try std.posix.fchmodat(tmp.dir.fd, "loose", 0o755, 0);
    try tmp.dir.makeDir("open");
    try std.posix.fchmodat(tmp.dir.fd, "open", 0o777, 0);
    try tmp.dir.makeDir("group");
    try std.posix.fchmodat(tmp.dir.fd, "group", 0o770, 0);
    try tmp.dir.symLink("private", "link", .{ .is_directory = true });
    try tmp.dir.writeFile(.{ .sub_path = "file", .data = "" });
    var pbuf: [std.fs.max_path_bytes]u8 = undefined;
    const root = try tmp.dir.realpath(".", &pbuf);
    const cases = .{
        .{ "private", Trust.ok },   .{ "loose", Trust.ok },      .{ "open", Trust.writable },
        .{ "group", Trust.writable }, .{ "link", Trust.link },  .{ "file", Trust.not_dir },
        .{ "absent", Trust.missing }, .{ "file/below", Trust.missing },
    };
    inline for (cases) |c| {
        var buf: PathBuf = undefined;
        const p = joinZ(&buf, &.{ root, "/", c[0] }).?;
        try t.expectEqual(c[1], trust(p));
    }
}
