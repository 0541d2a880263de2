/* zmlx report CAPSULE...: repro capsules side by side, one column each. */
#include "tools/cli.h"
#include "zmlx/capsule.h"
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

static void row_s(const char *label, zm_capsule *c, int n, size_t off, int width) {
    printf("%-22s", label);
    for (int i = 0; i < n; i++) {
        const char *s = (const char *)&c[i] + off;
        printf(" | %-*.*s", width, width, s);
    }
    printf("\n");
}

#define ROW_S(label, field) row_s(label, c, n, offsetof(zm_capsule, field), w)
#define ROW_F(label, fmt, ...)                                                                    \
    do {                                                                                           \
        printf("%-22s", label);                                                                    \
        for (int i = 0; i < n; i++) {                                                              \
            char b[64];                                                                            \
            snprintf(b, sizeof b, fmt, __VA_ARGS__);                                                      \
            printf(" | %-*s", w, b);                                                               \
        }                                                                                          \
        printf("\n");                                                                              \
    } while (0)

int zm_cmd_report(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fprintf(argc < 2 ? stderr : stdout, "usage: zmlx report CAPSULE.json [CAPSULE.json ...]\n"
                                            "Prints repro capsules written by 'zmlx validate --capsule' side by side.\n");
        return argc < 2 ? 2 : 0;
    }
    int n = argc - 1;
    zm_capsule *c = calloc((size_t)n, sizeof *c);
    if (!c) return 1;
    int bad = 0;
    for (int i = 0; i < n; i++) {
        zm_status s = zm_capsule_read(&c[i], argv[i + 1]);
        if (s) { bad = 1; zm_cli_fail("report", argv[i + 1], s); }
    }
    if (bad) { free(c); return 1; }
    int w = 28;
    ROW_S("model", model_file);
    printf("%-22s", "file");
    for (int i = 0; i < n; i++) printf(" | %-*.*s", w, w, argv[i + 1]);
    printf("\n");
    ROW_S("date", date);
    ROW_S("host", host);
    ROW_S("cpu", cpu);
    ROW_S("gpu", gpu);
    ROW_S("driver", driver);
    ROW_S("zmlx", version);
    ROW_S("commit", commit);
    ROW_S("architecture", arch);
    ROW_S("weights", model_type);
    ROW_F("model size (MiB)", "%.1f", (double)c[i].model_size / 1048576.0);
    ROW_S("device", device);
    ROW_S("patterns", patterns);
    ROW_F("prompt / max tokens", "%d / %d", c[i].prompt_tokens, c[i].max_tokens);
    ROW_F("runs x threads", "%d x %d", c[i].runs, c[i].threads);
    ROW_F("prefill tok/s s|p", "%.1f | %.1f", c[i].stock_prefill, c[i].patched_prefill);
    ROW_F("decode tok/s stock", "%.2f (%.2f-%.2f)", c[i].stock_decode, c[i].stock_decode_min, c[i].stock_decode_max);
    ROW_F("decode tok/s patched", "%.2f (%.2f-%.2f)", c[i].patched_decode, c[i].patched_decode_min, c[i].patched_decode_max);
    ROW_F("decode speedup", "%.3fx", c[i].speedup);
    ROW_F("fidelity", "%s %d/%d", c[i].fidelity_pass ? "PASS" : "FAIL", c[i].matched, c[i].total);
    ROW_F("first divergence", "%d", c[i].first_divergence);
    free(c);
    return 0;
}
