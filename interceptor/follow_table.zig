//! The follow table's reader (docs/follow-table.md): `<state dir>/follow`,
//! mapped read-only and shared, so the daemon's in-place writes reach every
//! process without a syscall on our side.
//!
//! No locks anywhere: the mapping is published with one atomic, and each
//! lookup is a seqlock read that throws away anything the daemon was writing
//! meanwhile. Raw syscalls only: this runs inside a hooked connect(), where
//! libc's errno is the caller's.

const std = @import("std");
const linux = std.os.linux;
const paths = @import("paths.zig");
const settings = @import("settings.zig");

pub const magic: u32 = 0x46595453; // "STYF"
pub const version: u32 = 1;
pub const size: usize = 24_640;
pub const max_entries: u32 = 1024;
pub const entry_size: usize = 16;

pub const off_magic = 0;
pub const off_version = 4;
pub const off_seq = 8;
pub const off_count = 12;
pub const off_bitmap = 64;
pub const off_entries = 8256;

comptime {
    std.debug.assert(off_bitmap + 65536 / 8 == off_entries);
    std.debug.assert(off_entries + max_entries * entry_size == size);
}

/// Spins while the daemon is mid-write (its write is a few syscalls: microseconds), then yields the CPU, up
/// to this long in all; past it the connect goes ahead unchanged. A daemon that died mid-write leaves `seq`
/// odd: every followed connect then pays this once, until a daemon rewrites the table.
pub const spins = 64;
pub const give_up_ns: u64 = 200 * std.time.ns_per_us;

/// A mapped table. Every read is atomic: the daemon writes the same memory while we read it.
pub const View = struct {
    base: [*]const u8,

    /// Bit `port` of the bitmap: some entry has asked for `port`. The whole cost of a connect nobody moved.
    pub inline fn moved(self: View, port: u16) bool {
        const byte = @atomicLoad(u8, &self.base[off_bitmap + (port >> 3)], .monotonic);
        return byte & (@as(u8, 1) << @intCast(port & 7)) != 0;
    }

    /// Where `project`'s server that asked for `port` is now; null when none is, or when no stable copy of
    /// the table could be read in time.
    pub fn lookup(self: View, project: u64, port: u16) ?u16 {
        var tries: usize = 0;
        var started: u64 = 0;
        while (true) : (tries += 1) {
            const before = self.word(u32, off_seq);
            if (before & 1 == 0) {
                const found = self.scan(project, port);
                // Acquire loads in scan keep this re-read after them: an unchanged, even seq means no write
                // overlapped the scan, so `found` is one state of the table, never a mix of two.
                if (self.word(u32, off_seq) == before) {
                    const to = found orelse return null;
                    return if (to == 0 or to == port) null else to;
                }
            }
            if (tries < spins) {
                std.atomic.spinLoopHint();
                continue;
            }
            const now = monotonicNs();
            if (started == 0) started = now else if (now -% started > give_up_ns) return null;
            _ = linux.sched_yield();
        }
    }

    fn scan(self: View, project: u64, port: u16) ?u16 {
        const count = self.word(u32, off_count);
        // Only a torn read (or a corrupt file) shows more; the seq check throws the former away.
        if (count > max_entries) return null;
        const lo: u32 = @truncate(project);
        const hi: u32 = @truncate(project >> 32);
        for (0..count) |i| {
            const e = off_entries + i * entry_size;
            // Two 32-bit halves: a 64-bit atomic load may be a locked cmpxchg on 32-bit CPUs, which faults on a
            // read-only mapping. The seqlock makes the pair consistent.
            if (self.word(u16, e + 8) != port) continue;
            if (self.word(u32, e) != lo or self.word(u32, e + 4) != hi) continue;
            return self.word(u16, e + 10);
        }
        return null;
    }

    fn word(self: View, comptime T: type, off: usize) T {
        const p: *const T = @ptrCast(@alignCast(self.base + off));
        return std.mem.littleToNative(T, @atomicLoad(T, p, .acquire));
    }
};

pub const ClockFn = *const fn () i64;

/// The table as one process sees it: mapped on first use (the first loopback connect), kept for the
/// process's life (the daemon never replaces the file, only writes into it), looked for again at most once a
/// second while missing or unusable. A forked child inherits the mapping; exec starts over.
pub const Table = struct {
    mapping: std.atomic.Value(usize) = .init(0),
    /// Coarse monotonic second from which the next attempt to map may run.
    next_try: std.atomic.Value(i64) = .init(0),
    /// Tests name their own file; the process's table is `<state dir>/follow`.
    file: ?[*:0]const u8 = null,
    now: ClockFn = coarseSeconds,

    pub inline fn view(self: *Table) ?View {
        const m = self.mapping.load(.acquire);
        if (m != 0) return .{ .base = @ptrFromInt(m) };
        return self.mapSlow();
    }

    fn mapSlow(self: *Table) ?View {
        @branchHint(.cold);
        const now = self.now();
        const due = self.next_try.load(.monotonic);
        if (now < due) return null;
        // One thread per second gets to try; the others carry on without a table meanwhile.
        if (self.next_try.cmpxchgStrong(due, now + 1, .monotonic, .monotonic) != null) return null;
        var buf: paths.PathBuf = undefined;
        const path: [*:0]const u8 = self.file orelse (paths.followPath(settings.processEnv, &buf) orelse return null).ptr;
        return self.publish(mapFile(path) orelse return null);
    }

    /// A thread that tried a second earlier may have mapped the file meanwhile: the first to publish wins,
    /// the other's mapping goes.
    fn publish(self: *Table, mine: [*]const u8) View {
        if (self.mapping.cmpxchgStrong(0, @intFromPtr(mine), .acq_rel, .acquire)) |theirs| {
            _ = linux.munmap(mine, size);
            return .{ .base = @ptrFromInt(theirs) };
        }
        return .{ .base = mine };
    }

    /// Tests only: forget the mapping (the process's table is never unmapped).
    pub fn unmap(self: *Table) void {
        const m = self.mapping.swap(0, .acq_rel);
        if (m != 0) _ = linux.munmap(@ptrFromInt(m), size);
    }
};

pub var process: Table = .{};

/// libc's clock_gettime, not std.os.linux's: in a preloaded library Zig's start code never ran, so its vDSO
/// lookup finds nothing and every call would be a real syscall (~250 ns on each loopback connect while the
/// table is missing). Neither clock can fail here, so errno stays the caller's.
fn coarseSeconds() i64 {
    var ts: std.c.timespec = undefined;
    if (std.c.clock_gettime(.MONOTONIC_COARSE, &ts) != 0) return 0;
    return ts.sec;
}

fn monotonicNs() u64 {
    var ts: std.c.timespec = undefined;
    if (std.c.clock_gettime(.MONOTONIC, &ts) != 0) return 1;
    return @as(u64, @intCast(ts.sec)) * std.time.ns_per_s + @as(u64, @intCast(ts.nsec)) | 1;
}

/// The file mapped, or null when it is missing, not a regular file of the table's size, or not this version
/// of the format. O_NONBLOCK: a FIFO in its place must not hang the connect.
fn mapFile(path: [*:0]const u8) ?[*]const u8 {
    const rc = linux.open(path, .{ .ACCMODE = .RDONLY, .CLOEXEC = true, .NOCTTY = true, .NONBLOCK = true }, 0);
    if (linux.E.init(rc) != .SUCCESS) return null;
    const fd: i32 = @intCast(rc);
    defer _ = linux.close(fd);
    var st: linux.Stat = undefined;
    if (linux.E.init(linux.fstat(fd, &st)) != .SUCCESS) return null;
    if (st.mode & linux.S.IFMT != linux.S.IFREG or st.size != size) return null;
    const m = linux.mmap(null, size, linux.PROT.READ, .{ .TYPE = .SHARED }, fd, 0);
    if (linux.E.init(m) != .SUCCESS) return null;
    const base: [*]const u8 = @ptrFromInt(m);
    const v: View = .{ .base = base };
    if (v.word(u32, off_magic) != magic or v.word(u32, off_version) != version) {
        _ = linux.munmap(base, size);
        return null;
    }
    return base;
}

// ---------------------------------------------------------------- tests

const t = std.testing;
const testing = @import("testing.zig");

test "layout: header, bitmap and entries where the doc puts them" {
    var w = try testing.TableFile.create(&.{
        .{ .project = 0x2bda3cfb70d2f7bc, .asked = 8000, .port = 8002 },
        .{ .project = 0xeaa3273df6d7b751, .asked = 8000, .port = 8001 },
        .{ .project = 0x2bda3cfb70d2f7bc, .asked = 65535, .port = 1024 },
    });
    defer w.remove();
    var table = w.table();
    defer table.unmap();
    const v = table.view().?;
    try t.expect(v.moved(8000) and v.moved(65535));
    try t.expect(!v.moved(8001) and !v.moved(0) and !v.moved(7999));
    try t.expectEqual(@as(?u16, 8002), v.lookup(0x2bda3cfb70d2f7bc, 8000));
    try t.expectEqual(@as(?u16, 8001), v.lookup(0xeaa3273df6d7b751, 8000));
    try t.expectEqual(@as(?u16, 1024), v.lookup(0x2bda3cfb70d2f7bc, 65535));
    try t.expectEqual(@as(?u16, null), v.lookup(0xeaa3273df6d7b751, 65535));
    try t.expectEqual(@as(?u16, null), v.lookup(0x2bda3cfb70d2f7bc, 8002));
    // The bytes themselves, as the doc spells them (a writer in another language must agree with these).
    const raw = v.base[0..size];
    try t.expectEqualSlices(u8, "STYF", raw[0..4]);
    try t.expectEqual(@as(u32, 1), std.mem.readInt(u32, raw[4..8], .little));
    try t.expectEqual(@as(u32, 3), std.mem.readInt(u32, raw[12..16], .little));
    try t.expectEqual(@as(u8, 1), raw[off_bitmap + 1000]); // 8000 = 1000 * 8 + 0
    try t.expectEqual(@as(u64, 0xeaa3273df6d7b751), std.mem.readInt(u64, raw[off_entries + 16 ..][0..8], .little));
    try t.expectEqual(@as(u16, 8001), std.mem.readInt(u16, raw[off_entries + 16 + 10 ..][0..2], .little));
}

test "a seq left odd (a writer that died mid-write) gives up within the bound: no follow" {
    var w = try testing.TableFile.create(&.{.{ .project = 1, .asked = 3000, .port = 3001 }});
    defer w.remove();
    var table = w.table();
    defer table.unmap();
    const v = table.view().?;
    try t.expectEqual(@as(?u16, 3001), v.lookup(1, 3000));
    try w.setSeq(7);
    const started = monotonicNs();
    try t.expectEqual(@as(?u16, null), v.lookup(1, 3000));
    try t.expect(monotonicNs() - started >= give_up_ns);
    try w.setSeq(8);
    try t.expectEqual(@as(?u16, 3001), v.lookup(1, 3000));
}

var fake_now: i64 = 100;
fn fakeClock() i64 {
    return fake_now;
}

test "a missing file is looked for again at most once a second" {
    var w = try testing.TableFile.create(&.{.{ .project = 1, .asked = 3000, .port = 3001 }});
    defer w.remove();
    try w.dir.deleteFile("follow");
    var table = w.table();
    table.now = fakeClock;
    defer table.unmap();
    fake_now = 100;
    try t.expect(table.view() == null);
    try w.recreate(&.{.{ .project = 1, .asked = 3000, .port = 3001 }});
    try t.expect(table.view() == null); // same second: not looked for
    fake_now = 101;
    try t.expectEqual(@as(?u16, 3001), table.view().?.lookup(1, 3000));
}

test "a file of the wrong size, magic or version is ignored" {
    var w = try testing.TableFile.create(&.{.{ .project = 1, .asked = 3000, .port = 3001 }});
    defer w.remove();
    var table = w.table();
    table.now = fakeClock;
    defer table.unmap();
    fake_now = 200;
    try w.pwriteAt(off_magic, "STYX");
    try t.expect(table.view() == null);
    fake_now += 1;
    try w.pwriteAt(off_magic, "STYF");
    try w.pwriteAt(off_version, &.{ 2, 0, 0, 0 });
    try t.expect(table.view() == null);
    fake_now += 1;
    try w.pwriteAt(off_version, &.{ 1, 0, 0, 0 });
    try w.pwriteAt(size, "x"); // one byte too long
    try t.expect(table.view() == null);
    fake_now += 1;
    const f = try w.dir.openFile("follow", .{ .mode = .read_write });
    defer f.close();
    try f.setEndPos(size);
    try t.expectEqual(@as(?u16, 3001), table.view().?.lookup(1, 3000));
}

/// How many mappings of `path` this process has (/proc/self/maps).
fn mappingsOf(path: []const u8) !usize {
    const maps = try std.fs.cwd().readFileAlloc(t.allocator, "/proc/self/maps", 1 << 24);
    defer t.allocator.free(maps);
    var n: usize = 0;
    var lines = std.mem.splitScalar(u8, maps, '\n');
    while (lines.next()) |line| {
        if (std.mem.endsWith(u8, line, path)) n += 1;
    }
    return n;
}

test "two threads that both mapped the file keep one mapping" {
    var w = try testing.TableFile.create(&.{.{ .project = 1, .asked = 3000, .port = 3001 }});
    defer w.remove();
    var table = w.table();
    defer table.unmap();
    const first = table.publish(mapFile(w.pathZ()).?);
    const second = table.publish(mapFile(w.pathZ()).?);
    try t.expectEqual(@intFromPtr(first.base), @intFromPtr(second.base));
    try t.expectEqual(@as(usize, 1), try mappingsOf(w.pathZ()));
    try t.expectEqual(@intFromPtr(first.base), @intFromPtr(table.view().?.base));
}
