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
//!   connection(clientAddress, clientPort, serverAddress, serverPort): Buffer | null
//!       The one TCP socket whose local end is clientAddress:clientPort and
//!       whose peer is serverAddress:serverPort (addresses as Node prints them,
//!       IPv4 or IPv6, one family for both), as one record like sockets'; null
//!       when the kernel has no such connection. Looked up in the kernel's
//!       connection hash, not dumped: a daemon asks who is at the other end of
//!       a connection it accepted, at the cost of one socket.
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
//! Split by concern: addon_common.zig (state, arguments), addon_exits.zig
//! (exit watches); the sockets, notify and teardown are here.

const std = @import("std");
const napi = @import("napi.zig");
const bindtest = @import("bindable.zig");
const sdnotify = @import("notify.zig");
const common = @import("addon_common.zig");
const exitwatch = @import("addon_exits.zig");
const uv = napi.uv;

const gpa = common.gpa;
const State = common.State;
const Args = common.Args;
const wrap = common.wrap;
const throwType = common.throwType;
const integerArg = common.integerArg;
const stringArg = common.stringArg;

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
    .{ "connection", connection },
    .{ "bindable", bindable },
    .{ "stats", stats },
    .{ "probe", probe },
    .{ "onExit", exitwatch.onExit },
    .{ "watch", exitwatch.watch },
    .{ "unwatch", exitwatch.unwatch },
    .{ "watching", exitwatch.watching },
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

/// An IPv4 or IPv6 address argument, in the inet_diag layout: family, and
/// the address in network order (IPv4 in the first 4 bytes).
fn addressArg(env: napi.Env, a: Args, i: usize) napi.Error!struct { family: u8, bytes: [16]u8 } {
    const msg = "addresses must be IPv4 or IPv6 addresses as text";
    var buf: [64]u8 = undefined;
    const text = try stringArg(env, a, i, &buf, msg);
    var bytes = [_]u8{0} ** 16;
    if (std.net.Ip4Address.parse(text, 0)) |v4| {
        @memcpy(bytes[0..4], std.mem.asBytes(&v4.sa.addr));
        return .{ .family = std.os.linux.AF.INET, .bytes = bytes };
    } else |_| {}
    const v6 = std.net.Ip6Address.parse(text, 0) catch return throwType(env, msg);
    return .{ .family = std.os.linux.AF.INET6, .bytes = v6.sa.addr };
}

fn connection(env: napi.Env, a: Args) napi.Error!napi.Value {
    const client = try addressArg(env, a, 0);
    const client_port: u16 = @intFromFloat(try integerArg(env, a, 1, 1, 65535, "ports must be integers from 1 to 65535"));
    const server = try addressArg(env, a, 2);
    const server_port: u16 = @intFromFloat(try integerArg(env, a, 3, 1, 65535, "ports must be integers from 1 to 65535"));
    if (client.family != server.family) return throwType(env, "both addresses must be of one family");
    const s = a.state;
    defer s.records.clearRetainingCapacity();
    const found = s.diag.connection(gpa, &s.records, client.family, client.bytes, client_port, server.bytes, server_port) catch |err| {
        switch (err) {
            error.Kernel => napi.throwErrno(env, s.diag.errno, s.diag.failed_call),
            error.OutOfMemory => napi.throwErrno(env, @intFromEnum(std.os.linux.E.NOMEM), "sock_diag"),
        }
        return error.Napi;
    };
    var v: napi.Value = undefined;
    if (!found) {
        try napi.check(napi.napi_get_null(env, &v));
        return v;
    }
    try napi.check(napi.napi_create_buffer_copy(env, s.records.items.len, s.records.items.ptr, null, &v));
    return v;
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
    exitwatch.freePoll(poll);
    _ = napi.napi_remove_async_cleanup_hook(handle);
}
