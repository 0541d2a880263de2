/* zmlx info: print a GGUF file's header, metadata and tensor table, the way
 * gguf-dump does; a hostile file gives the reader's message, never a crash.
 * Exercised by tests/test_gguf_bad.c through the library and by hand. */
#include "tools/cli.h"
#include "zmlx/gguf.h"
#include <stdio.h>
#include <string.h>

int zm_cmd_info(int argc, char **argv) {
    const char *path = NULL;
    int tensors = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: zmlx info FILE.gguf [--no-tensors]\n  header, metadata (arrays abridged) and tensor table\n");
            return 0;
        } else if (!strcmp(argv[i], "--no-tensors")) tensors = 0;
        else if (argv[i][0] == '-' && argv[i][1]) { fprintf(stderr, "zmlx info: unknown option '%s'\n", argv[i]); return 2; }
        else if (!path) path = argv[i];
        else { fprintf(stderr, "zmlx info: one file at a time\n"); return 2; }
    }
    if (!path) { fprintf(stderr, "usage: zmlx info FILE.gguf [--no-tensors]\n"); return 2; }
    zm_gguf *g;
    zm_status s = zm_gguf_open(&g, path);
    if (s) return zm_cli_fail("info", path, s);
    printf("%s: GGUF v%u, %llu bytes, %lld metadata, %lld tensors, alignment %u, data at %llu\n", path,
           zm_gguf_version(g), (unsigned long long)zm_gguf_file_size(g), (long long)zm_gguf_n_kv(g),
           (long long)zm_gguf_n_tensors(g), zm_gguf_alignment(g), (unsigned long long)zm_gguf_data_offset(g));
    char buf[1024];
    for (int64_t i = 0; i < zm_gguf_n_kv(g); i++) {
        zm_gguf_kv_to_str(g, i, buf, sizeof buf);
        printf("  %-48s %-7s %s\n", zm_gguf_key(g, i), zm_gguf_type_name(zm_gguf_kv_type(g, i)), buf);
    }
    uint64_t total = 0;
    int64_t params = 0;
    for (int64_t i = 0; i < zm_gguf_n_tensors(g); i++) {
        zm_gguf_tensor t;
        zm_gguf_tensor_info(g, i, &t);
        total += t.nbytes;
        params += t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3];
        if (!tensors) continue;
        char shape[96] = "";
        for (int d = 0; d < t.ndim; d++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? " x " : "", (long long)t.ne[d]);
        printf("  %-40s %-6s [%s] %llu bytes at +%llu\n", t.name, zm_dtype_name(t.dtype), shape,
               (unsigned long long)t.nbytes, (unsigned long long)t.offset);
    }
    printf("%lld parameters, %.3f MB of tensor data\n", (long long)params, (double)total / 1e6);
    zm_gguf_free(g);
    return 0;
}
