/* Independent cross-check of the catalog's bits and indexing kernels (written
 * apart from bits.c and test_catalog_bits.c, from ops.h alone): pack_bits /
 * unpack_bits compared exactly with a bit-by-bit reference (any nonzero byte
 * is a 1, pad bits 0, round trip); gather_add (padding ids, repeated ids) and scatter_add
 * (repeated and out-of-range rows, accumulation onto existing values)
 * against float64 sums held to the magnitude of their terms; the listed
 * gradients (gather_add <-> scatter_add) against central differences.
 * CPU and CUDA. Run: build/tests/test_catalog_xbits. */
#include "catalog_test.h"
#include "catalog_close.h"

static void t_bits(zm_device dev) {
    for (int ci = 0; ci < ZC_NCOLS; ci++) {
        int64_t R = 5, C = zc_cols[ci], nb = (C + 7) / 8, sx[2] = {R, C}, sp[2] = {R, nb};
        uint8_t *x = malloc((size_t)(R * C)), *pk = malloc((size_t)(R * nb)), *ref = calloc((size_t)(R * nb), 1),
                *back = malloc((size_t)(R * C));
        for (int64_t i = 0; i < R * C; i++) {
            uint64_t u = zt_rand_u64();
            x[i] = (u & 1) ? (uint8_t)(1 + (u >> 8) % 255) : 0; /* any nonzero byte counts as 1 */
        }
        for (int64_t r = 0; r < R; r++)
            for (int64_t i = 0; i < C; i++)
                if (x[r * C + i]) ref[r * nb + i / 8] |= (uint8_t)(1u << (i % 8));
        zm_tensor *tx = zc_new(dev, ZM_U8, 2, sx, x), *tp = zc_out(dev, ZM_U8, 2, sp), *tb = zc_out(dev, ZM_U8, 2, sx);
        ZT_OK(zm_op_pack_bits(tp, tx));
        zc_get(pk, tp);
        int bad = -1;
        for (int64_t i = 0; i < R * nb && bad < 0; i++) if (pk[i] != ref[i]) bad = (int)i;
        ZT_CHECK(bad < 0, "pack_bits C=%lld: byte %d is %02x, expected %02x", (long long)C, bad, bad < 0 ? 0 : pk[bad],
                 bad < 0 ? 0 : ref[bad]);
        ZT_OK(zm_op_unpack_bits(tb, tp));
        zc_get(back, tb);
        bad = -1;
        for (int64_t i = 0; i < R * C && bad < 0; i++) if (back[i] != (x[i] != 0)) bad = (int)i;
        ZT_CHECK(bad < 0, "unpack_bits C=%lld: element %d is %d, expected %d", (long long)C, bad, bad < 0 ? 0 : back[bad],
                 bad < 0 ? 0 : x[bad] != 0);
        zm_tensor *tt[] = {tx, tp, tb};
        zc_free(3, tt);
        free(x); free(pk); free(ref); free(back);
        if (zt_failed_now()) return;
    }
}
ZC_DEVICES(t_bits)

static void t_gather_add(zm_device dev) {
    for (int di = 0; di < 1; di++) /* the registry lists gather_add as f32 */
        for (int ci = 0; ci < ZC_NCOLS; ci++) {
            zm_dtype dt = ZM_F32;
            int64_t V = 37, D = zc_cols[ci], N = 9, K = 5, st[2] = {V, D}, si[2] = {N, K}, so[2] = {N, D};
            float *tab = zc_f(V * D), *o = zc_f(N * D);
            int32_t *idx = malloc(sizeof(int32_t) * (size_t)(N * K));
            double *ref = zc_d(N * D), *mag = zc_d(N * D);
            zt_fill_normal(tab, V * D, 1.0);
            zc_round(tab, V * D, dt);
            for (int64_t i = 0; i < N * K; i++) {
                uint64_t u = zt_rand_u64();
                idx[i] = u % 7 == 0 ? -1 : u % 11 == 0 ? (int32_t)V + 3 : (int32_t)(u % 8); /* padding, repeats */
            }
            for (int64_t r = 0; r < N; r++)
                for (int64_t k = 0; k < K; k++) {
                    int32_t id = idx[r * K + k];
                    if (id < 0 || id >= V) continue;
                    for (int64_t j = 0; j < D; j++) { ref[r * D + j] += tab[id * D + j]; mag[r * D + j] += fabs(tab[id * D + j]); }
                }
            zm_tensor *tt_ = zc_newf(dev, dt, 2, st, tab), *ti = zc_new(dev, ZM_I32, 2, si, idx), *to = zc_out(dev, dt, 2, so);
            ZT_OK(zm_op_gather_add(to, tt_, ti));
            zc_getf(o, to);
            char what[64];
            snprintf(what, sizeof what, "gather_add %s D=%lld", zm_dtype_name(dt), (long long)D);
            ZT_CHECK(zc_close_mag(what, o, ref, mag, N * D, dt == ZM_F32 ? 1e-6 : zc_tol(dt)), "%s", what);
            zm_tensor *tt[] = {tt_, ti, to};
            zc_free(3, tt);
            free(tab); free(o); free(idx); free(ref); free(mag);
            if (zt_failed_now()) return;
        }
}
ZC_DEVICES(t_gather_add)

static void t_scatter_add(zm_device dev) {
    for (int ci = 0; ci < ZC_NCOLS; ci++) {
        int64_t V = 11, D = zc_cols[ci], N = 40, so[2] = {V, D}, ss[2] = {N, D};
        float *out = zc_f(V * D), *src = zc_f(N * D), *o = zc_f(V * D);
        int32_t *idx = malloc(sizeof(int32_t) * (size_t)N);
        double *ref = zc_d(V * D), *mag = zc_d(V * D);
        zt_fill_normal(out, V * D, 1.0); zt_fill_normal(src, N * D, 1.0);
        for (int64_t i = 0; i < N; i++) {
            uint64_t u = zt_rand_u64();
            idx[i] = u % 9 == 0 ? -2 : u % 13 == 0 ? (int32_t)V : (int32_t)(u % (uint64_t)(V - 2)); /* rows V-2, V-1 untouched */
        }
        for (int64_t i = 0; i < V * D; i++) { ref[i] = out[i]; mag[i] = fabs(out[i]); }
        for (int64_t r = 0; r < N; r++)
            if (idx[r] >= 0 && idx[r] < V)
                for (int64_t j = 0; j < D; j++) { ref[idx[r] * D + j] += src[r * D + j]; mag[idx[r] * D + j] += fabs(src[r * D + j]); }
        zm_tensor *to = zc_newf(dev, ZM_F32, 2, so, out), *ts = zc_newf(dev, ZM_F32, 2, ss, src), *ti = zc_new(dev, ZM_I32, 1, &N, idx);
        ZT_OK(zm_op_scatter_add(to, ts, ti));
        zc_getf(o, to);
        char what[64];
        snprintf(what, sizeof what, "scatter_add D=%lld", (long long)D);
        ZT_CHECK(zc_close_mag(what, o, ref, mag, V * D, 1e-6), "%s", what);
        ZT_CHECK(!memcmp(o + (V - 2) * D, out + (V - 2) * D, sizeof(float) * (size_t)(2 * D)), "%s: untouched rows changed", what);
        zm_tensor *tt[] = {to, ts, ti};
        zc_free(3, tt);
        free(out); free(src); free(o); free(idx); free(ref); free(mag);
        if (zt_failed_now()) return;
    }
}
ZC_DEVICES(t_scatter_add)

/* The listed gradients: L = sum g * gather_add(table, idx) has dL/dtable =
 * scatter_add of g's rows at the ids; L = sum g * scatter_add(out, src, idx)
 * has dL/dsrc[n] = g[idx[n]] = gather_add with one id per row. Checked
 * against central differences of the float64 loss. */
static void t_grad(zm_device dev) {
    int64_t V = 13, D = 33, N = 7, K = 3, NK = N * K, st[2] = {V, D}, sg[2] = {N, D}, sgk[2] = {NK, D}, si1[2] = {N, 1};
    float *tab = zc_f(V * D), *g = zc_f(N * D), *gk = zc_f(NK * D), *o = zc_f(V * D);
    int32_t *idx = malloc(sizeof(int32_t) * (size_t)NK);
    double *fd = zc_d(V * D), h = 1e-3;
    zt_fill_normal(tab, V * D, 1.0); zt_fill_normal(g, N * D, 1.0);
    for (int64_t i = 0; i < NK; i++) { uint64_t u = zt_rand_u64(); idx[i] = u % 5 == 0 ? -1 : (int32_t)(u % (uint64_t)(V - 1)); }
    for (int64_t i = 0; i < NK; i++) memcpy(gk + i * D, g + (i / K) * D, sizeof(float) * (size_t)D);
    /* d/dtable[v, j] of sum_n,k,j g[n, j] * table[idx[n, k], j] by central differences */
    for (int64_t v = 0; v < V; v++)
        for (int64_t j = 0; j < D; j++) {
            double lp = 0, lm = 0;
            for (int64_t i = 0; i < NK; i++)
                if (idx[i] == v) { lp += g[(i / K) * D + j] * (tab[v * D + j] + h); lm += g[(i / K) * D + j] * (tab[v * D + j] - h); }
            fd[v * D + j] = (lp - lm) / (2 * h);
        }
    zm_tensor *tg = zc_out(dev, ZM_F32, 2, st), *tsrc = zc_newf(dev, ZM_F32, 2, sgk, gk), *ti = zc_new(dev, ZM_I32, 1, &NK, idx);
    zm_tensor_fill(tg, 0);
    ZT_OK(zm_op_scatter_add(tg, tsrc, ti));
    zc_getf(o, tg);
    ZT_CHECK(zt_close("gather_add grad", o, fd, V * D, 1e-4), "dtable");
    /* dsrc of scatter_add: src [N, D] scattered at idx1 [N] into [V, D]; g_out [V, D] */
    int32_t idx1[7];
    for (int i = 0; i < N; i++) idx1[i] = idx[i];
    double *fd2 = zc_d(N * D);
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < D; j++) /* loss sum_v,j gout[v, j] * out[v, j] is linear in src */
            fd2[n * D + j] = idx1[n] >= 0 && idx1[n] < V ? (tab[idx1[n] * D + j] * (g[n * D + j] + h) - tab[idx1[n] * D + j] * (g[n * D + j] - h)) / (2 * h) : 0;
    zm_tensor *tgo = zc_newf(dev, ZM_F32, 2, st, tab), *ti1 = zc_new(dev, ZM_I32, 2, si1, idx1), *tds = zc_out(dev, ZM_F32, 2, sg);
    ZT_OK(zm_op_gather_add(tds, tgo, ti1));
    zc_getf(o, tds);
    ZT_CHECK(zt_close("scatter_add grad", o, fd2, N * D, 1e-4), "dsrc");
    zm_tensor *tt[] = {tg, tsrc, ti, tgo, ti1, tds};
    zc_free(6, tt);
    free(tab); free(g); free(gk); free(o); free(idx); free(fd); free(fd2);
}
ZC_DEVICES(t_grad)

static void t_bad(void) {
    int64_t s[2] = {3, 17}, sp[2] = {3, 2}, sf[2] = {3, 3}, si[2] = {3, 2};
    zm_tensor *x = zc_out(ZM_CPU, ZM_U8, 2, s), *p = zc_out(ZM_CPU, ZM_U8, 2, sp), *pf = zc_out(ZM_CPU, ZM_U8, 2, sf),
              *f = zc_out(ZM_CPU, ZM_F32, 2, s), *fi = zc_out(ZM_CPU, ZM_F32, 2, si), *idx = zc_out(ZM_CPU, ZM_I32, 2, si);
    ZT_CHECK(zm_op_pack_bits(p, x) == ZM_ERR_SHAPE, "17 bits need 3 bytes");
    ZT_CHECK(zm_op_pack_bits(pf, f) == ZM_ERR_DTYPE, "f32 flags");
    ZT_CHECK(zm_op_unpack_bits(x, p) == ZM_ERR_SHAPE, "unpack shape");
    ZT_CHECK(zm_op_gather_add(fi, f, idx) == ZM_ERR_SHAPE, "gather out D");
    ZT_CHECK(zm_op_gather_add(f, f, f) == ZM_ERR_DTYPE, "f32 ids");
    ZT_CHECK(zm_op_scatter_add(f, fi, idx) == ZM_ERR_SHAPE, "scatter src shape");
    zm_tensor *tt[] = {x, p, pf, f, fi, idx};
    zc_free(6, tt);
}

int main(void) {
    ZC_RUN(t_bits);
    ZC_RUN(t_gather_add);
    ZC_RUN(t_scatter_add);
    ZC_RUN(t_grad);
    ZT_RUN(t_bad);
    return zt_finish();
}
