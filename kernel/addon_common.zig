//! What every export of the addon shares: its per-environment State, its
//! arguments, and the wrapper that turns a Zig error into a JS exception.

const std = @import("std");
const napi = @import("napi.zig");
const sockdiag = @import("sockdiag.zig");
const exits = @import("exits.zig");
const uv = napi.uv;

pub const gpa = std.heap.c_allocator;

/// One per Node environment (the main thread, each worker), freed by the
/// environment's cleanup hook.
pub const State = struct {
    env: napi.Env,
    diag: sockdiag.Diag = .{},
    records: std.ArrayListUnmanaged(u8) = .empty,
    watcher: exits.Watcher = .{},
    pids: std.ArrayListUnmanaged(exits.pid_t) = .empty,
    callback: ?napi.Ref = null,
    async_context: ?napi.AsyncContext = null,
    poll: ?*uv.Poll = null,
};

pub const Args = struct { state: *State, argv: [4]napi.Value, argc: usize };

/// Every export is `fn (env, Args) !napi.Value`; this turns one into a napi
/// callback whose errors become JS exceptions.
pub fn wrap(comptime f: fn (napi.Env, Args) napi.Error!napi.Value) napi.Callback {
    return struct {
        fn call(env: napi.Env, info: napi.CallbackInfo) callconv(.c) ?napi.Value {
            var a: Args = .{ .state = undefined, .argv = undefined, .argc = 4 };
            var data: ?*anyopaque = null;
            if (napi.napi_get_cb_info(env, info, &a.argc, &a.argv, null, &data) != .ok or data == null) {
                napi.fail(env, "styxy_kernel: bad call");
                return null;
            }
            a.state = @ptrCast(@alignCast(data.?));
            return f(env, a) catch {
                napi.fail(env, "styxy_kernel: a Node-API call failed");
                return null;
            };
        }
    }.call;
}

pub fn throwType(env: napi.Env, msg: [*:0]const u8) napi.Error {
    _ = napi.napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return error.Napi;
}

/// An integer argument in [min, max], or a TypeError.
pub fn integerArg(env: napi.Env, a: Args, i: usize, min: f64, max: f64, msg: [*:0]const u8) napi.Error!f64 {
    if (i >= a.argc) return throwType(env, msg);
    var x: f64 = 0;
    if (napi.napi_get_value_double(env, a.argv[i], &x) != .ok) return throwType(env, msg);
    if (x != @trunc(x) or x < min or x > max) return throwType(env, msg);
    return x;
}

pub fn pidArg(env: napi.Env, a: Args) napi.Error!exits.pid_t {
    return @intFromFloat(try integerArg(env, a, 0, 1, std.math.maxInt(i32), "pid must be a positive integer"));
}

/// A string argument that fits `buf` (with its NUL), or a TypeError.
pub fn stringArg(env: napi.Env, a: Args, i: usize, buf: []u8, msg: [*:0]const u8) napi.Error![]const u8 {
    if (i >= a.argc) return throwType(env, msg);
    var kind: napi.ValueType = .undefined;
    if (napi.napi_typeof(env, a.argv[i], &kind) != .ok or kind != .string) return throwType(env, msg);
    var len: usize = 0;
    try napi.check(napi.napi_get_value_string_utf8(env, a.argv[i], null, 0, &len));
    if (len + 1 > buf.len) return throwType(env, msg);
    try napi.check(napi.napi_get_value_string_utf8(env, a.argv[i], buf.ptr, buf.len, &len));
    return buf[0..len];
}
