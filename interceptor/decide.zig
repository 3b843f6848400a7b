//! What happens to a bind that passed the guards: ask the daemon, bind what
//! it says, re-ask if the kernel disagrees, and otherwise get out of the way.
//!
//! Every exit funnels through the original caller-visible contract: the
//! return value and errno are those of the last real bind, and any failure of
//! Styxy itself degrades to the plain bind the program asked for.

const std = @import("std");
const c = std.c;
const env = @import("env.zig");
const ipc = @import("ipc.zig");
const json = @import("json.zig");
const real = @import("real.zig");
const sockaddr = @import("sockaddr.zig");

/// First ask plus two retries: enough to step past a couple of listeners the
/// daemon didn't know about without stalling startup on a confused daemon.
pub const max_asks = 3;

pub const Bind = struct {
    fd: c_int,
    original: []const u8,
    parsed: sockaddr.Parsed,
};

/// Returns the final real bind's outcome; the caller turns it into rc/errno.
pub fn run(b: *const Bind, cfg: *const env.Config) real.Result {
    const deadline = ipc.Deadline.fromNow(cfg.timeout_ms);

    var addr_buf: [sockaddr.max_text_len]u8 = undefined;
    const addr_text = sockaddr.formatAddress(&b.parsed, &addr_buf);
    var cmd_buf: [env.cmdline_max]u8 = undefined;
    var cwd_buf: [env.cwd_max]u8 = undefined;
    var sock_buf: env.PathBuf = undefined;
    var token_buf: env.PathBuf = undefined;

    const target: ipc.Target = .{
        .unix_path = env.socketPath(env.processEnv, &sock_buf),
        .tcp = tcp: {
            const host = cfg.daemon_host orelse break :tcp null;
            const tp = env.tokenPath(env.processEnv, &token_buf) orelse break :tcp null;
            break :tcp .{ .addr = host, .port = cfg.daemon_port, .token_path = tp };
        },
    };

    var taken: [max_asks]u16 = undefined;
    var n_taken: usize = 0;
    var req: json.Request = .{
        .pid = c.getpid(),
        .port = b.parsed.port,
        .family = b.parsed.family.jsonName(),
        .address = addr_text,
        .command = env.commandLine(&cmd_buf),
        .cwd = env.cwd(&cwd_buf),
        .instance_id = cfg.instance_id,
        .reassign = cfg.reassign,
    };

    var ask: usize = 1;
    while (ask <= max_asks) : (ask += 1) {
        req.taken = taken[0..n_taken];
        var body_buf: [3072]u8 = undefined;
        const body = json.buildBody(&body_buf, &req) orelse {
            env.debug(cfg, "port {d}: request too large, binding unchanged", .{b.parsed.port});
            return original(b);
        };
        const d = switch (ipc.exchange(target, body, deadline)) {
            .answer => |d| d,
            .fail => |why| {
                env.debug(cfg, "port {d} ({s} {s}): fail open: {s}", .{ b.parsed.port, req.family, addr_text, why });
                return original(b);
            },
        };
        env.debug(cfg, "port {d} ({s} {s}) ask {d}: {s} port={d} repeat={}", .{ b.parsed.port, req.family, addr_text, ask, @tagName(d.action), d.port, d.repeat });

        const tried: u16, const res: real.Result = switch (d.action) {
            .deny => return original(b),
            .allow => .{ b.parsed.port, original(b) },
            .remap => blk: {
                const moved = sockaddr.withPort(b.original, d.port) orelse return original(b);
                break :blk .{ d.port, real.callBytes(b.fd, moved.bytes()) };
            },
        };
        if (res.ok()) {
            if (tried != b.parsed.port and !d.repeat) env.notice(cfg.notify, b.parsed.port, tried);
            return res;
        }
        if (res.err != real.E_ADDRINUSE) {
            // Not a conflict Styxy can route around; let the program see its own bind's error.
            env.debug(cfg, "port {d}: bind of {d} failed with errno {d}, binding unchanged", .{ b.parsed.port, tried, res.err });
            return if (tried == b.parsed.port) res else original(b);
        }
        env.debug(cfg, "port {d}: {d} is in use by an unknown listener", .{ b.parsed.port, tried });
        if (std.mem.indexOfScalar(u16, taken[0..n_taken], tried) == null) {
            taken[n_taken] = tried;
            n_taken += 1;
        }
    }
    env.debug(cfg, "port {d}: no free port after {d} asks, binding unchanged", .{ b.parsed.port, max_asks });
    return original(b);
}

fn original(b: *const Bind) real.Result {
    return real.callBytes(b.fd, b.original);
}
