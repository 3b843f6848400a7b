//! Root of the front's unit tests in `zig build test`.

test {
    _ = @import("request.zig");
    _ = @import("link.zig");
}
