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
    /* quant */
    {"quantize_q8_0", "quant", "GGUF Q8_0 blocks (ggml's reference rounding, bit-exact)", B, "f32->q8_0", "", 0},
    {"dequantize_q8_0", "quant", "Q8_0 -> f32", B, "q8_0->f32", "", 0},
    {"quantize_q4_0", "quant", "GGUF Q4_0 blocks (ggml's reference rounding, bit-exact)", B, "f32->q4_0", "", 0},
    {"dequantize_q4_0", "quant", "Q4_0 -> f32", B, "q4_0->f32", "", 0},
    {"quantize_mxfp4", "quant", "OCP MXFP4 blocks (e8m0 scale + 32 E2M1), ggml's rule", B, "f32->mxfp4", "", 0},
    {"dequantize_mxfp4", "quant", "MXFP4 -> f32", B, "mxfp4->f32", "", 0},
    {"dequantize_silu", "quant", "silu(dequantize(q)) fused, Q8_0/Q4_0/MXFP4", B, "q8_0,q4_0,mxfp4->f32", "", 0},
    {"quantize_int8_row", "quant", "int8 per row: scale = absmax/127, q = rint(x/scale)", B, "f32->i8", "", 0},
    {"dequantize_int8_row", "quant", "q * scale[row]", B, "i8->f32", "", 0},
    {"quantize_int4_group", "quant", "asymmetric int4 per group: scale, integer zero, 0 exact", B, "f32->u8", "", 0},
    {"dequantize_int4_group", "quant", "scale * (q - zero)", B, "u8->f32", "", 0},
    {"quantize_fp8_e4m3", "quant", "fp8 e4m3 (OCP FN, saturating, nearest even) of x/scale", B, "f32->u8", "", 0},
    {"dequantize_fp8_e4m3", "quant", "fp8 e4m3 * scale", B, "u8->f32", "", 0},
    {"quantize_fp8_e5m2", "quant", "fp8 e5m2 (saturating, nearest even) of x/scale", B, "f32->u8", "", 0},
    {"dequantize_fp8_e5m2", "quant", "fp8 e5m2 * scale", B, "u8->f32", "", 0},
    {"quantize_nf4", "quant", "NF4 (QLoRA levels), absmax per 64", B, "f32->u8", "", 0},
    {"dequantize_nf4", "quant", "level[q] * absmax", B, "u8->f32", "", 0},
    /* moe */
    {"topk_gating_softmax", "moe", "softmax, top-k (expert bias steers the choice), optional renormalise", B, FL, "", 0},
    {"top2_gating", "moe", "Mixtral: top-2 logits, softmax over the pair", B, FL, "", 0},
    {"deepseek_router", "moe", "sigmoid scores + correction bias, group-limited top-k, renormalise, scale", B, FL, "", 0},
    {"moe_dispatch", "moe", "stable sort of (token, slot) rows by expert: rows, permutation, offsets", B, "f32", "", 0},
    {"moe_combine", "moe", "residual + sum_j w[t,j] * y[t,j], f32 accumulation", B, FL, "", 0},
    {"moe_combine_exact", "moe", "moe_combine with the stock graph's per-op rounding in f16/bf16 (bit-exact)", B, FL, "", 0},
    {"gather_qmm_swiglu", "moe", "silu(x Wg[e]^T) * (x Wu[e]^T) per chosen expert, quantized weights", B, "f32,q8_0,q4_0", "", 0},
    {"gather_qmm_combine", "moe", "residual + sum_j w[t,j] * (Wd[e_j] h[t,j]), quantized weights", B, "f32,q8_0,q4_0", "", 0},
    /* rope */
    {"rope_neox", "rope", "rotate pairs (i, i + rot/2) by pos * base^(-2i/rot); angles in double", B, "f32", "", 0},
    {"rope_interleaved", "rope", "rotate pairs (2i, 2i+1) (GPT-J / llama.cpp normal mode)", B, "f32", "", 0},
    {"rope_gqa", "rope", "q [T, Hq, D] and k [T, Hkv, D] rotated in one launch", B, "f32", "", 0},
    {"rope_partial", "rope", "only the leading rot_dims of each head rotate, the rest pass through", B, "f32", "", 0},
    {"rope_yarn", "rope", "YaRN: ramp between interpolated and extrapolated angles, mscale 1 + 0.1 ln(s)", B, "f32", "", 0},
    {"rope_kv_write", "rope", "rotate q; rotate k and copy v into the KV cache at row pos[t]", B, "f32", "", 0},
    /* attention */
    {"decode_attention", "attention", "softmax(q K^T * scale) V over a KV cache: GQA, sinks, sliding window", B, "f32", "", 0},
    {"paged_attention", "attention", "decode_attention through a block table of fixed-size pages", B, "f32", "", 0},
    /* bits and indexing */
    {"pack_bits", "bits", "nonzero bytes -> bits, LSB first, per row", B, "u8", "", 0},
    {"unpack_bits", "bits", "bits -> 0/1 bytes", B, "u8", "", 0},
    {"gather_add", "bits", "out[n] = sum_k table[idx[n, k]] (embedding bag; out-of-range = padding)", B, "f32", "scatter_add", 0},
    {"scatter_add", "bits", "out[idx[n]] += src[n] (atomic on CUDA)", B, "f32", "", 0},
    /* optimizer */
    {"adamw_step", "optimizer", "AdamW in one pass: m, v, bias correction, decoupled weight decay", B, "f32", "", 0},
    /* image */
    {"resize_bilinear", "image", "NHWC bilinear resize, half-pixel or corner-aligned", B, "f32", "", 0},
    {"depthwise_conv3x3", "image", "NHWC depthwise 3x3, stride 1, zero padding, optional bias", B, "f32", "", 0},
    /* activations: expression language, gradient = symbolic VJP of the same expression */
    {"exp", "activations", "exp(x)", B, FL, "symbolic VJP (zm_op_unary_grad)", 1},
    {"log", "activations", "log(x)", B, FL, "symbolic VJP (zm_op_unary_grad)", 1},
    {"tanh", "activations", "tanh(x)", B, FL, "symbolic VJP (zm_op_unary_grad)", 1},
    {"sigmoid", "activations", "1 / (1 + exp(-x))", B, FL, "symbolic VJP (zm_op_unary_grad)", 1},
    {"relu", "activations", "max(x, 0)", B, FL, "symbolic VJP (zm_op_unary_grad)", 1},
    {"relu2", "activations", "relu(x)^2", B, FL, "symbolic VJP (zm_op_unary_grad)", 1},
    {"silu", "activations", "x * sigmoid(x)", B, FL, "symbolic VJP (zm_op_unary_grad)", 1},
    {"gelu", "activations", "0.5 x (1 + erf(x / sqrt 2))", B, FL, "symbolic VJP (zm_op_unary_grad)", 1},
    {"gelu_tanh", "activations", "0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))", B, FL, "symbolic VJP (zm_op_unary_grad)", 1},
    {"quick_gelu", "activations", "x * sigmoid(1.702 x)", B, FL, "symbolic VJP (zm_op_unary_grad)", 1},
    {"softplus", "activations", "log1p(exp(x)) (x for x > 20)", B, FL, "symbolic VJP (zm_op_unary_grad)", 1},
    {"mish", "activations", "x * tanh(softplus(x))", B, FL, "symbolic VJP (zm_op_unary_grad)", 1},
    {"elu", "activations", "x > 0 ? x : alpha (exp(x) - 1), alpha = 1", B, FL, "symbolic VJP (zm_op_unary_grad)", 1},
    {"leaky_relu", "activations", "x > 0 ? x : 0.01 x", B, FL, "symbolic VJP (zm_op_unary_grad)", 1},
    {"hardswish", "activations", "x * clamp(x + 3, 0, 6) / 6", B, FL, "symbolic VJP (zm_op_unary_grad)", 1},
    /* softmax family: expression language (zm_map_reduce) */
    {"softmax", "softmax", "exp(x - max) / sum exp(x - max) over the last axis", B, FL, "softmax_backward", 1},
    {"log_softmax", "softmax", "x - max - log(sum exp(x - max))", B, FL, "log_softmax_backward", 1},
    {"logsumexp", "softmax", "max + log(sum exp(x - max)), one value per row", B, FL, "softmax (of the same row)", 1},
    {"softmax_backward", "softmax", "y * (g - sum(y * g)) with y = softmax(x)", B, FL, "", 1},
    {"log_softmax_backward", "softmax", "g - exp(y) * sum(g) with y = log_softmax(x)", B, FL, "", 1},
    {"masked_softmax", "softmax", "softmax over entries with mask != 0, 0 elsewhere (and on empty rows)", B, FL, "", 1},
    {"scale_mask_softmax", "softmax", "softmax(x * scale + additive mask)", B, FL, "", 1},
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
