/* Helpers shared by the CLI subcommands (tools/cmd_*.c): strict number
 * parsing and error printing. Every argument is hostile until checked. */
#ifndef ZM_TOOLS_CLI_H
#define ZM_TOOLS_CLI_H
#include "zmlx/core.h"
#include <stdint.h>

/* Parse a whole decimal integer in [lo, hi]; on failure print
 * "zmlx <cmd>: <opt> expects ..." and return 0. */
int zm_cli_int(const char *cmd, const char *opt, const char *s, long long lo, long long hi, long long *out);
int zm_cli_float(const char *cmd, const char *opt, const char *s, double *out);
/* Comma-separated integers "1,2,3" into a malloc'ed array (caller frees). */
int zm_cli_int_list(const char *cmd, const char *opt, const char *s, int32_t **out, int *n);
/* "zmlx <cmd>: <what>: <status text>: <zm_last_error()>" to stderr; returns 1. */
int zm_cli_fail(const char *cmd, const char *what, zm_status s);
/* Value of option argv[*i] (advances *i); prints an error and returns NULL if missing. */
const char *zm_cli_arg(const char *cmd, int argc, char **argv, int *i);
#endif
