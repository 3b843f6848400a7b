//! Facts about a process for the daemon's lease: its command line and working
//! directory, our own or (for the seccomp supervisor) another's through /proc.

const std = @import("std");
const c = std.c;
const readSmallFile = @import("fdio.zig").readSmallFile;

pub const cmdline_max = 512;
pub const cwd_max = 1024;

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

pub fn cwd(buf: *[cwd_max]u8) ?[]const u8 {
    const p = c.getcwd(buf, buf.len) orelse return null;
    const s = std.mem.sliceTo(@as([*:0]const u8, @ptrCast(p)), 0);
    // "(unreachable)/..." is what Linux reports for a cwd outside our root.
    if (s.len == 0 or s[0] != '/') return null;
    return s;
}

// ---------------------------------------------------------------- tests

const t = std.testing;

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
