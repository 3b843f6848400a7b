//! `styxy-front SOCKET`: the daemon's native front for the interceptor's one
//! request, started by the daemon with fd 3 as its link (see link.zig).
//!
//! Every intercepted bind opens a connection, sends one request and reads one
//! answer. Node spends ~200 µs of CPU per connection before our code sees a
//! byte (accept, handle and stream objects, the read and close callbacks): more
//! than the decision itself, and the larger part of the bind's added latency.
//! Here a connection costs a few syscalls, and the daemon reads the requests
//! of many connections at once from one socket it already has.
//!
//! The front judges nothing: it forwards whole requests and writes back the
//! answers, so every refusal and every decision is still the daemon's. It
//! serves until the link ends (the daemon stopped or died) and then removes
//! its socket file if that is still its own.

const std = @import("std");
const linux = std.os.linux;
const request = @import("request.zig");
const link = @import("link.zig");

const link_fd: linux.fd_t = 3;
const max_conns = 256; // every slot fits a link.Slot
/// A client that has not sent its whole request, or not taken its answer, in
/// this long is dropped; the interceptor gave up long before.
const idle_ms = 5000;

const Conn = struct {
    fd: linux.fd_t = -1,
    gen: link.Gen = 0,
    state: enum { reading, waiting, writing, draining } = .reading,
    /// Answered by the front itself: the client may still be sending (a body it declared too large).
    refused: bool = false,
    /// reading: bytes received; writing: bytes of the answer.
    len: usize = 0,
    sent: usize = 0,
    deadline: i64 = 0,
    buf: [request.max]u8 = undefined,
};

// Set up in main(): a 2 MB initializer would be built at compile time.
var conns: [max_conns]Conn = undefined;
var free_slots: [max_conns]link.Slot = undefined;
var free_count: usize = 0;

// Each connection has at most one frame in flight, so this never fills unless
// the daemon stops reading while dropped clients' slots are reused.
var out_buf: [max_conns * (request.max + link.header_len)]u8 = undefined;
var out_len: usize = 0;
var in_buf: [64 * 1024]u8 = undefined;
var in_len: usize = 0;

var epfd: linux.fd_t = -1;
var listen_fd: linux.fd_t = -1;
var listening = true;
var link_wants_out = false;
var socket_path: [:0]const u8 = undefined;
var socket_ino: u64 = 0;

const tag_listener: u64 = 1 << 32;
const tag_link: u64 = 2 << 32;

/// A connection's epoll data names its slot and generation: an event still queued for a connection dropped
/// earlier in the same batch must not be applied to the next one in that slot.
fn connTag(slot: link.Slot) u64 {
    return link.id(slot, conns[slot].gen);
}

pub const panic = std.debug.FullPanic(panicExit);

fn panicExit(msg: []const u8, _: ?usize) noreturn {
    @branchHint(.cold);
    fatal("panic: {s}", .{msg});
}

fn say(comptime fmt: []const u8, args: anytype) void {
    var buf: [512]u8 = undefined;
    const line = std.fmt.bufPrint(&buf, "styxy-front: " ++ fmt ++ "\n", args) catch return;
    _ = linux.write(2, line.ptr, line.len);
}

fn fatal(comptime fmt: []const u8, args: anytype) noreturn {
    say(fmt, args);
    removeSocket();
    linux.exit_group(1);
}

fn nowMs() i64 {
    var ts: linux.timespec = undefined;
    _ = linux.clock_gettime(.MONOTONIC, &ts);
    return @as(i64, ts.sec) * 1000 + @divTrunc(ts.nsec, std.time.ns_per_ms);
}

fn failed(rc: usize) ?linux.E {
    const e = linux.E.init(rc);
    return if (e == .SUCCESS) null else e;
}

/// Only our own: after a crash and restart the path may already be the next
/// front's socket.
fn removeSocket() void {
    if (socket_ino == 0) return;
    var st: linux.Stat = undefined;
    if (failed(linux.stat(socket_path, &st)) == null and st.ino == socket_ino) _ = linux.unlink(socket_path);
    socket_ino = 0;
}

pub fn main() void {
    const argv = std.os.argv;
    if (argv.len != 2) {
        say("usage: styxy-front SOCKET (started by the daemon, fd 3 its link)", .{});
        linux.exit_group(2);
    }
    socket_path = std.mem.span(argv[1]);
    // Our stdin/stdout are the daemon's business; fd 3 must not reach anything we exec (we exec nothing, but
    // a link fd leaked to a child would keep the daemon's side from ever seeing us gone).
    _ = linux.fcntl(link_fd, linux.F.SETFD, linux.FD_CLOEXEC);
    setNonBlocking(link_fd);

    for (0..max_conns) |i| {
        conns[i].fd = -1;
        conns[i].gen = 0;
        free_slots[i] = @intCast(max_conns - 1 - i);
    }
    free_count = max_conns;

    listen_fd = listenOn(socket_path);
    const ep = linux.epoll_create1(linux.EPOLL.CLOEXEC);
    if (failed(ep)) |e| fatal("epoll_create1: {s}", .{@tagName(e)});
    epfd = @intCast(ep);
    ctl(linux.EPOLL.CTL_ADD, listen_fd, linux.EPOLL.IN, tag_listener);
    ctl(linux.EPOLL.CTL_ADD, link_fd, linux.EPOLL.IN, tag_link);
    queueFrame(link.ready_id, "ready") catch unreachable;
    flushLink();
    loop();
}

fn setNonBlocking(fd: linux.fd_t) void {
    const flags = linux.fcntl(fd, linux.F.GETFL, 0);
    if (failed(flags)) |e| fatal("fcntl({d}): {s} (no link on fd 3?)", .{ fd, @tagName(e) });
    _ = linux.fcntl(fd, linux.F.SETFL, flags | linux.SOCK.NONBLOCK);
}

fn listenOn(path: [:0]const u8) linux.fd_t {
    var sa: linux.sockaddr.un = .{ .path = [_]u8{0} ** 108 };
    if (path.len >= sa.path.len) fatal("socket path too long: {s}", .{path});
    @memcpy(sa.path[0..path.len], path);
    const rc = linux.socket(linux.AF.UNIX, linux.SOCK.STREAM | linux.SOCK.NONBLOCK | linux.SOCK.CLOEXEC, 0);
    if (failed(rc)) |e| fatal("socket: {s}", .{@tagName(e)});
    const fd: linux.fd_t = @intCast(rc);
    // The daemon removed any stale file before starting us; one here now is someone else's, left alone.
    if (failed(linux.bind(fd, @ptrCast(&sa), @sizeOf(linux.sockaddr.un)))) |e| fatal("bind {s}: {s}", .{ path, @tagName(e) });
    // Private to the user: the daemon's umask (077) already made it so; chmod says it outright.
    _ = linux.chmod(path, 0o600);
    var st: linux.Stat = undefined;
    if (failed(linux.stat(path, &st)) == null) socket_ino = st.ino;
    if (failed(linux.listen(fd, 511))) |e| fatal("listen {s}: {s}", .{ path, @tagName(e) });
    return fd;
}

fn ctl(op: u32, fd: linux.fd_t, events: u32, data: u64) void {
    var ev: linux.epoll_event = .{ .events = events, .data = .{ .u64 = data } };
    if (failed(linux.epoll_ctl(epfd, op, fd, &ev))) |e| fatal("epoll_ctl: {s}", .{@tagName(e)});
}

fn loop() noreturn {
    var events: [64]linux.epoll_event = undefined;
    var next_sweep: i64 = 0;
    while (true) {
        const timeout: i32 = if (free_count < max_conns or !listening) 250 else -1;
        const rc = linux.epoll_wait(epfd, &events, events.len, timeout);
        if (failed(rc)) |e| {
            if (e == .INTR) continue;
            fatal("epoll_wait: {s}", .{@tagName(e)});
        }
        for (events[0..rc]) |ev| {
            const data = ev.data.u64;
            if (data == tag_listener) {
                acceptAll();
            } else if (data == tag_link) {
                if (ev.events & linux.EPOLL.OUT != 0) flushLink();
                if (ev.events & (linux.EPOLL.IN | linux.EPOLL.HUP | linux.EPOLL.ERR) != 0) readLink();
            } else {
                const frame_id: u32 = @intCast(data);
                serve(link.slotOf(frame_id), link.genOf(frame_id), ev.events);
            }
        }
        const now = nowMs();
        if (now >= next_sweep) {
            for (&conns, 0..) |*conn, i| {
                if (conn.fd >= 0 and now > conn.deadline) drop(@intCast(i));
            }
            // Accepting was paused by an error (out of fds or memory), not by full slots: try again.
            if (!listening and free_count > 0) resumeListening();
            next_sweep = now + 250;
        }
    }
}

fn acceptAll() void {
    while (free_count > 0) {
        const rc = linux.accept4(listen_fd, null, null, linux.SOCK.NONBLOCK | linux.SOCK.CLOEXEC);
        if (failed(rc)) |e| switch (e) {
            .AGAIN, .INTR, .CONNABORTED => return,
            // Out of fds or memory: stop accepting for a moment rather than spin; the backlog holds them.
            else => return pauseListening(),
        };
        free_count -= 1;
        const slot = free_slots[free_count];
        const conn = &conns[slot];
        conn.* = .{ .fd = @intCast(rc), .gen = conn.gen +% 1, .deadline = nowMs() + idle_ms };
        if (conn.gen == 0) conn.gen = 1; // generation 0 is the link's own (ready, ping)
        ctl(linux.EPOLL.CTL_ADD, conn.fd, linux.EPOLL.IN, connTag(slot));
        // The interceptor writes its request right after connecting: it is usually here already, and reading
        // it now saves a turn of the loop.
        readRequest(slot);
    }
    pauseListening();
}

fn pauseListening() void {
    if (!listening) return;
    listening = false;
    ctl(linux.EPOLL.CTL_MOD, listen_fd, 0, tag_listener);
}

fn drop(slot: link.Slot) void {
    const conn = &conns[slot];
    if (conn.fd < 0) return; // already dropped earlier in this batch of events: the slot must be freed once
    _ = linux.close(conn.fd); // also takes it out of the epoll set
    conn.fd = -1;
    free_slots[free_count] = slot;
    free_count += 1;
    resumeListening();
}

fn resumeListening() void {
    if (listening) return;
    listening = true;
    ctl(linux.EPOLL.CTL_MOD, listen_fd, linux.EPOLL.IN, tag_listener);
}

fn serve(slot: link.Slot, gen: link.Gen, events: u32) void {
    const conn = &conns[slot];
    // An event from the same batch as this slot's drop (say, the hang-up of a client answered just before),
    // maybe with a new client in the slot already.
    if (conn.fd < 0 or conn.gen != gen) return;
    switch (conn.state) {
        .reading => readRequest(slot),
        .writing => writeAnswer(slot),
        // A client gone while the daemon decides: its answer will find the slot's generation moved on.
        .waiting => if (events & (linux.EPOLL.HUP | linux.EPOLL.ERR) != 0) drop(slot),
        .draining => drain(slot),
    }
}

fn readRequest(slot: link.Slot) void {
    const conn = &conns[slot];
    var ended = false;
    while (conn.len < conn.buf.len) {
        const rc = linux.recvfrom(conn.fd, conn.buf[conn.len..].ptr, conn.buf.len - conn.len, 0, null, null);
        if (failed(rc)) |e| switch (e) {
            .AGAIN => break,
            .INTR => continue,
            else => return drop(slot),
        };
        if (rc == 0) {
            ended = true;
            break;
        }
        conn.len += rc;
    }
    if (ended and conn.len == 0) return drop(slot);
    switch (request.judge(conn.buf[0..conn.len])) {
        // Half-closed before its request was whole: answered as the daemon's parser would. (Half-closed
        // after it is fine: the answer still goes out on our side.)
        .incomplete => if (ended) refuse(slot, request.cut_short),
        .bad => |why| refuse(slot, why),
        .complete => {
            queueFrame(link.id(slot, conn.gen), conn.buf[0..conn.len]) catch return refuse(slot, request.busy);
            conn.state = .waiting;
            // The daemon's time is the client's to bound (its own deadline); a client that gives up hangs
            // up, and that drops it here.
            conn.deadline = std.math.maxInt(i64);
            ctl(linux.EPOLL.CTL_MOD, conn.fd, 0, connTag(slot));
            flushLink();
        },
    }
}

/// The front's only answers of its own: bytes it would not forward.
fn refuse(slot: link.Slot, why: request.Refusal) void {
    const conn = &conns[slot];
    var body: [256]u8 = undefined;
    const json = std.fmt.bufPrint(&body, "{{\"error\":{{\"code\":\"{s}\",\"message\":\"{s}\"}}}}", .{ why.code, why.message }) catch unreachable;
    const text = std.fmt.bufPrint(&conn.buf, "HTTP/1.1 {d} {s}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {d}\r\nConnection: close\r\n\r\n{s}", .{ why.status, why.reason(), json.len, json }) catch unreachable;
    conn.refused = true;
    startAnswer(slot, text.len);
}

fn startAnswer(slot: link.Slot, len: usize) void {
    const conn = &conns[slot];
    conn.state = .writing;
    conn.len = len;
    conn.sent = 0;
    ctl(linux.EPOLL.CTL_MOD, conn.fd, linux.EPOLL.OUT, connTag(slot));
    writeAnswer(slot);
}

/// Every send is MSG_NOSIGNAL: a client that hung up costs its own connection, never a SIGPIPE.
fn writeAnswer(slot: link.Slot) void {
    const conn = &conns[slot];
    while (conn.sent < conn.len) {
        const rc = linux.sendto(conn.fd, conn.buf[conn.sent..].ptr, conn.len - conn.sent, linux.MSG.NOSIGNAL, null, 0);
        if (failed(rc)) |e| switch (e) {
            .AGAIN => return,
            .INTR => continue,
            else => return drop(slot),
        };
        conn.sent += rc;
    }
    // Closed outright once answered, as the daemon does after `Connection: close`; unless the client may
    // still be sending: closing with its bytes unread would reset the connection and lose the answer, so
    // ours is ended and theirs read to its end (for a second at most).
    if (!conn.refused) return drop(slot);
    _ = linux.shutdown(conn.fd, linux.SHUT.WR);
    conn.state = .draining;
    conn.deadline = @min(conn.deadline, nowMs() + 1000);
    ctl(linux.EPOLL.CTL_MOD, conn.fd, linux.EPOLL.IN, connTag(slot));
    drain(slot);
}

fn drain(slot: link.Slot) void {
    const conn = &conns[slot];
    while (true) {
        const rc = linux.recvfrom(conn.fd, &conn.buf, conn.buf.len, 0, null, null);
        if (failed(rc)) |e| switch (e) {
            .AGAIN => return,
            .INTR => continue,
            else => return drop(slot),
        };
        if (rc == 0) return drop(slot);
    }
}

fn queueFrame(frame_id: u32, payload: []const u8) error{Full}!void {
    if (out_len + link.header_len + payload.len > out_buf.len) return error.Full;
    const h = link.header(payload.len, frame_id);
    @memcpy(out_buf[out_len..][0..link.header_len], &h);
    @memcpy(out_buf[out_len + link.header_len ..][0..payload.len], payload);
    out_len += link.header_len + payload.len;
}

fn flushLink() void {
    var off: usize = 0;
    while (off < out_len) {
        const rc = linux.sendto(link_fd, out_buf[off..].ptr, out_len - off, linux.MSG.NOSIGNAL, null, 0);
        if (failed(rc)) |e| switch (e) {
            .AGAIN => break,
            .INTR => continue,
            else => daemonGone(),
        };
        off += rc;
    }
    std.mem.copyForwards(u8, out_buf[0 .. out_len - off], out_buf[off..out_len]);
    out_len -= off;
    const want = out_len > 0;
    if (want != link_wants_out) {
        link_wants_out = want;
        ctl(linux.EPOLL.CTL_MOD, link_fd, if (want) linux.EPOLL.IN | linux.EPOLL.OUT else linux.EPOLL.IN, tag_link);
    }
}

fn readLink() void {
    while (true) {
        if (in_len == in_buf.len) fatal("link: a frame larger than {d} bytes", .{in_buf.len});
        const rc = linux.recvfrom(link_fd, in_buf[in_len..].ptr, in_buf.len - in_len, 0, null, null);
        if (failed(rc)) |e| switch (e) {
            .AGAIN => break,
            .INTR => continue,
            else => daemonGone(),
        };
        if (rc == 0) daemonGone();
        in_len += rc;
        answerFrames();
    }
}

fn answerFrames() void {
    var off: usize = 0;
    while (true) {
        const frame = (link.next(in_buf[off..in_len], in_buf.len) catch
            fatal("link: a frame larger than {d} bytes", .{in_buf.len})) orelse break;
        off += frame.size;
        if (link.genOf(frame.id) == 0) {
            if (frame.id == link.ping_id) {
                queueFrame(link.ping_id, "pong") catch {};
                flushLink();
            }
            continue;
        }
        const slot = link.slotOf(frame.id);
        const conn = &conns[slot];
        if (conn.fd < 0 or conn.gen != link.genOf(frame.id) or conn.state != .waiting) continue;
        if (frame.payload.len > conn.buf.len) {
            drop(slot);
            continue;
        }
        @memcpy(conn.buf[0..frame.payload.len], frame.payload);
        startAnswer(slot, frame.payload.len);
    }
    std.mem.copyForwards(u8, in_buf[0 .. in_len - off], in_buf[off..in_len]);
    in_len -= off;
}

fn daemonGone() noreturn {
    removeSocket();
    linux.exit_group(0);
}
