/* Shared CLI helpers: strict parsing of numbers and lists. */
#include "tools/cli.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int zm_cli_int(const char *cmd, const char *opt, const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "zmlx %s: %s expects an integer in [%lld, %lld], got '%s'\n", cmd, opt, lo, hi, s ? s : "");
        return 0;
    }
    *out = v;
    return 1;
}

int zm_cli_float(const char *cmd, const char *opt, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || v != v) {
        fprintf(stderr, "zmlx %s: %s expects a number, got '%s'\n", cmd, opt, s ? s : "");
        return 0;
    }
    *out = v;
    return 1;
}

int zm_cli_int_list(const char *cmd, const char *opt, const char *s, int32_t **out, int *n) {
    *out = NULL; *n = 0;
    if (!s || !*s) { fprintf(stderr, "zmlx %s: %s expects a list like 1,2,3\n", cmd, opt); return 0; }
    int cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    int32_t *v = malloc(sizeof *v * (size_t)cap);
    if (!v) return 0;
    const char *p = s;
    for (int i = 0; i < cap; i++) {
        char *end;
        errno = 0;
        long long x = strtoll(p, &end, 10);
        if (end == p || errno || x < 0 || x > INT32_MAX || (*end && *end != ',')) {
            fprintf(stderr, "zmlx %s: %s: bad id at character %d of '%s'\n", cmd, opt, (int)(p - s) + 1, s);
            free(v);
            return 0;
        }
        v[i] = (int32_t)x;
        p = end + (*end == ',');
    }
    *out = v; *n = cap;
    return 1;
}

int zm_cli_fail(const char *cmd, const char *what, zm_status s) {
    fprintf(stderr, "zmlx %s: %s: %s: %s\n", cmd, what, zm_status_str(s), zm_last_error());
    return 1;
}

const char *zm_cli_arg(const char *cmd, int argc, char **argv, int *i) {
    if (*i + 1 >= argc) { fprintf(stderr, "zmlx %s: %s needs a value\n", cmd, argv[*i]); return NULL; }
    return argv[++*i];
}
