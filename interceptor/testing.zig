//! Helpers for the unit tests only (imported from test code, never part of the library).

const std = @import("std");
const posix = std.posix;

/// A listening Unix socket at `path`: the stand-in daemon end of an IPC test.
pub fn listenUnix(path: []const u8) !posix.socket_t {
    const fd = try posix.socket(posix.AF.UNIX, posix.SOCK.STREAM | posix.SOCK.CLOEXEC, 0);
    errdefer posix.close(fd);
    var sa: posix.sockaddr.un = .{ .path = [_]u8{0} ** 108 };
    if (path.len >= sa.path.len) return error.NameTooLong;
    @memcpy(sa.path[0..path.len], path);
    try posix.bind(fd, @ptrCast(&sa), @sizeOf(@TypeOf(sa)));
    try posix.listen(fd, 4);
    return fd;
}
