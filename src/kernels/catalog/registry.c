/* The catalog registry: every kernel's name, family, backends, dtypes, one
 * line of semantics and how its gradient is had. `zmlx kernels` prints it,
 * docs/KERNELS.md mirrors it, tests/test_catalog_registry.c checks it (unique
 * names, >= 70 entries, every gradient named exists). */
#include "kernels/catalog/common.h"

#define B (ZM_OP_CPU | ZM_OP_CUDA)
#define FL "f32,f16,bf16"
static const zm_op_info zm__ops[] = {
    /* reductions */
    {"sum", "reductions", "sum over the last axis (optional Kahan-Neumaier compensation)", B, FL, "", 0},
    {"mean", "reductions", "mean over the last axis", B, FL, "", 0},
    {"max", "reductions", "maximum over the last axis (NaN skipped)", B, FL, "", 0},
    {"min", "reductions", "minimum over the last axis (NaN skipped)", B, FL, "", 0},
    {"var", "reductions", "variance over the last axis, two-pass, ddof 0 or 1", B, FL, "", 0},
    {"std", "reductions", "standard deviation over the last axis, ddof 0 or 1", B, FL, "", 0},
    {"argmax", "reductions", "index of the maximum (first on ties) -> i32", B, FL, "", 0},
    {"argmin", "reductions", "index of the minimum (first on ties) -> i32", B, FL, "", 0},
    {"topk", "reductions", "k <= 64 largest values and indices, descending, ties to the lower index", B, FL, "", 0},
    /* scan */
    {"cumsum", "scan", "inclusive or exclusive cumulative sum over the last axis", B, "f32", "cumsum_grad", 0},
    {"cumsum_grad", "scan", "VJP of cumsum: reverse cumulative sum of g", B, "f32", "", 0},
    {"cumprod", "scan", "inclusive cumulative product over the last axis", B, "f32", "", 0},
    /* loss */
    {"softmax_cross_entropy", "loss", "per-row logsumexp(logits) - logits[target], 0 at ignore_index", B, "f32",
     "softmax_cross_entropy_grad", 0},
    {"softmax_cross_entropy_grad", "loss", "dloss * (softmax - onehot(target)), 0 on ignored rows", B, "f32", "", 0},
    /* norms */
    {"rmsnorm", "norms", "x / sqrt(mean(x^2) + eps) * w", B, FL, "rmsnorm_grad (x, w)", 0},
    {"rmsnorm_grad", "norms", "dx and dw of rmsnorm", B, "f32", "", 0},
    {"rms_norm_no_weight", "norms", "x / sqrt(mean(x^2) + eps)", B, FL, "rmsnorm_grad (x)", 0},
    {"layernorm", "norms", "(x - mean) / sqrt(var + eps) * w + b", B, FL, "layernorm_grad (x, w, b)", 0},
    {"layernorm_grad", "norms", "dx, dw and db of layernorm", B, "f32", "", 0},
    {"layer_norm_no_weight", "norms", "(x - mean) / sqrt(var + eps)", B, FL, "layernorm_grad (x)", 0},
    {"add_rmsnorm", "norms", "s = x + residual; rmsnorm(s) * w; writes both", B, FL, "", 0},
    {"add_layernorm", "norms", "s = x + residual; layernorm(s) * w + b; writes both", B, FL, "", 0},
    {"rms_norm_dropout", "norms", "s = residual + dropout(x); rmsnorm(s) * w; writes both", B, FL, "", 0},
    {"layer_norm_dropout", "norms", "s = residual + dropout(x); layernorm(s) * w + b; writes both", B, FL, "", 0},
    /* transformer */
    {"swiglu", "transformer", "silu(gate) * up, two inputs", B, FL, "swiglu_grad", 0},
    {"swiglu_split", "transformer", "silu(x[:F]) * x[F:], one [gate | up] input", B, FL, "swiglu_split_grad", 0},
    {"swiglu_grad", "transformer", "dgate, dup of swiglu", B, FL, "", 0},
    {"swiglu_split_grad", "transformer", "dx of swiglu_split", B, FL, "", 0},
    {"geglu", "transformer", "gelu(gate) * up (erf gelu), two inputs", B, FL, "geglu_grad", 0},
    {"geglu_split", "transformer", "gelu(x[:F]) * x[F:]", B, FL, "geglu_split_grad", 0},
    {"geglu_grad", "transformer", "dgate, dup of geglu", B, FL, "", 0},
    {"geglu_split_grad", "transformer", "dx of geglu_split", B, FL, "", 0},
    {"bias_swiglu", "transformer", "silu(x[:F] + b[:F]) * (x[F:] + b[F:])", B, FL, "", 0},
    {"bias_geglu", "transformer", "gelu(x[:F] + b[:F]) * (x[F:] + b[F:])", B, FL, "", 0},
    {"silu_mul_residual", "transformer", "residual + silu(gate) * up", B, FL, "", 0},
    {"dropout", "transformer", "x / (1 - p) where Philox4x32-10(seed, i) >= p, else 0; same mask on CPU and CUDA", B, FL,
     "dropout of g (same seed)", 0},
};
#undef B
#undef FL

int zm_op_count(void) { return (int)(sizeof zm__ops / sizeof zm__ops[0]); }
const zm_op_info *zm_op_get(int i) { return i >= 0 && i < zm_op_count() ? &zm__ops[i] : NULL; }
const zm_op_info *zm_op_find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < zm_op_count(); i++)
        if (!strcmp(zm__ops[i].name, name)) return &zm__ops[i];
    return NULL;
}
