/* GGUF v3 writer. Metadata and tensor infos are kept in memory (small); the
 * data section is streamed: each tensor's bytes come either from a copy made
 * at zm_gguf_add_tensor or from the fill callback at write time, one tensor
 * at a time, so a 30B-parameter model is never held in memory. The file is
 * written to a temporary name next to the target and renamed when complete,
 * so a reader never sees half a file. Layout as ggml's gguf.cpp writes it
 * (alignment padding after the infos and after every tensor).
 * Tested by build/tests/test_gguf (write -> read round trip). */
#include "core/internal.h"
#include "zmlx/gguf.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// ---------------------------------------------------------------------------
typedef struct {
    char *key;
    uint8_t *bytes; /* type id + value, serialized as in the file */
    size_t len;
} zm__wkv;

typedef struct {
    char *name;
    zm_dtype dtype;
    int ndim;
    int64_t ne[4];
    uint64_t nbytes, offset;
    void *data; /* owned copy, or NULL = from the fill callback */
} zm__wt;

struct zm_gguf_writer {
    zm__wkv *kv;
    int64_t n_kv, cap_kv;
    zm__wt *t;
    int64_t n_t, cap_t;
};

static const uint64_t zm__wsize[ZM_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
#define ZM__GGML_MAX_NAME 64 /* ggml keeps tensor names in char[64] */

// ---------------------------------------------------------------------------
// byte buffers

typedef struct {
    uint8_t *p;
    size_t len, cap;
    int oom;
} zm__buf;

static void zm__put(zm__buf *b, const void *src, size_t n) {
    if (b->oom) return;
    if (b->len + n > b->cap) {
        size_t c = b->cap ? b->cap : 64;
        while (c < b->len + n) c *= 2;
        uint8_t *q = realloc(b->p, c);
        if (!q) { b->oom = 1; return; }
        b->p = q;
        b->cap = c;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}
static void zm__put_u32(zm__buf *b, uint32_t v) { zm__put(b, &v, 4); }
static void zm__put_u64(zm__buf *b, uint64_t v) { zm__put(b, &v, 8); }
static void zm__put_str(zm__buf *b, const char *s) {
    size_t n = strlen(s);
    zm__put_u64(b, n);
    zm__put(b, s, n);
}

// ---------------------------------------------------------------------------
// metadata

zm_status zm_gguf_writer_new(zm_gguf_writer **out) {
    if (!out) return zm__err(ZM_ERR_INVALID, "zm_gguf_writer_new: out is NULL");
    *out = calloc(1, sizeof **out);
    return *out ? ZM_OK : zm__err(ZM_ERR_NOMEM, "gguf writer");
}

void zm_gguf_writer_free(zm_gguf_writer *w) {
    if (!w) return;
    for (int64_t i = 0; i < w->n_kv; i++) { free(w->kv[i].key); free(w->kv[i].bytes); }
    for (int64_t i = 0; i < w->n_t; i++) { free(w->t[i].name); free(w->t[i].data); }
    free(w->kv);
    free(w->t);
    free(w);
}

/* Store (or replace, as ggml's gguf_set_* does) key's serialized value. */
static zm_status zm__set(zm_gguf_writer *w, const char *key, zm__buf *b) {
    if (b->oom) { free(b->p); return zm__err(ZM_ERR_NOMEM, "gguf writer: value of '%s'", key); }
    for (int64_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) {
            free(w->kv[i].bytes);
            w->kv[i].bytes = b->p;
            w->kv[i].len = b->len;
            return ZM_OK;
        }
    if (w->n_kv == w->cap_kv) {
        int64_t c = w->cap_kv ? 2 * w->cap_kv : 32;
        zm__wkv *q = realloc(w->kv, (size_t)c * sizeof *q);
        if (!q) { free(b->p); return zm__err(ZM_ERR_NOMEM, "gguf writer: metadata table"); }
        w->kv = q;
        w->cap_kv = c;
    }
    char *k = strdup(key);
    if (!k) { free(b->p); return zm__err(ZM_ERR_NOMEM, "gguf writer: key"); }
    w->kv[w->n_kv++] = (zm__wkv){k, b->p, b->len};
    return ZM_OK;
}

static zm_status zm__check_w(zm_gguf_writer *w, const char *key) {
    if (!w || !key) return zm__err(ZM_ERR_INVALID, "gguf writer: NULL writer or key");
    if (!*key) return zm__err(ZM_ERR_INVALID, "gguf writer: empty key");
    return ZM_OK;
}

zm_status zm_gguf_set_val(zm_gguf_writer *w, const char *key, zm_gguf_type t, const void *data) {
    ZM_TRY(zm__check_w(w, key));
    if ((int)t < 0 || t >= ZM_GGUF_TYPE_COUNT || !zm__wsize[t] || !data)
        return zm__err(ZM_ERR_INVALID, "gguf writer: key '%s': zm_gguf_set_val takes a scalar type and data", key);
    zm__buf b = {0};
    zm__put_u32(&b, (uint32_t)t);
    if (t == ZM_GGUF_BOOL) {
        uint8_t v = *(const uint8_t *)data != 0;
        zm__put(&b, &v, 1);
    } else {
        zm__put(&b, data, zm__wsize[t]);
    }
    return zm__set(w, key, &b);
}

zm_status zm_gguf_set_u32(zm_gguf_writer *w, const char *key, uint32_t v) { return zm_gguf_set_val(w, key, ZM_GGUF_U32, &v); }
zm_status zm_gguf_set_i32(zm_gguf_writer *w, const char *key, int32_t v) { return zm_gguf_set_val(w, key, ZM_GGUF_I32, &v); }
zm_status zm_gguf_set_u64(zm_gguf_writer *w, const char *key, uint64_t v) { return zm_gguf_set_val(w, key, ZM_GGUF_U64, &v); }
zm_status zm_gguf_set_f32(zm_gguf_writer *w, const char *key, float v) { return zm_gguf_set_val(w, key, ZM_GGUF_F32, &v); }
zm_status zm_gguf_set_bool(zm_gguf_writer *w, const char *key, int v) {
    uint8_t b = v != 0;
    return zm_gguf_set_val(w, key, ZM_GGUF_BOOL, &b);
}

zm_status zm_gguf_set_str(zm_gguf_writer *w, const char *key, const char *v) {
    ZM_TRY(zm__check_w(w, key));
    if (!v) return zm__err(ZM_ERR_INVALID, "gguf writer: key '%s': NULL string", key);
    zm__buf b = {0};
    zm__put_u32(&b, ZM_GGUF_STRING);
    zm__put_str(&b, v);
    return zm__set(w, key, &b);
}

zm_status zm_gguf_set_arr(zm_gguf_writer *w, const char *key, zm_gguf_type t, const void *data, uint64_t n) {
    ZM_TRY(zm__check_w(w, key));
    if ((int)t < 0 || t >= ZM_GGUF_TYPE_COUNT || !zm__wsize[t] || (n && !data))
        return zm__err(ZM_ERR_INVALID, "gguf writer: key '%s': zm_gguf_set_arr takes a numeric element type and data (strings: zm_gguf_set_arr_str)", key);
    uint64_t nb;
    if (!zm__mul_u64(n, zm__wsize[t], &nb) || nb > SIZE_MAX / 2)
        return zm__err(ZM_ERR_RANGE, "gguf writer: key '%s': array of %llu elements is too large", key, (unsigned long long)n);
    zm__buf b = {0};
    zm__put_u32(&b, ZM_GGUF_ARRAY);
    zm__put_u32(&b, (uint32_t)t);
    zm__put_u64(&b, n);
    if (t == ZM_GGUF_BOOL) {
        for (uint64_t i = 0; i < n; i++) {
            uint8_t v = ((const uint8_t *)data)[i] != 0;
            zm__put(&b, &v, 1);
        }
    } else if (n) {
        zm__put(&b, data, (size_t)nb);
    }
    return zm__set(w, key, &b);
}

zm_status zm_gguf_set_arr_str(zm_gguf_writer *w, const char *key, const char *const *v, uint64_t n) {
    ZM_TRY(zm__check_w(w, key));
    if (n && !v) return zm__err(ZM_ERR_INVALID, "gguf writer: key '%s': NULL string array", key);
    zm__buf b = {0};
    zm__put_u32(&b, ZM_GGUF_ARRAY);
    zm__put_u32(&b, ZM_GGUF_STRING);
    zm__put_u64(&b, n);
    for (uint64_t i = 0; i < n; i++) {
        if (!v[i]) { free(b.p); return zm__err(ZM_ERR_INVALID, "gguf writer: key '%s': string %llu is NULL", key, (unsigned long long)i); }
        zm__put_str(&b, v[i]);
    }
    return zm__set(w, key, &b);
}

// ---------------------------------------------------------------------------
// tensors

zm_status zm_gguf_add_tensor(zm_gguf_writer *w, const char *name, zm_dtype t, int ndim, const int64_t *ne,
                             const void *data) {
    if (!w || !name || !ne) return zm__err(ZM_ERR_INVALID, "zm_gguf_add_tensor: NULL argument");
    size_t nl = strlen(name);
    if (!nl || nl >= ZM__GGML_MAX_NAME)
        return zm__err(ZM_ERR_INVALID, "gguf writer: tensor name '%s' must have 1..%d characters", name, ZM__GGML_MAX_NAME - 1);
    if (ndim < 1 || ndim > 4) return zm__err(ZM_ERR_INVALID, "gguf writer: tensor '%s': ndim %d not in 1..4", name, ndim);
    if ((int)t < 0 || t >= ZM_DTYPE_COUNT || zm_dtype_to_ggml(t) < 0)
        return zm__err(ZM_ERR_DTYPE, "gguf writer: tensor '%s': dtype %s has no ggml type", name, zm_dtype_name(t));
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++)
        if (ne[d] < 0 || !zm__mul_i64(numel, ne[d], &numel))
            return zm__err(ZM_ERR_RANGE, "gguf writer: tensor '%s': bad or overflowing ne[%d] = %lld", name, d, (long long)ne[d]);
    int64_t bs = zm_dtype_block_size(t);
    if (ne[0] % bs)
        return zm__err(ZM_ERR_SHAPE, "gguf writer: tensor '%s': row length %lld is not a multiple of %s's block %lld", name,
                       (long long)ne[0], zm_dtype_name(t), (long long)bs);
    uint64_t nbytes;
    if (!zm__mul_u64((uint64_t)(numel / bs), (uint64_t)zm_dtype_block_bytes(t), &nbytes))
        return zm__err(ZM_ERR_RANGE, "gguf writer: tensor '%s': byte size overflows", name);
    for (int64_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name)) return zm__err(ZM_ERR_INVALID, "gguf writer: duplicated tensor name '%s'", name);
    if (w->n_t == w->cap_t) {
        int64_t c = w->cap_t ? 2 * w->cap_t : 64;
        zm__wt *q = realloc(w->t, (size_t)c * sizeof *q);
        if (!q) return zm__err(ZM_ERR_NOMEM, "gguf writer: tensor table");
        w->t = q;
        w->cap_t = c;
    }
    zm__wt e = {0};
    e.name = strdup(name);
    e.dtype = t;
    e.ndim = ndim;
    for (int d = 0; d < 4; d++) e.ne[d] = d < ndim ? ne[d] : 1;
    e.nbytes = nbytes;
    if (data) {
        e.data = malloc(nbytes ? (size_t)nbytes : 1);
        if (e.data) memcpy(e.data, data, (size_t)nbytes);
    }
    if (!e.name || (data && !e.data)) {
        free(e.name);
        free(e.data);
        return zm__err(ZM_ERR_NOMEM, "gguf writer: tensor '%s' (%llu bytes)", name, (unsigned long long)nbytes);
    }
    w->t[w->n_t++] = e;
    return ZM_OK;
}

// ---------------------------------------------------------------------------
// write

static zm_status zm__fwrite(FILE *f, const void *p, size_t n, const char *tmp) {
    if (n && fwrite(p, 1, n, f) != n)
        return zm__err(ZM_ERR_IO, "gguf writer: writing '%s': %s", tmp, strerror(errno));
    return ZM_OK;
}

static zm_status zm__pad(FILE *f, uint64_t pos, uint32_t align, const char *tmp) {
    static const uint8_t zeros[256];
    uint64_t pad = (align - pos % align) % align;
    while (pad) {
        size_t k = pad > sizeof zeros ? sizeof zeros : (size_t)pad;
        ZM_TRY(zm__fwrite(f, zeros, k, tmp));
        pad -= k;
    }
    return ZM_OK;
}

static zm_status zm__alignment(const zm_gguf_writer *w, uint32_t *al) {
    *al = 32;
    for (int64_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment")) continue;
        uint32_t ty, v;
        memcpy(&ty, w->kv[i].bytes, 4);
        if (ty != ZM_GGUF_U32) return zm__err(ZM_ERR_INVALID, "gguf writer: general.alignment must be u32");
        memcpy(&v, w->kv[i].bytes + 4, 4);
        if (!v || (v & (v - 1))) return zm__err(ZM_ERR_INVALID, "gguf writer: general.alignment %u is not a power of two", v);
        *al = v;
    }
    return ZM_OK;
}

static zm_status zm__write_body(zm_gguf_writer *w, FILE *f, const char *tmp, uint32_t al, zm_gguf_fill_fn fill,
                                void *ctx, void (*progress)(void *, uint64_t, uint64_t)) {
    zm__buf h = {0};
    zm__put(&h, "GGUF", 4);
    zm__put_u32(&h, 3);
    zm__put_u64(&h, (uint64_t)w->n_t);
    zm__put_u64(&h, (uint64_t)w->n_kv);
    for (int64_t i = 0; i < w->n_kv; i++) {
        zm__put_str(&h, w->kv[i].key);
        zm__put(&h, w->kv[i].bytes, w->kv[i].len);
    }
    uint64_t off = 0, total = 0, maxfill = 0;
    for (int64_t i = 0; i < w->n_t; i++) {
        zm__wt *t = &w->t[i];
        zm__put_str(&h, t->name);
        zm__put_u32(&h, (uint32_t)t->ndim);
        for (int d = 0; d < t->ndim; d++) zm__put_u64(&h, (uint64_t)t->ne[d]);
        zm__put_u32(&h, (uint32_t)zm_dtype_to_ggml(t->dtype));
        zm__put_u64(&h, off);
        t->offset = off;
        off += t->nbytes + (al - t->nbytes % al) % al;
        total += t->nbytes;
        if (!t->data && t->nbytes > maxfill) maxfill = t->nbytes;
    }
    if (h.oom) { free(h.p); return zm__err(ZM_ERR_NOMEM, "gguf writer: header"); }
    zm_status s = zm__fwrite(f, h.p, h.len, tmp);
    if (s == ZM_OK) s = zm__pad(f, h.len, al, tmp);
    free(h.p);
    ZM_TRY(s);
    void *buf = NULL;
    if (maxfill && !(buf = zm__alloc_aligned((size_t)maxfill)))
        return zm__err(ZM_ERR_NOMEM, "gguf writer: %llu-byte tensor buffer", (unsigned long long)maxfill);
    uint64_t done = 0;
    for (int64_t i = 0; i < w->n_t && s == ZM_OK; i++) {
        zm__wt *t = &w->t[i];
        const void *src = t->data;
        if (!src) {
            s = fill(ctx, i, buf, t->nbytes);
            if (s != ZM_OK) { s = zm__err_ctx(s, "gguf writer: filling tensor '%s'", t->name); break; }
            src = buf;
        }
        s = zm__fwrite(f, src, (size_t)t->nbytes, tmp);
        if (s == ZM_OK) s = zm__pad(f, t->nbytes, al, tmp);
        done += t->nbytes;
        if (progress) progress(ctx, done, total);
    }
    zm__free_aligned(buf);
    return s;
}

zm_status zm_gguf_write(zm_gguf_writer *w, const char *path, zm_gguf_fill_fn fill, void *ctx,
                        void (*progress)(void *ctx, uint64_t done, uint64_t total)) {
    if (!w || !path) return zm__err(ZM_ERR_INVALID, "zm_gguf_write: NULL writer or path");
    uint32_t al;
    ZM_TRY(zm__alignment(w, &al));
    if (!fill)
        for (int64_t i = 0; i < w->n_t; i++)
            if (!w->t[i].data)
                return zm__err(ZM_ERR_INVALID, "gguf writer: tensor '%s' has no data and no fill callback was given", w->t[i].name);
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 16);
    if (!tmp) return zm__err(ZM_ERR_NOMEM, "gguf writer: path");
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        zm_status s = zm__err(ZM_ERR_IO, "gguf writer: cannot create '%s': %s", tmp, strerror(errno));
        free(tmp);
        return s;
    }
    fchmod(fd, 0644);
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        free(tmp);
        return zm__err(ZM_ERR_IO, "gguf writer: fdopen: %s", strerror(errno));
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    zm_status s = zm__write_body(w, f, tmp, al, fill, ctx, progress);
    if (s == ZM_OK && fflush(f) != 0) s = zm__err(ZM_ERR_IO, "gguf writer: writing '%s': %s", tmp, strerror(errno));
    if (fclose(f) != 0 && s == ZM_OK) s = zm__err(ZM_ERR_IO, "gguf writer: closing '%s': %s", tmp, strerror(errno));
    if (s == ZM_OK && rename(tmp, path) != 0)
        s = zm__err(ZM_ERR_IO, "gguf writer: rename '%s' -> '%s': %s", tmp, path, strerror(errno));
    if (s != ZM_OK) unlink(tmp);
    free(tmp);
    return s;
}
