/* GGUF write -> read round trip: every scalar value type, arrays of every
 * element type (strings, empty, nested from hand-built bytes), every tensor
 * type in 1..4 dims via copied data and the streaming fill callback, custom
 * alignment, the typed getters' conversions and errors, O(1) lookups on a
 * 150k-string vocabulary, and the writer's atomic temp-file + rename.
 * Run: build/tests/test_gguf */
#include "harness.h"
#include "zmlx/gguf.h"
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static const char *tpath(const char *name) {
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

// ---------------------------------------------------------------------------
static void test_values(void) {
    zm_gguf_writer *w;
    ZT_OK(zm_gguf_writer_new(&w));
    uint8_t u8 = 200; int8_t i8 = -100; uint16_t u16 = 60000; int16_t i16 = -30000;
    uint32_t u32 = 4000000000u; int32_t i32 = -2000000000; float f32 = 1.5e-6f; uint8_t bl = 1;
    uint64_t u64 = 0xfedcba9876543210ull; int64_t i64 = -1234567890123ll; double f64 = 3.141592653589793;
    ZT_OK(zm_gguf_set_val(w, "t.u8", ZM_GGUF_U8, &u8));
    ZT_OK(zm_gguf_set_val(w, "t.i8", ZM_GGUF_I8, &i8));
    ZT_OK(zm_gguf_set_val(w, "t.u16", ZM_GGUF_U16, &u16));
    ZT_OK(zm_gguf_set_val(w, "t.i16", ZM_GGUF_I16, &i16));
    ZT_OK(zm_gguf_set_val(w, "t.u32", ZM_GGUF_U32, &u32));
    ZT_OK(zm_gguf_set_val(w, "t.i32", ZM_GGUF_I32, &i32));
    ZT_OK(zm_gguf_set_val(w, "t.f32", ZM_GGUF_F32, &f32));
    ZT_OK(zm_gguf_set_val(w, "t.bool", ZM_GGUF_BOOL, &bl));
    ZT_OK(zm_gguf_set_val(w, "t.u64", ZM_GGUF_U64, &u64));
    ZT_OK(zm_gguf_set_val(w, "t.i64", ZM_GGUF_I64, &i64));
    ZT_OK(zm_gguf_set_val(w, "t.f64", ZM_GGUF_F64, &f64));
    ZT_OK(zm_gguf_set_str(w, "t.str", "h\xc3\xa9llo \"w\"\n"));
    ZT_OK(zm_gguf_set_str(w, "t.empty", ""));
    ZT_OK(zm_gguf_set_u32(w, "t.replaced", 1));
    ZT_OK(zm_gguf_set_u32(w, "t.replaced", 7)); /* replaces, as ggml does */
    ZT_OK(zm_gguf_set_bool(w, "t.false", 0));
    ZT_OK(zm_gguf_set_i32(w, "t.small", 42));
    ZT_OK(zm_gguf_set_u64(w, "t.u64small", 5));
    ZT_OK(zm_gguf_set_f32(w, "t.f32b", -2.25f));
    /* arrays of every numeric element type */
    static const zm_gguf_type ts[] = {ZM_GGUF_U8, ZM_GGUF_I8, ZM_GGUF_U16, ZM_GGUF_I16, ZM_GGUF_U32, ZM_GGUF_I32,
                                      ZM_GGUF_F32, ZM_GGUF_BOOL, ZM_GGUF_U64, ZM_GGUF_I64, ZM_GGUF_F64};
    static const int esz[] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 8, 8};
    int64_t vals[37];
    for (int j = 0; j < 37; j++) vals[j] = (int64_t)(zt_rand_u64() % 100) - (j & 1 ? 50 : 0);
    for (size_t k = 0; k < sizeof ts / sizeof ts[0]; k++) {
        uint8_t buf[37 * 8];
        for (int j = 0; j < 37; j++) {
            int64_t v = vals[j];
            if (ts[k] == ZM_GGUF_U8 || ts[k] == ZM_GGUF_U16 || ts[k] == ZM_GGUF_U32 || ts[k] == ZM_GGUF_U64) v = v < 0 ? -v : v;
            if (ts[k] == ZM_GGUF_BOOL) v = v & 1;
            if (ts[k] == ZM_GGUF_F32) { float f = (float)v * 0.5f; memcpy(buf + j * 4, &f, 4); continue; }
            if (ts[k] == ZM_GGUF_F64) { double d = (double)v * 0.25; memcpy(buf + j * 8, &d, 8); continue; }
            memcpy(buf + j * esz[k], &v, (size_t)esz[k]); /* little endian */
        }
        char key[32];
        snprintf(key, sizeof key, "a.%s", zm_gguf_type_name(ts[k]));
        ZT_OK(zm_gguf_set_arr(w, key, ts[k], buf, 37));
    }
    ZT_OK(zm_gguf_set_arr(w, "a.empty", ZM_GGUF_I32, NULL, 0));
    const char *strs[] = {"", "a", "\xc4\xa0the", "<|im_start|>", "x y z"};
    ZT_OK(zm_gguf_set_arr_str(w, "a.str", strs, 5));
    ZT_CHECK(zm_gguf_set_arr(w, "a.bad", ZM_GGUF_STRING, strs, 1) == ZM_ERR_INVALID, "string via set_arr");
    ZT_CHECK(zm_gguf_set_val(w, "", ZM_GGUF_U8, &u8) == ZM_ERR_INVALID, "empty key");
    ZT_OK(zm_gguf_write(w, tpath("v.gguf"), NULL, NULL, NULL));
    zm_gguf_writer_free(w);

    zm_gguf *g;
    ZT_OK(zm_gguf_open(&g, tpath("v.gguf")));
    if (!g) return;
    ZT_CHECK(zm_gguf_version(g) == 3, "version");
    ZT_CHECK(zm_gguf_n_kv(g) == 18 + 13, "n_kv %lld", (long long)zm_gguf_n_kv(g));
    ZT_CHECK(zm_gguf_n_tensors(g) == 0, "no tensors");
    int64_t i;
    uint32_t u; float f; int b;
    ZT_OK(zm_gguf_get_i64(g, "t.u8", &i)); ZT_CHECK(i == 200, "u8 %lld", (long long)i);
    ZT_OK(zm_gguf_get_i64(g, "t.i8", &i)); ZT_CHECK(i == -100, "i8");
    ZT_OK(zm_gguf_get_i64(g, "t.u16", &i)); ZT_CHECK(i == 60000, "u16");
    ZT_OK(zm_gguf_get_i64(g, "t.i16", &i)); ZT_CHECK(i == -30000, "i16");
    ZT_OK(zm_gguf_get_u32(g, "t.u32", &u)); ZT_CHECK(u == 4000000000u, "u32");
    ZT_OK(zm_gguf_get_i64(g, "t.i32", &i)); ZT_CHECK(i == -2000000000, "i32");
    ZT_OK(zm_gguf_get_f32(g, "t.f32", &f)); ZT_CHECK(f == 1.5e-6f, "f32");
    ZT_OK(zm_gguf_get_bool(g, "t.bool", &b)); ZT_CHECK(b == 1, "bool");
    ZT_OK(zm_gguf_get_bool(g, "t.false", &b)); ZT_CHECK(b == 0, "false");
    ZT_CHECK(zm_gguf_get_i64(g, "t.u64", &i) == ZM_ERR_RANGE, "u64 > int64 max must be a range error");
    ZT_OK(zm_gguf_get_i64(g, "t.i64", &i)); ZT_CHECK(i == -1234567890123ll, "i64");
    ZT_OK(zm_gguf_get_f32(g, "t.f64", &f)); ZT_CHECK(f == (float)3.141592653589793, "f64 as f32");
    ZT_OK(zm_gguf_get_u32(g, "t.replaced", &u)); ZT_CHECK(u == 7, "replaced %u", u);
    ZT_OK(zm_gguf_get_u32(g, "t.small", &u)); ZT_CHECK(u == 42, "i32 -> u32");
    ZT_OK(zm_gguf_get_u32(g, "t.u64small", &u)); ZT_CHECK(u == 5, "u64 -> u32");
    ZT_OK(zm_gguf_get_f32(g, "t.f32b", &f)); ZT_CHECK(f == -2.25f, "f32b");
    ZT_CHECK(zm_gguf_get_u32(g, "t.i8", &u) == ZM_ERR_RANGE, "negative -> u32");
    ZT_CHECK(strstr(zm_last_error(), "t.i8") != NULL, "message names the key: %s", zm_last_error());
    ZT_CHECK(zm_gguf_get_u32(g, "t.i64", &u) == ZM_ERR_RANGE, "i64 -> u32");
    ZT_CHECK(zm_gguf_get_u32(g, "t.f32", &u) == ZM_ERR_FORMAT, "float as int");
    ZT_CHECK(zm_gguf_get_f32(g, "t.u8", &f) == ZM_ERR_FORMAT, "int as float");
    ZT_CHECK(zm_gguf_get_bool(g, "t.u8", &b) == ZM_ERR_FORMAT, "int as bool");
    ZT_CHECK(zm_gguf_get_u32(g, "no.such.key", &u) == ZM_ERR_NOT_FOUND, "missing");
    ZT_CHECK(strstr(zm_last_error(), "no.such.key") != NULL, "message names the key");
    const char *s; uint64_t n;
    ZT_OK(zm_gguf_get_str(g, "t.str", &s, &n));
    ZT_CHECK(n == 11 && !memcmp(s, "h\xc3\xa9llo \"w\"\n", 11), "string");
    ZT_OK(zm_gguf_get_str(g, "t.empty", &s, &n)); ZT_CHECK(n == 0, "empty string");
    ZT_CHECK(zm_gguf_get_str(g, "t.u8", &s, &n) == ZM_ERR_FORMAT, "int as string");
    ZT_CHECK(zm_gguf_kv_type(g, zm_gguf_find_key(g, "t.f64")) == ZM_GGUF_F64, "kv type");
    for (size_t k = 0; k < sizeof ts / sizeof ts[0]; k++) {
        char key[32];
        snprintf(key, sizeof key, "a.%s", zm_gguf_type_name(ts[k]));
        zm_gguf_type et; double d[37]; int64_t iv[37];
        ZT_OK(zm_gguf_get_arr(g, key, &et, &n));
        ZT_CHECK(et == ts[k] && n == 37, "%s: type %d n %llu", key, et, (unsigned long long)n);
        ZT_OK(zm_gguf_get_arr_f64(g, key, 0, 37, d));
        int isint = ts[k] != ZM_GGUF_F32 && ts[k] != ZM_GGUF_F64 && ts[k] != ZM_GGUF_BOOL;
        if (isint) ZT_OK(zm_gguf_get_arr_i64(g, key, 0, 37, iv));
        else ZT_CHECK(zm_gguf_get_arr_i64(g, key, 0, 37, iv) == ZM_ERR_FORMAT, "%s as ints", key);
        for (int j = 0; j < 37; j++) {
            double want = (double)vals[j];
            if (ts[k] == ZM_GGUF_U8 || ts[k] == ZM_GGUF_U16 || ts[k] == ZM_GGUF_U32 || ts[k] == ZM_GGUF_U64) want = fabs(want);
            if (ts[k] == ZM_GGUF_BOOL) want = (double)(vals[j] & 1);
            if (ts[k] == ZM_GGUF_F32) want *= 0.5;
            if (ts[k] == ZM_GGUF_F64) want *= 0.25;
            ZT_CHECK(d[j] == want, "%s[%d] = %g want %g", key, j, d[j], want);
            if (isint) ZT_CHECK(iv[j] == (int64_t)want, "%s[%d] i64", key, j);
        }
        ZT_OK(zm_gguf_get_arr_f64(g, key, 30, 7, d));
        ZT_CHECK(zm_gguf_get_arr_f64(g, key, 30, 8, d) == ZM_ERR_RANGE, "past the end");
    }
    zm_gguf_type et;
    ZT_OK(zm_gguf_get_arr(g, "a.empty", &et, &n)); ZT_CHECK(n == 0 && et == ZM_GGUF_I32, "empty array");
    ZT_OK(zm_gguf_get_arr(g, "a.str", &et, &n)); ZT_CHECK(n == 5 && et == ZM_GGUF_STRING, "string array");
    for (int j = 0; j < 5; j++) {
        ZT_OK(zm_gguf_get_arr_str(g, "a.str", (uint64_t)j, &s, &n));
        ZT_CHECK(n == strlen(strs[j]) && !memcmp(s, strs[j], n), "a.str[%d]", j);
    }
    ZT_CHECK(zm_gguf_get_arr_str(g, "a.str", 5, &s, &n) == ZM_ERR_RANGE, "string index range");
    ZT_CHECK(zm_gguf_get_arr_str(g, "a.u8", 0, &s, &n) == ZM_ERR_FORMAT, "string from numbers");
    ZT_CHECK(zm_gguf_get_arr(g, "t.u8", &et, &n) == ZM_ERR_FORMAT, "scalar as array");
    char txt[256];
    zm_gguf_kv_to_str(g, zm_gguf_find_key(g, "a.str"), txt, sizeof txt);
    ZT_CHECK(strstr(txt, "string x 5") != NULL, "kv_to_str: %s", txt);
    zm_gguf_free(g);
}

// ---------------------------------------------------------------------------
typedef struct { uint8_t *bytes[16]; int calls; uint64_t last_done, total; } fillctx;
static zm_status fill(void *ctx, int64_t i, void *buf, uint64_t nbytes) {
    fillctx *c = ctx;
    memcpy(buf, c->bytes[i], (size_t)nbytes);
    c->calls++;
    return ZM_OK;
}
static void progress(void *ctx, uint64_t done, uint64_t total) {
    fillctx *c = ctx;
    ZT_CHECK(done >= c->last_done && done <= total, "progress %llu/%llu", (unsigned long long)done, (unsigned long long)total);
    c->last_done = done;
    c->total = total;
}

static void test_tensors(void) {
    static const zm_dtype dts[] = {ZM_F32, ZM_F16, ZM_BF16, ZM_I32, ZM_I8, ZM_Q8_0, ZM_Q4_0,
                                   ZM_Q4_K, ZM_Q5_K, ZM_Q6_K, ZM_MXFP4};
    const int nt = (int)(sizeof dts / sizeof dts[0]);
    for (int align = 32; align <= 64; align += 32) {
        zm_gguf_writer *w;
        ZT_OK(zm_gguf_writer_new(&w));
        ZT_OK(zm_gguf_set_str(w, "general.architecture", "test"));
        if (align != 32) ZT_OK(zm_gguf_set_u32(w, "general.alignment", (uint32_t)align));
        fillctx c = {0};
        int64_t shapes[16][4];
        uint64_t nbytes[16];
        for (int k = 0; k < nt; k++) {
            int ndim = 1 + k % 4;
            int64_t bs = zm_dtype_block_size(dts[k]), numel = 1;
            shapes[k][0] = bs * (1 + (int64_t)(zt_rand_u64() % 3));
            for (int d = 1; d < 4; d++) shapes[k][d] = d < ndim ? 1 + (int64_t)(zt_rand_u64() % 3) : 1;
            for (int d = 0; d < 4; d++) numel *= shapes[k][d];
            nbytes[k] = (uint64_t)(numel / bs * zm_dtype_block_bytes(dts[k]));
            c.bytes[k] = malloc(nbytes[k]);
            for (uint64_t j = 0; j < nbytes[k]; j++) c.bytes[k][j] = (uint8_t)zt_rand_u64();
            char name[32];
            snprintf(name, sizeof name, "blk.%d.%s.weight", k, zm_dtype_name(dts[k]));
            /* even tensors are copied now, odd ones streamed by fill */
            ZT_OK(zm_gguf_add_tensor(w, name, dts[k], ndim, shapes[k], k % 2 ? NULL : c.bytes[k]));
        }
        int64_t bad[1] = {33};
        ZT_CHECK(zm_gguf_add_tensor(w, "bad", ZM_Q8_0, 1, bad, NULL) == ZM_ERR_SHAPE, "partial block");
        ZT_CHECK(zm_gguf_add_tensor(w, "blk.0.f32.weight", ZM_F32, 1, bad, NULL) == ZM_ERR_INVALID, "duplicate name");
        ZT_CHECK(zm_gguf_add_tensor(w, "x", ZM_U8, 1, bad, NULL) == ZM_ERR_DTYPE, "u8 has no ggml type");
        ZT_CHECK(zm_gguf_write(w, tpath("t.gguf"), NULL, NULL, NULL) == ZM_ERR_INVALID, "no fill for streamed tensors");
        ZT_OK(zm_gguf_write(w, tpath("t.gguf"), fill, &c, progress));
        zm_gguf_writer_free(w);
        ZT_CHECK(c.calls == nt / 2, "fill called %d times", c.calls);
        ZT_CHECK(c.last_done == c.total && c.total > 0, "progress reached the total");

        zm_gguf *g;
        ZT_OK(zm_gguf_open(&g, tpath("t.gguf")));
        if (!g) return;
        ZT_CHECK(zm_gguf_alignment(g) == (uint32_t)align, "alignment %u", zm_gguf_alignment(g));
        ZT_CHECK(zm_gguf_n_tensors(g) == nt, "n_tensors");
        for (int k = 0; k < nt; k++) {
            char name[32];
            snprintf(name, sizeof name, "blk.%d.%s.weight", k, zm_dtype_name(dts[k]));
            int64_t i = zm_gguf_find_tensor(g, name);
            ZT_CHECK(i == k, "find %s -> %lld", name, (long long)i);
            zm_gguf_tensor t;
            ZT_OK(zm_gguf_expect_tensor(g, name, 1 + k % 4, shapes[k], &t));
            ZT_CHECK(t.dtype == dts[k] && t.ndim == 1 + k % 4 && t.nbytes == nbytes[k], "%s info", name);
            ZT_CHECK(t.offset % (uint64_t)align == 0 && ((uintptr_t)t.data % (uintptr_t)align) == 0, "%s aligned", name);
            ZT_CHECK(!memcmp(t.data, c.bytes[k], nbytes[k]), "%s bytes", name);
            int64_t wrong[4] = {shapes[k][0], shapes[k][1] + 1, shapes[k][2], shapes[k][3]};
            ZT_CHECK(zm_gguf_expect_tensor(g, name, 4, wrong, NULL) == ZM_ERR_SHAPE, "wrong shape");
            ZT_CHECK(strstr(zm_last_error(), name) != NULL, "shape message names the tensor");
            free(c.bytes[k]);
        }
        ZT_CHECK(zm_gguf_expect_tensor(g, "output.weight", 1, shapes[0], NULL) == ZM_ERR_NOT_FOUND, "missing tensor");
        ZT_CHECK(strstr(zm_last_error(), "output.weight") != NULL, "missing message");
        ZT_CHECK(zm_gguf_find_tensor(g, "nope") == -1, "absent tensor");
        zm_gguf_free(g);
    }
}

// ---------------------------------------------------------------------------
/* The writer cannot emit arrays of arrays, so build such a file by hand. */
static void put(uint8_t **p, const void *v, size_t n) { memcpy(*p, v, n); *p += n; }
static void put32(uint8_t **p, uint32_t v) { put(p, &v, 4); }
static void put64(uint8_t **p, uint64_t v) { put(p, &v, 8); }
static void putstr(uint8_t **p, const char *s) { put64(p, strlen(s)); put(p, s, strlen(s)); }

static void test_nested(void) {
    uint8_t buf[512], *p = buf;
    put(&p, "GGUF", 4); put32(&p, 3); put64(&p, 0); put64(&p, 2);
    putstr(&p, "nest"); put32(&p, ZM_GGUF_ARRAY); put32(&p, ZM_GGUF_ARRAY); put64(&p, 2);
    put32(&p, ZM_GGUF_I32); put64(&p, 2); put32(&p, 1); put32(&p, 2);        /* [1, 2] */
    put32(&p, ZM_GGUF_STRING); put64(&p, 1); putstr(&p, "deep");            /* ["deep"] */
    putstr(&p, "after"); put32(&p, ZM_GGUF_U32); put32(&p, 99);
    zm_gguf *g;
    ZT_OK(zm_gguf_open_mem(&g, buf, (size_t)(p - buf)));
    if (!g) return;
    zm_gguf_type et; uint64_t n; uint32_t u;
    ZT_OK(zm_gguf_get_arr(g, "nest", &et, &n));
    ZT_CHECK(et == ZM_GGUF_ARRAY && n == 2, "nested array");
    ZT_OK(zm_gguf_get_u32(g, "after", &u));
    ZT_CHECK(u == 99, "key after a nested array parsed at the right offset");
    double d;
    ZT_CHECK(zm_gguf_get_arr_f64(g, "nest", 0, 1, &d) == ZM_ERR_FORMAT, "nested as numbers");
    zm_gguf_free(g);
}

// ---------------------------------------------------------------------------
static void test_big_vocab(void) {
    const int nv = 151936, nk = 3000;
    char **v = malloc(sizeof(char *) * (size_t)nv);
    for (int i = 0; i < nv; i++) { v[i] = malloc(16); snprintf(v[i], 16, "tok%d", i); }
    zm_gguf_writer *w;
    ZT_OK(zm_gguf_writer_new(&w));
    ZT_OK(zm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v, (uint64_t)nv));
    for (int i = 0; i < nk; i++) {
        char key[32];
        snprintf(key, sizeof key, "k.%d", i);
        ZT_OK(zm_gguf_set_u32(w, key, (uint32_t)i));
    }
    ZT_OK(zm_gguf_write(w, tpath("big.gguf"), NULL, NULL, NULL));
    zm_gguf_writer_free(w);
    zm_gguf *g;
    ZT_OK(zm_gguf_open(&g, tpath("big.gguf")));
    if (g) {
        for (int j = 0; j < 1000; j++) {
            int i = (int)(zt_rand_u64() % (uint64_t)nv);
            const char *s; uint64_t n;
            ZT_OK(zm_gguf_get_arr_str(g, "tokenizer.ggml.tokens", (uint64_t)i, &s, &n));
            ZT_CHECK(n == strlen(v[i]) && !memcmp(s, v[i], n), "token %d", i);
            char key[32];
            uint32_t u;
            int k = (int)(zt_rand_u64() % (uint64_t)nk);
            snprintf(key, sizeof key, "k.%d", k);
            ZT_OK(zm_gguf_get_u32(g, key, &u));
            ZT_CHECK(u == (uint32_t)k, "%s", key);
            if (zt_failed_now()) break;
        }
        zm_gguf_free(g);
    }
    for (int i = 0; i < nv; i++) free(v[i]);
    free(v);
}

// ---------------------------------------------------------------------------
static zm_status fill_fail(void *ctx, int64_t i, void *buf, uint64_t nbytes) {
    (void)ctx;
    memset(buf, 0, (size_t)nbytes);
    return i == 1 ? ZM_ERR_IO : ZM_OK;
}
static int count_files(void) {
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}
static void test_atomic(void) {
    int before = count_files();
    zm_gguf_writer *w;
    ZT_OK(zm_gguf_writer_new(&w));
    int64_t ne[2] = {32, 2};
    ZT_OK(zm_gguf_add_tensor(w, "a", ZM_F32, 2, ne, NULL));
    ZT_OK(zm_gguf_add_tensor(w, "b", ZM_F32, 2, ne, NULL));
    ZT_CHECK(zm_gguf_write(w, tpath("fail.gguf"), fill_fail, NULL, NULL) == ZM_ERR_IO, "fill error propagates");
    ZT_CHECK(strstr(zm_last_error(), "'b'") != NULL, "message names the tensor: %s", zm_last_error());
    ZT_CHECK(access(tpath("fail.gguf"), F_OK) != 0, "no target file after failure");
    ZT_CHECK(count_files() == before, "no temp file left behind");
    ZT_CHECK(zm_gguf_write(w, "/nonexistent-dir/x.gguf", fill_fail, NULL, NULL) == ZM_ERR_IO, "unwritable path");
    zm_gguf_writer_free(w);
    zm_gguf *g = (zm_gguf *)1;
    ZT_CHECK(zm_gguf_open(&g, tpath("missing.gguf")) == ZM_ERR_IO && g == NULL, "missing file, *out NULL");
    zm_gguf_free(NULL);
    zm_gguf_writer_free(NULL);
}

static void cleanup(void) {
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') unlink(tpath(e->d_name));
    if (d) closedir(d);
    rmdir(dir);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/zt_gguf_XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    ZT_RUN(test_values);
    ZT_RUN(test_tensors);
    ZT_RUN(test_nested);
    ZT_RUN(test_big_vocab);
    ZT_RUN(test_atomic);
    cleanup();
    return zt_finish();
}
