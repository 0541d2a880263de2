/* Catalog reductions (sum, Kahan sum, mean, max, min, var, std, argmax,
 * argmin, top-k) on CPU and CUDA against float64 references, awkward row
 * lengths, f32/f16/bf16 inputs, poisoned outputs, bad arguments.
 * Run: build/tests/test_catalog_reductions. */
#include "catalog_test.h"

static double ref_reduce(int op, const float *x, int64_t C, int ddof, int64_t *arg) {
    double s = 0, best = NAN;
    int64_t bi = 0;
    for (int64_t i = 0; i < C; i++) s += x[i];
    switch (op) {
    case 0: return s;
    case 1: return s / C;
    case 2: case 3:
        for (int64_t i = 0; i < C; i++)
            if (isnan(best) || (op == 2 ? x[i] > best : x[i] < best)) { best = x[i]; bi = i; }
        *arg = bi;
        return best;
    default: {
        double m = s / C, q = 0;
        for (int64_t i = 0; i < C; i++) q += (x[i] - m) * (x[i] - m);
        double v = q / (double)(C - ddof);
        return op == 4 ? v : sqrt(v);
    }
    }
}

static void t_reduce(zm_device dev) {
    const zm_dtype dts[] = {ZM_F32, ZM_F16, ZM_BF16};
    for (int di = 0; di < 3; di++)
        for (int ci = 0; ci < ZC_NCOLS; ci++) {
            zm_dtype dt = dts[di];
            int64_t R = 5, C = zc_cols[ci], sh[2] = {R, C}, n = R * C;
            float *x = zc_f(n), *o = zc_f(R);
            zt_fill_normal(x, n, 1.0);
            for (int64_t i = 0; i < n; i++) x[i] += 0.5f; /* nonzero mean: var is not mean(x^2) */
            zc_round(x, n, dt);
            zm_tensor *tx = zc_newf(dev, dt, 2, sh, x), *to = zc_out(dev, ZM_F32, 1, &R), *ti = zc_out(dev, ZM_I32, 1, &R);
            double *ref = zc_d(R);
            int32_t *oi = malloc(sizeof(int32_t) * R);
            for (int op = 0; op < 6; op++) {
                if (op >= 4 && C == 1) continue;
                for (int ddof = 0; ddof <= (op >= 4); ddof++) {
                    int64_t arg[8] = {0};
                    for (int64_t r = 0; r < R; r++) ref[r] = ref_reduce(op, x + r * C, C, ddof, &arg[r]);
                    zm_tensor_fill(to, NAN);
                    switch (op) {
                    case 0: ZT_OK(zm_op_sum(to, tx, 0)); break;
                    case 1: ZT_OK(zm_op_mean(to, tx)); break;
                    case 2: ZT_OK(zm_op_max(to, tx)); ZT_OK(zm_op_argmax(ti, tx)); break;
                    case 3: ZT_OK(zm_op_min(to, tx)); ZT_OK(zm_op_argmin(ti, tx)); break;
                    case 4: ZT_OK(zm_op_var(to, tx, ddof)); break;
                    default: ZT_OK(zm_op_std(to, tx, ddof)); break;
                    }
                    zc_getf(o, to);
                    char what[64];
                    snprintf(what, sizeof what, "op%d %s C=%lld ddof%d", op, zm_dtype_name(dt), (long long)C, ddof);
                    /* sums of C normal values: error grows ~ sqrt(C) ulps of the partial sums */
                    ZT_CHECK(zt_close(what, o, ref, R, op <= 1 ? 1e-4 : 3e-5), "%s", what);
                    if (op == 2 || op == 3) {
                        zc_get(oi, ti);
                        for (int64_t r = 0; r < R; r++) ZT_CHECK(oi[r] == arg[r], "%s arg row %lld: %d want %lld", what, (long long)r, oi[r], (long long)arg[r]);
                    }
                }
            }
            zm_tensor *ts[] = {tx, to, ti};
            zc_free(3, ts);
            free(x); free(o); free(ref); free(oi);
        }
}
ZC_DEVICES(t_reduce)

/* Kahan: a sum whose plain float value is badly off (1 followed by many tiny terms). */
static void t_kahan(zm_device dev) {
    int64_t R = 3, C = 100003, sh[2] = {R, C};
    float *x = zc_f(R * C), o[3];
    double ref[3];
    for (int64_t r = 0; r < R; r++) {
        double s = 0;
        for (int64_t i = 0; i < C; i++) { x[r * C + i] = i % 1000 == 0 ? 1e4f : (float)zt_uniform(1e-4, 3e-4); s += x[r * C + i]; }
        ref[r] = s;
    }
    zm_tensor *tx = zc_newf(dev, ZM_F32, 2, sh, x), *to = zc_out(dev, ZM_F32, 1, &R);
    ZT_OK(zm_op_sum(to, tx, 1));
    zc_getf(o, to);
    ZT_CHECK(zt_close("kahan sum", o, ref, R, 2e-7), "compensated sum");
    zm_tensor *ts[] = {tx, to};
    zc_free(2, ts);
    free(x);
}
ZC_DEVICES(t_kahan)

static void t_topk(zm_device dev) {
    const int ks[] = {1, 2, 5, 8, 64};
    for (int ki = 0; ki < 5; ki++)
        for (int ci = 0; ci < ZC_NCOLS; ci++) {
            int64_t R = 4, C = zc_cols[ci], k = ks[ki];
            if (k > C) continue;
            int64_t sh[2] = {R, C}, shk[2] = {R, k};
            float *x = zc_f(R * C), *v = zc_f(R * k);
            int32_t *id = malloc(sizeof(int32_t) * R * k);
            zt_fill_normal(x, R * C, 1.0);
            /* ties: a few duplicated values, where the lower index must win */
            for (int64_t i = 0; i + 3 < R * C; i += 5) x[i + 3] = x[i];
            zm_tensor *tx = zc_newf(dev, ZM_F32, 2, sh, x), *tv = zc_out(dev, ZM_F32, 2, shk), *ti = zc_out(dev, ZM_I32, 2, shk);
            ZT_OK(zm_op_topk(tv, ti, tx));
            zc_getf(v, tv);
            zc_get(id, ti);
            for (int64_t r = 0; r < R; r++) {
                const float *row = x + r * C;
                /* reference: repeated selection in (value desc, index asc) order */
                int64_t pi = -1; double pv = INFINITY;
                for (int64_t j = 0; j < k; j++) {
                    int64_t bi = -1;
                    for (int64_t i = 0; i < C; i++) {
                        int after = row[i] < pv || (row[i] == pv && i > pi);
                        if (after && (bi < 0 || row[i] > row[bi])) bi = i;
                    }
                    ZT_CHECK(id[r * k + j] == bi && v[r * k + j] == row[bi], "topk k=%lld C=%lld row %lld slot %lld: %d (%g) want %lld (%g)",
                             (long long)k, (long long)C, (long long)r, (long long)j, id[r * k + j], v[r * k + j], (long long)bi, row[bi]);
                    pv = row[bi]; pi = bi;
                }
            }
            zm_tensor *ts[] = {tx, tv, ti};
            zc_free(3, ts);
            free(x); free(v); free(id);
            if (zt_failed_now()) return;
        }
}
ZC_DEVICES(t_topk)

static void t_bad_args(void) {
    int64_t sh[2] = {3, 4}, r3 = 3, r4 = 4;
    zm_tensor *x = zc_out(ZM_CPU, ZM_F32, 2, sh), *o = zc_out(ZM_CPU, ZM_F32, 1, &r4), *oi = zc_out(ZM_CPU, ZM_F32, 1, &r3);
    ZT_CHECK(zm_op_sum(o, x, 0) == ZM_ERR_SHAPE, "wrong out size");
    ZT_CHECK(zm_op_argmax(oi, x) == ZM_ERR_DTYPE, "argmax into f32");
    ZT_CHECK(zm_op_sum(NULL, x, 0) == ZM_ERR_INVALID, "NULL out");
    ZT_CHECK(zm_op_var(oi, x, 2) == ZM_ERR_RANGE, "ddof 2");
    ZT_CHECK(strstr(zm_last_error(), "var") != NULL, "message names the op: %s", zm_last_error());
    zm_tensor *ts[] = {x, o, oi};
    zc_free(3, ts);
}

int main(void) {
    ZC_RUN(t_reduce);
    ZC_RUN(t_kahan);
    ZC_RUN(t_topk);
    ZT_RUN(t_bad_args);
    return zt_finish();
}
