/* zmlx tokenize: text -> token ids with a GGUF file's own tokenizer, and
 * back (--decode 1,2,3), for users checking what a model sees.
 * Exercised by tests/test_tokenizer.c through the library and by hand:
 *   zmlx tokenize -m tiny.gguf -p "Hello world" --pieces */
#include "tools/cli.h"
#include "zmlx/tokenizer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "usage: zmlx tokenize -m FILE.gguf (-p TEXT | -f FILE | --decode 1,2,3) [options]\n"
               "  -p TEXT        text to encode\n"
               "  -f FILE        read the text from FILE ('-' = stdin)\n"
               "  --decode IDS   print the text of comma-separated ids instead\n"
               "  --chat         wrap the text as a user message in the model's chat template\n"
               "  --no-bos       do not add BOS/EOS even where the vocabulary asks for them\n"
               "  --no-special   treat control-token text (<|im_end|>) as plain text\n"
               "  --pieces       one line per id: id, type and the bytes it stands for\n"
               "  --count        print only the number of ids\n");
}

static char *read_all(const char *path, size_t *n) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *b = malloc(cap);
    for (size_t r; b && (r = fread(b + len, 1, cap - len, f)) > 0;) {
        len += r;
        if (len == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) { free(b); b = NULL; }
            else b = nb;
        }
    }
    if (f != stdin) fclose(f);
    *n = len;
    return b;
}

/* bytes shown safely on one line: printable ASCII and valid UTF-8 as is,
 * everything else as \xNN, \n, \t */
static void show_bytes(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t v = zm_utf8_valid_prefix(s + i, c >= 0x80 ? (n - i < 4 ? n - i : 4) : 1);
        if (c == '\n') { fputs("\\n", stdout); i++; }
        else if (c == '\t') { fputs("\\t", stdout); i++; }
        else if (c == '\\') { fputs("\\\\", stdout); i++; }
        else if (c < 0x20 || c == 0x7f) { printf("\\x%02x", c); i++; }
        else if (c < 0x80) { putchar(c); i++; }
        else if (v) {
            size_t l = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
            fwrite(s + i, 1, l, stdout);
            i += l;
        } else { printf("\\x%02x", c); i++; }
    }
}

static const char *type_name(zm_token_type t) {
    static const char *n[] = {"undef", "normal", "unknown", "control", "user", "unused", "byte"};
    return (unsigned)t < ZM_TOKEN_TYPE_COUNT ? n[t] : "?";
}

int zm_cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *text = NULL, *file = NULL, *decode = NULL;
    int chat = 0, bos = 1, special = 1, pieces = 0, count = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) { if (!(model = zm_cli_arg("tokenize", argc, argv, &i))) return 2; }
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) { if (!(text = zm_cli_arg("tokenize", argc, argv, &i))) return 2; }
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) { if (!(file = zm_cli_arg("tokenize", argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--decode")) { if (!(decode = zm_cli_arg("tokenize", argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--chat")) chat = 1;
        else if (!strcmp(a, "--no-bos")) bos = 0;
        else if (!strcmp(a, "--no-special")) special = 0;
        else if (!strcmp(a, "--pieces")) pieces = 1;
        else if (!strcmp(a, "--count")) count = 1;
        else { fprintf(stderr, "zmlx tokenize: unknown option '%s'\n", a); usage(stderr); return 2; }
    }
    if (!model || (!!text + !!file + !!decode) != 1) { usage(stderr); return 2; }
    zm_tokenizer *t = NULL;
    zm_status s = zm_tokenizer_open(&t, model);
    if (s) return zm_cli_fail("tokenize", model, s);
    int rc = 0;
    if (decode) {
        int32_t *ids = NULL;
        int n = 0;
        if (!zm_cli_int_list("tokenize", "--decode", decode, &ids, &n)) { zm_tokenizer_free(t); return 2; }
        char *out = NULL;
        size_t len = 0;
        s = zm_tokenizer_decode(t, ids, n, special ? ZM_DEC_SPECIAL : 0, &out, &len);
        if (s) rc = zm_cli_fail("tokenize", "--decode", s);
        else { fwrite(out, 1, len, stdout); putchar('\n'); }
        free(out);
        free(ids);
        zm_tokenizer_free(t);
        return rc;
    }
    size_t len = text ? strlen(text) : 0;
    char *buf = NULL;
    if (file && !(buf = read_all(file, &len))) {
        fprintf(stderr, "zmlx tokenize: cannot read '%s'\n", file);
        zm_tokenizer_free(t);
        return 1;
    }
    const char *src = buf ? buf : text;
    char *wrapped = NULL;
    if (chat) {
        char *msg = strndup(src, len);
        zm_chat_msg m = {"user", msg ? msg : ""};
        s = zm_chat_format(zm_tokenizer_chat_kind(t), &m, 1, 1, &wrapped);
        free(msg);
        if (s) { free(buf); zm_tokenizer_free(t); return zm_cli_fail("tokenize", "--chat", s); }
        src = wrapped;
        len = strlen(wrapped);
    }
    int32_t *ids = NULL;
    int64_t n = 0;
    s = zm_tokenizer_encode(t, src, len, (bos ? ZM_ENC_ADD_SPECIAL : 0) | (special ? ZM_ENC_PARSE_SPECIAL : 0), &ids, &n);
    if (s) rc = zm_cli_fail("tokenize", "encode", s);
    else if (count) printf("%lld\n", (long long)n);
    else if (pieces) {
        for (int64_t i = 0; i < n; i++) {
            size_t pl = 0;
            char *p = NULL;
            zm_tokenizer_decode(t, &ids[i], 1, ZM_DEC_SPECIAL | ZM_DEC_KEEP_SPACE, &p, &pl);
            printf("%8d %-7s '", ids[i], type_name(zm_tokenizer_token_type(t, ids[i])));
            show_bytes(p ? p : "", pl);
            printf("'\n");
            free(p);
        }
    } else {
        for (int64_t i = 0; i < n; i++) printf("%s%d", i ? "," : "", ids[i]);
        putchar('\n');
    }
    free(ids);
    free(wrapped);
    free(buf);
    zm_tokenizer_free(t);
    return rc;
}
