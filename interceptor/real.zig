//! The libc functions we shadow (bind, connect, getpeername), plus errno helpers.
//!
//! Each pointer is resolved lazily (no constructor), and two threads racing to
//! resolve it store the same value, so a plain atomic without a lock is enough
//! and nothing needs fixing up after fork.

const std = @import("std");
const c = std.c;

pub const BindFn = *const fn (fd: c_int, addr: ?*const anyopaque, len: c.socklen_t) callconv(.c) c_int;
/// connect(2) has bind's signature.
pub const ConnectFn = BindFn;
pub const GetpeernameFn = *const fn (fd: c_int, addr: ?*anyopaque, len: ?*c.socklen_t) callconv(.c) c_int;

/// glibc's RTLD_NEXT is ((void *)-1); std.c only models the dlopen flags.
const RTLD_NEXT: *anyopaque = @ptrFromInt(std.math.maxInt(usize));

pub fn errno() c_int {
    return c._errno().*;
}

pub fn setErrno(value: c_int) void {
    c._errno().* = value;
}

pub const E_ADDRINUSE: c_int = @intFromEnum(std.posix.E.ADDRINUSE);

/// Outcome of a real bind, with errno captured immediately so later internal
/// calls (logging, closing our own sockets) cannot clobber what the caller sees.
pub const Result = struct {
    rc: c_int,
    err: c_int,

    pub fn ok(self: Result) bool {
        return self.rc == 0;
    }
};

pub fn call(fd: c_int, addr: ?*const anyopaque, len: c.socklen_t) Result {
    const f = resolve();
    const rc = f(fd, addr, len);
    return .{ .rc = rc, .err = if (rc == 0) 0 else errno() };
}

pub fn callBytes(fd: c_int, bytes: []const u8) Result {
    return call(fd, bytes.ptr, @intCast(bytes.len));
}

/// `self_bind` is our own exported `bind`; if dlsym ever hands it back (e.g. the
/// library linked normally instead of preloaded) we'd recurse forever.
pub fn setSelf(self_bind: BindFn) void {
    self_addr.store(@intFromPtr(self_bind), .monotonic);
}
var self_addr: std.atomic.Value(usize) = .init(0);

fn resolve() BindFn {
    return Next("bind", BindFn, &rawBind).get(self_addr.load(.monotonic));
}

/// The next `connect` after ours. `self` is our own export (0 in tests, which export nothing): passed in
/// rather than stored, so the hot path writes no shared memory.
pub fn connectFn(self: usize) ConnectFn {
    return Next("connect", ConnectFn, &rawConnect).get(self);
}

pub fn getpeernameFn(self: usize) GetpeernameFn {
    return Next("getpeername", GetpeernameFn, &rawGetpeername).get(self);
}

/// libc's `name`, found with dlsym(RTLD_NEXT) on first use; `raw` (the bare syscall) when dlsym finds nothing
/// or hands back our own export (`self`, e.g. the library linked normally instead of preloaded).
fn Next(comptime name: [:0]const u8, comptime F: type, comptime raw: F) type {
    return struct {
        var cached: std.atomic.Value(?F) = .init(null);

        fn get(self: usize) F {
            if (cached.load(.acquire)) |f| return f;
            var f: F = raw;
            if (c.dlsym(RTLD_NEXT, name)) |sym| {
                if (@intFromPtr(sym) != self) f = @ptrCast(@alignCast(sym));
            }
            cached.store(f, .release);
            return f;
        }
    };
}

/// Last resort when dlsym can't find libc's bind: the raw syscall, with the
/// libc errno convention re-created by hand.
fn rawBind(fd: c_int, addr: ?*const anyopaque, len: c.socklen_t) callconv(.c) c_int {
    return libcConvention(std.os.linux.syscall3(.bind, @as(usize, @bitCast(@as(isize, fd))), @intFromPtr(addr), len));
}

fn rawConnect(fd: c_int, addr: ?*const anyopaque, len: c.socklen_t) callconv(.c) c_int {
    return libcConvention(std.os.linux.syscall3(.connect, @as(usize, @bitCast(@as(isize, fd))), @intFromPtr(addr), len));
}

fn rawGetpeername(fd: c_int, addr: ?*anyopaque, len: ?*c.socklen_t) callconv(.c) c_int {
    return libcConvention(std.os.linux.syscall3(.getpeername, @as(usize, @bitCast(@as(isize, fd))), @intFromPtr(addr), @intFromPtr(len)));
}

fn libcConvention(rc: usize) c_int {
    const signed: isize = @bitCast(rc);
    if (signed < 0 and signed > -4096) {
        setErrno(@intCast(-signed));
        return -1;
    }
    return @intCast(signed);
}

test "raw syscall fallback reports errno like libc" {
    const saved = errno();
    defer setErrno(saved);
    var sin: std.posix.sockaddr.in = .{ .port = 0, .addr = 0 };
    try std.testing.expectEqual(@as(c_int, -1), rawBind(-1, &sin, @sizeOf(@TypeOf(sin))));
    try std.testing.expectEqual(@as(c_int, @intFromEnum(std.posix.E.BADF)), errno());
}

test "resolve finds libc's bind, connect and getpeername" {
    const f = resolve();
    try std.testing.expect(f != &rawBind);
    const again = resolve();
    try std.testing.expectEqual(f, again);
    try std.testing.expect(connectFn(0) != &rawConnect);
    try std.testing.expect(getpeernameFn(0) != &rawGetpeername);
}

test "raw connect and getpeername report errno like libc" {
    const saved = errno();
    defer setErrno(saved);
    var sin: std.posix.sockaddr.in = .{ .port = 0, .addr = 0 };
    try std.testing.expectEqual(@as(c_int, -1), rawConnect(-1, &sin, @sizeOf(@TypeOf(sin))));
    try std.testing.expectEqual(@as(c_int, @intFromEnum(std.posix.E.BADF)), errno());
    var len: c.socklen_t = @sizeOf(@TypeOf(sin));
    try std.testing.expectEqual(@as(c_int, -1), rawGetpeername(-1, &sin, &len));
}
