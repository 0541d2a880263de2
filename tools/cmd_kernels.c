/* zmlx kernels: list the kernel catalog (name, family, backends, dtypes,
 * gradient), optionally one family, or as JSON lines. */
#include "tools/cli.h"
#include "zmlx/ops.h"
#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "usage: zmlx kernels [--family NAME] [--json] [--count]\n"
               "  lists the catalog: name, family, backends, dtypes, gradient, semantics\n");
}

int zm_cmd_kernels(int argc, char **argv) {
    const char *family = NULL;
    int json = 0, count_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--family")) { if (!(family = zm_cli_arg("kernels", argc, argv, &i))) return 2; }
        else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--count")) count_only = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        else { fprintf(stderr, "zmlx kernels: unknown option '%s'\n", argv[i]); usage(stderr); return 2; }
    }
    int shown = 0;
    if (!json && !count_only) printf("%-28s %-12s %-9s %-13s %-28s %s\n", "name", "family", "backends", "dtypes", "gradient", "semantics");
    for (int i = 0; i < zm_op_count(); i++) {
        const zm_op_info *o = zm_op_get(i);
        if (family && strcmp(o->family, family)) continue;
        shown++;
        if (count_only) continue;
        const char *be = o->backends == (ZM_OP_CPU | ZM_OP_CUDA) ? "cpu,cuda" : o->backends == ZM_OP_CPU ? "cpu" : "cuda";
        if (json)
            printf("{\"name\":\"%s\",\"family\":\"%s\",\"backends\":\"%s\",\"dtypes\":\"%s\",\"gradient\":\"%s\",\"dsl\":%s,"
                   "\"summary\":\"%s\"}\n",
                   o->name, o->family, be, o->dtypes, o->grad, o->dsl ? "true" : "false", o->summary);
        else
            printf("%-28s %-12s %-9s %-13s %-28s %s%s\n", o->name, o->family, be, o->dtypes, o->grad[0] ? o->grad : "-",
                   o->dsl ? "[dsl] " : "", o->summary);
    }
    if (family && !shown) { fprintf(stderr, "zmlx kernels: no family '%s'\n", family); return 1; }
    if (!json) printf("%d kernels\n", shown);
    return 0;
}
