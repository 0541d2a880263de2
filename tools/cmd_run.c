/* zmlx run: greedy decode from a GGUF model; prints the generated token ids
 * and the prefill and decode speeds (decode also as GB/s of the weight bytes
 * each token must read, active experts only).
 *   zmlx run -m FILE (--prompt-ids 1,2,3 | -p TEXT) -n N [--threads T]
 *            [--ctx N] [--device cpu|cuda] [--patch] [--dump-graph]
 * Checked end to end by tests/test_model.c (same library calls) and by the
 * llama.cpp cross-check (tests/crosscheck/). */
#include "core/cuda.h"
#include "core/internal.h"
#include "graph/graph.h"
#include "models/model_priv.h"
#include "models/timed.h"
#include "tools/cli.h"
#include "tools/prompt.h"
#include "zmlx/patch.h"
#include "zmlx/zmlx.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "usage: zmlx run -m FILE (--prompt-ids 1,2,3 | -p TEXT) [-n N] [--threads T] [--ctx N]\n"
               "                [--device cpu|cuda] [--patch] [--dump-graph]\n"
               "  -m FILE          GGUF model (qwen3moe)\n"
               "  --prompt-ids L   comma-separated token ids\n"
               "  -p TEXT          prompt text (needs the tokenizer)\n"
               "  -n N             tokens to generate (default 16)\n"
               "  --threads T      CPU threads (default $ZMLX_THREADS or all cores)\n"
               "  --ctx N          KV cache positions (default min(context_length, 4096))\n"
               "  --device D       cpu or cuda (default: cuda when a GPU answers)\n"
               "  --patch          run the patched graph (zm_patch, the model family's defaults)\n"
               "  --profile        time every op of the decode graph and print the split\n"
               "  --dump-graph     print the decode graph, one node per line, and exit\n");
}

int zm_cmd_run(int argc, char **argv) {
    const char *C = "run", *path = NULL, *text = NULL;
    int32_t *ids = NULL;
    int n_ids = 0, dump = 0, rc = 1, dev_set = 0, patch = 0;
    long long n_gen = 16, threads = 0, n_ctx = 0;
    zm_model_opts mo = {0};
    zm_model *m = NULL;
    zm_session *s = NULL;
    zm_status st;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); free(ids); return 0; }
        else if (!strcmp(a, "--dump-graph")) dump = 1;
        else if (!strcmp(a, "--patch")) patch = 1;
        else if (!strcmp(a, "--profile")) mo.profile = 1;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) { if (!(path = zm_cli_arg(C, argc, argv, &i))) goto out; }
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) { if (!(text = zm_cli_arg(C, argc, argv, &i))) goto out; }
        else if (!strcmp(a, "--prompt-ids")) {
            if (!(v = zm_cli_arg(C, argc, argv, &i))) goto out;
            free(ids);
            if (!zm_cli_int_list(C, a, v, &ids, &n_ids)) goto out;
        } else if (!strcmp(a, "-n")) {
            if (!(v = zm_cli_arg(C, argc, argv, &i)) || !zm_cli_int(C, a, v, 1, 1 << 20, &n_gen)) goto out;
        } else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) {
            if (!(v = zm_cli_arg(C, argc, argv, &i)) || !zm_cli_int(C, a, v, 1, 1024, &threads)) goto out;
        } else if (!strcmp(a, "--ctx")) {
            if (!(v = zm_cli_arg(C, argc, argv, &i)) || !zm_cli_int(C, a, v, 1, 1 << 24, &n_ctx)) goto out;
        } else if (!strcmp(a, "--device")) {
            if (!(v = zm_cli_arg(C, argc, argv, &i))) goto out;
            dev_set = 1;
            if (!strcmp(v, "cpu")) mo.device = ZM_CPU;
            else if (!strcmp(v, "cuda")) mo.device = ZM_CUDA;
            else { fprintf(stderr, "zmlx run: --device expects cpu or cuda, got '%s'\n", v); goto out; }
        } else {
            fprintf(stderr, "zmlx run: unknown option '%s'\n", a);
            usage(stderr);
            goto out;
        }
    }
    if (!path) { fprintf(stderr, "zmlx run: -m FILE is required\n"); usage(stderr); goto out; }
    if (text && ids) { fprintf(stderr, "zmlx run: give either -p or --prompt-ids, not both\n"); goto out; }
    if (text && !zm_cli_prompt(C, path, text, 0, NULL, &ids, &n_ids)) goto done;
    if (!ids && !dump) { fprintf(stderr, "zmlx run: a prompt is required (--prompt-ids 1,2,3)\n"); goto out; }
    if (!dev_set && zm_cuda_available()) mo.device = ZM_CUDA;
    mo.n_threads = (int)threads;
    mo.n_ctx = n_ctx;
    st = zm_model_load(&m, path, &mo);
    if (st != ZM_OK) { rc = zm_cli_fail(C, "load", st); goto done; }
    if (patch && (st = zm_patch(m, NULL, NULL)) != ZM_OK) { rc = zm_cli_fail(C, "patch", st); goto done; }
    if ((st = zm_session_new(&s, m)) != ZM_OK) { rc = zm_cli_fail(C, "session", st); goto done; }
    if (dump) {
        zm_graph_dump(zm__session_decode_graph(s), stdout);
        printf("decode arena: %.3f MB planned\n", (double)zm_session_decode_arena_bytes(s) / 1e6);
        rc = 0;
        goto done;
    }
    if (n_ids + n_gen > zm_model_n_ctx(m)) {
        fprintf(stderr, "zmlx run: %d prompt + %lld generated tokens exceed the %lld-position cache (--ctx)\n", n_ids, n_gen,
                (long long)zm_model_n_ctx(m));
        goto done;
    }
    int32_t *gen = malloc(sizeof(int32_t) * (size_t)n_gen);
    if (!gen) { fprintf(stderr, "zmlx run: out of memory\n"); goto done; }
    double pre = 0, dec = 0; /* on CUDA the decode steps run back to back on the device */
    st = zm__generate_timed(s, ids, n_ids, n_gen, gen, &pre, &dec);
    if (st != ZM_OK) { rc = zm_cli_fail(C, "decode", st); free(gen); goto done; }
    printf("generated:");
    for (long long i = 0; i < n_gen; i++) printf(" %d", gen[i]);
    printf("\n");
    printf("prefill: %d tokens, %.2f ms, %.1f tok/s\n", n_ids, pre * 1e3, n_ids / (pre > 0 ? pre : 1e-9));
    if (n_gen > 1) {
        double tps = (double)(n_gen - 1) / (dec > 0 ? dec : 1e-9);
        double mb = (double)zm_model_decode_bytes(m) / 1e6;
        printf("decode: %lld tokens, %.2f ms, %.1f tok/s, %.2f GB/s (%.3f MB read per token)\n", n_gen - 1, dec * 1e3, tps,
               tps * mb / 1e3, mb);
    }
    printf("model: %s, %s experts, %lld layers, device %s\n", zm_model_arch(m), zm_dtype_name(zm_model_weight_type(m)),
           (long long)zm_model_n_layer(m), zm_device_name(zm_model_device(m)));
    size_t gfree = 0, gtotal = 0;
    if (zm_model_device(m) == ZM_CUDA && zm_cuda_mem_info(&gfree, &gtotal) == ZM_OK)
        printf("gpu memory: %.2f GB in use of %.2f GB (weights, KV cache, arenas; nothing is freed while decoding)\n",
               (double)(gtotal - gfree) / 1e9, (double)gtotal / 1e9);
    if (mo.profile) {
        const char *nm[ZM_OP_COUNT];
        double sec[ZM_OP_COUNT], tot = 0;
        int64_t calls[ZM_OP_COUNT];
        int rows = zm_session_decode_profile(s, nm, sec, calls, ZM_OP_COUNT);
        for (int i = 0; i < rows; i++) tot += sec[i];
        printf("decode profile (%d ops):\n", rows);
        for (int i = 0; i < rows; i++)
            printf("  %-20s %8.3f ms %5.1f %%  %lld calls\n", nm[i], sec[i] * 1e3, 100 * sec[i] / (tot > 0 ? tot : 1),
                   (long long)calls[i]);
    }
    free(gen);
    rc = 0;
out:
done:
    zm_session_free(s);
    zm_model_free(m);
    free(ids);
    return rc;
}
