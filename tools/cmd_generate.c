/* zmlx generate: text in, text out. Tokenizes the prompt with the file's own
 * tokenizer (optionally through its chat template), prefills, then samples
 * token by token (greedy by default; temperature / top-k / top-p / min-p
 * with a seed), streaming the text as it is produced through the UTF-8-safe
 * decoder, and stops at an end-of-generation token or after -n tokens.
 * Prefill and decode speeds go to stderr at the end, so stdout is the text.
 *   zmlx generate -m tiny.gguf -p "Hello" -n 32 [--chat] [--temp 0.8 --seed 1]
 * Checked by tests/test_tokenizer.c and tests/test_sample.c (the library
 * calls it makes) and by scripts/demo.sh / by hand end to end. */
#include "core/internal.h"
#include "tools/cli.h"
#include "tools/prompt.h"
#include "zmlx/model.h"
#include "zmlx/sample.h"
#include "zmlx/tokenizer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "usage: zmlx generate -m FILE -p TEXT [options]\n"
               "  -m FILE          GGUF model with a tokenizer (qwen3moe)\n"
               "  -p TEXT          the prompt\n"
               "  -n N             most tokens to generate (default 128)\n"
               "  --chat           wrap the prompt in the model's chat template (ChatML, harmony)\n"
               "  --system TEXT    system message for --chat\n"
               "  --temp T         temperature; 0 = greedy (default 0)\n"
               "  --top-k K        keep the K most likely tokens (0 = off)\n"
               "  --top-p P        keep the fewest tokens whose probability reaches P (1 = off)\n"
               "  --min-p M        keep tokens at least M times as likely as the best (0 = off)\n"
               "  --seed S         sampling seed (default 0): the same seed gives the same text\n"
               "  --ignore-eos     do not stop at end-of-generation tokens\n"
               "  --special        print control tokens (<|im_end|>) too\n"
               "  --device D       cpu (default) or cuda\n"
               "  --threads T      CPU threads (default $ZMLX_THREADS or all cores)\n"
               "  --ctx N          KV cache positions (default: prompt + N)\n");
}

typedef struct {
    const char *path, *text, *system;
    long long n_gen, threads, n_ctx, seed, top_k;
    double temp, top_p, min_p;
    int chat, ignore_eos, special;
    zm_device device;
} gen_args;

static int parse(int argc, char **argv, gen_args *g) {
    const char *C = "generate", *v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) { if (!(g->path = zm_cli_arg(C, argc, argv, &i))) return -1; }
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) { if (!(g->text = zm_cli_arg(C, argc, argv, &i))) return -1; }
        else if (!strcmp(a, "--system")) { if (!(g->system = zm_cli_arg(C, argc, argv, &i))) return -1; }
        else if (!strcmp(a, "--chat")) g->chat = 1;
        else if (!strcmp(a, "--ignore-eos")) g->ignore_eos = 1;
        else if (!strcmp(a, "--special")) g->special = 1;
        else if (!strcmp(a, "-n")) { if (!(v = zm_cli_arg(C, argc, argv, &i)) || !zm_cli_int(C, a, v, 1, 1 << 24, &g->n_gen)) return -1; }
        else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) { if (!(v = zm_cli_arg(C, argc, argv, &i)) || !zm_cli_int(C, a, v, 1, 1024, &g->threads)) return -1; }
        else if (!strcmp(a, "--ctx")) { if (!(v = zm_cli_arg(C, argc, argv, &i)) || !zm_cli_int(C, a, v, 1, 1 << 24, &g->n_ctx)) return -1; }
        else if (!strcmp(a, "--seed")) { if (!(v = zm_cli_arg(C, argc, argv, &i)) || !zm_cli_int(C, a, v, 0, INT64_MAX, &g->seed)) return -1; }
        else if (!strcmp(a, "--top-k")) { if (!(v = zm_cli_arg(C, argc, argv, &i)) || !zm_cli_int(C, a, v, 0, INT32_MAX, &g->top_k)) return -1; }
        else if (!strcmp(a, "--temp")) { if (!(v = zm_cli_arg(C, argc, argv, &i)) || !zm_cli_float(C, a, v, &g->temp)) return -1; }
        else if (!strcmp(a, "--top-p")) { if (!(v = zm_cli_arg(C, argc, argv, &i)) || !zm_cli_float(C, a, v, &g->top_p)) return -1; }
        else if (!strcmp(a, "--min-p")) { if (!(v = zm_cli_arg(C, argc, argv, &i)) || !zm_cli_float(C, a, v, &g->min_p)) return -1; }
        else if (!strcmp(a, "--device")) {
            if (!(v = zm_cli_arg(C, argc, argv, &i))) return -1;
            if (!strcmp(v, "cpu")) g->device = ZM_CPU;
            else if (!strcmp(v, "cuda")) g->device = ZM_CUDA;
            else { fprintf(stderr, "zmlx generate: --device expects cpu or cuda, got '%s'\n", v); return -1; }
        } else { fprintf(stderr, "zmlx generate: unknown option '%s'\n", a); usage(stderr); return -1; }
    }
    if (!g->path || !g->text) { fprintf(stderr, "zmlx generate: -m FILE and -p TEXT are required\n"); usage(stderr); return -1; }
    if (g->temp < 0 || g->top_p < 0 || g->top_p > 1 || g->min_p < 0 || g->min_p > 1) {
        fprintf(stderr, "zmlx generate: need --temp >= 0, --top-p and --min-p in [0, 1]\n");
        return -1;
    }
    return 1;
}

static void emit(const char *s, size_t n) {
    if (!n) return;
    fwrite(s, 1, n, stdout);
    fflush(stdout);
}

int zm_cmd_generate(int argc, char **argv) {
    const char *C = "generate";
    gen_args g = {.n_gen = 128, .top_p = 1.0, .device = ZM_CPU};
    int pr = parse(argc, argv, &g);
    if (pr <= 0) return pr == 0 ? 0 : 2;
    int32_t *ids = NULL;
    int n_ids = 0, rc = 1;
    zm_tokenizer *tok = NULL;
    zm_model *m = NULL;
    zm_session *s = NULL;
    zm_sampler *smp = NULL;
    zm_detok *dt = NULL;
    float *logits = NULL;
    zm_status st;
    if (!zm_cli_prompt(C, g.path, g.text, g.chat, g.system, &ids, &n_ids)) goto done;
    if ((st = zm_tokenizer_open(&tok, g.path)) != ZM_OK) { rc = zm_cli_fail(C, "tokenizer", st); goto done; }
    zm_model_opts mo = {.device = g.device, .n_threads = (int)g.threads};
    mo.n_ctx = g.n_ctx ? g.n_ctx : n_ids + g.n_gen;
    if ((st = zm_model_load(&m, g.path, &mo)) != ZM_OK) { rc = zm_cli_fail(C, "load", st); goto done; }
    if (n_ids + g.n_gen > zm_model_n_ctx(m)) {
        fprintf(stderr, "zmlx generate: %d prompt + %lld generated tokens exceed the %lld-position cache (--ctx)\n", n_ids,
                g.n_gen, (long long)zm_model_n_ctx(m));
        goto done;
    }
    if ((st = zm_session_new(&s, m)) != ZM_OK) { rc = zm_cli_fail(C, "session", st); goto done; }
    zm_sampler_params sp = {.temp = (float)g.temp, .top_k = (int32_t)g.top_k, .top_p = (float)g.top_p,
                            .min_p = (float)g.min_p, .seed = (uint64_t)g.seed};
    if ((st = zm_sampler_new(&smp, &sp)) != ZM_OK) { rc = zm_cli_fail(C, "sampler", st); goto done; }
    if ((st = zm_detok_new(&dt, tok, g.special ? ZM_DEC_SPECIAL : 0)) != ZM_OK) { rc = zm_cli_fail(C, "decoder", st); goto done; }
    int64_t nv = zm_model_n_vocab(m);
    /* logits past the tokenizer's last id (padding rows) are never drawn */
    int64_t nv_draw = nv < zm_tokenizer_n_vocab(tok) ? nv : zm_tokenizer_n_vocab(tok);
    if (!(logits = malloc(sizeof *logits * (size_t)nv))) { fprintf(stderr, "zmlx generate: out of memory\n"); goto done; }

    double t0 = zm__now();
    st = zm_session_prefill(s, ids, n_ids, logits, NULL);
    double t1 = zm__now();
    if (st != ZM_OK) { rc = zm_cli_fail(C, "prefill", st); goto done; }
    long long n_out = 0, n_dec = 0;
    const char *eog = NULL;
    for (;;) {
        int32_t id;
        if ((st = zm_sampler_sample(smp, logits, nv_draw, &id)) != ZM_OK) { rc = zm_cli_fail(C, "sample", st); goto done; }
        n_out++;
        if (!g.ignore_eos && zm_tokenizer_is_eog(tok, id)) { eog = "end of generation"; break; }
        const char *piece;
        size_t len;
        if ((st = zm_detok_push(dt, id, &piece, &len)) != ZM_OK) { rc = zm_cli_fail(C, "detokenize", st); goto done; }
        emit(piece, len);
        if (n_out >= g.n_gen) break;
        if ((st = zm_session_decode(s, id, logits, NULL)) != ZM_OK) { rc = zm_cli_fail(C, "decode", st); goto done; }
        n_dec++;
    }
    double t2 = zm__now();
    const char *rest;
    size_t rl;
    if (zm_detok_flush(dt, &rest, &rl) == ZM_OK) emit(rest, rl);
    printf("\n");
    fflush(stdout);
    double pre = t1 - t0, dec = t2 - t1;
    fprintf(stderr, "\nprompt: %d tokens, prefill %.1f tok/s (%.2f ms)\n", n_ids, n_ids / (pre > 0 ? pre : 1e-9), pre * 1e3);
    fprintf(stderr, "generated: %lld tokens (%s), decode %.1f tok/s (%lld steps, %.2f ms)\n", n_out,
            eog ? eog : "token limit", n_dec / (dec > 0 ? dec : 1e-9), n_dec, dec * 1e3);
    fprintf(stderr, "model: %s, %s experts, device %s; sampling: %s\n", zm_model_arch(m),
            zm_dtype_name(zm_model_weight_type(m)), zm_device_name(zm_model_device(m)),
            g.temp > 0 ? "temperature" : "greedy");
    rc = 0;
done:
    free(logits);
    zm_detok_free(dt);
    zm_sampler_free(smp);
    zm_session_free(s);
    zm_model_free(m);
    zm_tokenizer_free(tok);
    free(ids);
    return rc;
}
