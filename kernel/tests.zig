//! Root of the kernel addon's unit tests in `zig build test`. addon.zig is
//! absent: its Node-API and libuv symbols exist only inside node.

test {
    _ = @import("napi.zig");
    _ = @import("sockdiag.zig");
    _ = @import("diag_messages.zig");
    _ = @import("exits.zig");
    _ = @import("bindable.zig");
    _ = @import("notify.zig");
}
