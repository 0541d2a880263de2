/* The C emitter: turns a kernel's IR into C that gcc/clang auto-vectorise
 * (restrict pointers, one flat loop per block, selects instead of branches,
 * libm calls declared SIMD so libmvec supplies vector versions). The library
 * (src/jit/kernel.c) does the threading, dtype conversion and broadcasting
 * and calls the exported block functions. Also the shared node printer used
 * by the CUDA emitter. Checked by tests/test_kernel.c: build/tests/test_kernel */
#include "jit/jit.h"
#include "jit/prelude.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char zm__prelude_src[] = ZM__PRELUDE(ZM__PRELUDE_TEXT);
const char zm__prelude_exp_c[] = ZM__PRELUDE_EXP(ZM__PRELUDE_TEXT);

// ---------------------------------------------------------------------------
void zm__sb_printf(zm__sb *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->n;
        int w = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (w < 0) { b->oom = 1; return; }
        if (b->p && (size_t)w < room) { b->n += (size_t)w; return; }
        size_t nc = (b->cap ? b->cap * 2 : 4096) + (size_t)w + 1;
        char *np = realloc(b->p, nc);
        if (!np) { b->oom = 1; return; }
        b->p = np;
        b->cap = nc;
    }
}
void zm__sb_puts(zm__sb *b, const char *s) { zm__sb_printf(b, "%s", s); }
void zm__sb_free(zm__sb *b) { free(b->p); memset(b, 0, sizeof *b); }

/* The prelude text is one line (it passed through the preprocessor): put
 * each function on its own line so printed sources read well. */
void zm__sb_puts_prelude(zm__sb *b, const char *s) {
    for (const char *p = s; *p; p++) {
        if (!strncmp(p, " ZM_FN ", 7) || !strncmp(p, " /*", 3)) { zm__sb_puts(b, "\n"); continue; }
        zm__sb_printf(b, "%c", *p);
    }
    zm__sb_puts(b, "\n");
}

void zm__ir_mark(const zm_ir *ir, int32_t root, uint8_t *mark) {
    if (root < 0 || root >= ir->n) return;
    mark[root] |= 1;
    /* operands have smaller indices: one backward sweep marks the cone */
    for (int32_t i = root; i >= 0; i--) {
        if (!(mark[i] & 1)) continue;
        const zm_ir_node *nd = &ir->nodes[i];
        int ar = zm_ir_op_arity(nd->op);
        if (ar >= 1 && nd->a >= 0) mark[nd->a] |= 1;
        if (ar >= 2 && nd->b >= 0) mark[nd->b] |= 1;
        if (ar >= 3 && nd->c >= 0) mark[nd->c] |= 1;
    }
}

/* The tanh(softplus) peephole: returns u for tanh(softplus(u)) or
 * tanh(log1p(exp(u))), else -1. */
static int32_t zm__tanh_softplus_arg(const zm_ir *ir, const zm_ir_node *nd) {
    if (nd->op != ZM_IR_TANH) return -1;
    const zm_ir_node *A = &ir->nodes[nd->a];
    if (A->op == ZM_IR_SOFTPLUS) return A->a;
    if (A->op == ZM_IR_LOG1P && ir->nodes[A->a].op == ZM_IR_EXP) return ir->nodes[A->a].a;
    return -1;
}

/* Like zm__ir_mark, but fused-away operands are not marked (not emitted). */
void zm__emit_mark(const zm_ir *ir, int32_t root, uint8_t *mark) {
    if (root < 0 || root >= ir->n) return;
    mark[root] |= 1;
    for (int32_t i = root; i >= 0; i--) {
        if (!(mark[i] & 1)) continue;
        const zm_ir_node *nd = &ir->nodes[i];
        int32_t u = zm__tanh_softplus_arg(ir, nd);
        if (u >= 0) { mark[u] |= 1; continue; }
        int ar = zm_ir_op_arity(nd->op);
        if (ar >= 1 && nd->a >= 0) mark[nd->a] |= 1;
        if (ar >= 2 && nd->b >= 0) mark[nd->b] |= 1;
        if (ar >= 3 && nd->c >= 0) mark[nd->c] |= 1;
    }
}

static void zm__emit_const(zm__sb *b, double v) {
    float f = (float)v;
    if (isnan(f)) { zm__sb_puts(b, "ZM_NAN"); return; }
    if (isinf(f)) { zm__sb_puts(b, f > 0 ? "ZM_INF" : "(-ZM_INF)"); return; }
    char t[48];
    snprintf(t, sizeof t, "%.9g", (double)f);
    if (!strpbrk(t, ".e")) strcat(t, ".0");
    zm__sb_printf(b, "%s%sf%s", f < 0 ? "(" : "", t, f < 0 ? ")" : "");
}

void zm__emit_node(zm__sb *b, const zm_ir *ir, int32_t i, int cuda) {
    (void)cuda; /* the same spelling works in C and CUDA C */
    const zm_ir_node *nd = &ir->nodes[i];
    const char *fn = NULL;
    switch (nd->op) {
    case ZM_IR_CONST: zm__emit_const(b, nd->value); return;
    case ZM_IR_INPUT: zm__sb_printf(b, "a%d", nd->index); return;
    case ZM_IR_PARAM: zm__sb_printf(b, "p%d", nd->index); return;
    case ZM_IR_RED: zm__sb_printf(b, "r%d", nd->index); return;
    case ZM_IR_NEG: zm__sb_printf(b, "(-t%d)", nd->a); return;
    case ZM_IR_EXP: fn = "zm_exp"; break;
    case ZM_IR_EXP2: fn = "exp2f"; break;
    case ZM_IR_LOG: fn = "logf"; break;
    case ZM_IR_LOG2: fn = "log2f"; break;
    case ZM_IR_LOG1P: fn = "log1pf"; break;
    case ZM_IR_EXPM1: fn = "expm1f"; break;
    case ZM_IR_SQRT: fn = "sqrtf"; break;
    case ZM_IR_RSQRT: fn = "zm_rsqrt"; break;
    case ZM_IR_ABS: fn = "fabsf"; break;
    case ZM_IR_SIGN: fn = "zm_sign"; break;
    case ZM_IR_SIN: fn = "sinf"; break;
    case ZM_IR_COS: fn = "cosf"; break;
    case ZM_IR_TANH: {
        /* peephole: tanh(softplus(u)) and tanh(log1p(exp(u))) in one exp */
        int32_t u = zm__tanh_softplus_arg(ir, nd);
        if (u >= 0) { zm__sb_printf(b, "zm_tanh_softplus(t%d)", u); return; }
        fn = "tanhf";
        break;
    }
    case ZM_IR_SIGMOID: fn = "zm_sigmoid"; break;
    case ZM_IR_SILU: fn = "zm_silu"; break;
    case ZM_IR_GELU: fn = "zm_gelu"; break;
    case ZM_IR_GELU_TANH: fn = "zm_gelu_tanh"; break;
    case ZM_IR_SOFTPLUS: fn = "zm_softplus"; break;
    case ZM_IR_RELU: fn = "zm_relu"; break;
    case ZM_IR_ERF: fn = "erff"; break;
    case ZM_IR_FLOOR: fn = "floorf"; break;
    case ZM_IR_CEIL: fn = "ceilf"; break;
    case ZM_IR_ADD: zm__sb_printf(b, "t%d + t%d", nd->a, nd->b); return;
    case ZM_IR_SUB: zm__sb_printf(b, "t%d - t%d", nd->a, nd->b); return;
    case ZM_IR_MUL: zm__sb_printf(b, "t%d * t%d", nd->a, nd->b); return;
    case ZM_IR_DIV: zm__sb_printf(b, "t%d / t%d", nd->a, nd->b); return;
    case ZM_IR_POW: zm__sb_printf(b, "powf(t%d, t%d)", nd->a, nd->b); return;
    case ZM_IR_MIN: zm__sb_printf(b, "zm_min(t%d, t%d)", nd->a, nd->b); return;
    case ZM_IR_MAX: zm__sb_printf(b, "zm_max(t%d, t%d)", nd->a, nd->b); return;
    case ZM_IR_LT: zm__sb_printf(b, "(t%d < t%d ? 1.0f : 0.0f)", nd->a, nd->b); return;
    case ZM_IR_LE: zm__sb_printf(b, "(t%d <= t%d ? 1.0f : 0.0f)", nd->a, nd->b); return;
    case ZM_IR_GT: zm__sb_printf(b, "(t%d > t%d ? 1.0f : 0.0f)", nd->a, nd->b); return;
    case ZM_IR_GE: zm__sb_printf(b, "(t%d >= t%d ? 1.0f : 0.0f)", nd->a, nd->b); return;
    case ZM_IR_EQ: zm__sb_printf(b, "(t%d == t%d ? 1.0f : 0.0f)", nd->a, nd->b); return;
    case ZM_IR_NE: zm__sb_printf(b, "(t%d != t%d ? 1.0f : 0.0f)", nd->a, nd->b); return;
    case ZM_IR_WHERE: zm__sb_printf(b, "zm_where(t%d, t%d, t%d)", nd->a, nd->b, nd->c); return;
    default: zm__sb_puts(b, "ZM_NAN /* unknown op */"); return;
    }
    zm__sb_printf(b, "%s(t%d)", fn, nd->a);
}

/* Body lines "const float tN = ...;" for the cone of root (leaves included). */
static void zm__emit_body(zm__sb *b, const zm_ir *ir, int32_t root, const char *indent) {
    uint8_t *mark = calloc((size_t)ir->n + 1, 1);
    if (!mark) { b->oom = 1; return; }
    zm__emit_mark(ir, root, mark);
    for (int32_t i = 0; i <= root; i++) {
        if (!mark[i]) continue;
        zm__sb_printf(b, "%sconst float t%d = ", indent, i);
        zm__emit_node(b, ir, i, 0);
        zm__sb_puts(b, ";\n");
    }
    free(mark);
}

/* Input pointers and scalar parameters/reductions as locals. */
static void zm__emit_locals(zm__sb *b, const zm_kernel *k, int with_inputs) {
    if (with_inputs)
        for (int q = 0; q < k->n_in; q++)
            zm__sb_printf(b, "    const float *restrict in%d = a[%d];\n", q, q);
    for (int q = 0; q < k->n_params; q++) zm__sb_printf(b, "    const float p%d = p[%d];\n", q, q);
    for (int q = 0; q < k->n_reds; q++) zm__sb_printf(b, "    const float r%d = r[%d];\n", q, q);
    zm__sb_puts(b, "    (void)a; (void)p; (void)r;\n");
}
static void zm__emit_loads(zm__sb *b, const zm_kernel *k, const char *idx, const char *indent) {
    for (int q = 0; q < k->n_in; q++) zm__sb_printf(b, "%sconst float a%d = in%d[%s];\n", indent, q, q, idx);
}

// ---------------------------------------------------------------------------
static const char *zm__red_name[] = {"sum", "max", "min", "mean"};

zm_status zm__emit_c(const zm_kernel *k, char **out) {
    *out = NULL;
    zm__sb b = {0};
    zm__sb_printf(&b, "/* zmlx kernel \"%s\" (generated C, target cpu)\n * %s */\n", k->name, k->text);
    zm__sb_puts(&b,
                "#include <math.h>\n#include <stdint.h>\n"
                "#if defined(ZM_LIBMVEC) && defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)\n"
                "/* glibc's libmvec has vector versions: let the vectoriser call them */\n"
                "#define ZM_V __attribute__((simd(\"notinbranch\")))\n"
                "float expf(float) ZM_V; float exp2f(float) ZM_V; float logf(float) ZM_V;\n"
                "float log2f(float) ZM_V; float log1pf(float) ZM_V; float expm1f(float) ZM_V;\n"
                "float sinf(float) ZM_V; float cosf(float) ZM_V; float tanhf(float) ZM_V;\n"
                "float erff(float) ZM_V; float powf(float, float) ZM_V;\n"
                "#endif\n"
                "#define ZM_FN static inline\n#define ZM_INF __builtin_inff()\n#define ZM_NAN __builtin_nanf(\"\")\n");
    zm__sb_puts_prelude(&b, zm__prelude_exp_c);
    zm__sb_puts_prelude(&b, zm__prelude_src);
    zm__sb_puts(&b, "\n");
    const char *sig = "(int64_t len, float *restrict o, const float *const *a, const float *p, const float *r)";
    if (k->kind == ZM__KIND_EW || !k->per_row) {
        zm__sb_printf(&b, "/* o[k] = f(inputs at k) */\nvoid zm_ew%s {\n", sig);
        zm__emit_locals(&b, k, 1);
        zm__sb_puts(&b, "    for (int64_t k = 0; k < len; k++) {\n");
        zm__emit_loads(&b, k, "k", "        ");
        zm__emit_body(&b, &k->ir, k->root, "        ");
        zm__sb_printf(&b, "        o[k] = t%d;\n    }\n}\n\n", k->root);
    } else {
        zm__sb_puts(&b, "/* one value per row from the reductions */\nfloat zm_row(const float *p, const float *r) {\n");
        zm__sb_puts(&b, "    const float *const *a = 0; (void)a;\n");
        for (int q = 0; q < k->n_params; q++) zm__sb_printf(&b, "    const float p%d = p[%d];\n", q, q);
        for (int q = 0; q < k->n_reds; q++) zm__sb_printf(&b, "    const float r%d = r[%d];\n", q, q);
        zm__sb_puts(&b, "    (void)p; (void)r;\n");
        zm__emit_body(&b, &k->ir, k->root, "    ");
        zm__sb_printf(&b, "    return t%d;\n}\n\n", k->root);
    }
    for (int s = 0; s < k->n_reds; s++) {
        const char *upd = (k->red_op[s] == ZM_RED_MAX)   ? "(v > acc[l] || v != v) ? v : acc[l]"
                          : (k->red_op[s] == ZM_RED_MIN) ? "(v < acc[l] || v != v) ? v : acc[l]"
                                                         : "acc[l] + v";
        zm__sb_printf(&b, "/* r%d: %s over the row; 16 lanes, element k goes to lane k %% 16 */\n", s,
                      zm__red_name[k->red_op[s]]);
        zm__sb_printf(&b, "void zm_red%d(int64_t len, float *restrict acc, const float *const *a, const float *p, const float *r) {\n", s);
        zm__emit_locals(&b, k, 1);
        /* main part in groups of 16 (one vector of lanes), then the tail */
        for (int part = 0; part < 2; part++) {
            if (part == 0)
                zm__sb_puts(&b, "    int64_t k0 = 0;\n    for (; k0 + 16 <= len; k0 += 16)\n"
                                "    for (int l = 0; l < 16; l++) {\n        const int64_t k = k0 + l;\n");
            else
                zm__sb_puts(&b, "    for (int64_t k = k0; k < len; k++) {\n        const int l = (int)(k & 15);\n");
            zm__emit_loads(&b, k, "k", "        ");
            zm__emit_body(&b, &k->ir, k->red_root[s], "        ");
            zm__sb_printf(&b, "        const float v = t%d;\n        acc[l] = %s;\n    }\n", k->red_root[s], upd);
        }
        zm__sb_puts(&b, "}\n\n");
    }
    if (b.oom) { zm__sb_free(&b); return zm__err(ZM_ERR_NOMEM, "emit C for %s: out of memory", k->name); }
    *out = b.p;
    return ZM_OK;
}
