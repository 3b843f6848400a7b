//! The seccomp program the supervisor installs in the child before exec:
//! bind(2) of the native ABI is handed to the supervisor, every other system
//! call (and bind from a foreign ABI, such as a 32-bit program) runs untouched.
//!
//! Installed with no_new_privs, which is what lets an unprivileged user load a
//! filter; it also means a setuid program run under it keeps its caller's
//! credentials, the same rule LD_PRELOAD already follows.

const std = @import("std");
const linux = std.os.linux;
const SECCOMP = linux.SECCOMP;

/// struct sock_filter / sock_fprog from <linux/filter.h>; std has no cBPF types.
pub const SockFilter = extern struct { code: u16, jt: u8, jf: u8, k: u32 };
pub const SockFprog = extern struct { len: c_ushort, filter: [*]const SockFilter };

const BPF_LD_W_ABS: u16 = 0x00 | 0x00 | 0x20;
const BPF_JEQ_K: u16 = 0x05 | 0x10 | 0x00;
const BPF_RET_K: u16 = 0x06 | 0x00;

fn load(offset: usize) SockFilter {
    return .{ .code = BPF_LD_W_ABS, .jt = 0, .jf = 0, .k = @intCast(offset) };
}
fn jumpIfEqual(value: u32, jt: u8, jf: u8) SockFilter {
    return .{ .code = BPF_JEQ_K, .jt = jt, .jf = jf, .k = value };
}
fn ret(action: u32) SockFilter {
    return .{ .code = BPF_RET_K, .jt = 0, .jf = 0, .k = action };
}

// The arch check comes first: syscall numbers only mean something within
// one ABI. x32 calls carry the native arch with a high bit in the number, so
// the exact match below lets them through too.
pub const program = [_]SockFilter{
    load(@offsetOf(SECCOMP.data, "arch")),
    jumpIfEqual(native_arch, 0, 3),
    load(@offsetOf(SECCOMP.data, "nr")),
    jumpIfEqual(@intFromEnum(linux.SYS.bind), 0, 1),
    ret(SECCOMP.RET.USER_NOTIF),
    ret(SECCOMP.RET.ALLOW),
};

/// AUDIT_ARCH_* of the ABI we were built for. Spelled out because the std
/// table of this Zig version (0.14.1) fails to compile when referenced.
const native_arch: u32 = switch (@import("builtin").cpu.arch) {
    .x86_64 => 0xC000003E, // EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
    .aarch64 => 0xC00000B7, // EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
    else => @compileError("the seccomp filter knows x86_64 and aarch64 only"),
};

pub const InstallError = struct { step: []const u8, errno: linux.E };

/// Runs in the forked child. Returns the listener fd (close-on-exec, per the
/// kernel) or the step that the kernel or a sandbox refused.
pub fn install() union(enum) { listener: linux.fd_t, refused: InstallError } {
    const nnp = linux.prctl(@intFromEnum(linux.PR.SET_NO_NEW_PRIVS), 1, 0, 0, 0);
    if (linux.E.init(nnp) != .SUCCESS) return .{ .refused = .{ .step = "prctl(NO_NEW_PRIVS)", .errno = linux.E.init(nnp) } };
    const prog: SockFprog = .{ .len = program.len, .filter = &program };
    const rc = linux.seccomp(SECCOMP.SET_MODE_FILTER, SECCOMP.FILTER_FLAG.NEW_LISTENER, &prog);
    if (linux.E.init(rc) != .SUCCESS) return .{ .refused = .{ .step = "seccomp(user notification)", .errno = linux.E.init(rc) } };
    return .{ .listener = @intCast(rc) };
}

test "the program hands bind, and only bind, to the supervisor" {
    // Walk the program as the kernel would, for a few (arch, nr) pairs.
    const native = native_arch;
    const cases = [_]struct { arch: u32, nr: u32, want: u32 }{
        .{ .arch = native, .nr = @intFromEnum(linux.SYS.bind), .want = SECCOMP.RET.USER_NOTIF },
        .{ .arch = native, .nr = @intFromEnum(linux.SYS.connect), .want = SECCOMP.RET.ALLOW },
        .{ .arch = native, .nr = @intFromEnum(linux.SYS.bind) | 0x40000000, .want = SECCOMP.RET.ALLOW },
        .{ .arch = native ^ 0x80000000, .nr = @intFromEnum(linux.SYS.bind), .want = SECCOMP.RET.ALLOW },
    };
    for (cases) |case| {
        var acc: u32 = 0;
        var pc: usize = 0;
        const got: u32 = while (pc < program.len) {
            const ins = program[pc];
            switch (ins.code) {
                BPF_LD_W_ABS => acc = if (ins.k == @offsetOf(SECCOMP.data, "arch")) case.arch else case.nr,
                BPF_JEQ_K => pc += if (acc == ins.k) ins.jt else ins.jf,
                BPF_RET_K => break ins.k,
                else => unreachable,
            }
            pc += 1;
        } else unreachable;
        try std.testing.expectEqual(case.want, got);
    }
}
