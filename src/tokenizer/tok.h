/* Private layout of zm_tokenizer shared by the src/tokenizer files: the vocabulary
 * (one arena of token strings), a string -> id hash, a (left, right) -> merge
 * hash, the special-token index and the compiled pre-tokenizer regex. */
#ifndef ZM_TOKENIZER_TOK_H
#define ZM_TOKENIZER_TOK_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include "core/internal.h"
#include "zmlx/tokenizer.h"
#include <pcre2.h>

typedef struct zm__merge_slot {
    uint64_t key;   /* (left << 32) | right; UINT64_MAX = empty */
    uint32_t rank;  /* position in tokenizer.ggml.merges: lower merges first */
    int32_t result; /* id of left + right */
} zm__merge_slot;

struct zm_tokenizer {
    zm_tok_model model;
    zm_pretok pre;
    int32_t n;
    char *arena;       /* every token string, back to back */
    uint64_t *off;     /* n + 1 offsets into arena */
    float *score;
    uint8_t *type;
    /* string -> id, open addressing, value id + 1 (0 = empty) */
    uint32_t *hmap;
    uint64_t hmask;
    /* merges (BPE) */
    zm__merge_slot *merge;
    uint64_t mmask;
    int64_t n_merges;
    /* decoded bytes of each token (byte-level unmapping / ▁ -> space / <0xXX>) */
    char *dec;
    uint64_t *dec_off; /* n + 1 */
    int32_t byte_tok[256]; /* BPE: token of the mapped byte; SPM: <0xXX>; -1 none */
    /* specials matched in text: per first byte, ids sorted by length desc */
    int32_t *spec;        /* all special ids grouped by first byte */
    uint32_t spec_start[257];
    int32_t bos, eos, eot, eom, unk, pad;
    int add_bos, add_eos, add_space_prefix, ignore_merges;
    int32_t eog[16];
    int n_eog;
    zm_chat_kind chat;
    pcre2_code *re;
};

static inline const char *zm__tok_str(const zm_tokenizer *t, int32_t id, size_t *len) {
    *len = (size_t)(t->off[id + 1] - t->off[id]);
    return t->arena + t->off[id];
}

uint64_t zm__tok_hash(const char *s, size_t n);
/* Merge lookup: rank or UINT32_MAX, *result the merged id. */
/* Merge candidates (heap.c): min-heap by key, then pos. aux: the BPE rank
 * or the SentencePiece merged length, for the staleness check. */
typedef struct { double key; int32_t pos; uint32_t aux; } zm__tok_cand;
void zm__tok_heap_push(zm__tok_cand *h, int64_t *n, zm__tok_cand c);
zm__tok_cand zm__tok_heap_pop(zm__tok_cand *h, int64_t *n);
uint32_t zm__tok_merge_find(const zm_tokenizer *t, int32_t l, int32_t r, int32_t *result);

/* GPT-2 byte <-> unicode: byte b is shown as code point zm__b2u(b). */
uint32_t zm__b2u(uint8_t b);
int zm__u2b(uint32_t cp); /* byte or -1 */
/* Decode one UTF-8 character at s (n bytes left): its length (1 for an
 * invalid byte, *cp = 0xFFFD then) and code point. */
int zm__utf8_next(const char *s, size_t n, uint32_t *cp);
int zm__utf8_put(char *o, uint32_t cp);

/* Growing id array. */
typedef struct zm__ids {
    int32_t *v;
    int64_t n, cap;
} zm__ids;
zm_status zm__ids_push(zm__ids *a, int32_t id);

/* Pre-tokenizer regex for p (NULL for ZM_PRETOK_NONE); src/tokenizer/bpe.c. */
zm_status zm__pretok_compile(zm_pretok p, pcre2_code **out);
/* Encode one raw-text fragment (no specials inside) and append ids. */
zm_status zm__bpe_encode(const zm_tokenizer *t, const char *s, size_t n, zm__ids *out);
zm_status zm__spm_encode(const zm_tokenizer *t, const char *s, size_t n, zm__ids *out);

#endif
