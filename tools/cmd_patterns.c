/* zmlx patterns: the patch patterns, the families with their default sets,
 * and the safety table with reasons. */
#include "tools/cli.h"
#include "zmlx/patch.h"
#include <stdio.h>
#include <string.h>

int zm_cmd_patterns(int argc, char **argv) {
    if (argc > 1) {
        if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
            printf("usage: zmlx patterns\nLists patch patterns, model families, default sets and the safety table.\n");
            return 0;
        }
        fprintf(stderr, "zmlx patterns: unexpected argument '%s'\n", argv[1]);
        return 2;
    }
    printf("patterns (applied in this order):\n");
    for (int i = 0; i < zm_pattern_count(); i++) printf("  %-20s %s\n", zm_pattern_name(i), zm_pattern_desc(i));
    printf("\nfamilies (GGUF architectures) and default patterns, after the safety table:\n");
    for (int f = 0; f < zm_family_count(); f++) {
        uint32_t m = zm_family_defaults(f);
        for (int s = 0; s < zm_safety_count(); s++) {
            const char *p, *fam;
            zm_safety_entry(s, &p, &fam, NULL);
            if (!strcmp(fam, zm_family_name(f)) && zm_pattern_find(p) >= 0) m &= ~(1u << zm_pattern_find(p));
        }
        char names[512];
        zm_patch_mask_names(m, names, sizeof names);
        printf("  %-10s (%s): %s\n", zm_family_name(f), zm_family_archs(f), names);
    }
    printf("\nsafety table (pattern, family: reason):\n");
    for (int s = 0; s < zm_safety_count(); s++) {
        const char *p, *fam, *r;
        zm_safety_entry(s, &p, &fam, &r);
        printf("  %-20s %-10s %s\n", p, fam, r);
    }
    printf("\nimplemented graph builders: qwen3moe (other families' builders are not in zmlx yet)\n"
           "environment: ZMLX_PATTERNS, ZMLX_EXCLUDE (comma lists), ZMLX_NO_FUSION=1\n");
    return 0;
}
