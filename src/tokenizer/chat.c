/* Chat templates, written out in C rather than by a Jinja engine: the two
 * families zmlx runs. ChatML (Qwen3, Qwen2): <|im_start|>role\ncontent<|im_end|>\n.
 * Harmony (gpt-oss): <|start|>role<|message|>content<|end|>, after the system
 * header the gpt-oss template writes (model identity, knowledge cutoff, date,
 * reasoning effort, valid channels); a user-given system prompt goes to the
 * developer message as "# Instructions". The date is today's (UTC) unless
 * $ZMLX_CHAT_DATE sets it (for reproducible runs).
 * Checked by tests/test_tokenizer.c (exact strings). */
#include "tokenizer/tok.h"
#include <stdio.h>
#include <string.h>
#include <time.h>

zm_chat_kind zm__chat_detect(const zm_tokenizer *t, const char *tmpl, const char *arch);

zm_chat_kind zm__chat_detect(const zm_tokenizer *t, const char *tmpl, const char *arch) {
    if (tmpl) {
        if (strstr(tmpl, "<|im_start|>")) return ZM_CHAT_CHATML;
        if (strstr(tmpl, "<|channel|>") || strstr(tmpl, "<|start|>")) return ZM_CHAT_HARMONY;
    }
    if (arch) {
        if (!strcmp(arch, "gpt-oss")) return ZM_CHAT_HARMONY;
        if (!strncmp(arch, "qwen", 4)) return ZM_CHAT_CHATML;
    }
    if (zm_tokenizer_find(t, "<|im_start|>", 12) >= 0) return ZM_CHAT_CHATML;
    if (zm_tokenizer_find(t, "<|start|>", 9) >= 0 && zm_tokenizer_find(t, "<|message|>", 11) >= 0) return ZM_CHAT_HARMONY;
    return ZM_CHAT_NONE;
}

const char *zm_chat_kind_name(zm_chat_kind k) {
    static const char *n[] = {"none", "chatml", "harmony"};
    return (unsigned)k < ZM_CHAT_COUNT ? n[k] : "?";
}

int zm_chat_kind_parse(const char *name) {
    if (!name) return -1;
    for (int k = 0; k < ZM_CHAT_COUNT; k++)
        if (!strcmp(name, zm_chat_kind_name((zm_chat_kind)k))) return k;
    if (!strcmp(name, "qwen3") || !strcmp(name, "qwen")) return ZM_CHAT_CHATML;
    if (!strcmp(name, "gpt-oss")) return ZM_CHAT_HARMONY;
    return -1;
}

typedef struct { char *s; size_t n, cap; int oom; } sbuf;

static void put(sbuf *b, const char *s) {
    size_t l = strlen(s);
    if (b->oom) return;
    if (b->n + l + 1 > b->cap) {
        size_t nc = (b->n + l + 1) * 2;
        char *p = realloc(b->s, nc);
        if (!p) { b->oom = 1; return; }
        b->s = p;
        b->cap = nc;
    }
    memcpy(b->s + b->n, s, l + 1);
    b->n += l;
}

static void chatml(sbuf *b, const zm_chat_msg *m, int n, int add_assistant) {
    for (int i = 0; i < n; i++) {
        put(b, "<|im_start|>");
        put(b, m[i].role);
        put(b, "\n");
        put(b, m[i].content);
        put(b, "<|im_end|>\n");
    }
    if (add_assistant) put(b, "<|im_start|>assistant\n");
}

static void harmony(sbuf *b, const zm_chat_msg *m, int n, int add_assistant) {
    char date[32];
    const char *env = getenv("ZMLX_CHAT_DATE");
    if (env && strlen(env) < sizeof date) snprintf(date, sizeof date, "%s", env);
    else {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(date, sizeof date, "%Y-%m-%d", &tm);
    }
    put(b, "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
           "Knowledge cutoff: 2024-06\nCurrent date: ");
    put(b, date);
    put(b, "\n\nReasoning: medium\n\n# Valid channels: analysis, commentary, final. "
           "Channel must be included for every message.<|end|>");
    int i = 0;
    if (n && (!strcmp(m[0].role, "system") || !strcmp(m[0].role, "developer"))) {
        put(b, "<|start|>developer<|message|># Instructions\n\n");
        put(b, m[0].content);
        put(b, "\n\n<|end|>");
        i = 1;
    }
    for (; i < n; i++) {
        if (!strcmp(m[i].role, "assistant")) {
            put(b, "<|start|>assistant<|channel|>final<|message|>");
            put(b, m[i].content);
            put(b, "<|end|>");
        } else {
            put(b, "<|start|>");
            put(b, m[i].role);
            put(b, "<|message|>");
            put(b, m[i].content);
            put(b, "<|end|>");
        }
    }
    if (add_assistant) put(b, "<|start|>assistant");
}

zm_status zm_chat_format(zm_chat_kind k, const zm_chat_msg *msgs, int n, int add_assistant, char **out) {
    if (!out) return zm__err(ZM_ERR_INVALID, "zm_chat_format: out is NULL");
    *out = NULL;
    if (n < 0 || (n && !msgs)) return zm__err(ZM_ERR_INVALID, "zm_chat_format: %d messages", n);
    for (int i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content || !msgs[i].role[0])
            return zm__err(ZM_ERR_INVALID, "zm_chat_format: message %d has no role or content", i);
    sbuf b = {0};
    put(&b, "");
    if (k == ZM_CHAT_CHATML) chatml(&b, msgs, n, add_assistant);
    else if (k == ZM_CHAT_HARMONY) harmony(&b, msgs, n, add_assistant);
    else { free(b.s); return zm__err(ZM_ERR_UNSUPPORTED, "zm_chat_format: no chat template for kind %d (%s)", (int)k, zm_chat_kind_name(k)); }
    if (b.oom) { free(b.s); return zm__err(ZM_ERR_NOMEM, "zm_chat_format: out of memory"); }
    *out = b.s;
    return ZM_OK;
}
