/* llama.cpp side of the tokenizer cross-check: load only the vocabulary of a
 * GGUF (vocab_only) and tokenize texts read from stdin, one per line as
 *   FLAGS HEX     (FLAGS bit 0: parse special tokens, bit 1: add BOS/EOS)
 * printing one line of comma-separated ids per text ("-" for none).
 * Built by tests/crosscheck/llama_tok/run.sh against llama.cpp 0.5.0's own
 * headers; used by tests/test_tok_llama.c; never linked into libzmlx. */
#include "ggml-backend.h"
#include "llama.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void quiet(enum ggml_log_level level, const char *text, void *ud) {
    (void)ud;
    if (level >= GGML_LOG_LEVEL_ERROR || getenv("ZMLX_LLAMA_LOG")) fputs(text, stderr);
}

static int hexval(int c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; }

int main(int argc, char **argv) {
    const char *path = NULL, *libdir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "--libdir") && i + 1 < argc) libdir = argv[++i];
        else { fprintf(stderr, "usage: llama_tokenize -m FILE --libdir DIR < cases\n"); return 2; }
    }
    if (!path || !libdir) { fprintf(stderr, "llama_tokenize: -m and --libdir are required\n"); return 2; }
    llama_log_set(quiet, NULL);
    ggml_backend_load_all_from_path(libdir);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    struct llama_model *model = llama_model_load_from_file(path, mp);
    if (!model) { fprintf(stderr, "llama_tokenize: llama.cpp cannot load %s\n", path); return 1; }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    size_t cap = 1 << 16;
    char *line = malloc(cap), *text = malloc(cap);
    int32_t *ids = malloc(sizeof *ids * cap);
    printf("n_vocab: %d\n", llama_vocab_n_tokens(vocab));
    while (fgets(line, (int)cap, stdin)) {
        int flags = atoi(line);
        const char *h = strchr(line, ' ');
        int n = 0;
        for (h = h ? h + 1 : ""; hexval(h[0]) >= 0 && hexval(h[1]) >= 0; h += 2) text[n++] = (char)(hexval(h[0]) * 16 + hexval(h[1]));
        int k = llama_tokenize(vocab, text, n, ids, (int32_t)cap, (flags & 2) != 0, (flags & 1) != 0);
        if (k < 0) { printf("ERR %d\n", k); continue; }
        if (!k) printf("-");
        for (int i = 0; i < k; i++) printf("%s%d", i ? "," : "", ids[i]);
        printf("\n");
    }
    free(line); free(text); free(ids);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
