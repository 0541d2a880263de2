/* libFuzzer target for the GGUF reader: parse arbitrary bytes with
 * zm_gguf_open_mem and, when they parse, touch everything a model loader
 * would: every key through every getter, every string-array element, every
 * tensor's info and its first and last data byte. Built under ASan+UBSan by
 * `make fuzz` (fuzz/run.sh); seeds in fuzz/corpus/gguf (tiny synth files'
 * headers and hand-made edge cases). */
#include "zmlx/gguf.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* an exact-size heap copy so ASan sees any over-read past the end */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    zm_gguf *g = NULL;
    if (zm_gguf_open_mem(&g, buf, size) == ZM_OK) {
        volatile uint64_t sink = 0;
        char text[256];
        for (int64_t i = 0; i < zm_gguf_n_kv(g); i++) {
            const char *k = zm_gguf_key(g, i);
            if (zm_gguf_find_key(g, k) != i) abort(); /* keys are unique: lookup must round-trip */
            zm_gguf_kv_to_str(g, i, text, sizeof text);
            uint32_t u; int64_t v; float f; int b; const char *s; uint64_t n; zm_gguf_type et;
            zm_gguf_get_u32(g, k, &u);
            zm_gguf_get_i64(g, k, &v);
            zm_gguf_get_f32(g, k, &f);
            zm_gguf_get_bool(g, k, &b);
            if (zm_gguf_get_str(g, k, &s, &n) == ZM_OK && n) sink += (uint8_t)s[n - 1];
            if (zm_gguf_get_arr(g, k, &et, &n) == ZM_OK) {
                for (uint64_t j = 0; j < n && j < 4096; j++) {
                    double d; int64_t iv;
                    if (zm_gguf_get_arr_str(g, k, j, &s, &n) == ZM_OK && n) sink += (uint8_t)s[n - 1];
                    zm_gguf_get_arr_f64(g, k, j, 1, &d);
                    zm_gguf_get_arr_i64(g, k, j, 1, &iv);
                    zm_gguf_get_arr(g, k, &et, &n);
                }
            }
        }
        for (int64_t i = 0; i < zm_gguf_n_tensors(g); i++) {
            zm_gguf_tensor t;
            if (zm_gguf_tensor_info(g, i, &t) != ZM_OK) abort();
            if (zm_gguf_find_tensor(g, t.name) != i) abort();
            if (zm_gguf_expect_tensor(g, t.name, t.ndim, t.ne, NULL) != ZM_OK) abort();
            if (t.nbytes) sink += ((const uint8_t *)t.data)[0] + ((const uint8_t *)t.data)[t.nbytes - 1];
        }
        (void)sink;
        zm_gguf_free(g);
    } else if (g) {
        abort(); /* *out must be NULL on failure */
    }
    free(buf);
    return 0;
}
