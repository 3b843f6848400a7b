//! Builds the LD_PRELOAD interceptor (zig-out/lib/libstyxy_preload.so), the
//! seccomp supervisor (zig-out/bin/styxy-seccomp), the daemon's kernel addon
//! (zig-out/lib/styxy_kernel.node), the C probe programs tests drive
//! (zig-out/bin/), and `zig build test`.

const std = @import("std");

/// Test programs: name, C source in test/fixtures, and whether it is linked
/// statically against musl (a program LD_PRELOAD can't reach).
const Fixture = struct { name: []const u8, src: []const u8, static: bool = false };
const fixtures = [_]Fixture{
    .{ .name = "bindprobe", .src = "bindprobe.c" },
    .{ .name = "bindbench", .src = "bindbench.c" },
    .{ .name = "askbench", .src = "askbench.c" },
    .{ .name = "connectbench", .src = "connectbench.c" },
    .{ .name = "deny-seccomp", .src = "deny-seccomp.c" },
    .{ .name = "httpserve", .src = "httpserve.c" },
    .{ .name = "httpstatic", .src = "httpserve.c", .static = true },
};

/// The bind exchange's contract (interceptor/contract.zig, test/contract), in test/fixtures/contract.
const contract_fixtures = [_][]const u8{ "requests.jsonl", "request.http", "follows.jsonl", "answer-allow.http", "answer-remap.http", "answer-deny.http" };

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});

    const lib = b.addLibrary(.{
        .linkage = .dynamic,
        .name = "styxy_preload",
        .root_module = b.createModule(.{
            .root_source_file = b.path("interceptor/exports.zig"),
            .target = target,
            .optimize = optimize,
            .link_libc = true,
            // Position-independent and self-contained: it gets loaded into
            // arbitrary programs.
            .pic = true,
        }),
    });
    lib.setVersionScript(b.path("interceptor/exports.map"));
    // No C sources in the library, so the UBSan runtime would be dead weight.
    lib.bundle_ubsan_rt = false;
    b.installArtifact(lib);

    // The seccomp backend's supervisor: shares decide/ipc/env with the library,
    // runs as its own process in front of the command.
    const supervisor = b.addExecutable(.{
        .name = "styxy-seccomp",
        .root_module = b.createModule(.{
            .root_source_file = b.path("interceptor/supervisor.zig"),
            .target = target,
            .optimize = optimize,
            .link_libc = true,
        }),
    });
    supervisor.bundle_ubsan_rt = false;
    b.installArtifact(supervisor);

    // The daemon's Node-API addon (kernel/addon.zig): sock_diag queries and pidfd exit watches.
    const kernel = b.addLibrary(.{
        .linkage = .dynamic,
        .name = "styxy_kernel",
        .root_module = b.createModule(.{
            .root_source_file = b.path("kernel/addon.zig"),
            .target = target,
            .optimize = optimize,
            .link_libc = true,
        }),
    });
    // napi_* and uv_* come from the node binary that loads it: no node headers, no node-gyp.
    kernel.linker_allow_shlib_undefined = true;
    kernel.bundle_ubsan_rt = false;
    // Node loads addons by file name; `.node` is the name it expects.
    b.getInstallStep().dependOn(&b.addInstallArtifact(kernel, .{
        .dest_sub_path = "styxy_kernel.node",
        .dylib_symlinks = false,
    }).step);

    const fixtures_step = b.step("fixtures", "Build the C probe programs in test/fixtures");
    const musl = b.resolveTargetQuery(.{ .abi = .musl });
    for (fixtures) |f| {
        const exe = b.addExecutable(.{
            .name = f.name,
            .root_module = b.createModule(.{ .target = if (f.static) musl else target, .optimize = optimize, .link_libc = true }),
            .linkage = if (f.static) .static else null,
        });
        exe.root_module.addCSourceFile(.{
            .file = b.path(b.fmt("test/fixtures/{s}", .{f.src})),
            // #embed (C23, which clang takes in C11 too): askbench sends the interceptor's head from the contract's fixture.
            .flags = &.{ "-std=c11", "-Wall", "-Wextra", "-Werror", "-Wno-c23-extensions", "-D_GNU_SOURCE" },
        });
        const install = b.addInstallArtifact(exe, .{});
        fixtures_step.dependOn(&install.step);
        b.getInstallStep().dependOn(&install.step);
    }

    const test_step = b.step("test", "Run the interceptor's unit tests");
    // One binary for every module's tests; see interceptor/tests.zig.
    const unit = b.addTest(.{
        .root_module = b.createModule(.{
            .root_source_file = b.path("interceptor/tests.zig"),
            .target = target,
            .optimize = optimize,
            .link_libc = true,
        }),
    });
    // The contract's fixtures live outside interceptor/, where @embedFile can't reach: each is a module of its own.
    for (contract_fixtures) |f| {
        unit.root_module.addAnonymousImport(b.fmt("contract/{s}", .{f}), .{ .root_source_file = b.path(b.fmt("test/fixtures/contract/{s}", .{f})) });
    }
    test_step.dependOn(&b.addRunArtifact(unit).step);
    const kernel_unit = b.addTest(.{
        .root_module = b.createModule(.{
            .root_source_file = b.path("kernel/tests.zig"),
            .target = target,
            .optimize = optimize,
            .link_libc = true,
        }),
    });
    test_step.dependOn(&b.addRunArtifact(kernel_unit).step);

    // `zig build contract -- DIR`: the interceptor's requests for the contract's fixed inputs (`make contract`).
    const contract = b.addExecutable(.{
        .name = "styxy-contract",
        .root_module = b.createModule(.{
            .root_source_file = b.path("interceptor/contract.zig"),
            .target = target,
            .optimize = optimize,
            .link_libc = true,
        }),
    });
    const write_contract = b.addRunArtifact(contract);
    if (b.args) |args| write_contract.addArgs(args);
    b.step("contract", "Write the interceptor's contract fixtures into the directory given after --").dependOn(&write_contract.step);
    test_step.dependOn(&contract.step);

    // The probes are test inputs too; build them so a test run can't use stale ones.
    test_step.dependOn(fixtures_step);
    // The library itself must compile in every mode the tests don't cover.
    test_step.dependOn(&lib.step);
    test_step.dependOn(&supervisor.step);
    test_step.dependOn(&kernel.step);
}
