/* The public kernel API (include/zmlx/kernel.h): parse the expression(s)
 * into one IR (src/dsl), emit C and CUDA C, build the CPU side (C JIT or the
 * interpreter), validate calls (dtypes, devices, broadcasting) and dispatch
 * to the CPU runner (run_cpu.c) or CUDA (nvrtc.c). Tests: tests/test_kernel*.c
 * (build/tests/test_kernel, test_kernel_rowwise, test_kernel_cache, test_kernel_cuda). */
#include "jit/jit.h"
#include "core/cuda.h"
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

// ---------------------------------------------------------------------------
static zm_status zm__valid_name(const char *s, const char *what) {
    if (!s || !*s) return zm__err(ZM_ERR_INVALID, "%s name is empty", what);
    size_t n = strlen(s);
    if (n >= 32) return zm__err(ZM_ERR_INVALID, "%s name '%.40s...' is longer than 31 bytes", what, s);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i && c >= '0' && c <= '9');
        if (!ok) return zm__err(ZM_ERR_INVALID, "%s name '%s' has '%c' at byte %zu (want [A-Za-z_][A-Za-z0-9_]*)", what, s, c, i);
    }
    return ZM_OK;
}

static zm_kernel *zm__kernel_alloc(const char *name) {
    zm_kernel *k = calloc(1, sizeof *k);
    if (!k) return NULL;
    k->name = strdup(name && *name ? name : "kernel");
    if (!k->name) { free(k); return NULL; }
    zm_ir_init(&k->ir);
    pthread_mutex_init(&k->mu, NULL);
    k->root = -1;
    return k;
}

void zm_kernel_free(zm_kernel *k) {
    if (!k) return;
    for (int i = 0; i < k->n_cuda; i++) zm__cuda_unload(k->cuda[i].module);
    if (k->dl) dlclose(k->dl);
    zm_ir_clear(&k->ir);
    pthread_mutex_destroy(&k->mu);
    free(k->name);
    free(k->text);
    free(k->src_c);
    free(k->src_cuda);
    free(k);
}

/* Parameters and input names from opts; with no input names, scan `all`. */
static zm_status zm__names(zm_kernel *k, const zm_kernel_opts *opts, const char *all) {
    const char *params[ZM_MAX_PARAMS];
    k->n_params = 0;
    if (opts)
        for (int i = 0; i < ZM_MAX_PARAMS && opts->params[i]; i++) {
            ZM_TRY(zm__valid_name(opts->params[i], "parameter"));
            snprintf(k->param_names[i], 32, "%s", opts->params[i]);
            params[i] = k->param_names[i];
            k->params[i] = opts->param_values[i];
            k->n_params = i + 1;
        }
    k->n_in = 0;
    if (opts && opts->inputs[0]) {
        for (int i = 0; i < ZM_MAX_INPUTS && opts->inputs[i]; i++) {
            ZM_TRY(zm__valid_name(opts->inputs[i], "input"));
            snprintf(k->in_names[i], 32, "%s", opts->inputs[i]);
            k->n_in = i + 1;
        }
        return ZM_OK;
    }
    char names[8][32];
    int n = 0;
    ZM_TRY(zm_expr_scan_inputs(all, params, k->n_params, names, &n));
    for (int i = 0; i < n; i++) {
        const char *s = names[i];
        int is_red = s[0] == 'r' && s[1] >= '0' && s[1] <= '9' && (!s[2] || (s[2] >= '0' && s[2] <= '9' && !s[3]));
        if (is_red && k->kind == ZM__KIND_ROW) continue; /* r0.. name reductions there */
        if (k->n_in == ZM_MAX_INPUTS) return zm__err(ZM_ERR_RANGE, "kernel %s: more than %d inputs", k->name, ZM_MAX_INPUTS);
        size_t L = strnlen(s, 31);
        memcpy(k->in_names[k->n_in], s, L);
        k->in_names[k->n_in++][L] = 0;
    }
    return ZM_OK;
}

static zm_status zm__parse(zm_kernel *k, const char *src, int n_reds, int32_t *root) {
    zm_ir_names nm;
    memset(&nm, 0, sizeof nm);
    for (int i = 0; i < k->n_in; i++) nm.inputs[i] = k->in_names[i];
    nm.n_inputs = k->n_in;
    for (int i = 0; i < k->n_params; i++) nm.params[i] = k->param_names[i];
    nm.n_params = k->n_params;
    nm.n_reds = n_reds;
    return zm_expr_parse(&k->ir, src, &nm, root);
}

/* Emit both sources and build the CPU side. */
static zm_status zm__finish(zm_kernel *k, int force_interp) {
    k->per_row = k->kind == ZM__KIND_ROW && !zm_ir_uses_inputs(&k->ir, k->root);
    ZM_TRY(zm__emit_c(k, &k->src_c));
    zm__sig sig;
    memset(&sig, 0, sizeof sig);
    ZM_TRY(zm__emit_cuda(k, &sig, &k->src_cuda));
    k->force_interp = force_interp;
    const char *env = getenv("ZMLX_JIT");
    if (force_interp || (env && !strcmp(env, "interp"))) {
        snprintf(k->cpu_note, sizeof k->cpu_note, "interpreter requested");
        return ZM_OK;
    }
    zm_status s = zm__cc_build(k->src_c, k->name, &k->dl);
    if (s == ZM_OK) {
        int ok = 1;
        if (k->kind == ZM__KIND_EW || !k->per_row) ok &= (*(void **)&k->ew = dlsym(k->dl, "zm_ew")) != NULL;
        else ok &= (*(void **)&k->row = dlsym(k->dl, "zm_row")) != NULL;
        for (int i = 0; i < k->n_reds; i++) {
            char sym[32];
            snprintf(sym, sizeof sym, "zm_red%d", i);
            ok &= (*(void **)&k->red[i] = dlsym(k->dl, sym)) != NULL;
        }
        if (ok) { k->cpu_jit = 1; return ZM_OK; }
        dlclose(k->dl);
        k->dl = NULL;
        s = zm__err(ZM_ERR_COMPILE, "jit: kernel %s: compiled object lacks its entry points", k->name);
    }
    /* no compiler (or it failed): the interpreter computes the same thing */
    snprintf(k->cpu_note, sizeof k->cpu_note, "%s", zm_last_error());
    zm__log("zmlx kernel %s: using the interpreter: %s", k->name, k->cpu_note);
    zm_clear_error();
    return ZM_OK;
}

static zm_status zm__new(zm_kernel **out, const char *name, int kind, const zm_reduction *reds, int n_reds,
                         const char *post, const zm_kernel_opts *opts) {
    if (!out) return zm__err(ZM_ERR_INVALID, "kernel: out is NULL");
    *out = NULL;
    if (!post) return zm__err(ZM_ERR_INVALID, "kernel %s: expression is NULL", name ? name : "");
    if (n_reds < 0 || n_reds > ZM_MAX_REDUCTIONS || (n_reds && !reds))
        return zm__err(ZM_ERR_RANGE, "kernel %s: %d reductions (1..%d)", name ? name : "", n_reds, ZM_MAX_REDUCTIONS);
    for (int i = 0; i < n_reds; i++) {
        if (!reds[i].expr) return zm__err(ZM_ERR_INVALID, "kernel %s: reduction %d has no expression", name ? name : "", i);
        if ((unsigned)reds[i].op >= ZM_RED_COUNT) return zm__err(ZM_ERR_INVALID, "kernel %s: reduction %d: bad op %d", name ? name : "", i, (int)reds[i].op);
    }
    zm_kernel *k = zm__kernel_alloc(name);
    if (!k) return zm__err(ZM_ERR_NOMEM, "kernel: out of memory");
    k->kind = kind;
    k->n_reds = n_reds;
    zm__sb all = {0}, text = {0};
    static const char *opn[] = {"sum", "max", "min", "mean"};
    for (int i = 0; i < n_reds; i++) {
        zm__sb_printf(&all, "(%s),", reds[i].expr);
        zm__sb_printf(&text, "r%d = %s(%s); ", i, opn[reds[i].op], reds[i].expr);
    }
    zm__sb_printf(&all, "(%s)", post);
    zm__sb_printf(&text, "%s", post);
    zm_status s = (all.oom || text.oom) ? zm__err(ZM_ERR_NOMEM, "kernel: out of memory") : ZM_OK;
    if (s == ZM_OK) s = zm__names(k, opts, all.p);
    for (int i = 0; s == ZM_OK && i < n_reds; i++) {
        k->red_op[i] = reds[i].op;
        s = zm__parse(k, reds[i].expr, i, &k->red_root[i]);
        if (s != ZM_OK) zm__err_ctx(s, "kernel %s: reduction r%d", k->name, i);
    }
    if (s == ZM_OK) {
        s = zm__parse(k, post, n_reds, &k->root);
        if (s != ZM_OK) zm__err_ctx(s, "kernel %s", k->name);
    }
    zm__sb_free(&all);
    k->text = text.p;
    if (s == ZM_OK && kind == ZM__KIND_ROW && k->n_in == 0)
        s = zm__err(ZM_ERR_INVALID, "kernel %s: a row-wise kernel needs at least one input", k->name);
    if (s == ZM_OK) s = zm__finish(k, opts ? opts->force_interpreter : 0);
    if (s != ZM_OK) { zm_kernel_free(k); return s; }
    *out = k;
    return ZM_OK;
}

zm_status zm_elementwise(zm_kernel **out, const char *name, const char *expr, const zm_kernel_opts *opts) {
    return zm__new(out, name, ZM__KIND_EW, NULL, 0, expr, opts);
}

zm_status zm_reduce(zm_kernel **out, const char *name, zm_red_op op, const char *expr, const zm_kernel_opts *opts) {
    zm_reduction r = {op, expr};
    return zm__new(out, name, ZM__KIND_ROW, &r, 1, "r0", opts);
}

zm_status zm_map_reduce(zm_kernel **out, const char *name, const zm_reduction *reds, int n_reds, const char *post,
                        const zm_kernel_opts *opts) {
    if (n_reds < 1 && out) { *out = NULL; return zm__err(ZM_ERR_RANGE, "map_reduce %s: needs 1..%d reductions", name ? name : "", ZM_MAX_REDUCTIONS); }
    return zm__new(out, name, ZM__KIND_ROW, reds, n_reds, post, opts);
}

/* Copy an IR node by node (re-inserting keeps CSE/folding invariants). */
static zm_status zm__ir_copy(zm_ir *dst, const zm_ir *src) {
    for (int32_t i = 0; i < src->n; i++) {
        const zm_ir_node *nd = &src->nodes[i];
        int32_t r;
        int ar = zm_ir_op_arity(nd->op);
        if (nd->op == ZM_IR_CONST) r = zm_ir_const(dst, nd->value);
        else if (ar == 0) r = zm_ir_leaf(dst, nd->op, nd->index);
        else if (ar == 1) r = zm_ir_op1(dst, nd->op, nd->a);
        else if (ar == 2) r = zm_ir_op2(dst, nd->op, nd->a, nd->b);
        else r = zm_ir_op3(dst, nd->op, nd->a, nd->b, nd->c);
        /* the source IR is already folded and deduplicated, so indices match */
        if (r != i) return r < 0 ? ZM_ERR_NOMEM : zm__err(ZM_ERR_INVALID, "grad: IR copy diverged at node %d", i);
    }
    return ZM_OK;
}

zm_status zm_kernel_grad(zm_kernel **out, const zm_kernel *k, int input) {
    if (!out) return zm__err(ZM_ERR_INVALID, "zm_kernel_grad: out is NULL");
    *out = NULL;
    if (!k) return zm__err(ZM_ERR_INVALID, "zm_kernel_grad: kernel is NULL");
    if (k->kind != ZM__KIND_EW) return zm__err(ZM_ERR_UNSUPPORTED, "zm_kernel_grad: %s is row-wise; only element-wise kernels have a VJP here", k->name);
    if (input < 0 || input >= k->n_in) return zm__err(ZM_ERR_RANGE, "zm_kernel_grad: %s has %d inputs, asked for input %d", k->name, k->n_in, input);
    if (k->n_in >= ZM_MAX_INPUTS) return zm__err(ZM_ERR_RANGE, "zm_kernel_grad: %s already has %d inputs; no room for g", k->name, k->n_in);
    char name[256];
    snprintf(name, sizeof name, "d%s_d%s", k->name, k->in_names[input]);
    zm_kernel *g = zm__kernel_alloc(name);
    if (!g) return zm__err(ZM_ERR_NOMEM, "zm_kernel_grad: out of memory");
    g->kind = ZM__KIND_EW;
    g->n_in = k->n_in + 1;
    memcpy(g->in_names, k->in_names, sizeof g->in_names);
    /* the upstream gradient is "g", or g_, g__ ... if an input is named g */
    char gname[32] = "g";
    for (int again = 1; again;) {
        again = 0;
        for (int i = 0; i < k->n_in; i++)
            if (!strcmp(k->in_names[i], gname) && strlen(gname) < 30) { strcat(gname, "_"); again = 1; }
    }
    snprintf(g->in_names[k->n_in], 32, "%s", gname);
    g->n_params = k->n_params;
    memcpy(g->param_names, k->param_names, sizeof g->param_names);
    memcpy(g->params, k->params, sizeof g->params);
    zm_status s = zm__ir_copy(&g->ir, &k->ir);
    int32_t seed = -1;
    if (s == ZM_OK && (seed = zm_ir_leaf(&g->ir, ZM_IR_INPUT, k->n_in)) < 0) s = ZM_ERR_NOMEM;
    /* paths through zero-derivative ops (sign, floor, comparisons, where's
     * condition) carry no adjoint: zm_ir_grad returns the constant 0 then */
    if (s == ZM_OK) s = zm_ir_grad(&g->ir, k->root, input, seed, &g->root);
    if (s == ZM_OK) {
        size_t n = strlen(k->text) + 64;
        g->text = malloc(n);
        if (!g->text) s = zm__err(ZM_ERR_NOMEM, "zm_kernel_grad: out of memory");
        else snprintf(g->text, n, "%s * d(%s)/d%s", gname, k->text, k->in_names[input]);
    }
    if (s == ZM_OK) s = zm__finish(g, k->force_interp);
    if (s != ZM_OK) { zm_kernel_free(g); return s; }
    *out = g;
    return ZM_OK;
}

// ---------------------------------------------------------------------------
zm_status zm_kernel_set_param(zm_kernel *k, const char *param, float value) {
    if (!k || !param) return zm__err(ZM_ERR_INVALID, "zm_kernel_set_param: NULL argument");
    for (int i = 0; i < k->n_params; i++)
        if (!strcmp(k->param_names[i], param)) { k->params[i] = value; return ZM_OK; }
    return zm__err(ZM_ERR_NOT_FOUND, "kernel %s has no parameter '%s'", k->name, param);
}

zm_status zm_kernel_source(const zm_kernel *k, zm_backend b, const char **src) {
    if (src) *src = NULL;
    if (!k || !src) return zm__err(ZM_ERR_INVALID, "zm_kernel_source: NULL argument");
    if (b == ZM_BACKEND_C) *src = k->src_c;
    else if (b == ZM_BACKEND_CUDA) *src = k->src_cuda;
    else return zm__err(ZM_ERR_INVALID, "zm_kernel_source: bad backend %d", (int)b);
    return ZM_OK;
}
const char *zm_kernel_name(const zm_kernel *k) { return k ? k->name : ""; }
int zm_kernel_n_inputs(const zm_kernel *k) { return k ? k->n_in : 0; }
const char *zm_kernel_input_name(const zm_kernel *k, int i) { return k && i >= 0 && i < k->n_in ? k->in_names[i] : ""; }
const char *zm_kernel_cpu_mode(const zm_kernel *k) { return k && k->cpu_jit ? "jit" : "interp"; }

// ---------------------------------------------------------------------------
static int zm__float_dtype(zm_dtype t) { return t == ZM_F32 || t == ZM_F16 || t == ZM_BF16; }

static zm_status zm__prepare(zm_kernel *k, zm_tensor *const *outs, int n_outs, const zm_tensor *const *ins, int n_ins,
                             zm__job *job) {
    memset(job, 0, sizeof *job);
    if (!k) return zm__err(ZM_ERR_INVALID, "zm_kernel_call: kernel is NULL");
    if (n_outs != 1 || !outs || !outs[0]) return zm__err(ZM_ERR_INVALID, "kernel %s: expects exactly 1 output tensor, got %d", k->name, n_outs);
    if (n_ins != k->n_in || (n_ins && !ins)) return zm__err(ZM_ERR_INVALID, "kernel %s: expects %d inputs, got %d", k->name, k->n_in, n_ins);
    const zm_tensor *o = outs[0];
    if (!zm__float_dtype(o->dtype)) return zm__err(ZM_ERR_DTYPE, "kernel %s: output dtype %s (want f32, f16 or bf16)", k->name, zm_dtype_name(o->dtype));
    if (!zm_tensor_is_contiguous(o)) return zm__err(ZM_ERR_UNSUPPORTED, "kernel %s: output is a strided view on CUDA", k->name);
    const zm_tensor *ref = o;
    for (int q = 0; q < n_ins; q++) {
        const zm_tensor *t = ins[q];
        if (!t) return zm__err(ZM_ERR_INVALID, "kernel %s: input %d (%s) is NULL", k->name, q, k->in_names[q]);
        if (!zm__float_dtype(t->dtype)) return zm__err(ZM_ERR_DTYPE, "kernel %s: input %s has dtype %s (want f32, f16 or bf16)", k->name, k->in_names[q], zm_dtype_name(t->dtype));
        if (t->device != o->device) return zm__err(ZM_ERR_INVALID, "kernel %s: input %s is on %s, output on %s", k->name, k->in_names[q], zm_device_name(t->device), zm_device_name(o->device));
        if (!zm_tensor_is_contiguous(t)) return zm__err(ZM_ERR_UNSUPPORTED, "kernel %s: input %s is a strided view on CUDA (copy it first)", k->name, k->in_names[q]);
        /* row-wise: the largest input defines rows x cols */
        if (k->kind == ZM__KIND_ROW && (ref == o || zm_tensor_numel(t) > zm_tensor_numel(ref))) ref = t;
    }
    int64_t total = zm_tensor_numel(ref), rows = 1;
    job->cols = ref->ndim ? ref->shape[ref->ndim - 1] : 1;
    for (int d = 0; d + 1 < ref->ndim; d++) rows *= ref->shape[d]; /* also right when cols == 0 */
    if (k->kind == ZM__KIND_EW) job->n = total;
    else {
        job->n = rows;
        int64_t want = k->per_row ? job->n : total;
        if (zm_tensor_numel(o) != want)
            return zm__err(ZM_ERR_SHAPE, "kernel %s: output has %lld elements, want %lld (%lld rows%s)", k->name,
                           (long long)zm_tensor_numel(o), (long long)want, (long long)job->n, k->per_row ? ", one value each" : "");
    }
    for (int q = 0; q < n_ins; q++) {
        int64_t m = zm_tensor_numel(ins[q]);
        int mode;
        if (m == total) mode = ZM__MODE_FULL;
        else if (m == 1) mode = ZM__MODE_SCALAR;
        else if (m == job->cols && job->cols > 0) mode = ZM__MODE_ROW, job->has_row = 1;
        else
            return zm__err(ZM_ERR_SHAPE, "kernel %s: input %s has %lld elements; want %lld (full), 1 (scalar) or %lld (last axis)",
                           k->name, k->in_names[q], (long long)m, (long long)total, (long long)job->cols);
        job->in[q] = ins[q]->data;
        job->sig.in_dtype[q] = (int8_t)ins[q]->dtype;
        job->sig.in_mode[q] = (int8_t)mode;
    }
    job->k = k;
    job->n_in = n_ins;
    job->out = o->data;
    job->sig.out_dtype = (int8_t)o->dtype;
    memcpy(job->params, k->params, sizeof job->params);
    return ZM_OK;
}

/* Copy between a strided and a contiguous layout of the same shape (CPU). */
static void zm__strided_copy(char *dst, const int64_t *dst_st, const char *src, const int64_t *src_st,
                             const int64_t *shape, int ndim, size_t es) {
    int64_t sh[4] = {1, 1, 1, 1}, ds[4] = {0, 0, 0, 0}, ss[4] = {0, 0, 0, 0};
    for (int d = 0; d < ndim; d++) { sh[4 - ndim + d] = shape[d]; ds[4 - ndim + d] = dst_st[d]; ss[4 - ndim + d] = src_st[d]; }
    for (int64_t a = 0; a < sh[0]; a++)
        for (int64_t b = 0; b < sh[1]; b++)
            for (int64_t c = 0; c < sh[2]; c++)
                for (int64_t e = 0; e < sh[3]; e++)
                    memcpy(dst + a * ds[0] + b * ds[1] + c * ds[2] + e * ds[3], src + a * ss[0] + b * ss[1] + c * ss[2] + e * ss[3], es);
}

/* A contiguous CPU copy of a strided float tensor (NULL if not needed). */
static zm_status zm__contig(const zm_tensor *t, int copy_data, zm_tensor **out) {
    *out = NULL;
    if (!t || t->device != ZM_CPU || zm_tensor_is_contiguous(t) || !zm__float_dtype(t->dtype)) return ZM_OK;
    ZM_TRY(zm_tensor_new(out, t->dtype, ZM_CPU, t->ndim, t->shape));
    if (copy_data)
        zm__strided_copy((*out)->data, (*out)->stride, t->data, t->stride, t->shape, t->ndim, zm_dtype_block_bytes(t->dtype));
    return ZM_OK;
}

static zm_status zm__call(zm_kernel *k, zm_tensor *const *outs, int n_outs, const zm_tensor *const *ins, int n_ins,
                          void *stream);

/* CPU tensors may be strided views: inputs are gathered into contiguous
 * copies and a strided output is computed contiguous, then scattered. */
zm_status zm_kernel_call_async(zm_kernel *k, zm_tensor *const *outs, int n_outs, const zm_tensor *const *ins, int n_ins,
                               void *stream) {
    if (!k || !outs || n_outs != 1 || !outs[0] || n_ins < 0 || n_ins > ZM_MAX_INPUTS || (n_ins && !ins))
        return zm__call(k, outs, n_outs, ins, n_ins, stream); /* reports the error */
    zm_tensor *tin[ZM_MAX_INPUTS] = {0}, *tout = NULL;
    const zm_tensor *in2[ZM_MAX_INPUTS];
    zm_status s = ZM_OK;
    for (int q = 0; q < n_ins && s == ZM_OK; q++) {
        s = zm__contig(ins[q], 1, &tin[q]);
        in2[q] = tin[q] ? tin[q] : ins[q];
    }
    if (s == ZM_OK) s = zm__contig(outs[0], 0, &tout);
    zm_tensor *o2 = tout ? tout : outs[0];
    if (s == ZM_OK) s = zm__call(k, &o2, 1, in2, n_ins, stream);
    if (s == ZM_OK && tout)
        zm__strided_copy(outs[0]->data, outs[0]->stride, tout->data, tout->stride, tout->shape, tout->ndim,
                         zm_dtype_block_bytes(tout->dtype));
    for (int q = 0; q < n_ins; q++) zm_tensor_free(tin[q]);
    zm_tensor_free(tout);
    return s;
}

static zm_status zm__call(zm_kernel *k, zm_tensor *const *outs, int n_outs, const zm_tensor *const *ins, int n_ins,
                          void *stream) {
    zm__job job;
    ZM_TRY(zm__prepare(k, outs, n_outs, ins, n_ins, &job));
    if (job.n == 0 || job.cols == 0) {
        if (k->kind == ZM__KIND_ROW && k->per_row && job.n > 0) { /* empty rows: reductions of nothing */
            if (outs[0]->device == ZM_CPU) return zm__run_cpu(&job);
        } else return ZM_OK;
    }
    if (outs[0]->device == ZM_CUDA) return zm__run_cuda(&job, stream);
    return zm__run_cpu(&job);
}

zm_status zm_kernel_call(zm_kernel *k, zm_tensor *const *outs, int n_outs, const zm_tensor *const *ins, int n_ins) {
    zm_status s = zm_kernel_call_async(k, outs, n_outs, ins, n_ins, NULL);
    if (s == ZM_OK && outs && outs[0] && outs[0]->device == ZM_CUDA) s = zm_cuda_stream_sync(NULL);
    return s;
}
