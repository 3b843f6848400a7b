//! styxy_kernel.node: the daemon asks the Linux kernel exact questions.
//!
//!   sockets(port: number, listenOnly: boolean): Buffer
//!       The TCP sockets (IPv4 and IPv6) whose local port is `port` (every
//!       port when 0): listeners only, or every state. One Buffer of 32-byte
//!       records, little-endian:
//!         0  u8   family: 4 or 6
//!         1  u8   TCP state (1 ESTABLISHED ... 6 TIME_WAIT ... 10 LISTEN)
//!         2  u16  local port
//!         4  u32  uid (0 for TIME_WAIT and SYN_RECV entries: no owner left)
//!         8  u32  socket inode (0 likewise)
//!         12 u32  reserved, 0
//!         16 16B  local address, network order; IPv4 in the first 4 bytes
//!       src/kernel/decode.ts reads it. Throws a system error (code, errno,
//!       syscall) when the kernel refuses.
//!   bindable(port): boolean | null
//!       Whether a socket without SO_REUSEADDR could bind the port now (null:
//!       the kernel would not say). See bindable.zig.
//!   stats(): {queries, examined}      dumps asked for; sockets the kernel sent
//!   probe(): 'sock_diag'              or throws, as sockets() would
//!   onExit(cb: (pids: number[]) => void): void
//!       cb gets the pids of watched processes that exited since the last
//!       call. The watch never keeps the event loop alive. A throw in cb is
//!       dropped, never raised: the daemon must not die of its own listener.
//!   watch(pid): boolean      false: no such process. Throws with code
//!                            'ENOSYS' where the kernel has no pidfd_open.
//!   unwatch(pid): boolean    false: was not watched
//!   watching(): number
//!   notify(socket: string, message: string): void
//!       sd_notify: one datagram to $NOTIFY_SOCKET ('@' first: abstract
//!       namespace), from this process. Throws a system error when it fails.
//!       See notify.zig.
//!
//! One State per Node environment (the main thread, each worker), freed by
//! the environment's cleanup hook.

const std = @import("std");
const napi = @import("napi.zig");
const sockdiag = @import("sockdiag.zig");
const exits = @import("exits.zig");
const bindtest = @import("bindable.zig");
const sdnotify = @import("notify.zig");
const uv = napi.uv;

const gpa = std.heap.c_allocator;

const State = struct {
    env: napi.Env,
    diag: sockdiag.Diag = .{},
    records: std.ArrayListUnmanaged(u8) = .empty,
    watcher: exits.Watcher = .{},
    pids: std.ArrayListUnmanaged(exits.pid_t) = .empty,
    callback: ?napi.Ref = null,
    async_context: ?napi.AsyncContext = null,
    poll: ?*uv.Poll = null,
};

export fn node_api_module_get_api_version_v1() i32 {
    return 8;
}

export fn napi_register_module_v1(env: napi.Env, exports: napi.Value) ?napi.Value {
    register(env, exports) catch {
        napi.fail(env, "styxy_kernel: could not set up the module");
        return null;
    };
    return exports;
}

const functions = .{
    .{ "sockets", sockets },
    .{ "bindable", bindable },
    .{ "stats", stats },
    .{ "probe", probe },
    .{ "onExit", onExit },
    .{ "watch", watch },
    .{ "unwatch", unwatch },
    .{ "watching", watching },
    .{ "notify", notify },
};

fn register(env: napi.Env, exports: napi.Value) !void {
    const state = try gpa.create(State);
    state.* = .{ .env = env };
    errdefer gpa.destroy(state);
    inline for (functions) |f| {
        var fn_value: napi.Value = undefined;
        try napi.check(napi.napi_create_function(env, f[0].ptr, f[0].len, wrap(f[1]), state, &fn_value));
        try napi.check(napi.napi_set_named_property(env, exports, f[0], fn_value));
    }
    // Last: once the hook holds the state, nothing here may free it.
    try napi.check(napi.napi_add_async_cleanup_hook(env, cleanup, state, null));
}

const Args = struct { state: *State, argv: [2]napi.Value, argc: usize };

/// Every export is `fn (env, Args) !napi.Value`; this turns one into a napi
/// callback whose errors become JS exceptions.
fn wrap(comptime f: fn (napi.Env, Args) napi.Error!napi.Value) napi.Callback {
    return struct {
        fn call(env: napi.Env, info: napi.CallbackInfo) callconv(.c) ?napi.Value {
            var a: Args = .{ .state = undefined, .argv = undefined, .argc = 2 };
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

fn throwType(env: napi.Env, msg: [*:0]const u8) napi.Error {
    _ = napi.napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return error.Napi;
}

/// An integer argument in [min, max], or a TypeError.
fn integerArg(env: napi.Env, a: Args, i: usize, min: f64, max: f64, msg: [*:0]const u8) napi.Error!f64 {
    if (i >= a.argc) return throwType(env, msg);
    var x: f64 = 0;
    if (napi.napi_get_value_double(env, a.argv[i], &x) != .ok) return throwType(env, msg);
    if (x != @trunc(x) or x < min or x > max) return throwType(env, msg);
    return x;
}

fn pidArg(env: napi.Env, a: Args) napi.Error!exits.pid_t {
    return @intFromFloat(try integerArg(env, a, 0, 1, std.math.maxInt(i32), "pid must be a positive integer"));
}

// ---------------------------------------------------------------- sockets

fn sockets(env: napi.Env, a: Args) napi.Error!napi.Value {
    const port: u16 = @intFromFloat(try integerArg(env, a, 0, 0, 65535, "port must be an integer from 0 to 65535"));
    var listen_only = false;
    if (a.argc < 2 or napi.napi_get_value_bool(env, a.argv[1], &listen_only) != .ok)
        return throwType(env, "listenOnly must be a boolean");

    const s = a.state;
    defer {
        s.records.clearRetainingCapacity();
        // One dump of every socket in a crowded table should not pin its memory for good.
        if (s.records.capacity > 1 << 20) s.records.clearAndFree(gpa);
    }
    try kernelQuery(env, s, port, listen_only);
    var buf: napi.Value = undefined;
    try napi.check(napi.napi_create_buffer_copy(env, s.records.items.len, s.records.items.ptr, null, &buf));
    return buf;
}

fn kernelQuery(env: napi.Env, s: *State, port: u16, listen_only: bool) napi.Error!void {
    s.diag.query(gpa, &s.records, port, listen_only) catch |err| {
        switch (err) {
            error.Kernel => napi.throwErrno(env, s.diag.errno, s.diag.failed_call),
            error.OutOfMemory => napi.throwErrno(env, @intFromEnum(std.os.linux.E.NOMEM), "sock_diag"),
        }
        return error.Napi;
    };
}

fn bindable(env: napi.Env, a: Args) napi.Error!napi.Value {
    const port: u16 = @intFromFloat(try integerArg(env, a, 0, 1, 65535, "port must be an integer from 1 to 65535"));
    return switch (bindtest.bindable(port)) {
        .free => napi.boolean(env, true),
        .in_use => napi.boolean(env, false),
        .unknown => blk: {
            var v: napi.Value = undefined;
            try napi.check(napi.napi_get_null(env, &v));
            break :blk v;
        },
    };
}

fn stats(env: napi.Env, a: Args) napi.Error!napi.Value {
    var o: napi.Value = undefined;
    try napi.check(napi.napi_create_object(env, &o));
    try napi.check(napi.napi_set_named_property(env, o, "queries", try napi.number(env, @floatFromInt(a.state.diag.queries))));
    try napi.check(napi.napi_set_named_property(env, o, "examined", try napi.number(env, @floatFromInt(a.state.diag.examined))));
    return o;
}

fn probe(env: napi.Env, a: Args) napi.Error!napi.Value {
    defer a.state.records.clearRetainingCapacity();
    try kernelQuery(env, a.state, 0, true);
    return napi.string(env, "sock_diag");
}

/// A string argument that fits `buf` (with its NUL), or a TypeError.
fn stringArg(env: napi.Env, a: Args, i: usize, buf: []u8, msg: [*:0]const u8) napi.Error![]const u8 {
    if (i >= a.argc) return throwType(env, msg);
    var kind: napi.ValueType = .undefined;
    if (napi.napi_typeof(env, a.argv[i], &kind) != .ok or kind != .string) return throwType(env, msg);
    var len: usize = 0;
    try napi.check(napi.napi_get_value_string_utf8(env, a.argv[i], null, 0, &len));
    if (len + 1 > buf.len) return throwType(env, msg);
    try napi.check(napi.napi_get_value_string_utf8(env, a.argv[i], buf.ptr, buf.len, &len));
    return buf[0..len];
}

fn notify(env: napi.Env, a: Args) napi.Error!napi.Value {
    var path_buf: [109]u8 = undefined;
    var msg_buf: [1024]u8 = undefined;
    const path = try stringArg(env, a, 0, &path_buf, "socket must be a string of at most 108 bytes");
    const msg = try stringArg(env, a, 1, &msg_buf, "message must be a string of at most 1023 bytes");
    const e = sdnotify.send(path, msg);
    if (e != .SUCCESS) {
        napi.throwErrno(env, @intFromEnum(e), "sd_notify");
        return error.Napi;
    }
    return napi.undefinedValue(env);
}

// ---------------------------------------------------------------- exits

fn watch(env: napi.Env, a: Args) napi.Error!napi.Value {
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

fn unwatch(env: napi.Env, a: Args) napi.Error!napi.Value {
    const pid = try pidArg(env, a);
    return napi.boolean(env, a.state.watcher.unwatch(pid));
}

fn watching(env: napi.Env, a: Args) napi.Error!napi.Value {
    return napi.number(env, @floatFromInt(a.state.watcher.count()));
}

fn onExit(env: napi.Env, a: Args) napi.Error!napi.Value {
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

fn freePoll(poll: *uv.Poll) callconv(.c) void {
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

// ---------------------------------------------------------------- teardown

/// An asynchronous cleanup hook, not a plain one: the poll handle's close
/// callback runs on a later turn of the loop, and a worker unloads this
/// library once its environment is gone. With a plain hook that callback
/// jumped into unmapped code (a worker that had called onExit crashed on
/// terminate()); Node waits for napi_remove_async_cleanup_hook instead.
fn cleanup(handle: napi.AsyncCleanupHandle, arg: ?*anyopaque) callconv(.c) void {
    const s: *State = @ptrCast(@alignCast(arg orelse return));
    if (s.callback) |ref| _ = napi.napi_delete_reference(s.env, ref);
    if (s.async_context) |ctx| _ = napi.napi_async_destroy(s.env, ctx);
    s.watcher.deinit(gpa);
    s.diag.close();
    s.records.deinit(gpa);
    s.pids.deinit(gpa);
    const poll = s.poll;
    gpa.destroy(s);
    if (poll) |p| {
        _ = uv.uv_poll_stop(p);
        p.data = handle; // the last thing the close callback needs
        uv.uv_close(p, closedAtExit);
    } else _ = napi.napi_remove_async_cleanup_hook(handle);
}

fn closedAtExit(poll: *uv.Poll) callconv(.c) void {
    const handle: napi.AsyncCleanupHandle = @ptrCast(poll.data.?);
    freePoll(poll);
    _ = napi.napi_remove_async_cleanup_hook(handle);
}
