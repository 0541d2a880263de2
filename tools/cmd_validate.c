/* zmlx validate: stock vs patched greedy decode, fidelity + throughput, and
 * a repro capsule. Without -m it synthesizes the tiny preset (make demo). */
#include "graph/graph.h"
#include "tools/cli.h"
#include "tools/prompt.h"
#include "zmlx/validate.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "usage: zmlx validate [-m FILE] [--patterns P[,P...]|all|none] [--exclude P[,P...]]\n"
               "                     [--max-tokens N] [--runs N] [--threads T] [--device cpu|cuda]\n"
               "                     [--prompt-ids 1,2,3 | -p TEXT] [--capsule OUT.json]\n"
               "Decodes greedily with the stock graph and the patched graph, compares the token ids\n"
               "exactly and prints prefill/decode tok/s. Without -m the tiny preset is synthesized\n"
               "into the cache folder. Patterns: 'zmlx patterns'.\n");
}

static void print_mem(char *b, size_t n, uint64_t v) { snprintf(b, n, "%.1f MiB", (double)v / 1048576.0); }

int zm_cmd_validate(int argc, char **argv) {
    const char *C = "validate";
    zm_validate_opts o = {0};
    const char *capsule = NULL;
    int32_t *ids = NULL;
    char patbuf[1024] = "", defmodel[1200];
    const char *text = NULL;
    long long v;
    o.device = zm_cuda_available() && zm_graph_backend_for(ZM_CUDA) ? ZM_CUDA : ZM_CPU;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
#define NEXT() do { if (!(val = zm_cli_arg(C, argc, argv, &i))) goto bad; } while (0)
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) { NEXT(); o.model = val; }
        else if (!strcmp(a, "--patterns")) {
            NEXT();
            snprintf(patbuf, sizeof patbuf, "%s", val);
            while (i + 1 < argc && argv[i + 1][0] != '-') { /* --patterns a b c */
                size_t l = strlen(patbuf);
                snprintf(patbuf + l, sizeof patbuf - l, ",%s", argv[++i]);
            }
            o.patterns = patbuf;
        }
        else if (!strcmp(a, "--exclude")) { NEXT(); o.exclude = val; }
        else if (!strcmp(a, "--max-tokens")) { NEXT(); if (!zm_cli_int(C, a, val, 1, 100000, &v)) goto bad; o.max_tokens = (int)v; }
        else if (!strcmp(a, "--runs")) { NEXT(); if (!zm_cli_int(C, a, val, 1, ZM_CAPSULE_MAX_RUNS / 2, &v)) goto bad; o.runs = (int)v; }
        else if (!strcmp(a, "--threads")) { NEXT(); if (!zm_cli_int(C, a, val, 1, 1024, &v)) goto bad; o.threads = (int)v; }
        else if (!strcmp(a, "--device")) {
            NEXT();
            if (!strcmp(val, "cpu")) o.device = ZM_CPU;
            else if (!strcmp(val, "cuda")) o.device = ZM_CUDA;
            else { fprintf(stderr, "zmlx validate: --device expects cpu or cuda, got '%s'\n", val); goto bad; }
        }
        else if (!strcmp(a, "--prompt-ids")) { NEXT(); free(ids); if (!zm_cli_int_list(C, a, val, &ids, &o.n_prompt)) goto bad; o.prompt = ids; }
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) { NEXT(); text = val; }
        else if (!strcmp(a, "--capsule")) { NEXT(); capsule = val; }
        else { fprintf(stderr, "zmlx validate: unknown option '%s'\n", a); usage(stderr); goto bad; }
#undef NEXT
    }
    if (text) { /* through the model file's own tokenizer */
        if (ids) { fprintf(stderr, "zmlx validate: give --prompt-ids or -p, not both\n"); goto bad; }
        if (!o.model) {
            zm_status ds = zm_validate_default_model(defmodel, sizeof defmodel);
            if (ds) { zm_cli_fail(C, "tiny preset", ds); goto bad; }
            o.model = defmodel;
        }
        if (!zm_cli_prompt(C, o.model, text, 0, NULL, &ids, &o.n_prompt)) goto bad;
        o.prompt = ids;
    }
    char cmd[2048];
    size_t off = 0;
    for (int i = 0; i < argc && off < sizeof cmd; i++)
        off += (size_t)snprintf(cmd + off, sizeof cmd - off, "%s%s", i ? " " : "zmlx ", argv[i]);
    o.command = cmd;
    zm_capsule c;
    zm_patch_result pr;
    zm_status st = zm_validate(&o, &c, &pr);
    free(ids);
    if (st) return zm_cli_fail(C, o.model ? o.model : "tiny preset", st);
    printf("zmlx validate: %s\n  %s, %s weights, %.1f MiB, on %s (%s%s), %d prompt + %d generated tokens, %d runs\n",
           c.model_file, c.arch, c.model_type, (double)c.model_size / 1048576.0, c.device,
           strcmp(c.device, "cuda") ? c.cpu : c.gpu, "", c.prompt_tokens, c.max_tokens, c.runs);
    printf("  family %s; patterns:", pr.family);
    for (int i = 0; i < pr.n_applied; i++) printf(" %s(%d)", pr.applied[i].name, pr.applied[i].sites);
    if (!pr.n_applied) printf(" none");
    printf("\n");
    for (int i = 0; i < pr.n_skipped; i++) printf("  skipped %s: %s\n", pr.skipped[i].name, pr.skipped[i].reason);
    if (pr.note[0]) printf("  note: %s\n", pr.note);
    uint64_t pk[2] = {0, 0};
    for (int i = 0; i < c.n_runs; i++) {
        int p = !strcmp(c.run[i].variant, "patched");
        if (c.run[i].peak_mem > pk[p]) pk[p] = c.run[i].peak_mem;
    }
    char m0[32], m1[32];
    print_mem(m0, sizeof m0, pk[0]);
    print_mem(m1, sizeof m1, pk[1]);
    printf("\n  %-8s %14s %30s %12s\n", "", "prefill tok/s", "decode tok/s median (min-max)", "peak mem");
    printf("  %-8s %14.1f %12.2f (%7.2f - %7.2f) %12s\n", "stock", c.stock_prefill, c.stock_decode, c.stock_decode_min,
           c.stock_decode_max, m0);
    printf("  %-8s %14.1f %12.2f (%7.2f - %7.2f) %12s\n", "patched", c.patched_prefill, c.patched_decode,
           c.patched_decode_min, c.patched_decode_max, m1);
    printf("\n  decode speedup: %.3fx\n", c.speedup);
    if (c.fidelity_pass) printf("  fidelity: PASS (%d/%d tokens identical)\n", c.matched, c.total);
    else printf("  fidelity: FAIL (%d/%d tokens identical, first divergence at token %d)\n", c.matched, c.total, c.first_divergence);
    if (capsule) {
        st = zm_capsule_write(&c, capsule);
        if (st) return zm_cli_fail(C, capsule, st);
        printf("  capsule: %s\n", capsule);
    }
    return c.fidelity_pass ? 0 : 3;
bad:
    free(ids);
    return 2;
}
