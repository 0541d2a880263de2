/* GGUF v3 reader: mmaps the file (or takes a caller's buffer) and parses the
 * header, metadata and tensor infos, treating every byte as hostile. Each
 * count, string length, array length, dimension, element-count product, type
 * id, offset and size is checked against the bytes that remain before use;
 * a violation is ZM_ERR_FORMAT naming the field and its byte offset. Keys and
 * tensor names are hashed (vocabularies hold 150k strings). Layout checked
 * against ggml's gguf.cpp and gguf-py. Tests: build/tests/test_gguf,
 * build/tests/test_gguf_bad (also under valgrind), fuzz/fuzz_gguf.c. */
#include "core/internal.h"
#include "zmlx/gguf.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

// ---------------------------------------------------------------------------
// types

typedef struct {
    char *key;            /* NUL-terminated copy (in g->names) */
    zm_gguf_type type;
    zm_gguf_type elem;    /* arrays: element type */
    uint64_t n;           /* arrays: element count; strings: byte length */
    const uint8_t *val;   /* scalar / string bytes / first array element */
    uint64_t *str_off;    /* string arrays: offset (from val) of each element's length */
} zm__kv;

struct zm_gguf {
    const uint8_t *base;
    uint64_t size;
    int mapped;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_off;
    int64_t n_kv, n_t;
    zm__kv *kv;
    zm_gguf_tensor *t;
    char *names;          /* all keys and tensor names, NUL-terminated */
    int64_t *kv_hash, *t_hash; /* open addressing: index + 1, 0 = empty */
    uint64_t kv_hcap, t_hcap;
};

typedef struct {
    const uint8_t *b;
    uint64_t size, pos;
} zm__rd;

static const uint64_t zm__tsize[ZM_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
static const char *const zm__tname[ZM_GGUF_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
#define ZM__MAX_NEST 8

// ---------------------------------------------------------------------------
// bounded reads

static zm_status zm__need(zm__rd *r, uint64_t n, const char *what) {
    if (n > r->size - r->pos)
        return zm__err(ZM_ERR_FORMAT, "gguf: %s at byte %llu needs %llu bytes, only %llu left (truncated file?)",
                       what, (unsigned long long)r->pos, (unsigned long long)n,
                       (unsigned long long)(r->size - r->pos));
    return ZM_OK;
}
static zm_status zm__u32(zm__rd *r, uint32_t *v, const char *what) {
    ZM_TRY(zm__need(r, 4, what));
    memcpy(v, r->b + r->pos, 4);
    r->pos += 4;
    return ZM_OK;
}
static zm_status zm__u64(zm__rd *r, uint64_t *v, const char *what) {
    ZM_TRY(zm__need(r, 8, what));
    memcpy(v, r->b + r->pos, 8);
    r->pos += 8;
    return ZM_OK;
}
/* A GGUF string: u64 length then bytes. */
static zm_status zm__str(zm__rd *r, const uint8_t **s, uint64_t *len, const char *what) {
    uint64_t at = r->pos;
    ZM_TRY(zm__u64(r, len, what));
    if (*len > r->size - r->pos)
        return zm__err(ZM_ERR_FORMAT, "gguf: %s at byte %llu: string length %llu exceeds the %llu bytes left",
                       what, (unsigned long long)at, (unsigned long long)*len,
                       (unsigned long long)(r->size - r->pos));
    *s = r->b + r->pos;
    r->pos += *len;
    return ZM_OK;
}

static uint64_t zm__hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

/* Skip (validate) one value of type t; depth bounds nested arrays. */
static zm_status zm__skip_val(zm__rd *r, uint32_t t, int depth, const char *key) {
    if (t >= ZM_GGUF_TYPE_COUNT)
        return zm__err(ZM_ERR_FORMAT, "gguf: key '%s' at byte %llu: unknown value type %u", key,
                       (unsigned long long)r->pos, t);
    if (t == ZM_GGUF_STRING) {
        const uint8_t *s;
        uint64_t n;
        return zm__str(r, &s, &n, "string value");
    }
    if (t != ZM_GGUF_ARRAY) {
        ZM_TRY(zm__need(r, zm__tsize[t], "scalar value"));
        r->pos += zm__tsize[t];
        return ZM_OK;
    }
    if (depth >= ZM__MAX_NEST)
        return zm__err(ZM_ERR_FORMAT, "gguf: key '%s' at byte %llu: arrays nested deeper than %d", key,
                       (unsigned long long)r->pos, ZM__MAX_NEST);
    uint32_t et;
    uint64_t n, at = r->pos;
    ZM_TRY(zm__u32(r, &et, "array element type"));
    ZM_TRY(zm__u64(r, &n, "array length"));
    if (et >= ZM_GGUF_TYPE_COUNT)
        return zm__err(ZM_ERR_FORMAT, "gguf: key '%s' at byte %llu: unknown array element type %u", key,
                       (unsigned long long)at, et);
    /* minimum bytes per element bounds the loop before it runs */
    uint64_t min = et == ZM_GGUF_STRING ? 8 : et == ZM_GGUF_ARRAY ? 12 : zm__tsize[et], tot;
    if (!zm__mul_u64(n, min, &tot) || tot > r->size - r->pos)
        return zm__err(ZM_ERR_FORMAT, "gguf: key '%s' at byte %llu: array length %llu of %s exceeds the %llu bytes left",
                       key, (unsigned long long)at, (unsigned long long)n, zm__tname[et],
                       (unsigned long long)(r->size - r->pos));
    if (et != ZM_GGUF_STRING && et != ZM_GGUF_ARRAY) {
        r->pos += tot;
        return ZM_OK;
    }
    for (uint64_t i = 0; i < n; i++) ZM_TRY(zm__skip_val(r, et, depth + 1, key));
    return ZM_OK;
}

// ---------------------------------------------------------------------------
// parse

static zm_status zm__parse_kv(zm_gguf *g, zm__rd *r, int64_t i, char **np) {
    zm__kv *kv = &g->kv[i];
    const uint8_t *ks;
    uint64_t klen, at = r->pos;
    uint32_t t;
    ZM_TRY(zm__str(r, &ks, &klen, "metadata key"));
    memcpy(*np, ks, klen);
    (*np)[klen] = 0;
    kv->key = *np;
    *np += klen + 1;
    if (memchr(ks, 0, klen))
        return zm__err(ZM_ERR_FORMAT, "gguf: metadata key #%lld at byte %llu contains a NUL byte", (long long)i,
                       (unsigned long long)at);
    ZM_TRY(zm__u32(r, &t, "metadata value type"));
    if (t >= ZM_GGUF_TYPE_COUNT)
        return zm__err(ZM_ERR_FORMAT, "gguf: key '%s' at byte %llu: unknown value type %u", kv->key,
                       (unsigned long long)(r->pos - 4), t);
    kv->type = (zm_gguf_type)t;
    if (t == ZM_GGUF_STRING) {
        ZM_TRY(zm__str(r, &kv->val, &kv->n, "string value"));
    } else if (t == ZM_GGUF_ARRAY) {
        uint64_t a0 = r->pos;
        uint32_t et;
        ZM_TRY(zm__u32(r, &et, "array element type"));
        ZM_TRY(zm__u64(r, &kv->n, "array length"));
        r->pos = a0;
        ZM_TRY(zm__skip_val(r, ZM_GGUF_ARRAY, 0, kv->key));
        kv->elem = (zm_gguf_type)et;
        kv->val = r->b + a0 + 12;
        if (et == ZM_GGUF_STRING && kv->n) {
            /* n <= bytes/8 was checked, so this allocation is bounded by the file */
            kv->str_off = malloc(kv->n * sizeof(uint64_t));
            if (!kv->str_off) return zm__err(ZM_ERR_NOMEM, "gguf: key '%s': offsets of %llu strings", kv->key,
                                            (unsigned long long)kv->n);
            uint64_t o = 0, len;
            for (uint64_t j = 0; j < kv->n; j++) {
                kv->str_off[j] = o;
                memcpy(&len, kv->val + o, 8);
                o += 8 + len; /* validated by zm__skip_val */
            }
        }
    } else {
        ZM_TRY(zm__need(r, zm__tsize[t], "scalar value"));
        kv->val = r->b + r->pos;
        r->pos += zm__tsize[t];
    }
    /* duplicate keys make lookups ambiguous: refuse them */
    uint64_t h = zm__hash(kv->key, klen) & (g->kv_hcap - 1);
    while (g->kv_hash[h]) {
        if (!strcmp(g->kv[g->kv_hash[h] - 1].key, kv->key))
            return zm__err(ZM_ERR_FORMAT, "gguf: duplicated metadata key '%s' at byte %llu", kv->key,
                           (unsigned long long)at);
        h = (h + 1) & (g->kv_hcap - 1);
    }
    g->kv_hash[h] = i + 1;
    return ZM_OK;
}

static zm_status zm__parse_tensor(zm_gguf *g, zm__rd *r, int64_t i, char **np) {
    zm_gguf_tensor *t = &g->t[i];
    const uint8_t *ns;
    uint64_t nlen, at = r->pos;
    uint32_t nd, ty;
    ZM_TRY(zm__str(r, &ns, &nlen, "tensor name"));
    memcpy(*np, ns, nlen);
    (*np)[nlen] = 0;
    t->name = *np;
    *np += nlen + 1;
    if (memchr(ns, 0, nlen))
        return zm__err(ZM_ERR_FORMAT, "gguf: tensor #%lld name at byte %llu contains a NUL byte", (long long)i,
                       (unsigned long long)at);
    ZM_TRY(zm__u32(r, &nd, "tensor n_dims"));
    if (nd < 1 || nd > 4)
        return zm__err(ZM_ERR_FORMAT, "gguf: tensor '%s' at byte %llu: n_dims %u not in 1..4", t->name,
                       (unsigned long long)(r->pos - 4), nd);
    t->ndim = (int)nd;
    int64_t numel = 1;
    for (int d = 0; d < 4; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < nd; d++) {
        uint64_t v;
        ZM_TRY(zm__u64(r, &v, "tensor dim"));
        if (v > (uint64_t)INT64_MAX)
            return zm__err(ZM_ERR_FORMAT, "gguf: tensor '%s' at byte %llu: ne[%u] = %llu is negative/too large",
                           t->name, (unsigned long long)(r->pos - 8), d, (unsigned long long)v);
        t->ne[d] = (int64_t)v;
        if (!zm__mul_i64(numel, t->ne[d], &numel))
            return zm__err(ZM_ERR_FORMAT, "gguf: tensor '%s' at byte %llu: element count overflows at ne[%u]",
                           t->name, (unsigned long long)(r->pos - 8), d);
    }
    ZM_TRY(zm__u32(r, &ty, "tensor type"));
    int dt = zm_dtype_from_ggml(ty);
    if (dt < 0)
        return zm__err(ZM_ERR_FORMAT, "gguf: tensor '%s' at byte %llu: unknown or unsupported ggml type %u",
                       t->name, (unsigned long long)(r->pos - 4), ty);
    t->dtype = (zm_dtype)dt;
    int64_t bs = zm_dtype_block_size(t->dtype), bb = zm_dtype_block_bytes(t->dtype);
    if (t->ne[0] % bs)
        return zm__err(ZM_ERR_FORMAT, "gguf: tensor '%s': row length ne[0] = %lld is not a multiple of %s's block %lld",
                       t->name, (long long)t->ne[0], zm_dtype_name(t->dtype), (long long)bs);
    uint64_t nb;
    if (!zm__mul_u64((uint64_t)(numel / bs), (uint64_t)bb, &nb))
        return zm__err(ZM_ERR_FORMAT, "gguf: tensor '%s': byte size overflows", t->name);
    t->nbytes = nb;
    ZM_TRY(zm__u64(r, &t->offset, "tensor offset"));
    /* duplicate names would make lookups ambiguous */
    uint64_t h = zm__hash(t->name, nlen) & (g->t_hcap - 1);
    while (g->t_hash[h]) {
        if (!strcmp(g->t[g->t_hash[h] - 1].name, t->name))
            return zm__err(ZM_ERR_FORMAT, "gguf: duplicated tensor name '%s' at byte %llu", t->name,
                           (unsigned long long)at);
        h = (h + 1) & (g->t_hcap - 1);
    }
    g->t_hash[h] = i + 1;
    return ZM_OK;
}

static uint64_t zm__pow2_at_least(uint64_t n) {
    uint64_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

static zm_status zm__parse(zm_gguf *g) {
    zm__rd r = {g->base, g->size, 0};
    uint32_t ver;
    uint64_t nt, nkv;
    ZM_TRY(zm__need(&r, 4, "magic"));
    if (memcmp(r.b, "GGUF", 4))
        return zm__err(ZM_ERR_FORMAT, "gguf: bad magic at byte 0: %02x %02x %02x %02x, expected 'GGUF'",
                       r.b[0], r.b[1], r.b[2], r.b[3]);
    r.pos = 4;
    ZM_TRY(zm__u32(&r, &ver, "version"));
    if (ver == 1 || ver == 2)
        return zm__err(ZM_ERR_FORMAT, "gguf: version %u at byte 4 is not supported (only GGUF v3; re-convert the model with a current llama.cpp)", ver);
    if (ver != 3)
        return zm__err(ZM_ERR_FORMAT, "gguf: unknown version %u at byte 4 (only 3 is supported)", ver);
    g->version = ver;
    ZM_TRY(zm__u64(&r, &nt, "tensor count"));
    ZM_TRY(zm__u64(&r, &nkv, "metadata count"));
    /* Each metadata pair takes >= 13 bytes and each tensor info >= 32: bound
     * the counts by what is left so allocations stay within the file size. */
    uint64_t left = r.size - r.pos;
    if (nkv > left / 13)
        return zm__err(ZM_ERR_FORMAT, "gguf: metadata count %llu at byte 16 cannot fit in the %llu bytes left",
                       (unsigned long long)nkv, (unsigned long long)left);
    if (nt > left / 32)
        return zm__err(ZM_ERR_FORMAT, "gguf: tensor count %llu at byte 8 cannot fit in the %llu bytes left",
                       (unsigned long long)nt, (unsigned long long)left);
    g->n_kv = (int64_t)nkv;
    g->n_t = (int64_t)nt;
    g->kv = calloc(nkv ? nkv : 1, sizeof *g->kv);
    g->t = calloc(nt ? nt : 1, sizeof *g->t);
    g->kv_hcap = zm__pow2_at_least(2 * nkv);
    g->t_hcap = zm__pow2_at_least(2 * nt);
    g->kv_hash = calloc(g->kv_hcap, sizeof(int64_t));
    g->t_hash = calloc(g->t_hcap, sizeof(int64_t));
    /* names are at most as long as the file, plus one NUL each */
    g->names = malloc(r.size + nkv + nt + 1);
    if (!g->kv || !g->t || !g->kv_hash || !g->t_hash || !g->names)
        return zm__err(ZM_ERR_NOMEM, "gguf: tables for %llu keys and %llu tensors", (unsigned long long)nkv,
                       (unsigned long long)nt);
    char *np = g->names;
    for (int64_t i = 0; i < g->n_kv; i++) ZM_TRY(zm__parse_kv(g, &r, i, &np));
    g->alignment = 32;
    int64_t ai = zm_gguf_find_key(g, "general.alignment");
    if (ai >= 0) {
        const zm__kv *a = &g->kv[ai];
        if (a->type != ZM_GGUF_U32)
            return zm__err(ZM_ERR_FORMAT, "gguf: general.alignment has type %s, expected u32", zm__tname[a->type]);
        uint32_t al;
        memcpy(&al, a->val, 4);
        if (al == 0 || (al & (al - 1)))
            return zm__err(ZM_ERR_FORMAT, "gguf: general.alignment = %u at byte %llu is not a power of two", al,
                           (unsigned long long)(a->val - g->base));
        g->alignment = al;
    }
    for (int64_t i = 0; i < g->n_t; i++) ZM_TRY(zm__parse_tensor(g, &r, i, &np));
    uint64_t pad = (g->alignment - r.pos % g->alignment) % g->alignment;
    g->data_off = r.pos + pad;
    for (int64_t i = 0; i < g->n_t; i++) {
        zm_gguf_tensor *t = &g->t[i];
        uint64_t end;
        if (t->offset % g->alignment)
            return zm__err(ZM_ERR_FORMAT, "gguf: tensor '%s': offset %llu is not a multiple of the alignment %u",
                           t->name, (unsigned long long)t->offset, g->alignment);
        if (!zm__add_u64(g->data_off, t->offset, &end) || !zm__add_u64(end, t->nbytes, &end) || end > g->size)
            return zm__err(ZM_ERR_FORMAT, "gguf: tensor '%s': data at file byte %llu + offset %llu, %llu bytes, runs past the end of the file (%llu bytes)",
                           t->name, (unsigned long long)g->data_off, (unsigned long long)t->offset,
                           (unsigned long long)t->nbytes, (unsigned long long)g->size);
        t->data = g->base + g->data_off + t->offset;
    }
    return ZM_OK;
}

// ---------------------------------------------------------------------------
// open / free

static zm_status zm__open_common(zm_gguf **out, const uint8_t *buf, uint64_t len, int mapped) {
    zm_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        if (mapped) munmap((void *)buf, len);
        return zm__err(ZM_ERR_NOMEM, "gguf: handle");
    }
    g->base = buf;
    g->size = len;
    g->mapped = mapped;
    zm_status s = zm__parse(g);
    if (s != ZM_OK) {
        zm_gguf_free(g);
        return s;
    }
    *out = g;
    return ZM_OK;
}

zm_status zm_gguf_open_mem(zm_gguf **out, const void *buf, size_t len) {
    if (!out) return zm__err(ZM_ERR_INVALID, "zm_gguf_open_mem: out is NULL");
    *out = NULL;
    if (!buf && len) return zm__err(ZM_ERR_INVALID, "zm_gguf_open_mem: buf is NULL");
    return zm__open_common(out, buf ? buf : (const void *)"", len, 0);
}

zm_status zm_gguf_open(zm_gguf **out, const char *path) {
    if (!out) return zm__err(ZM_ERR_INVALID, "zm_gguf_open: out is NULL");
    *out = NULL;
    if (!path) return zm__err(ZM_ERR_INVALID, "zm_gguf_open: path is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return zm__err(ZM_ERR_IO, "gguf: cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return zm__err(ZM_ERR_IO, "gguf: '%s' is not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return zm__err(ZM_ERR_FORMAT, "gguf: '%s' is empty", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return zm__err(ZM_ERR_IO, "gguf: cannot mmap '%s': %s", path, strerror(errno));
    zm_status s = zm__open_common(out, p, (uint64_t)st.st_size, 1);
    if (s != ZM_OK) return zm__err_ctx(s, "%s", path);
    return ZM_OK;
}

void zm_gguf_free(zm_gguf *g) {
    if (!g) return;
    if (g->kv)
        for (int64_t i = 0; i < g->n_kv; i++) free(g->kv[i].str_off);
    free(g->kv);
    free(g->t);
    free(g->kv_hash);
    free(g->t_hash);
    free(g->names);
    if (g->mapped) munmap((void *)g->base, g->size);
    free(g);
}

// ---------------------------------------------------------------------------
// queries

uint32_t zm_gguf_version(const zm_gguf *g) { return g ? g->version : 0; }
uint64_t zm_gguf_file_size(const zm_gguf *g) { return g ? g->size : 0; }
uint32_t zm_gguf_alignment(const zm_gguf *g) { return g ? g->alignment : 0; }
uint64_t zm_gguf_data_offset(const zm_gguf *g) { return g ? g->data_off : 0; }
int64_t zm_gguf_n_kv(const zm_gguf *g) { return g ? g->n_kv : 0; }
int64_t zm_gguf_n_tensors(const zm_gguf *g) { return g ? g->n_t : 0; }
const char *zm_gguf_key(const zm_gguf *g, int64_t i) {
    return g && i >= 0 && i < g->n_kv ? g->kv[i].key : NULL;
}
zm_gguf_type zm_gguf_kv_type(const zm_gguf *g, int64_t i) {
    return g && i >= 0 && i < g->n_kv ? g->kv[i].type : ZM_GGUF_TYPE_COUNT;
}
const char *zm_gguf_type_name(zm_gguf_type t) {
    return (int)t >= 0 && t < ZM_GGUF_TYPE_COUNT ? zm__tname[t] : "?";
}

int64_t zm_gguf_find_key(const zm_gguf *g, const char *key) {
    if (!g || !key || !g->kv_hash) return -1;
    uint64_t h = zm__hash(key, strlen(key)) & (g->kv_hcap - 1);
    while (g->kv_hash[h]) {
        int64_t i = g->kv_hash[h] - 1;
        if (!strcmp(g->kv[i].key, key)) return i;
        h = (h + 1) & (g->kv_hcap - 1);
    }
    return -1;
}

int64_t zm_gguf_find_tensor(const zm_gguf *g, const char *name) {
    if (!g || !name || !g->t_hash) return -1;
    uint64_t h = zm__hash(name, strlen(name)) & (g->t_hcap - 1);
    while (g->t_hash[h]) {
        int64_t i = g->t_hash[h] - 1;
        if (!strcmp(g->t[i].name, name)) return i;
        h = (h + 1) & (g->t_hcap - 1);
    }
    return -1;
}

zm_status zm_gguf_tensor_info(const zm_gguf *g, int64_t i, zm_gguf_tensor *out) {
    if (!g || !out) return zm__err(ZM_ERR_INVALID, "zm_gguf_tensor_info: NULL argument");
    if (i < 0 || i >= g->n_t)
        return zm__err(ZM_ERR_RANGE, "gguf: tensor index %lld not in [0, %lld)", (long long)i, (long long)g->n_t);
    *out = g->t[i];
    return ZM_OK;
}

zm_status zm_gguf_expect_tensor(const zm_gguf *g, const char *name, int ndim, const int64_t *ne,
                                zm_gguf_tensor *out) {
    if (!g || !name || (ndim && !ne)) return zm__err(ZM_ERR_INVALID, "zm_gguf_expect_tensor: NULL argument");
    int64_t i = zm_gguf_find_tensor(g, name);
    if (i < 0) return zm__err(ZM_ERR_NOT_FOUND, "gguf: tensor '%s' is missing", name);
    const zm_gguf_tensor *t = &g->t[i];
    int bad = ndim < 1 || ndim > 4;
    for (int d = 0; d < 4 && !bad; d++) bad = t->ne[d] != (d < ndim ? ne[d] : 1);
    if (bad) {
        char want[96] = "", got[96] = "";
        for (int d = 0; d < ndim && d < 4; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? ", " : "", (long long)ne[d]);
        for (int d = 0; d < t->ndim; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "", (long long)t->ne[d]);
        return zm__err(ZM_ERR_SHAPE, "gguf: tensor '%s' has shape [%s], expected [%s] (ggml order)", name, got, want);
    }
    if (out) *out = *t;
    return ZM_OK;
}

// ---------------------------------------------------------------------------
// typed getters

static zm_status zm__kv_get(const zm_gguf *g, const char *key, const zm__kv **kv) {
    if (!g || !key) return zm__err(ZM_ERR_INVALID, "gguf getter: NULL argument");
    int64_t i = zm_gguf_find_key(g, key);
    if (i < 0) return zm__err(ZM_ERR_NOT_FOUND, "gguf: key '%s' not found", key);
    *kv = &g->kv[i];
    return ZM_OK;
}

/* An integer-typed value at p as int64 (u64 > INT64_MAX -> range error). */
static int zm__int_at(zm_gguf_type t, const uint8_t *p, int64_t *v, uint64_t *uv, int *is_u64) {
    *is_u64 = 0;
    switch (t) {
    case ZM_GGUF_U8: *v = *p; return 1;
    case ZM_GGUF_I8: *v = (int8_t)*p; return 1;
    case ZM_GGUF_U16: { uint16_t x; memcpy(&x, p, 2); *v = x; return 1; }
    case ZM_GGUF_I16: { int16_t x; memcpy(&x, p, 2); *v = x; return 1; }
    case ZM_GGUF_U32: { uint32_t x; memcpy(&x, p, 4); *v = x; return 1; }
    case ZM_GGUF_I32: { int32_t x; memcpy(&x, p, 4); *v = x; return 1; }
    case ZM_GGUF_I64: memcpy(v, p, 8); return 1;
    case ZM_GGUF_U64: memcpy(uv, p, 8); *is_u64 = 1; *v = *uv <= (uint64_t)INT64_MAX ? (int64_t)*uv : -1; return 1;
    default: return 0;
    }
}

zm_status zm_gguf_get_i64(const zm_gguf *g, const char *key, int64_t *out) {
    const zm__kv *kv = NULL;
    ZM_TRY(zm__kv_get(g, key, &kv));
    int64_t v = 0;
    uint64_t uv = 0;
    int u;
    if (!zm__int_at(kv->type, kv->val, &v, &uv, &u))
        return zm__err(ZM_ERR_FORMAT, "gguf: key '%s' has type %s, expected an integer", key, zm__tname[kv->type]);
    if (u && uv > (uint64_t)INT64_MAX)
        return zm__err(ZM_ERR_RANGE, "gguf: key '%s' = %llu does not fit in int64", key, (unsigned long long)uv);
    if (out) *out = v;
    return ZM_OK;
}

zm_status zm_gguf_get_u32(const zm_gguf *g, const char *key, uint32_t *out) {
    int64_t v = 0;
    ZM_TRY(zm_gguf_get_i64(g, key, &v));
    if (v < 0 || v > (int64_t)UINT32_MAX)
        return zm__err(ZM_ERR_RANGE, "gguf: key '%s' = %lld does not fit in u32", key, (long long)v);
    if (out) *out = (uint32_t)v;
    return ZM_OK;
}

zm_status zm_gguf_get_f32(const zm_gguf *g, const char *key, float *out) {
    const zm__kv *kv = NULL;
    ZM_TRY(zm__kv_get(g, key, &kv));
    float f;
    double d;
    if (kv->type == ZM_GGUF_F32) memcpy(&f, kv->val, 4);
    else if (kv->type == ZM_GGUF_F64) { memcpy(&d, kv->val, 8); f = (float)d; }
    else return zm__err(ZM_ERR_FORMAT, "gguf: key '%s' has type %s, expected f32", key, zm__tname[kv->type]);
    if (out) *out = f;
    return ZM_OK;
}

zm_status zm_gguf_get_bool(const zm_gguf *g, const char *key, int *out) {
    const zm__kv *kv = NULL;
    ZM_TRY(zm__kv_get(g, key, &kv));
    if (kv->type != ZM_GGUF_BOOL)
        return zm__err(ZM_ERR_FORMAT, "gguf: key '%s' has type %s, expected bool", key, zm__tname[kv->type]);
    if (out) *out = kv->val[0] != 0;
    return ZM_OK;
}

zm_status zm_gguf_get_str(const zm_gguf *g, const char *key, const char **s, uint64_t *len) {
    const zm__kv *kv = NULL;
    ZM_TRY(zm__kv_get(g, key, &kv));
    if (kv->type != ZM_GGUF_STRING)
        return zm__err(ZM_ERR_FORMAT, "gguf: key '%s' has type %s, expected string", key, zm__tname[kv->type]);
    if (s) *s = (const char *)kv->val;
    if (len) *len = kv->n;
    return ZM_OK;
}

zm_status zm_gguf_get_arr(const zm_gguf *g, const char *key, zm_gguf_type *elem, uint64_t *n) {
    const zm__kv *kv = NULL;
    ZM_TRY(zm__kv_get(g, key, &kv));
    if (kv->type != ZM_GGUF_ARRAY)
        return zm__err(ZM_ERR_FORMAT, "gguf: key '%s' has type %s, expected array", key, zm__tname[kv->type]);
    if (elem) *elem = kv->elem;
    if (n) *n = kv->n;
    return ZM_OK;
}

static zm_status zm__arr_range(const zm_gguf *g, const char *key, uint64_t i, uint64_t n, const zm__kv **kv) {
    ZM_TRY(zm_gguf_get_arr(g, key, NULL, NULL));
    ZM_TRY(zm__kv_get(g, key, kv));
    if (i > (*kv)->n || n > (*kv)->n - i)
        return zm__err(ZM_ERR_RANGE, "gguf: key '%s': elements [%llu, +%llu) outside the array of %llu", key,
                       (unsigned long long)i, (unsigned long long)n, (unsigned long long)(*kv)->n);
    return ZM_OK;
}

zm_status zm_gguf_get_arr_str(const zm_gguf *g, const char *key, uint64_t i, const char **s, uint64_t *len) {
    const zm__kv *kv = NULL;
    ZM_TRY(zm__arr_range(g, key, i, 1, &kv));
    if (kv->elem != ZM_GGUF_STRING)
        return zm__err(ZM_ERR_FORMAT, "gguf: key '%s' is an array of %s, expected strings", key, zm__tname[kv->elem]);
    uint64_t l;
    memcpy(&l, kv->val + kv->str_off[i], 8);
    if (s) *s = (const char *)kv->val + kv->str_off[i] + 8;
    if (len) *len = l;
    return ZM_OK;
}

zm_status zm_gguf_get_arr_i64(const zm_gguf *g, const char *key, uint64_t i, uint64_t n, int64_t *out) {
    const zm__kv *kv = NULL;
    ZM_TRY(zm__arr_range(g, key, i, n, &kv));
    uint64_t es = zm__tsize[kv->elem];
    if (kv->elem == ZM_GGUF_BOOL || !es || kv->elem == ZM_GGUF_F32 || kv->elem == ZM_GGUF_F64)
        return zm__err(ZM_ERR_FORMAT, "gguf: key '%s' is an array of %s, expected integers", key, zm__tname[kv->elem]);
    for (uint64_t j = 0; j < n; j++) {
        int64_t v = 0;
        uint64_t uv = 0;
        int u;
        zm__int_at(kv->elem, kv->val + (i + j) * es, &v, &uv, &u);
        if (u && uv > (uint64_t)INT64_MAX)
            return zm__err(ZM_ERR_RANGE, "gguf: key '%s'[%llu] = %llu does not fit in int64", key,
                           (unsigned long long)(i + j), (unsigned long long)uv);
        out[j] = v;
    }
    return ZM_OK;
}

zm_status zm_gguf_get_arr_f64(const zm_gguf *g, const char *key, uint64_t i, uint64_t n, double *out) {
    const zm__kv *kv = NULL;
    ZM_TRY(zm__arr_range(g, key, i, n, &kv));
    uint64_t es = zm__tsize[kv->elem];
    if (!es) return zm__err(ZM_ERR_FORMAT, "gguf: key '%s' is an array of %s, expected numbers", key, zm__tname[kv->elem]);
    for (uint64_t j = 0; j < n; j++) {
        const uint8_t *p = kv->val + (i + j) * es;
        int64_t v = 0;
        uint64_t uv = 0;
        int u;
        if (kv->elem == ZM_GGUF_F32) { float f; memcpy(&f, p, 4); out[j] = f; }
        else if (kv->elem == ZM_GGUF_F64) memcpy(&out[j], p, 8);
        else if (kv->elem == ZM_GGUF_BOOL) out[j] = *p != 0;
        else { zm__int_at(kv->elem, p, &v, &uv, &u); out[j] = u ? (double)uv : (double)v; }
    }
    return ZM_OK;
}

// ---------------------------------------------------------------------------
// text form of a value (for `zmlx info`)

static int zm__scalar_str(zm_gguf_type t, const uint8_t *p, char *buf, size_t cap) {
    int64_t v = 0;
    uint64_t uv = 0;
    int u;
    if (t == ZM_GGUF_F32) { float f; memcpy(&f, p, 4); return snprintf(buf, cap, "%.9g", f); }
    if (t == ZM_GGUF_F64) { double d; memcpy(&d, p, 8); return snprintf(buf, cap, "%.17g", d); }
    if (t == ZM_GGUF_BOOL) return snprintf(buf, cap, "%s", *p ? "true" : "false");
    zm__int_at(t, p, &v, &uv, &u);
    return u ? snprintf(buf, cap, "%llu", (unsigned long long)uv) : snprintf(buf, cap, "%lld", (long long)v);
}

static void zm__quoted(char *buf, size_t cap, const uint8_t *s, uint64_t n, uint64_t maxn) {
    size_t o = 0;
    if (cap < 8) { if (cap) buf[0] = 0; return; }
    buf[o++] = '"';
    for (uint64_t i = 0; i < n && i < maxn && o + 6 < cap; i++) {
        uint8_t c = s[i];
        if (c == '"' || c == '\\') { buf[o++] = '\\'; buf[o++] = (char)c; }
        else if (c < 0x20 || c == 0x7f) o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
        else buf[o++] = (char)c;
    }
    if (n > maxn && o + 4 < cap) { memcpy(buf + o, "...", 3); o += 3; }
    buf[o++] = '"';
    buf[o] = 0;
}

int zm_gguf_kv_to_str(const zm_gguf *g, int64_t i, char *buf, size_t cap) {
    if (!buf || !cap) return 0;
    buf[0] = 0;
    if (!g || i < 0 || i >= g->n_kv) return 0;
    const zm__kv *kv = &g->kv[i];
    if (kv->type == ZM_GGUF_STRING) { zm__quoted(buf, cap, kv->val, kv->n, 120); return (int)strlen(buf); }
    if (kv->type != ZM_GGUF_ARRAY) return zm__scalar_str(kv->type, kv->val, buf, cap);
    size_t o = (size_t)snprintf(buf, cap, "[%s x %llu] ", zm__tname[kv->elem], (unsigned long long)kv->n);
    for (uint64_t j = 0; j < kv->n && j < 8 && o + 40 < cap; j++) {
        if (kv->elem == ZM_GGUF_STRING) {
            uint64_t l;
            memcpy(&l, kv->val + kv->str_off[j], 8);
            zm__quoted(buf + o, cap - o > 40 ? 40 : cap - o, kv->val + kv->str_off[j] + 8, l, 24);
        } else if (kv->elem == ZM_GGUF_ARRAY) {
            snprintf(buf + o, cap - o, "[...]");
            j = kv->n; /* nested: not expanded */
        } else {
            zm__scalar_str(kv->elem, kv->val + j * zm__tsize[kv->elem], buf + o, cap - o);
        }
        o = strlen(buf);
        if (j + 1 < kv->n && o + 2 < cap) { buf[o++] = ' '; buf[o] = 0; }
    }
    if (kv->n > 8 && o + 4 < cap) strcat(buf, "...");
    return (int)strlen(buf);
}
