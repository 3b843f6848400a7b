//! The addon's exit watches: pidfds in an epoll set that libuv polls, and
//! the JS callback told of the pids that exited.

const std = @import("std");
const napi = @import("napi.zig");
const common = @import("addon_common.zig");
const uv = napi.uv;

const gpa = common.gpa;
const State = common.State;
const Args = common.Args;
const pidArg = common.pidArg;
const throwType = common.throwType;

pub fn watch(env: napi.Env, a: Args) napi.Error!napi.Value {
    const pid = try pidArg(env, a);
    const s = a.state;
    const watching_now = s.watcher.watch(gpa, pid) catch |err| {
        switch (err) {
            error.Kernel => napi.throwErrno(env, s.watcher.errno, s.watcher.failed_call),
            error.OutOfMemory => napi.throwErrno(env, @intFromEnum(std.os.linux.E.NOMEM), "watch"),
        }
        return error.Napi;
    };
    return napi.boolean(env, watching_now);
}

pub fn unwatch(env: napi.Env, a: Args) napi.Error!napi.Value {
    const pid = try pidArg(env, a);
    return napi.boolean(env, a.state.watcher.unwatch(pid));
}

pub fn watching(env: napi.Env, a: Args) napi.Error!napi.Value {
    return napi.number(env, @floatFromInt(a.state.watcher.count()));
}

pub fn onExit(env: napi.Env, a: Args) napi.Error!napi.Value {
    var kind: napi.ValueType = .undefined;
    if (a.argc < 1 or napi.napi_typeof(env, a.argv[0], &kind) != .ok or kind != .function)
        return throwType(env, "onExit needs a function");
    const s = a.state;
    var ref: napi.Ref = undefined;
    try napi.check(napi.napi_create_reference(env, a.argv[0], 1, &ref));
    if (s.callback) |old| _ = napi.napi_delete_reference(env, old);
    s.callback = ref;
    if (s.async_context == null) {
        var resource: napi.Value = undefined;
        try napi.check(napi.napi_create_object(env, &resource));
        var ctx: napi.AsyncContext = undefined;
        try napi.check(napi.napi_async_init(env, resource, try napi.string(env, "styxy:exit"), &ctx));
        s.async_context = ctx;
    }
    try startPoll(env, s);
    return napi.undefinedValue(env);
}

/// libuv watches the epoll fd; the epoll set holds the pidfds. Exits that
/// happened before onExit (watch() may come first) wait in the set.
fn startPoll(env: napi.Env, s: *State) napi.Error!void {
    if (s.poll != null) return;
    s.watcher.open() catch {
        napi.throwErrno(env, s.watcher.errno, s.watcher.failed_call);
        return error.Napi;
    };
    const name = uv.uv_handle_type_name(uv.POLL) orelse "";
    if (!std.mem.eql(u8, std.mem.span(name), "poll")) {
        _ = napi.napi_throw_error(env, "ERR_STYXY_KERNEL", "this libuv numbers its handle types differently: UV_POLL is not 8");
        return error.Napi;
    }
    var loop: ?*uv.Loop = null;
    try napi.check(napi.napi_get_uv_event_loop(env, &loop));
    const mem = gpa.alignedAlloc(u8, 16, uv.uv_handle_size(uv.POLL)) catch {
        napi.throwErrno(env, @intFromEnum(std.os.linux.E.NOMEM), "uv_poll_init");
        return error.Napi;
    };
    const poll: *uv.Poll = @ptrCast(mem.ptr);
    var rc = uv.uv_poll_init(loop.?, poll, s.watcher.epfd);
    if (rc == 0) {
        poll.data = s;
        rc = uv.uv_poll_start(poll, uv.READABLE, onReadable);
        if (rc != 0) uv.uv_close(poll, freePoll); // initialised: only libuv may let go of it
    } else gpa.free(mem);
    if (rc != 0) {
        napi.throwErrno(env, @intCast(-rc), "uv_poll_start");
        return error.Napi;
    }
    // A daemon with nothing else to do exits; a watch is no reason to stay.
    uv.uv_unref(poll);
    s.poll = poll;
}

pub fn freePoll(poll: *uv.Poll) callconv(.c) void {
    const mem: [*]align(16) u8 = @ptrCast(@alignCast(poll));
    gpa.free(mem[0..uv.uv_handle_size(uv.POLL)]);
}

fn onReadable(poll: *uv.Poll, status: c_int, events: c_int) callconv(.c) void {
    _ = events;
    _ = status; // an error of the poll is epoll's own, and epoll_wait below meets it too
    const s: *State = @ptrCast(@alignCast(poll.data orelse return));
    s.pids.clearRetainingCapacity();
    s.watcher.drain(gpa, &s.pids) catch |err| {
        // epoll_wait itself failing would fail again on every turn of the loop: stop rather than spin.
        if (err == error.Kernel) _ = uv.uv_poll_stop(poll);
    };
    if (s.pids.items.len == 0) return;
    deliver(s) catch {};
}

fn deliver(s: *State) napi.Error!void {
    const env = s.env;
    var scope: napi.HandleScope = undefined;
    try napi.check(napi.napi_open_handle_scope(env, &scope));
    defer _ = napi.napi_close_handle_scope(env, scope);
    // No JS is below us to catch anything: what the callback throws (or a
    // failed call leaves) is dropped, inside the scope, never raised in the daemon.
    defer dropPendingException(env);

    var cb: ?napi.Value = null;
    try napi.check(napi.napi_get_reference_value(env, s.callback orelse return, &cb));
    var list: napi.Value = undefined;
    try napi.check(napi.napi_create_array_with_length(env, s.pids.items.len, &list));
    for (s.pids.items, 0..) |pid, i| {
        var v: napi.Value = undefined;
        try napi.check(napi.napi_create_int32(env, pid, &v));
        try napi.check(napi.napi_set_element(env, list, @intCast(i), v));
    }
    var global: napi.Value = undefined;
    try napi.check(napi.napi_get_global(env, &global));
    // make_callback, not call_function: it runs the nextTick queue and the
    // microtasks the callback leaves, as any callback from the event loop does.
    const argv = [_]napi.Value{list};
    try napi.check(napi.napi_make_callback(env, s.async_context, global, cb orelse return, 1, &argv, null));
}

fn dropPendingException(env: napi.Env) void {
    var pending = false;
    if (napi.napi_is_exception_pending(env, &pending) == .ok and pending) {
        var dropped: napi.Value = undefined;
        _ = napi.napi_get_and_clear_last_exception(env, &dropped);
    }
}
