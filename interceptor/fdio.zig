//! Whole reads and writes on raw descriptors through libc, with EINTR retried:
//! the hooked bind runs inside any program, which may have signal handlers
//! installed without SA_RESTART.

const std = @import("std");
const c = std.c;

fn interrupted() bool {
    return c._errno().* == @intFromEnum(std.posix.E.INTR);
}

/// Reads a small file in one go. O_CLOEXEC so a concurrent fork+exec in
/// another thread can't inherit it.
pub fn readSmallFile(path: [*:0]const u8, buf: []u8) ?[]u8 {
    const fd = c.open(path, .{ .ACCMODE = .RDONLY, .CLOEXEC = true, .NOCTTY = true });
    if (fd < 0) return null;
    defer _ = c.close(fd);
    var n: usize = 0;
    while (n < buf.len) {
        const r = c.read(fd, buf[n..].ptr, buf.len - n);
        if (r < 0) {
            if (interrupted()) continue;
            return null;
        }
        if (r == 0) break;
        n += @intCast(r);
    }
    return buf[0..n];
}

pub fn writeAll(fd: c_int, data: []const u8) void {
    var off: usize = 0;
    while (off < data.len) {
        const r = c.write(fd, data[off..].ptr, data.len - off);
        if (r < 0) {
            if (interrupted()) continue;
            return;
        }
        if (r == 0) return;
        off += @intCast(r);
    }
}
