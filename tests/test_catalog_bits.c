/* Catalog bits and indexing: pack/unpack bits (awkward widths, round trip),
 * gather_add with padding indices, scatter_add with repeated and dropped
 * indices, against float64 references. CPU and CUDA.
 * Run: build/tests/test_catalog_bits. */
#include "catalog_test.h"

static void t_bits(zm_device dev) {
    for (int ci = 0; ci < ZC_NCOLS; ci++) {
        int64_t R = 3, C = zc_cols[ci], PB = (C + 7) / 8, sh[2] = {R, C}, shp[2] = {R, PB};
        uint8_t *x = malloc((size_t)(R * C)), *p = malloc((size_t)(R * PB)), *y = malloc((size_t)(R * C));
        for (int64_t i = 0; i < R * C; i++) x[i] = zt_rand_u64() % 3 ? (uint8_t)(zt_rand_u64() % 250 + 1) * (zt_rand_u64() & 1) : 0;
        zm_tensor *tx = zc_new(dev, ZM_U8, 2, sh, x), *tp = zc_out(dev, ZM_U8, 2, shp), *ty = zc_out(dev, ZM_U8, 2, sh);
        ZT_OK(zm_op_pack_bits(tp, tx));
        zc_get(p, tp);
        for (int64_t r = 0; r < R; r++)
            for (int64_t j = 0; j < PB; j++) {
                int want = 0;
                for (int i = 0; i < 8 && j * 8 + i < C; i++) want |= (x[r * C + j * 8 + i] != 0) << i;
                if (p[r * PB + j] != want) { ZT_CHECK(0, "packed byte %lld,%lld: %02x want %02x", (long long)r, (long long)j, p[r * PB + j], want); goto done; }
            }
        ZT_OK(zm_op_unpack_bits(ty, tp));
        zc_get(y, ty);
        for (int64_t i = 0; i < R * C; i++) if (y[i] != (x[i] != 0)) { ZT_CHECK(0, "unpacked %lld: %d", (long long)i, y[i]); break; }
    done:;
        zm_tensor *tt[] = {tx, tp, ty};
        zc_free(3, tt);
        free(x); free(p); free(y);
    }
}
ZC_DEVICES(t_bits)

static void t_gather_scatter(zm_device dev) {
    int64_t V = 50, D = 77, N = 33, K = 4, shT[2] = {V, D}, shI[2] = {N, K}, shO[2] = {N, D};
    float *tab = zc_f(V * D), *o = zc_f(N * D), *src = zc_f(N * D), *acc = zc_f(V * D);
    int32_t *idx = malloc(sizeof(int32_t) * N * K), *sidx = malloc(sizeof(int32_t) * N);
    double *ref = zc_d(N * D), *rs = zc_d(V * D);
    zt_fill_normal(tab, V * D, 1.0); zt_fill_normal(src, N * D, 1.0); zt_fill_normal(acc, V * D, 1.0);
    for (int64_t i = 0; i < N * K; i++) idx[i] = (int32_t)(zt_rand_u64() % (V + 4)) - 2; /* some padding: -2, -1, V, V+1 */
    for (int64_t i = 0; i < N; i++) sidx[i] = (int32_t)(zt_rand_u64() % 10) - 1;          /* repeats and one -1 */
    for (int64_t r = 0; r < N; r++)
        for (int64_t d = 0; d < D; d++)
            for (int64_t j = 0; j < K; j++) if (idx[r * K + j] >= 0 && idx[r * K + j] < V) ref[r * D + d] += tab[idx[r * K + j] * D + d];
    for (int64_t i = 0; i < V * D; i++) rs[i] = acc[i];
    for (int64_t r = 0; r < N; r++) if (sidx[r] >= 0) for (int64_t d = 0; d < D; d++) rs[sidx[r] * D + d] += src[r * D + d];
    zm_tensor *tt = zc_newf(dev, ZM_F32, 2, shT, tab), *ti = zc_new(dev, ZM_I32, 2, shI, idx), *to = zc_out(dev, ZM_F32, 2, shO),
              *tsrc = zc_newf(dev, ZM_F32, 2, shO, src), *tsi = zc_new(dev, ZM_I32, 1, &N, sidx), *tacc = zc_newf(dev, ZM_F32, 2, shT, acc);
    ZT_OK(zm_op_gather_add(to, tt, ti));
    zc_getf(o, to);
    ZT_CHECK(zt_close("gather_add", o, ref, N * D, 1e-4), "gather_add");
    ZT_OK(zm_op_scatter_add(tacc, tsrc, tsi));
    zc_getf(acc, tacc);
    ZT_CHECK(zt_close("scatter_add", acc, rs, V * D, 1e-4), "scatter_add");
    zm_tensor *ts[] = {tt, ti, to, tsrc, tsi, tacc};
    zc_free(6, ts);
    free(tab); free(o); free(src); free(acc); free(idx); free(sidx); free(ref); free(rs);
}
ZC_DEVICES(t_gather_scatter)

int main(void) {
    ZC_RUN(t_bits);
    ZC_RUN(t_gather_scatter);
    return zt_finish();
}
