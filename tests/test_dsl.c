/* The expression language: IR construction (CSE, constant folding,
 * simplification), the interpreters (double and float32 arrays).
 * Checked against hand-written double C formulas at random points.
 * Run: build/tests/test_dsl. */
#include "harness.h"
#include "dsl/ir.h"
#include "zmlx/core.h"
#include <stdlib.h>
#include <string.h>

static int count_op(const zm_ir *ir, int32_t root, zm_ir_op op) {
    unsigned char *m = zm__ir_reach(ir, root);
    int c = 0;
    for (int32_t i = 0; m && i <= root; i++) c += m[i] && ir->nodes[i].op == op;
    free(m);
    return c;
}

static void test_ir_cse_fold(void) {
    zm_ir ir;
    zm_ir_init(&ir);
    int32_t x = zm_ir_leaf(&ir, ZM_IR_INPUT, 0), y = zm_ir_leaf(&ir, ZM_IR_INPUT, 1);
    int32_t r = zm_ir_op2(&ir, ZM_IR_ADD, zm_ir_op2(&ir, ZM_IR_MUL, x, y), zm_ir_op2(&ir, ZM_IR_MUL, y, x));
    ZT_CHECK(r >= 0 && count_op(&ir, r, ZM_IR_MUL) == 1, "x*y + y*x: one mul");
    int32_t f = zm_ir_op2(&ir, ZM_IR_ADD, zm_ir_op2(&ir, ZM_IR_MUL, zm_ir_const(&ir, 2), zm_ir_const(&ir, 3)), x);
    ZT_CHECK(ir.nodes[f].op == ZM_IR_ADD && ir.nodes[ir.nodes[f].a].op == ZM_IR_CONST &&
             ir.nodes[ir.nodes[f].a].value == 6 && ir.nodes[f].b == x, "2*3+x -> 6+x");
    ZT_CHECK(zm_ir_op2(&ir, ZM_IR_MUL, x, zm_ir_const(&ir, 1)) == x, "x*1");
    ZT_CHECK(zm_ir_op2(&ir, ZM_IR_ADD, x, zm_ir_const(&ir, 0)) == x, "x+0");
    int32_t z = zm_ir_op2(&ir, ZM_IR_MUL, x, zm_ir_const(&ir, 0));
    ZT_CHECK(ir.nodes[z].op == ZM_IR_CONST && ir.nodes[z].value == 0, "x*0");
    ZT_CHECK(zm_ir_op1(&ir, ZM_IR_NEG, zm_ir_op1(&ir, ZM_IR_NEG, x)) == x, "--x");
    zm_ir_clear(&ir);
}

static void test_eval_f32_matches_eval(void) {
    zm_ir ir;
    zm_ir_init(&ir);
    int32_t x = zm_ir_leaf(&ir, ZM_IR_INPUT, 0), y = zm_ir_leaf(&ir, ZM_IR_INPUT, 1);
    int32_t p = zm_ir_leaf(&ir, ZM_IR_PARAM, 0);
    int32_t r = x;
    for (zm_ir_op op = ZM_IR_NEG; op <= ZM_IR_CEIL; op++) {
        int32_t u = zm_ir_op1(&ir, op, zm_ir_op2(&ir, ZM_IR_MUL, p, y));
        r = zm_ir_op2(&ir, ZM_IR_ADD, r, zm_ir_op2(&ir, ZM_IR_MUL, zm_ir_const(&ir, 0.01 * op), u));
    }
    r = zm_ir_op3(&ir, ZM_IR_WHERE, zm_ir_op2(&ir, ZM_IR_GT, x, y), r, zm_ir_op2(&ir, ZM_IR_MAX, x, r));
    ZT_CHECK(r >= 0, "build");
    enum { N = 1000 };
    float *xs = malloc(N * sizeof *xs), ys[1] = {0.7f}, *out = malloc(N * sizeof *out);
    double *ref = malloc(N * sizeof *ref);
    zt_fill_uniform(xs, N, 0.1, 2);
    zt_poison_f32(out, N);
    float params[1] = {1.5f};
    zm_ir_eval_f32(&ir, r, N, (const float *const[]){xs, ys}, (const int64_t[]){1, 0}, params, NULL, out);
    for (int i = 0; i < N; i++) ref[i] = zm_ir_eval(&ir, r, (const double[]){xs[i], ys[0]}, (const double[]){1.5}, NULL);
    zt_close("eval_f32", out, ref, N, 1e-5);
    free(xs);
    free(out);
    free(ref);
    zm_ir_clear(&ir);
}

int main(void) {
    ZT_RUN(test_ir_cse_fold);
    ZT_RUN(test_eval_f32_matches_eval);
    return zt_finish();
}
