/* libFuzzer target for the expression language: arbitrary bytes as an
 * expression, parsed with the default names (x, y, z) and with caller names
 * (inputs, parameters, reductions). On success it also runs the gradient,
 * both interpreters, the printer and a print -> parse round trip (which must
 * succeed unless the printed text is deeper than the parser's cap). Any
 * result is fine; a crash, a leak, UB or an abort is a bug.
 * Run: make fuzz (or build/fuzz/fuzz_expr fuzz/corpus/expr). */
#include "dsl/ir.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void exercise(zm_ir *ir, int32_t r, int n_in, int default_names) {
    static const double in[8] = {0.5, -1.25, 2, 3, -4, 0.125, 7, 1e-3};
    static const double par[8] = {1.5, -0.5, 2, 0, 1, 1, 1, 1};
    static const double red[8] = {0.25, 3, -2, 1, 1, 1, 1, 1};
    (void)zm_ir_eval(ir, r, in, par, red);
    (void)zm_ir_uses_inputs(ir, r);
    (void)zm_ir_max_index(ir, r, ZM_IR_PARAM);

    /* the float interpreter over a partial block, with every stride kind */
    enum { N = 37 };
    static float xs[2 * N], ys[N], zs[1] = {0.75f}, out[N];
    for (int i = 0; i < 2 * N; i++) xs[i] = (float)(i - N) * 0.125f;
    for (int i = 0; i < N; i++) ys[i] = (float)i * 0.5f - 3.0f;
    const float *ins[8] = {xs, ys, zs, zs, zs, zs, zs, zs};
    const int64_t strides[8] = {2, 1, 0, 0, 0, 0, 0, 0};
    const float fpar[8] = {1.5f, -0.5f, 2, 0, 1, 1, 1, 1}, fred[8] = {0.25f, 3, -2, 1, 1, 1, 1, 1};
    zm_ir_eval_f32(ir, r, N, ins, strides, fpar, fred, out);

    /* gradients w.r.t. every input, seeded by 1 and by a leaf */
    for (int k = 0; k < n_in && ir->n < 200000; k++) {
        int32_t g = -1;
        int32_t seed = k & 1 ? zm_ir_leaf(ir, ZM_IR_INPUT, n_in) : zm_ir_const(ir, 1.0);
        if (seed >= 0 && zm_ir_grad(ir, r, k, seed, &g) == ZM_OK) {
            (void)zm_ir_eval(ir, g, in, par, red);
            zm_ir_eval_f32(ir, g, N, ins, strides, fpar, fred, out);
        }
    }

    char buf[4096];
    if (zm_ir_print(ir, r, buf, sizeof buf) == ZM_OK && default_names) {
        zm_ir again;
        zm_ir_init(&again);
        int32_t r2;
        zm_status s = zm_expr_parse(&again, buf, NULL, &r2);
        if (s != ZM_OK && !strstr(zm_last_error(), "nested deeper")) abort(); /* printer/parser disagree */
        zm_ir_clear(&again);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *src = malloc(size + 1);
    if (!src) return 0;
    memcpy(src, data, size);
    src[size] = 0;

    zm_ir ir;
    int32_t r;
    zm_ir_init(&ir);
    if (zm_expr_parse(&ir, src, NULL, &r) == ZM_OK) exercise(&ir, r, 3, 1);
    zm_ir_clear(&ir);

    static const zm_ir_names names = {{"x", "a", "bias", "w"}, 4, {"alpha", "eps"}, 2, 3};
    zm_ir_init(&ir);
    if (zm_expr_parse(&ir, src, &names, &r) == ZM_OK) exercise(&ir, r, 4, 0);
    zm_ir_clear(&ir);

    char found[8][32];
    int n;
    (void)zm_expr_scan_inputs(src, (const char *[]){"alpha", "eps"}, 2, found, &n);
    free(src);
    return 0;
}
