/* Core: status text, f16/bf16 conversion (exhaustive over all 2^16 codes,
 * against double-precision rounding), tensors, views, the thread pool.
 * Run: make test (or build/tests/test_core). */
#include "harness.h"
#include "zmlx/core.h"
#include <stdatomic.h>
#include <string.h>

/* Reference f32 -> f16 by searching the nearest representable half in double. */
static double f16_value(uint16_t h) { return (double)zm_f16_to_f32(h); }

static void test_f16_roundtrip_all(void) {
    for (uint32_t h = 0; h < 65536; h++) {
        float f = zm_f16_to_f32((uint16_t)h);
        uint16_t back = zm_f32_to_f16(f);
        if (isnan(f)) { ZT_CHECK((back & 0x7c00) == 0x7c00 && (back & 0x3ff), "NaN %04x -> %04x", h, back); continue; }
        ZT_CHECK(back == h, "half %04x -> %g -> %04x", h, f, back);
    }
    /* exact values of a few codes */
    ZT_CHECK(zm_f16_to_f32(0x3c00) == 1.0f, "1.0");
    ZT_CHECK(zm_f16_to_f32(0x0001) == ldexpf(1, -24), "smallest subnormal");
    ZT_CHECK(zm_f16_to_f32(0x7bff) == 65504.0f, "max half");
    ZT_CHECK(isinf(zm_f16_to_f32(0x7c00)), "inf");
}

static void test_f16_rounding_random(void) {
    for (int i = 0; i < 200000; i++) {
        float f = (float)(zt_normal() * pow(2.0, zt_uniform(-30, 17)));
        uint16_t h = zm_f32_to_f16(f);
        double v = f16_value(h);
        /* the neighbours must not be strictly closer; ties go to the even code */
        uint16_t up = (uint16_t)(h + 1), dn = (uint16_t)(h - 1);
        double e = fabs(v - f);
        if ((h & 0x7fff) == 0x7c00) { ZT_CHECK(fabs(f) >= 65520.0f, "overflow %g", f); continue; }
        if ((h & 0x7fff) != 0x7bff && (h & 0x7fff) != 0) ZT_CHECK(fabs(f16_value(up) - f) >= e, "%g -> %04x, %04x closer", f, h, up);
        if ((h & 0x7fff) != 0) ZT_CHECK(fabs(f16_value(dn) - f) >= e, "%g -> %04x, %04x closer", f, h, dn);
        if (fabs(f16_value(up) - f) == e || ((h & 0x7fff) && fabs(f16_value(dn) - f) == e)) ZT_CHECK((h & 1) == 0, "tie %g not even", f);
        if (zt_failed_now()) return;
    }
    ZT_CHECK(zm_f32_to_f16(65519.0f) == 0x7bff, "65519 -> max half");
    ZT_CHECK(zm_f32_to_f16(65520.0f) == 0x7c00, "65520 -> inf");
    ZT_CHECK(zm_f32_to_f16(-0.0f) == 0x8000, "-0");
    ZT_CHECK(zm_f32_to_f16(ldexpf(1, -25)) == 0, "2^-25 ties to 0");
    ZT_CHECK(zm_f32_to_f16(ldexpf(3, -26)) == 1, "1.5*2^-25 -> 1 ulp");
}

static void test_bf16(void) {
    for (uint32_t h = 0; h < 65536; h++) {
        float f = zm_bf16_to_f32((uint16_t)h);
        uint16_t b = zm_f32_to_bf16(f);
        if (isnan(f)) { ZT_CHECK(isnan(zm_bf16_to_f32(b)), "bf16 NaN %04x", h); continue; }
        ZT_CHECK(b == h, "bf16 %04x -> %04x", h, b);
    }
    ZT_CHECK(zm_f32_to_bf16(1.00390625f) == 0x3f80, "tie to even down"); /* 1 + 2^-8 */
    ZT_CHECK(zm_f32_to_bf16(1.01171875f) == 0x3f82, "tie to even up");   /* 1 + 3*2^-8 */
    ZT_CHECK(isnan(zm_bf16_to_f32(zm_f32_to_bf16(NAN))), "NaN stays NaN");
}

static void test_status_and_dtypes(void) {
    for (int s = 0; s > -ZM_ERR_STATUS_COUNT; s--) ZT_CHECK(strcmp(zm_status_str((zm_status)s), "unknown status") != 0, "status %d", s);
    ZT_CHECK(zm_dtype_parse("q4_0") == ZM_Q4_0 && zm_dtype_parse("nope") == -1, "parse");
    ZT_CHECK(zm_dtype_block_bytes(ZM_Q8_0) == 34 && zm_dtype_block_bytes(ZM_Q4_0) == 18, "block bytes");
    ZT_CHECK(zm_dtype_from_ggml(2) == ZM_Q4_0 && zm_dtype_to_ggml(ZM_Q8_0) == 8, "ggml ids");
}

static void test_tensor(void) {
    zm_tensor *t = NULL, *v = NULL;
    ZT_OK(zm_tensor_new(&t, ZM_F32, ZM_CPU, 3, (int64_t[]){2, 3, 4}));
    ZT_CHECK(zm_tensor_numel(t) == 24 && zm_tensor_nbytes(t) == 96 && zm_tensor_rows(t) == 6, "sizes");
    ZT_CHECK(t->stride[0] == 48 && t->stride[1] == 16 && t->stride[2] == 4, "strides");
    float *d = t->data;
    for (int i = 0; i < 24; i++) d[i] = (float)i;
    ZT_OK(zm_tensor_view(&v, t, 2, (int64_t[]){3, 4}, NULL, 48));
    ZT_CHECK(((float *)v->data)[0] == 12.0f && zm_tensor_is_contiguous(v), "view");
    zm_tensor_free(v);
    ZT_OK(zm_tensor_view(&v, t, 2, (int64_t[]){2, 4}, (int64_t[]){48, 4}, 0));
    ZT_CHECK(!zm_tensor_is_contiguous(v), "strided view is not contiguous");
    zm_tensor_free(v);
    ZT_OK(zm_tensor_fill(t, 2.5f));
    ZT_CHECK(d[23] == 2.5f, "fill");
    zm_tensor_free(t);
    zm_tensor_free(NULL);
    /* bad shapes fail cleanly */
    ZT_CHECK(zm_tensor_new(&t, ZM_F32, ZM_CPU, 5, (int64_t[]){1, 1, 1, 1, 1}) == ZM_ERR_SHAPE && t == NULL, "5 dims");
    ZT_CHECK(zm_tensor_new(&t, ZM_Q4_0, ZM_CPU, 1, (int64_t[]){33}) == ZM_ERR_SHAPE, "q4_0 row not multiple of 32");
    ZT_CHECK(strstr(zm_last_error(), "multiple") != NULL, "message names the problem: %s", zm_last_error());
    ZT_CHECK(zm_tensor_new(&t, ZM_F32, ZM_CPU, 2, (int64_t[]){INT64_MAX / 2, 4}) == ZM_ERR_RANGE, "overflow");
    ZT_OK(zm_tensor_new(&t, ZM_Q8_0, ZM_CPU, 2, (int64_t[]){3, 64}));
    ZT_CHECK(zm_tensor_nbytes(t) == 3 * 2 * 34 && t->stride[0] == 68, "q8_0 sizes");
    zm_tensor_free(t);
}

static _Atomic long pool_sum;
static void pool_job(void *ctx, int ith, int nth) {
    long *hits = ctx;
    for (int i = ith; i < 1000; i += nth) { hits[i]++; atomic_fetch_add(&pool_sum, i); }
}
static void test_pool(void) {
    zm_pool *p;
    ZT_OK(zm_pool_new(&p, 3));
    long hits[1000];
    for (int rep = 0; rep < 2000; rep++) {
        memset(hits, 0, sizeof hits);
        atomic_store(&pool_sum, 0);
        zm_pool_run(p, pool_job, hits);
        ZT_CHECK(atomic_load(&pool_sum) == 499500, "sum %ld", atomic_load(&pool_sum));
        for (int i = 0; i < 1000; i++) ZT_CHECK(hits[i] == 1, "item %d ran %ld times", i, hits[i]);
        if (zt_failed_now()) break;
    }
    zm_pool_free(p);
    ZT_CHECK(zm_pool_new(&p, 0) == ZM_ERR_RANGE && p == NULL, "0 threads rejected");
    ZT_CHECK(zm_pool_default() != NULL, "default pool");
}

static void test_cuda_absent_is_clean(void) {
    if (zm_cuda_available()) { zt_skip("a GPU answers; covered by GPU tests"); return; }
    zm_tensor *t = NULL;
    ZT_CHECK(zm_tensor_new(&t, ZM_F32, ZM_CUDA, 1, (int64_t[]){4}) == ZM_ERR_NO_DEVICE && !t, "no device status");
}

int main(void) {
    ZT_RUN(test_status_and_dtypes);
    ZT_RUN(test_f16_roundtrip_all);
    ZT_RUN(test_f16_rounding_random);
    ZT_RUN(test_bf16);
    ZT_RUN(test_tensor);
    ZT_RUN(test_pool);
    ZT_RUN(test_cuda_absent_is_clean);
    return zt_finish();
}
