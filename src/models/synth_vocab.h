/* Private: the synthetic byte-level BPE vocabulary of `zmlx synth` (gpt2
 * form, as llama.cpp's qwen2 tokenizer reads it). See synth_vocab.c. */
#ifndef ZM_MODELS_SYNTH_VOCAB_H
#define ZM_MODELS_SYNTH_VOCAB_H
#include "zmlx/core.h"
#include <stdint.h>

typedef struct {
    char **tokens;   /* n_vocab NUL-terminated strings (GPT-2 byte-to-unicode alphabet) */
    int32_t *types;  /* 1 normal, 3 control */
    int n_vocab;
    char **merges;   /* "left right", in rank order */
    int n_merges;
} zm__synth_vocab;

/* ids [0,256): the 256 byte tokens in GPT-2 order; then one token per merge;
 * the last n_special ids: <|endoftext|>, <|im_start|>, <|im_end|>, [PAD..]. */
zm_status zm__synth_vocab_build(zm__synth_vocab *v, int n_vocab, int n_special, uint64_t seed);
void zm__synth_vocab_free(zm__synth_vocab *v);
#endif
