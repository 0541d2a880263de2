/* Hostile GGUF input: every field the reader trusts is corrupted in a
 * hand-built file (magic, versions 1/2/4, counts, string and array lengths,
 * value and element types, nesting depth, duplicated keys and tensor names,
 * alignment, n_dims > 4, element-count and byte-size overflow, unknown ggml
 * types, partial blocks, misaligned offsets, data past the end, every
 * truncation of a valid file). Each must give ZM_ERR_FORMAT with a message
 * naming the field, *out = NULL, no crash. The binary then re-runs itself
 * under valgrind (when installed) to prove no error path leaks or reads
 * out of bounds. Run: build/tests/test_gguf_bad */
#include "harness.h"
#include "zmlx/gguf.h"
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct { uint8_t b[8192]; size_t n; } fb;
static void put(fb *f, const void *v, size_t n) { memcpy(f->b + f->n, v, n); f->n += n; }
static void u32(fb *f, uint32_t v) { put(f, &v, 4); }
static void u64(fb *f, uint64_t v) { put(f, &v, 8); }
static void str(fb *f, const char *s) { u64(f, strlen(s)); put(f, s, strlen(s)); }
static void hdr(fb *f, uint32_t ver, uint64_t nt, uint64_t nkv) { f->n = 0; put(f, "GGUF", 4); u32(f, ver); u64(f, nt); u64(f, nkv); }
static void kv_u32(fb *f, const char *k, uint32_t v) { str(f, k); u32(f, 4); u32(f, v); }
static void tinfo(fb *f, const char *name, uint32_t nd, const uint64_t *ne, uint32_t type, uint64_t off) {
    str(f, name); u32(f, nd);
    for (uint32_t d = 0; d < nd; d++) u64(f, ne[d]);
    u32(f, type); u64(f, off);
}
static void pad(fb *f, size_t al) { while (f->n % al) f->b[f->n++] = 0; }
static void data(fb *f, size_t n) { for (size_t i = 0; i < n; i++) f->b[f->n++] = (uint8_t)i; }

/* Open a heap copy of exactly f->n bytes, so any over-read is caught by
 * valgrind/ASan; expect want and a message containing each of the needles. */
static void expect(const fb *f, zm_status want, const char *what, const char *n1, const char *n2) {
    uint8_t *copy = malloc(f->n ? f->n : 1);
    memcpy(copy, f->b, f->n);
    zm_gguf *g = (zm_gguf *)(uintptr_t)1;
    zm_status s = zm_gguf_open_mem(&g, copy, f->n);
    ZT_CHECK(s == want, "%s: status %d (%s), want %d", what, s, zm_last_error(), want);
    if (want != ZM_OK) {
        ZT_CHECK(g == NULL, "%s: *out not NULL on failure", what);
        ZT_CHECK(!n1 || strstr(zm_last_error(), n1), "%s: message lacks '%s': %s", what, n1, zm_last_error());
        ZT_CHECK(!n2 || strstr(zm_last_error(), n2), "%s: message lacks '%s': %s", what, n2, zm_last_error());
    }
    if (s == ZM_OK) zm_gguf_free(g);
    free(copy);
}

/* The valid baseline: 2 keys, one F32 tensor [32 x 2]. */
static void base(fb *f) {
    hdr(f, 3, 1, 2);
    str(f, "general.architecture"); u32(f, 8); str(f, "x");
    kv_u32(f, "general.alignment", 32);
    uint64_t ne[2] = {32, 2};
    tinfo(f, "w", 2, ne, 0, 0);
    pad(f, 32);
    data(f, 256);
}

// ---------------------------------------------------------------------------
static void test_header(void) {
    fb f;
    base(&f);
    expect(&f, ZM_OK, "baseline", NULL, NULL);
    f.n = 0;
    expect(&f, ZM_ERR_FORMAT, "empty", "magic", "truncated");
    base(&f); f.b[3] = 'G';
    expect(&f, ZM_ERR_FORMAT, "magic", "magic", "byte 0");
    for (uint32_t v = 1; v <= 2; v++) {
        base(&f); memcpy(f.b + 4, &v, 4);
        expect(&f, ZM_ERR_FORMAT, "old version", v == 1 ? "version 1" : "version 2", "only GGUF v3");
    }
    uint32_t v4 = 4;
    base(&f); memcpy(f.b + 4, &v4, 4);
    expect(&f, ZM_ERR_FORMAT, "version 4", "version 4", "byte 4");
    hdr(&f, 3, 0, 1ull << 60);
    expect(&f, ZM_ERR_FORMAT, "huge n_kv", "metadata count", "byte 16");
    hdr(&f, 3, 1ull << 60, 0);
    expect(&f, ZM_ERR_FORMAT, "huge n_tensors", "tensor count", NULL);
    hdr(&f, 3, UINT64_MAX, UINT64_MAX);
    expect(&f, ZM_ERR_FORMAT, "max counts", "count", NULL);
}

static void test_metadata(void) {
    fb f;
    hdr(&f, 3, 0, 1); u64(&f, 1ull << 62); data(&f, 40);
    expect(&f, ZM_ERR_FORMAT, "key length", "string length", "byte 24");
    hdr(&f, 3, 0, 1); str(&f, "k"); u32(&f, 13); u32(&f, 0);
    expect(&f, ZM_ERR_FORMAT, "value type", "unknown value type 13", "'k'");
    hdr(&f, 3, 0, 1); str(&f, "k"); u32(&f, 8); u64(&f, 1000); put(&f, "short", 5);
    expect(&f, ZM_ERR_FORMAT, "string value length", "string length 1000", NULL);
    hdr(&f, 3, 0, 1); str(&f, "k"); u32(&f, 9); u32(&f, 42); u64(&f, 1);
    expect(&f, ZM_ERR_FORMAT, "array element type", "unknown array element type 42", "'k'");
    hdr(&f, 3, 0, 1); str(&f, "k"); u32(&f, 9); u32(&f, 4); u64(&f, 1ull << 61); u32(&f, 1);
    expect(&f, ZM_ERR_FORMAT, "array length", "array length", "byte");
    hdr(&f, 3, 0, 1); str(&f, "k"); u32(&f, 9); u32(&f, 10); u64(&f, UINT64_MAX / 4);
    expect(&f, ZM_ERR_FORMAT, "array length overflow", "array length", NULL);
    hdr(&f, 3, 0, 1); str(&f, "k"); u32(&f, 9); u32(&f, 8); u64(&f, 3); str(&f, "a"); u64(&f, 99); data(&f, 40);
    expect(&f, ZM_ERR_FORMAT, "string in array", "string length 99", NULL);
    /* arrays of arrays nested 9 deep */
    hdr(&f, 3, 0, 1); str(&f, "k"); u32(&f, 9);
    for (int d = 0; d < 9; d++) { u32(&f, 9); u64(&f, 1); }
    u32(&f, 4); u64(&f, 0);
    expect(&f, ZM_ERR_FORMAT, "nesting", "nested deeper", NULL);
    hdr(&f, 3, 0, 2); kv_u32(&f, "dup", 1); kv_u32(&f, "dup", 2);
    expect(&f, ZM_ERR_FORMAT, "duplicate key", "duplicated metadata key 'dup'", "byte");
    hdr(&f, 3, 0, 1); u64(&f, 3); put(&f, "a\0b", 3); u32(&f, 4); u32(&f, 1);
    expect(&f, ZM_ERR_FORMAT, "NUL in key", "NUL", NULL);
    hdr(&f, 3, 0, 1); kv_u32(&f, "general.alignment", 48);
    expect(&f, ZM_ERR_FORMAT, "alignment 48", "power of two", "general.alignment");
    hdr(&f, 3, 0, 1); kv_u32(&f, "general.alignment", 0);
    expect(&f, ZM_ERR_FORMAT, "alignment 0", "power of two", NULL);
    hdr(&f, 3, 0, 1); str(&f, "general.alignment"); u32(&f, 8); str(&f, "32");
    expect(&f, ZM_ERR_FORMAT, "alignment type", "general.alignment has type string", NULL);
    hdr(&f, 3, 0, 1); str(&f, "k"); u32(&f, 10); u32(&f, 7);
    expect(&f, ZM_ERR_FORMAT, "truncated u64", "scalar value", "truncated");
}

static void one_tensor(fb *f, const char *name, uint32_t nd, const uint64_t *ne, uint32_t type, uint64_t off, size_t nbytes) {
    hdr(f, 3, 1, 0);
    tinfo(f, name, nd, ne, type, off);
    pad(f, 32);
    data(f, nbytes);
}

static void test_tensors(void) {
    fb f;
    uint64_t ne[5] = {32, 2, 1, 1, 1};
    one_tensor(&f, "t", 2, ne, 0, 0, 256);
    expect(&f, ZM_OK, "valid tensor", NULL, NULL);
    one_tensor(&f, "t", 5, ne, 0, 0, 256);
    expect(&f, ZM_ERR_FORMAT, "5 dims", "n_dims 5", "'t'");
    one_tensor(&f, "t", 0, ne, 0, 0, 256);
    expect(&f, ZM_ERR_FORMAT, "0 dims", "n_dims 0", NULL);
    uint64_t big[3] = {1ull << 32, 1ull << 32, 1ull << 32};
    one_tensor(&f, "t", 3, big, 0, 0, 0);
    expect(&f, ZM_ERR_FORMAT, "numel overflow", "element count overflows", "ne[1]");
    uint64_t bytes_ovf[2] = {1ull << 31, 1ull << 31}; /* 2^62 f32: the byte size overflows */
    one_tensor(&f, "t", 2, bytes_ovf, 0, 0, 0);
    expect(&f, ZM_ERR_FORMAT, "byte size overflow", "byte size overflows", NULL);
    uint64_t neg[2] = {32, (uint64_t)-2};
    one_tensor(&f, "t", 2, neg, 0, 0, 0);
    expect(&f, ZM_ERR_FORMAT, "negative dim", "ne[1]", "byte");
    one_tensor(&f, "t", 2, ne, 99, 0, 256);
    expect(&f, ZM_ERR_FORMAT, "type 99", "ggml type 99", "'t'");
    one_tensor(&f, "t", 2, ne, 4, 0, 256); /* Q4_2, removed from ggml */
    expect(&f, ZM_ERR_FORMAT, "type 4", "ggml type 4", NULL);
    uint64_t part[1] = {33};
    one_tensor(&f, "t", 1, part, 8, 0, 64);
    expect(&f, ZM_ERR_FORMAT, "partial q8_0 block", "multiple of", "q8_0");
    one_tensor(&f, "t", 2, ne, 0, 4, 256);
    expect(&f, ZM_ERR_FORMAT, "misaligned offset", "not a multiple of the alignment", "'t'");
    one_tensor(&f, "t", 2, ne, 0, 1u << 20, 256);
    expect(&f, ZM_ERR_FORMAT, "data past end", "past the end", "'t'");
    one_tensor(&f, "t", 2, ne, 0, 0, 255);
    expect(&f, ZM_ERR_FORMAT, "data one byte short", "past the end", NULL);
    one_tensor(&f, "t", 2, ne, 0, UINT64_MAX - 31, 256);
    expect(&f, ZM_ERR_FORMAT, "offset overflow", "past the end", NULL);
    hdr(&f, 3, 2, 0); tinfo(&f, "t", 2, ne, 0, 0); tinfo(&f, "t", 2, ne, 0, 256); pad(&f, 32); data(&f, 512);
    expect(&f, ZM_ERR_FORMAT, "duplicate tensor", "duplicated tensor name 't'", NULL);
    hdr(&f, 3, 1, 0); u64(&f, 1ull << 40); data(&f, 40);
    expect(&f, ZM_ERR_FORMAT, "tensor name length", "tensor name", "string length");
}

/* Every prefix of a valid file that cuts into the header or the data fails. */
static void test_truncation(void) {
    fb f;
    base(&f);
    const size_t full = f.n;
    for (size_t n = 0; n < full; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, f.b, n);
        zm_gguf *g = NULL;
        zm_status s = zm_gguf_open_mem(&g, copy, n);
        ZT_CHECK(s == ZM_ERR_FORMAT && g == NULL, "prefix %zu of %zu: status %d", n, full, s);
        ZT_CHECK(strstr(zm_last_error(), "byte") != NULL, "prefix %zu: message without a byte offset: %s", n, zm_last_error());
        zm_gguf_free(g);
        free(copy);
        if (zt_failed_now()) return;
    }
    /* through the file path too: the message names the file */
    char path[] = "/tmp/zt_gguf_bad_XXXXXX";
    int fd = mkstemp(path);
    ZT_CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    ZT_CHECK(write(fd, f.b, full / 2) == (ssize_t)(full / 2), "write");
    close(fd);
    zm_gguf *g = NULL;
    ZT_CHECK(zm_gguf_open(&g, path) == ZM_ERR_FORMAT && !g, "truncated file");
    ZT_CHECK(strstr(zm_last_error(), path) != NULL, "message names the file: %s", zm_last_error());
    fd = open(path, O_WRONLY | O_TRUNC);
    if (fd >= 0) close(fd);
    ZT_CHECK(zm_gguf_open(&g, path) == ZM_ERR_FORMAT && !g, "empty file");
    unlink(path);
}

static void test_lookup_errors(void) {
    fb f;
    base(&f);
    zm_gguf *g;
    ZT_OK(zm_gguf_open_mem(&g, f.b, f.n));
    if (!g) return;
    int64_t ne[2] = {32, 3};
    ZT_CHECK(zm_gguf_expect_tensor(g, "w", 2, ne, NULL) == ZM_ERR_SHAPE, "wrong shape");
    ZT_CHECK(strstr(zm_last_error(), "[32, 2]") && strstr(zm_last_error(), "[32, 3]"), "shape message: %s", zm_last_error());
    ZT_CHECK(zm_gguf_expect_tensor(g, "blk.0.attn_q.weight", 2, ne, NULL) == ZM_ERR_NOT_FOUND, "missing tensor");
    ZT_CHECK(strstr(zm_last_error(), "blk.0.attn_q.weight") != NULL, "missing message");
    zm_gguf_tensor t;
    ZT_CHECK(zm_gguf_tensor_info(g, 1, &t) == ZM_ERR_RANGE, "tensor index");
    ZT_CHECK(zm_gguf_tensor_info(g, -1, &t) == ZM_ERR_RANGE, "negative tensor index");
    ZT_CHECK(zm_gguf_key(g, 2) == NULL && zm_gguf_key(g, -1) == NULL, "key index");
    uint32_t u;
    ZT_CHECK(zm_gguf_get_u32(g, "qwen3moe.block_count", &u) == ZM_ERR_NOT_FOUND, "missing key");
    ZT_CHECK(zm_gguf_get_u32(g, "general.architecture", &u) == ZM_ERR_FORMAT, "string as u32");
    zm_gguf_free(g);
    ZT_CHECK(zm_gguf_open_mem(NULL, f.b, f.n) == ZM_ERR_INVALID, "NULL out");
    ZT_CHECK(zm_gguf_open_mem(&g, NULL, 5) == ZM_ERR_INVALID && !g, "NULL buffer");
}

/* Run this binary again under valgrind: any leak or invalid read on the
 * error paths above fails the test. */
static void test_valgrind(void) {
    if (getenv("ZT_INNER")) { zt_skip("inner run"); return; }
    if (system("valgrind --version >/dev/null 2>&1") != 0) { zt_skip("valgrind not installed"); return; }
    char self[512];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) { zt_skip("no /proc/self/exe"); return; }
    self[n] = 0;
    char cmd[1200], log[64];
    snprintf(log, sizeof log, "/tmp/zt_gguf_bad_vg.%d.log", (int)getpid());
    snprintf(cmd, sizeof cmd,
             "ZT_INNER=1 valgrind -q --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all "
             "--error-exitcode=99 '%s' > %s 2>&1", self, log);
    int rc = system(cmd);
    int code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    ZT_CHECK(code == 0, "valgrind run exited %d (see %s)", code, log);
    if (code == 0) unlink(log);
}

int main(void) {
    ZT_RUN(test_header);
    ZT_RUN(test_metadata);
    ZT_RUN(test_tensors);
    ZT_RUN(test_truncation);
    ZT_RUN(test_lookup_errors);
    ZT_RUN(test_valgrind);
    return zt_finish();
}
