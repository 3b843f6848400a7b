//! The few Node-API and libuv functions the addon uses, declared by hand
//! (declarations from node's js_native_api.h, node_api.h and uv.h), so the
//! build needs neither node headers nor node-gyp. Every symbol here is
//! resolved from the node binary when it loads the addon; none of them
//! exists in a test binary, so only addon.zig and exits.zig may call them.

const std = @import("std");

pub const Env = *opaque {};
pub const Value = *opaque {};
pub const CallbackInfo = *opaque {};
pub const Ref = *opaque {};
pub const HandleScope = *opaque {};
pub const AsyncContext = *opaque {};
pub const AsyncCleanupHandle = *opaque {};

pub const Status = enum(c_int) {
    ok = 0,
    invalid_arg,
    object_expected,
    string_expected,
    name_expected,
    function_expected,
    number_expected,
    boolean_expected,
    array_expected,
    generic_failure,
    pending_exception,
    cancelled,
    escape_called_twice,
    handle_scope_mismatch,
    callback_scope_mismatch,
    queue_full,
    closing,
    bigint_expected,
    date_expected,
    arraybuffer_expected,
    detachable_arraybuffer_expected,
    would_deadlock,
    no_external_buffers_allowed,
    cannot_run_js,
    _,
};

pub const ValueType = enum(c_int) { undefined, null, boolean, number, string, symbol, object, function, external, bigint, _ };

pub const Callback = *const fn (Env, CallbackInfo) callconv(.c) ?Value;
pub const AsyncCleanupHook = *const fn (AsyncCleanupHandle, ?*anyopaque) callconv(.c) void;

pub extern fn napi_create_function(env: Env, name: [*]const u8, len: usize, cb: Callback, data: ?*anyopaque, result: *Value) Status;
pub extern fn napi_get_cb_info(env: Env, info: CallbackInfo, argc: *usize, argv: [*]Value, this: ?*Value, data: ?*?*anyopaque) Status;
pub extern fn napi_typeof(env: Env, value: Value, result: *ValueType) Status;
pub extern fn napi_get_value_double(env: Env, value: Value, result: *f64) Status;
pub extern fn napi_get_value_bool(env: Env, value: Value, result: *bool) Status;
pub extern fn napi_get_value_string_utf8(env: Env, value: Value, buf: ?[*]u8, bufsize: usize, result: ?*usize) Status;
pub extern fn napi_get_boolean(env: Env, value: bool, result: *Value) Status;
pub extern fn napi_get_null(env: Env, result: *Value) Status;
pub extern fn napi_get_undefined(env: Env, result: *Value) Status;
pub extern fn napi_get_global(env: Env, result: *Value) Status;
pub extern fn napi_create_double(env: Env, value: f64, result: *Value) Status;
pub extern fn napi_create_int32(env: Env, value: i32, result: *Value) Status;
pub extern fn napi_create_string_utf8(env: Env, str: [*]const u8, len: usize, result: *Value) Status;
pub extern fn napi_create_object(env: Env, result: *Value) Status;
pub extern fn napi_set_named_property(env: Env, object: Value, name: [*:0]const u8, value: Value) Status;
pub extern fn napi_create_array_with_length(env: Env, len: usize, result: *Value) Status;
pub extern fn napi_set_element(env: Env, object: Value, index: u32, value: Value) Status;
pub extern fn napi_create_buffer_copy(env: Env, len: usize, data: ?*const anyopaque, result_data: ?*?*anyopaque, result: *Value) Status;
pub extern fn napi_create_error(env: Env, code: ?Value, msg: Value, result: *Value) Status;
pub extern fn napi_throw(env: Env, err: Value) Status;
pub extern fn napi_throw_error(env: Env, code: ?[*:0]const u8, msg: [*:0]const u8) Status;
pub extern fn napi_throw_type_error(env: Env, code: ?[*:0]const u8, msg: [*:0]const u8) Status;
pub extern fn napi_is_exception_pending(env: Env, result: *bool) Status;
pub extern fn napi_get_and_clear_last_exception(env: Env, result: *Value) Status;
pub extern fn napi_create_reference(env: Env, value: Value, initial_refcount: u32, result: *Ref) Status;
pub extern fn napi_delete_reference(env: Env, ref: Ref) Status;
pub extern fn napi_get_reference_value(env: Env, ref: Ref, result: *?Value) Status;
pub extern fn napi_open_handle_scope(env: Env, result: *HandleScope) Status;
pub extern fn napi_close_handle_scope(env: Env, scope: HandleScope) Status;
pub extern fn napi_async_init(env: Env, resource: ?Value, name: Value, result: *AsyncContext) Status;
pub extern fn napi_async_destroy(env: Env, context: AsyncContext) Status;
pub extern fn napi_make_callback(env: Env, context: ?AsyncContext, recv: Value, func: Value, argc: usize, argv: [*]const Value, result: ?*Value) Status;
pub extern fn napi_get_uv_event_loop(env: Env, loop: *?*uv.Loop) Status;
pub extern fn napi_add_async_cleanup_hook(env: Env, hook: AsyncCleanupHook, arg: ?*anyopaque, remove_handle: ?*AsyncCleanupHandle) Status;
pub extern fn napi_remove_async_cleanup_hook(handle: AsyncCleanupHandle) Status;

pub const uv = struct {
    pub const Loop = opaque {};
    /// uv_poll_t is allocated with uv_handle_size, never laid out here; only its
    /// first field, `void* data` (public, "libuv does not use this field"), is ours.
    pub const Poll = extern struct { data: ?*anyopaque };
    pub const PollCallback = *const fn (*Poll, c_int, c_int) callconv(.c) void;
    pub const CloseCallback = *const fn (*Poll) callconv(.c) void;

    /// uv_handle_type: UV_UNKNOWN_HANDLE = 0, then UV_HANDLE_TYPE_MAP in order
    /// (ASYNC, CHECK, FS_EVENT, FS_POLL, HANDLE, IDLE, NAMED_PIPE, POLL, ...).
    /// exits.zig checks the name libuv gives this number before trusting it.
    pub const POLL: c_int = 8;
    pub const READABLE: c_int = 1;

    pub extern fn uv_handle_size(kind: c_int) usize;
    pub extern fn uv_handle_type_name(kind: c_int) ?[*:0]const u8;
    pub extern fn uv_poll_init(loop: *Loop, handle: *Poll, fd: c_int) c_int;
    pub extern fn uv_poll_start(handle: *Poll, events: c_int, cb: PollCallback) c_int;
    pub extern fn uv_poll_stop(handle: *Poll) c_int;
    pub extern fn uv_unref(handle: *Poll) void;
    pub extern fn uv_close(handle: *Poll, cb: ?CloseCallback) void;
};

/// A Node-API call failed. An exception is then usually pending already; where
/// none is, `fail` throws a plain one so JS never sees a silent `undefined`.
pub const Error = error{Napi};

pub fn check(status: Status) Error!void {
    if (status != .ok) return error.Napi;
}

pub fn fail(env: Env, what: [*:0]const u8) void {
    var pending = false;
    if (napi_is_exception_pending(env, &pending) == .ok and pending) return;
    _ = napi_throw_error(env, "ERR_STYXY_KERNEL", what);
}

pub fn string(env: Env, s: []const u8) Error!Value {
    var v: Value = undefined;
    try check(napi_create_string_utf8(env, s.ptr, s.len, &v));
    return v;
}

pub fn number(env: Env, x: f64) Error!Value {
    var v: Value = undefined;
    try check(napi_create_double(env, x, &v));
    return v;
}

pub fn boolean(env: Env, b: bool) Error!Value {
    var v: Value = undefined;
    try check(napi_get_boolean(env, b, &v));
    return v;
}

pub fn undefinedValue(env: Env) Error!Value {
    var v: Value = undefined;
    try check(napi_get_undefined(env, &v));
    return v;
}

/// Throws an Error shaped like Node's own system errors: `code` 'EPERM',
/// `errno` negative (as libuv's and Node's are), `syscall`.
pub fn throwErrno(env: Env, errno: u16, syscall: []const u8) void {
    throwErrnoOrFail(env, errno, syscall) catch fail(env, "could not build the error");
}

fn throwErrnoOrFail(env: Env, errno: u16, syscall: []const u8) Error!void {
    const code = errnoName(errno);
    var buf: [160]u8 = undefined;
    const text = std.fmt.bufPrint(&buf, "{s} failed: {s}", .{ syscall, code }) catch unreachable;
    var err: Value = undefined;
    try check(napi_create_error(env, try string(env, code), try string(env, text), &err));
    try check(napi_set_named_property(env, err, "errno", try number(env, -@as(f64, @floatFromInt(errno)))));
    try check(napi_set_named_property(env, err, "syscall", try string(env, syscall)));
    try check(napi_throw(env, err));
}

/// 'EPERM' for 1: the names are std's E tags with the E put back.
pub fn errnoName(errno: u16) []const u8 {
    const E = std.os.linux.E;
    inline for (@typeInfo(E).@"enum".fields) |f| {
        if (f.value == errno) return "E" ++ f.name;
    }
    return "EUNKNOWN";
}

test "errno names are the C ones" {
    try std.testing.expectEqualStrings("EPERM", errnoName(1));
    try std.testing.expectEqualStrings("ESRCH", errnoName(3));
    try std.testing.expectEqualStrings("ENOSYS", errnoName(38));
    try std.testing.expectEqualStrings("EUNKNOWN", errnoName(4095));
}
