/* zmlx synth: write a GGUF model with random weights in a real model's
 * shapes (src/models/synth.c). Checked by tests/test_synth.c and, against
 * llama.cpp, by tests/crosscheck/llama.sh. */
#include "tools/cli.h"
#include "zmlx/gguf.h"
#include "zmlx/synth.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f, "usage: zmlx synth --arch qwen3moe --preset tiny|small|qwen3-30b-a3b [--type f32|f16|bf16|q8_0|q4_0]\n"
               "                  [--seed N] [--layers N] -o FILE\n"
               "  Random weights in the exact tensor names, shapes and metadata of llama.cpp's qwen3moe,\n"
               "  with a byte-level BPE vocabulary; loads in llama.cpp unchanged. Norms and the router\n"
               "  stay F32; --type sets the big matrices (default f32; q4_0 for qwen3-30b-a3b).\n"
               "  --layers overrides the preset's layer count (quick runs of real shapes).\n");
    for (int i = 0; zm_synth_preset_at(i); i++) {
        const zm_synth_preset *p = zm_synth_preset_at(i);
        fprintf(f, "  %-14s %d layers, hidden %d, %d q / %d kv heads of %d, %d experts (%d used) of %d, vocab %d\n",
                p->name, p->n_layer, p->n_embd, p->n_head, p->n_head_kv, p->head_dim, p->n_expert, p->n_expert_used,
                p->n_ff_exp, p->n_vocab);
    }
}

typedef struct { int tty, last; double t0; } prog;

static void progress(void *ctx, uint64_t done, uint64_t total) {
    prog *p = ctx;
    int pct = total ? (int)(done * 100 / total) : 100;
    if (pct == p->last || (!p->tty && pct % 10 && pct != 100)) return;
    p->last = pct;
    fprintf(stderr, "%ssynth: %.2f / %.2f GB (%d%%)%s", p->tty ? "\r" : "", (double)done / 1e9, (double)total / 1e9,
            pct, p->tty && pct != 100 ? "" : "\n");
    fflush(stderr);
}

int zm_cmd_synth(int argc, char **argv) {
    const char *arch = "qwen3moe", *preset = NULL, *out = NULL, *type = NULL;
    long long seed = 1, layers = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        const char *v = zm_cli_arg("synth", argc, argv, &i);
        if (!v) return 2;
        if (!strcmp(a, "--arch")) arch = v;
        else if (!strcmp(a, "--preset")) preset = v;
        else if (!strcmp(a, "--type")) type = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = v;
        else if (!strcmp(a, "--seed")) { if (!zm_cli_int("synth", a, v, 0, INT64_MAX, &seed)) return 2; }
        else if (!strcmp(a, "--layers")) { if (!zm_cli_int("synth", a, v, 1, 1024, &layers)) return 2; }
        else { fprintf(stderr, "zmlx synth: unknown option '%s'\n", a); usage(stderr); return 2; }
    }
    if (!preset || !out) { fprintf(stderr, "zmlx synth: --preset and -o are required\n"); usage(stderr); return 2; }
    const zm_synth_preset *p = zm_synth_preset_find(preset);
    if (!p) { fprintf(stderr, "zmlx synth: unknown preset '%s'\n", preset); usage(stderr); return 2; }
    if (strcmp(arch, p->arch)) { fprintf(stderr, "zmlx synth: unknown architecture '%s' (supported: qwen3moe)\n", arch); return 2; }
    int t = type ? zm_dtype_parse(type) : (!strcmp(p->name, "qwen3-30b-a3b") ? ZM_Q4_0 : ZM_F32);
    if (t != ZM_F32 && t != ZM_F16 && t != ZM_BF16 && t != ZM_Q8_0 && t != ZM_Q4_0) {
        fprintf(stderr, "zmlx synth: --type expects f32, f16, bf16, q8_0 or q4_0, got '%s'\n", type);
        return 2;
    }
    prog pr = {isatty(2), -1, 0};
    zm_synth_opts o = {arch, preset, (zm_dtype)t, (uint64_t)seed, (int)layers, progress, &pr};
    zm_status s = zm_synth_write(out, &o);
    if (s) return zm_cli_fail("synth", out, s);
    fprintf(stderr, "synth: wrote %s (%s, %s, seed %lld)\n", out, p->name, zm_dtype_name((zm_dtype)t), seed);
    return 0;
}
