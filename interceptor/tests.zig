//! Root of `zig build test`: pulls in every module's unit tests in one binary.
//! exports.zig is deliberately absent: a test binary exporting `bind` or
//! `connect` would intercept the test's own sockets (follow_test.zig drives
//! the connect hook's code directly instead).

test {
    _ = @import("sockaddr.zig");
    _ = @import("request_body.zig");
    _ = @import("decision.zig");
    _ = @import("settings.zig");
    _ = @import("paths.zig");
    _ = @import("proc.zig");
    _ = @import("token.zig");
    _ = @import("notice.zig");
    _ = @import("debug.zig");
    _ = @import("fdio.zig");
    _ = @import("answer.zig");
    _ = @import("ipc.zig");
    _ = @import("deadline.zig");
    _ = @import("real.zig");
    _ = @import("decide.zig");
    _ = @import("nearby.zig");
    _ = @import("owner.zig");
    _ = @import("filter.zig");
    _ = @import("fdpass.zig");
    _ = @import("seccomp_notify.zig");
    _ = @import("ipc_fuzz.zig");
    _ = @import("contract.zig");
    _ = @import("project.zig");
    _ = @import("follow_table.zig");
    _ = @import("peers.zig");
    _ = @import("follow_test.zig");
    _ = @import("follow_report.zig");
    _ = @import("follow_torn_test.zig");
}
