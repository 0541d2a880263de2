/* Tokenizers from GGUF metadata, the way llama.cpp reads them:
 *   tokenizer.ggml.model = "gpt2"  byte-level BPE with merge ranks and a
 *       pre-tokenizer regex named by tokenizer.ggml.pre (gpt2/default,
 *       qwen2, llama-bpe/llama3, gpt-4o/o200k/gpt-oss), run by PCRE2 with
 *       Unicode properties;
 *   tokenizer.ggml.model = "llama" SentencePiece-style: scores, "▁" for
 *       spaces, byte fallback through <0xXX> tokens.
 * Control and user-defined tokens are matched in the text before
 * pre-tokenization; BOS/EOS follow the GGUF flags. Decoding gives the exact
 * bytes back; the streaming decoder (zm_detok) only ever hands out complete,
 * valid UTF-8 (invalid bytes become U+FFFD).
 *
 * Ownership: a zm_tokenizer copies what it needs (the GGUF may be freed after
 * zm_tokenizer_load) and is read-only afterwards, so one tokenizer may be
 * used by several threads at once. Buffers returned through `char **` /
 * `int32_t **` are malloc'ed and freed by the caller with free().
 * Checked by tests/test_tokenizer.c (hand-built vocabularies),
 * tests/test_tok_o200k.c (OpenAI's o200k vocabulary against npm gpt-tokenizer)
 * and fuzz/fuzz_tokenizer.c. */
#ifndef ZMLX_TOKENIZER_H
#define ZMLX_TOKENIZER_H

#include "zmlx/core.h"
#include "zmlx/gguf.h"
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* tokenizer.ggml.token_type values (llama.cpp's llama_token_type). */
typedef enum {
    ZM_TOKEN_UNDEFINED = 0,
    ZM_TOKEN_NORMAL = 1,
    ZM_TOKEN_UNKNOWN = 2,
    ZM_TOKEN_CONTROL = 3,      /* matched in text only with ZM_ENC_PARSE_SPECIAL */
    ZM_TOKEN_USER_DEFINED = 4, /* always matched in text, decoded verbatim */
    ZM_TOKEN_UNUSED = 5,
    ZM_TOKEN_BYTE = 6,         /* SentencePiece <0xXX> */
    ZM_TOKEN_TYPE_COUNT
} zm_token_type;

typedef enum { ZM_TOKMODEL_BPE = 0, ZM_TOKMODEL_SPM = 1, ZM_TOKMODEL_COUNT } zm_tok_model;

typedef enum {
    ZM_PRETOK_NONE = 0, /* SPM: no pre-tokenizer */
    ZM_PRETOK_GPT2,     /* "default", "gpt2" */
    ZM_PRETOK_LLAMA3,   /* "llama-bpe", "llama3", "llama-v3", "lfm2" */
    ZM_PRETOK_QWEN2,    /* "qwen2", "deepseek-r1-qwen" */
    ZM_PRETOK_O200K,    /* "gpt-4o", "o200k", "gpt-oss", "llama4" */
    ZM_PRETOK_QWEN35,   /* "qwen35": qwen2 with marks kept inside words */
    ZM_PRETOK_GLM4,     /* "glm4", "chatglm-bpe": llama3's regex, merges always run, no BOS */
    ZM_PRETOK_COUNT
} zm_pretok;

typedef enum { ZM_CHAT_NONE = 0, ZM_CHAT_CHATML, ZM_CHAT_HARMONY, ZM_CHAT_COUNT } zm_chat_kind;

typedef struct zm_tokenizer zm_tokenizer;

/* An in-memory vocabulary (what the GGUF keys hold). Call
 * zm_vocab_desc_init first: it sets every id to -1 (none) and every flag
 * to -1 (the model's default). Strings are copied by zm_tokenizer_new. */
typedef struct zm_vocab_desc {
    const char *model;             /* "gpt2" or "llama" */
    const char *pre;               /* tokenizer.ggml.pre; NULL = "default" */
    int64_t n_tokens;
    const char *const *tokens;     /* as stored in GGUF (byte-level BPE: mapped) */
    const uint32_t *token_lens;    /* NULL: tokens are NUL-terminated */
    const float *scores;           /* NULL: all 0 */
    const int32_t *token_types;    /* NULL: all ZM_TOKEN_NORMAL */
    int64_t n_merges;
    const char *const *merges;     /* "left right", highest priority first */
    const uint32_t *merge_lens;    /* NULL: NUL-terminated */
    int32_t bos, eos, eot, eom, unk, pad; /* -1 = none */
    int add_bos, add_eos, add_space_prefix; /* -1 = default, 0, 1 */
    const char *chat_template;     /* tokenizer.chat_template (jinja) or NULL */
    const char *arch;              /* general.architecture or NULL (chat fallback) */
} zm_vocab_desc;
void zm_vocab_desc_init(zm_vocab_desc *d);

zm_status zm_tokenizer_new(zm_tokenizer **out, const zm_vocab_desc *d);
/* From the tokenizer.* keys of an open GGUF (the GGUF may be freed later). */
zm_status zm_tokenizer_load(zm_tokenizer **out, const zm_gguf *g);
/* Open the GGUF at path, load its tokenizer, close it. */
zm_status zm_tokenizer_open(zm_tokenizer **out, const char *path);
void zm_tokenizer_free(zm_tokenizer *t);

int32_t zm_tokenizer_n_vocab(const zm_tokenizer *t);
zm_tok_model zm_tokenizer_model(const zm_tokenizer *t);
zm_pretok zm_tokenizer_pretok(const zm_tokenizer *t);
const char *zm_pretok_name(zm_pretok p);
int32_t zm_tokenizer_bos(const zm_tokenizer *t); /* -1 if none */
int32_t zm_tokenizer_eos(const zm_tokenizer *t); /* -1 if none */
int zm_tokenizer_add_bos(const zm_tokenizer *t);
/* End of generation: EOS, EOT, EOM and the control tokens that end a turn
 * (<|im_end|>, <|endoftext|>, <|return|>, <|call|>, <|eot_id|>, ...). */
int zm_tokenizer_is_eog(const zm_tokenizer *t, int32_t id);
zm_token_type zm_tokenizer_token_type(const zm_tokenizer *t, int32_t id); /* UNDEFINED if out of range */
/* The token's string as stored in the vocabulary (not NUL-terminated);
 * NULL if id is out of range. Lives as long as t. */
const char *zm_tokenizer_token_text(const zm_tokenizer *t, int32_t id, size_t *len);
/* Id of a token by its stored string, -1 if absent. */
int32_t zm_tokenizer_find(const zm_tokenizer *t, const char *text, size_t len);

/* ---- encode -------------------------------------------------------------- */
enum {
    ZM_ENC_ADD_SPECIAL = 1,   /* add BOS / EOS as the vocabulary's flags say */
    ZM_ENC_PARSE_SPECIAL = 2, /* match control tokens (<|im_start|>) in the text */
};
/* text: len bytes, any bytes (invalid UTF-8 is encoded byte by byte, never
 * crashes). *ids: malloc'ed array of *n ids (non-NULL even when *n == 0). */
zm_status zm_tokenizer_encode(const zm_tokenizer *t, const char *text, size_t len, int flags,
                              int32_t **ids, int64_t *n);

/* ---- decode -------------------------------------------------------------- */
enum {
    ZM_DEC_SPECIAL = 1, /* render control tokens as their text (default: nothing) */
    ZM_DEC_KEEP_SPACE = 2, /* SPM: keep the space the encoder prefixed */
};
/* The exact bytes of ids (NUL-terminated, *len excludes the NUL). Ids out of
 * range are ZM_ERR_RANGE. Not sanitised: use zm_detok for display. */
zm_status zm_tokenizer_decode(const zm_tokenizer *t, const int32_t *ids, int64_t n, int flags,
                              char **text, size_t *len);

/* Streaming decoder: push ids one by one, get the text that is complete so
 * far. A character split across tokens is held back until it is complete;
 * bytes that can never form valid UTF-8 come out as U+FFFD, so the
 * concatenated output is always valid UTF-8. */
typedef struct zm_detok zm_detok;
zm_status zm_detok_new(zm_detok **out, const zm_tokenizer *t, int flags);
void zm_detok_free(zm_detok *d);
/* *s / *len: text ready now (possibly empty), valid until the next call. */
zm_status zm_detok_push(zm_detok *d, int32_t id, const char **s, size_t *len);
/* End of stream: whatever is held back (an incomplete character -> U+FFFD). */
zm_status zm_detok_flush(zm_detok *d, const char **s, size_t *len);

/* Longest prefix of s[0..len) made of complete valid UTF-8 characters
 * (helper shared with the CLI and tests). */
size_t zm_utf8_valid_prefix(const char *s, size_t len);

/* ---- chat templates (src/tokenizer/chat.c) ------------------------------- */
typedef struct zm_chat_msg {
    const char *role;    /* "system", "developer", "user", "assistant" */
    const char *content;
} zm_chat_msg;
/* Which template this model uses: tokenizer.chat_template's markers, else
 * general.architecture, else the control tokens present. */
zm_chat_kind zm_tokenizer_chat_kind(const zm_tokenizer *t);
const char *zm_chat_kind_name(zm_chat_kind k); /* "none", "chatml", "harmony" */
int zm_chat_kind_parse(const char *name);      /* -1 if unknown */
/* Render messages as the model was trained to see them; with add_assistant
 * the text ends where the assistant's reply begins. *out is malloc'ed. */
zm_status zm_chat_format(zm_chat_kind k, const zm_chat_msg *msgs, int n, int add_assistant,
                         char **out);

#ifdef __cplusplus
}
#endif
#endif
