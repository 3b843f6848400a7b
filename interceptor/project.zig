//! The process's project, by the rule src/shared/project.ts applies for the
//! daemon: STYXY_PROJECT (resolved against the working directory, as
//! path.resolve does), else the nearest ancestor of the working directory
//! holding `.git` (a directory or a linked worktree's file), else the working
//! directory. The follow table keys moves by its FNV-1a 64 hash, so both sides
//! must name the same bytes.
//!
//! Raw syscalls only: this runs inside a hooked connect(), where libc's errno
//! is the caller's.

const std = @import("std");
const linux = std.os.linux;
const settings = @import("settings.zig");

/// Linux's PATH_MAX: getcwd fails beyond it, and the daemon takes no longer a project.
pub const path_max = 4096;
/// Room for "/.git" and the NUL after the longest directory.
pub const Buf = [path_max + 6]u8;

pub fn fnv1a64(bytes: []const u8) u64 {
    var h: u64 = 0xcbf29ce484222325;
    for (bytes) |b| h = (h ^ b) *% 0x100000001b3;
    return h;
}

/// path.resolve(cwd, given), lexically: `.` and empty segments dropped, `..` pops (never above `/`), no
/// trailing slash. Null when it does not fit, or when a relative `given` has no absolute cwd to stand on.
pub fn resolve(buf: []u8, cwd: ?[]const u8, given: []const u8) ?[]const u8 {
    var len: usize = 0;
    const parts = [2][]const u8{ if (given.len > 0 and given[0] == '/') "" else (cwd orelse return null), given };
    if (parts[0].len > 0 and parts[0][0] != '/') return null;
    for (parts) |part| {
        var it = std.mem.tokenizeScalar(u8, part, '/');
        while (it.next()) |seg| {
            if (std.mem.eql(u8, seg, ".")) continue;
            if (std.mem.eql(u8, seg, "..")) {
                len = std.mem.lastIndexOfScalar(u8, buf[0..len], '/') orelse 0;
                continue;
            }
            if (len + 1 + seg.len > buf.len) return null;
            buf[len] = '/';
            @memcpy(buf[len + 1 ..][0..seg.len], seg);
            len += 1 + seg.len;
        }
    }
    if (len == 0) {
        if (buf.len == 0) return null;
        buf[0] = '/';
        len = 1;
    }
    return buf[0..len];
}

/// The nearest ancestor of `buf[0..len]` (an absolute directory) holding `.git`, else that directory. Each
/// probe writes "/.git" past the candidate and puts the bytes it covered back, so one buffer serves.
pub fn worktreeTop(buf: *Buf, len: usize) []const u8 {
    var n = len;
    while (true) {
        const at = if (n == 1) 0 else n; // "/" + ".git", not "//.git"
        const suffix = "/.git\x00";
        var saved: [suffix.len]u8 = undefined;
        @memcpy(&saved, buf[at..][0..suffix.len]);
        @memcpy(buf[at..][0..suffix.len], suffix);
        const found = linux.faccessat(linux.AT.FDCWD, @ptrCast(buf), linux.F_OK, 0) == 0;
        @memcpy(buf[at..][0..suffix.len], &saved);
        if (found) return buf[0..n];
        if (n == 1) return buf[0..len];
        n = @max(1, std.mem.lastIndexOfScalar(u8, buf[0..n], '/').?);
    }
}

/// The project's path, in `buf`. Null when the working directory can't be named (deleted, outside our root,
/// longer than PATH_MAX) or STYXY_PROJECT doesn't fit.
pub fn find(get: settings.Lookup, buf: *Buf) ?[]const u8 {
    var cwd_buf: [path_max]u8 = undefined;
    const cwd = getcwd(&cwd_buf);
    if (settings.nonEmpty(get("STYXY_PROJECT"))) |given| return resolve(buf[0..path_max], cwd, given);
    const dir = cwd orelse return null;
    @memcpy(buf[0..dir.len], dir);
    return worktreeTop(buf, dir.len);
}

/// The forced project (STYXY_PROJECT, absolute) for the bind request, in `buf`; null when unset. The daemon
/// finds an unforced project from the request's cwd itself.
pub fn forced(get: settings.Lookup, cwd: ?[]const u8, buf: []u8) ?[]const u8 {
    const given = settings.nonEmpty(get("STYXY_PROJECT")) orelse return null;
    return resolve(buf, cwd, given);
}

fn getcwd(buf: *[path_max]u8) ?[]const u8 {
    const rc = linux.getcwd(buf, buf.len);
    if (linux.E.init(rc) != .SUCCESS) return null;
    const s = std.mem.sliceTo(buf, 0);
    // "(unreachable)/..." is what Linux reports for a cwd outside our root.
    if (s.len == 0 or s[0] != '/') return null;
    return s;
}

/// The process's project, found once on first use (the first followed lookup). A forked child inherits it
/// with its memory, as it inherits the working directory it came from; exec starts over. Threads racing to
/// find it each find it on their own stack; the first to finish publishes it, the others use their own.
pub const Cache = struct {
    state: std.atomic.Value(State) = .init(.unknown),
    hash: std.atomic.Value(u64) = .init(0),
    path_buf: [path_max]u8 = undefined,
    path_len: usize = 0,

    /// `publishing`: one thread is copying the path in; the others find the project themselves meanwhile
    /// (a fork at that moment leaves the child finding it on each lookup: slower, never wrong).
    pub const State = enum(u8) { unknown, publishing, none, known };

    pub fn get(self: *Cache, env: settings.Lookup) ?u64 {
        switch (self.state.load(.acquire)) {
            .known => return self.hash.load(.monotonic),
            .none => return null,
            .unknown, .publishing => return self.findOnce(env),
        }
    }

    /// The project's path, once published.
    pub fn path(self: *const Cache) ?[]const u8 {
        return if (self.state.load(.acquire) == .known) self.path_buf[0..self.path_len] else null;
    }

    /// A test's fixed project.
    pub fn fixed(p: []const u8) Cache {
        var cache: Cache = .{};
        cache.publish(p);
        return cache;
    }

    fn findOnce(self: *Cache, env: settings.Lookup) ?u64 {
        @branchHint(.cold);
        var buf: Buf = undefined;
        const p = find(env, &buf) orelse {
            _ = self.state.cmpxchgStrong(.unknown, .none, .release, .monotonic);
            return null;
        };
        self.publish(p);
        return fnv1a64(p);
    }

    fn publish(self: *Cache, p: []const u8) void {
        if (self.state.cmpxchgStrong(.unknown, .publishing, .acquire, .monotonic) != null) return;
        @memcpy(self.path_buf[0..p.len], p);
        self.path_len = p.len;
        self.hash.store(fnv1a64(p), .monotonic);
        self.state.store(.known, .release);
    }
};

pub var process: Cache = .{};

// ---------------------------------------------------------------- tests

const t = std.testing;
const FakeEnv = @import("testing.zig").FakeEnv;

test "FNV-1a 64: the vectors of docs/follow-table.md" {
    try t.expectEqual(@as(u64, 0xcbf29ce484222325), fnv1a64(""));
    try t.expectEqual(@as(u64, 0xeaa3273df6d7b751), fnv1a64("/home/dev/proj"));
    try t.expectEqual(@as(u64, 0x2bda3cfb70d2f7bc), fnv1a64("/tmp/wt-b"));
}

test "STYXY_PROJECT resolves as path.resolve(cwd, it) does" {
    var buf: [64]u8 = undefined;
    try t.expectEqualStrings("/tmp/wt-b", resolve(&buf, "/home/x", "/tmp/wt-b").?);
    try t.expectEqualStrings("/tmp/wt-b", resolve(&buf, "/home/x", "/tmp//wt-b/./").?);
    try t.expectEqualStrings("/home/x/sub", resolve(&buf, "/home/x", "sub").?);
    try t.expectEqualStrings("/home/y", resolve(&buf, "/home/x", "../y").?);
    try t.expectEqualStrings("/", resolve(&buf, "/home/x", "../../../..").?);
    try t.expectEqualStrings("/home/x", resolve(&buf, "/home/x", ".").?);
    try t.expectEqualStrings("/a", resolve(&buf, null, "/b/../a").?);
    try t.expect(resolve(&buf, null, "rel") == null);
    try t.expect(resolve(&buf, "/home/x", "/" ++ "a" ** 64) == null);
}

test "worktree top: nearest .git (directory or file), else the directory itself" {
    // Under /tmp, not the test's own temp dir: that one lies inside this checkout, whose .git would answer.
    var base_buf: [64]u8 = undefined;
    const base = try std.fmt.bufPrint(&base_buf, "/tmp/styxy-project-{x}", .{std.crypto.random.int(u64)});
    try std.fs.cwd().makePath(base);
    defer std.fs.cwd().deleteTree(base) catch {};
    var root = try std.fs.cwd().openDir(base, .{});
    defer root.close();
    try root.makePath("main/.git");
    try root.makePath("main/src/deep");
    try root.makePath("wt/pkg");
    try root.writeFile(.{ .sub_path = "wt/.git", .data = "gitdir: /elsewhere\n" });
    try root.makePath("none/a");
    const outside_any = std.fs.cwd().access("/tmp/.git", .{}) == error.FileNotFound and std.fs.cwd().access("/.git", .{}) == error.FileNotFound;
    var buf: Buf = undefined;
    var want: [path_max]u8 = undefined;
    const cases = [_][2][]const u8{
        .{ "main/src/deep", "main" },
        .{ "main", "main" },
        .{ "wt/pkg", "wt" },
        .{ "none/a", "none/a" },
    };
    for (cases) |case| {
        if (!outside_any and std.mem.eql(u8, case[0], "none/a")) continue;
        const dir = try std.fmt.bufPrint(&buf, "{s}/{s}", .{ base, case[0] });
        const top = worktreeTop(&buf, dir.len);
        try t.expectEqualStrings(try std.fmt.bufPrint(&want, "{s}/{s}", .{ base, case[1] }), top);
        // The probes left the directory's bytes as they were.
        try t.expectEqualStrings(case[0], buf[base.len + 1 .. dir.len]);
    }
    @memcpy(buf[0..1], "/");
    if (outside_any) try t.expectEqualStrings("/", worktreeTop(&buf, 1));
}

test "find: STYXY_PROJECT wins; otherwise the working directory's worktree" {
    var buf: Buf = undefined;
    try t.expectEqualStrings("/tmp/wt-b", find(FakeEnv(&.{.{ "STYXY_PROJECT", "/tmp/wt-b/" }}).get, &buf).?);
    var cwd_buf: [path_max]u8 = undefined;
    const cwd = getcwd(&cwd_buf).?;
    var want_buf: Buf = undefined;
    @memcpy(want_buf[0..cwd.len], cwd);
    const want = worktreeTop(&want_buf, cwd.len);
    try t.expectEqualStrings(want, find(FakeEnv(&.{.{ "STYXY_PROJECT", "" }}).get, &buf).?);
    var rel_want: [path_max]u8 = undefined;
    try t.expectEqualStrings(try std.fmt.bufPrint(&rel_want, "{s}/sub", .{cwd}), find(FakeEnv(&.{.{ "STYXY_PROJECT", "sub" }}).get, &buf).?);
    var fbuf: [64]u8 = undefined;
    try t.expectEqualStrings("/p", forced(FakeEnv(&.{.{ "STYXY_PROJECT", "/p/q/.." }}).get, null, &fbuf).?);
    try t.expect(forced(FakeEnv(&.{}).get, "/x", &fbuf) == null);
}

test "the cache finds the project once" {
    var cache: Cache = .{};
    try t.expect(cache.path() == null);
    const E1 = FakeEnv(&.{.{ "STYXY_PROJECT", "/tmp/wt-b" }}).get;
    try t.expectEqual(@as(?u64, 0x2bda3cfb70d2f7bc), cache.get(E1));
    try t.expectEqualStrings("/tmp/wt-b", cache.path().?);
    // Found once: a later change of STYXY_PROJECT (or of the working directory) doesn't move it.
    try t.expectEqual(@as(?u64, 0x2bda3cfb70d2f7bc), cache.get(FakeEnv(&.{.{ "STYXY_PROJECT", "/other" }}).get));
    var nothing: Cache = .{};
    const long = "/" ++ "a" ** (path_max + 1);
    try t.expectEqual(@as(?u64, null), nothing.get(FakeEnv(&.{.{ "STYXY_PROJECT", long }}).get));
    try t.expectEqual(Cache.State.none, nothing.state.load(.monotonic));
}
