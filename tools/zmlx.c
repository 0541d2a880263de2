/* zmlx: the command-line tool. This file only dispatches; each subcommand
 * lives in tools/cmd_<name>.c as `int zm_cmd_<name>(int argc, char **argv)`
 * (argv[0] is the subcommand name) and returns the process exit code. */
#include "tools/cli.h"
#include "zm_commit.h"
#include "zmlx/zmlx.h"
#include <stdio.h>
#include <string.h>

typedef int (*zm_cmd_fn)(int, char **);
/* weak: a subcommand whose file is not in this build reports so */
#define ZM_CMD(name) int zm_cmd_##name(int, char **) __attribute__((weak));
ZM_CMD(kernel) ZM_CMD(kernels) ZM_CMD(synth) ZM_CMD(run) ZM_CMD(generate) ZM_CMD(validate)
ZM_CMD(report) ZM_CMD(bench) ZM_CMD(patterns) ZM_CMD(tokenize) ZM_CMD(info)

static const struct { const char *name, *help; } cmds[] = {
#define E(n, h) {#n, h}
    E(kernel, "compile a kernel from an expression: print source, evaluate or benchmark it"),
    E(kernels, "list the kernel catalog"),
    E(synth, "write a GGUF model with random weights in a real model's shapes"),
    E(info, "print a GGUF file's metadata and tensors"),
    E(run, "decode token ids from a GGUF model, print tok/s"),
    E(generate, "text in, text out"),
    E(tokenize, "text -> token ids (and --decode ids -> text)"),
    E(validate, "stock vs patched: fidelity and speed, with a repro capsule"),
    E(report, "print repro capsules side by side"),
    E(patterns, "list patch patterns, families and the safety table"),
    E(bench, "benchmarks (zmlx bench kernels)"),
#undef E
};

static zm_cmd_fn lookup(const char *n) {
#define L(x) if (!strcmp(n, #x)) return zm_cmd_##x;
    L(kernel) L(kernels) L(synth) L(info) L(run) L(generate) L(tokenize) L(validate) L(report)
    L(patterns) L(bench)
#undef L
    return NULL;
}

static void usage(FILE *f) {
    fprintf(f, "zmlx %s (%s) — fused kernels and MoE decode for CUDA and CPU\n\nusage: zmlx <command> [options]\n\n",
            ZM_VERSION, ZM_GIT_COMMIT);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (lookup(cmds[i].name)) fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].help);
    fprintf(f, "\n'zmlx <command> --help' for the options of one command.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) { printf("zmlx %s (%s)\n", ZM_VERSION, ZM_GIT_COMMIT); return 0; }
    zm_cmd_fn fn = lookup(argv[1]);
    if (!fn) {
        fprintf(stderr, "zmlx: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    return fn(argc - 1, argv + 1);
}
