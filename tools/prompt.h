/* Prompt text -> token ids for the CLI commands that take -p TEXT (run,
 * generate, validate), through the model file's own tokenizer. */
#ifndef ZM_TOOLS_PROMPT_H
#define ZM_TOOLS_PROMPT_H
#include <stdint.h>

/* Encode text with the tokenizer of the GGUF at model_path (BOS/EOS as the
 * file says, control tokens parsed). chat: wrap it as one user message
 * (after an optional system message) in the model's chat template.
 * On success *ids is malloc'ed (caller frees) and 1 is returned; on failure
 * an error "zmlx <cmd>: ..." is printed and 0 returned. */
int zm_cli_prompt(const char *cmd, const char *model_path, const char *text, int chat, const char *system,
                  int32_t **ids, int *n);
#endif
