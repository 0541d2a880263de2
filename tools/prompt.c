/* Shared -p TEXT handling of the CLI (see tools/prompt.h).
 * Exercised by tests/test_tokenizer.c through the same library calls and by
 * `zmlx run -m tiny.gguf -p "Hello"`. */
#include "tools/prompt.h"
#include "tools/cli.h"
#include "zmlx/tokenizer.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

int zm_cli_prompt(const char *cmd, const char *model_path, const char *text, int chat, const char *system,
                  int32_t **ids, int *n) {
    *ids = NULL;
    *n = 0;
    zm_tokenizer *t = NULL;
    zm_status s = zm_tokenizer_open(&t, model_path);
    if (s) { zm_cli_fail(cmd, "tokenizer", s); return 0; }
    char *wrapped = NULL;
    if (chat) {
        zm_chat_msg m[2] = {{"system", system ? system : ""}, {"user", text}};
        s = zm_chat_format(zm_tokenizer_chat_kind(t), system ? m : m + 1, system ? 2 : 1, 1, &wrapped);
        if (s) { zm_cli_fail(cmd, "--chat", s); zm_tokenizer_free(t); return 0; }
        text = wrapped;
    }
    int64_t n64 = 0;
    size_t len = 0;
    while (text[len]) len++;
    s = zm_tokenizer_encode(t, text, len, ZM_ENC_ADD_SPECIAL | ZM_ENC_PARSE_SPECIAL, ids, &n64);
    free(wrapped);
    zm_tokenizer_free(t);
    if (s) { zm_cli_fail(cmd, "encode", s); return 0; }
    if (n64 < 1 || n64 > INT_MAX) {
        fprintf(stderr, "zmlx %s: the prompt gives %lld tokens; need at least one\n", cmd, (long long)n64);
        free(*ids);
        *ids = NULL;
        return 0;
    }
    *n = (int)n64;
    return 1;
}
