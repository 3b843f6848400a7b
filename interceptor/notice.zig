//! The one line a moved program's user sees ("Port 3000 was in use,
//! auto-assigned port 3001"), the one a client that follows it sees, and where
//! STYXY_NOTIFY sends them.

const std = @import("std");
const c = std.c;
const Notify = @import("settings.zig").Notify;
const writeAll = @import("fdio.zig").writeAll;

/// The descriptor number a notice goes to in the program that was moved.
pub fn noticeFd(target: Notify) ?c_int {
    return switch (target) {
        .off => null,
        .stderr => 2,
        .stdout => 1,
    };
}

/// Who chose the new port: the daemon, or the library alone because the
/// daemon could not be reached (nearby.zig); the user is told which.
pub const By = enum { daemon, library };

/// One write(2) so the line can't interleave with the program's own output.
/// `to_fd` overrides our own fd 1/2: the seccomp supervisor passes a
/// duplicate of the moved program's, so the line lands with its output.
pub fn notice(target: Notify, to_fd: ?c_int, from: u16, to: u16, by: By) void {
    const own = noticeFd(target) orelse return;
    const fd = to_fd orelse own;
    var buf: [128]u8 = undefined;
    const line = format(&buf, from, to, by) orelse return;
    writeAll(fd, line);
}

/// A client's first follow in its process. The table holds ports, not the server's name.
pub fn followed(target: Notify, from: u16, to: u16) void {
    const fd = noticeFd(target) orelse return;
    var buf: [96]u8 = undefined;
    const line = std.fmt.bufPrint(&buf, "→ STYXY: localhost:{d} is this project's server, now on {d}\n", .{ from, to }) catch return;
    writeAll(fd, line);
}

fn format(buf: []u8, from: u16, to: u16, by: By) ?[]const u8 {
    const why = switch (by) {
        .daemon => "",
        .library => " (daemon not reachable: moved without it)",
    };
    return std.fmt.bufPrint(buf, "✓ STYXY: Port {d} was in use, auto-assigned port {d}{s}\n", .{ from, to, why }) catch null;
}

test "the notice says who moved the program" {
    var buf: [128]u8 = undefined;
    try std.testing.expectEqualStrings("✓ STYXY: Port 3000 was in use, auto-assigned port 3001\n", format(&buf, 3000, 3001, .daemon).?);
    try std.testing.expectEqualStrings("✓ STYXY: Port 65534 was in use, auto-assigned port 65535 (daemon not reachable: moved without it)\n", format(&buf, 65534, 65535, .library).?);
}
