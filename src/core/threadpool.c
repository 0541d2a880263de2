/* A persistent thread pool for row-parallel kernels. Workers spin briefly on
 * a generation counter (decode issues thousands of small jobs per second, and
 * a futex wake per job costs more than the job), then yield, then sleep on a
 * condition variable. Every wait yields the core after a short spin: on a
 * machine with more runnable threads than cores, a pure spin burns the very
 * core the awaited thread needs (measured 20-50x slower decode with 2
 * threads on a loaded 2-core VM). Checked by tests/test_core.c. */
#include <sched.h>
#include "core/internal.h"
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

// ---------------------------------------------------------------------------
struct zm_pool {
    int n;
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic unsigned gen;   /* bumped per job */
    _Atomic int pending;    /* workers still running the current job */
    _Atomic int sleeping;   /* workers blocked on cv */
    _Atomic int quit;
    zm_pool_fn fn;
    void *ctx;
    pthread_mutex_t run_mu; /* one job at a time */
};

typedef struct { zm_pool *p; int ith; } zm__worker_arg;

static void *zm__worker(void *arg) {
    zm__worker_arg a = *(zm__worker_arg *)arg;
    free(arg);
    zm_pool *p = a.p;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
            if (atomic_load(&p->quit)) return NULL;
            if (++spins < 2000) { __builtin_ia32_pause(); continue; }
            if (spins < 2100) { sched_yield(); continue; }
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleeping, 1);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->quit)) pthread_cond_wait(&p->cv, &p->mu);
            atomic_fetch_sub(&p->sleeping, 1);
            pthread_mutex_unlock(&p->mu);
            spins = 0;
        }
        seen = g;
        if (atomic_load(&p->quit)) return NULL;
        p->fn(p->ctx, a.ith, p->n);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
}

zm_status zm_pool_new(zm_pool **out, int n) {
    if (!out) return zm__err(ZM_ERR_INVALID, "zm_pool_new: out is NULL");
    *out = NULL;
    if (n < 1 || n > 1024) return zm__err(ZM_ERR_RANGE, "zm_pool_new: %d threads (1..1024)", n);
    zm_pool *p = calloc(1, sizeof *p);
    if (!p) return zm__err(ZM_ERR_NOMEM, "zm_pool_new: out of memory");
    p->n = n;
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->run_mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->th = calloc((size_t)n, sizeof *p->th);
    if (!p->th) { free(p); return zm__err(ZM_ERR_NOMEM, "zm_pool_new: out of memory"); }
    for (int i = 1; i < n; i++) {
        zm__worker_arg *a = malloc(sizeof *a);
        if (!a || pthread_create(&p->th[i], NULL, zm__worker, (a->p = p, a->ith = i, a)) != 0) {
            free(a);
            p->n = i; /* threads 1..i-1 exist */
            zm_pool_free(p);
            return zm__err(ZM_ERR_NOMEM, "zm_pool_new: cannot start thread %d", i);
        }
    }
    *out = p;
    return ZM_OK;
}

void zm_pool_free(zm_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->run_mu);
    pthread_cond_destroy(&p->cv);
    free(p->th);
    free(p);
}

int zm_pool_size(const zm_pool *p) { return p ? p->n : 1; }

void zm_pool_run(zm_pool *p, zm_pool_fn fn, void *ctx) {
    if (!p || p->n == 1) { fn(ctx, 0, 1); return; }
    pthread_mutex_lock(&p->run_mu);
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->pending, p->n - 1);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    if (atomic_load(&p->sleeping)) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    fn(ctx, 0, p->n);
    for (int spins = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; spins++) {
        if (spins < 2000) __builtin_ia32_pause();
        else sched_yield();
    }
    pthread_mutex_unlock(&p->run_mu);
}

static zm_pool *zm__default_pool;
static pthread_once_t zm__default_once = PTHREAD_ONCE_INIT;
static void zm__default_init(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    const char *e = getenv("ZMLX_THREADS");
    if (e && atoi(e) > 0) n = atoi(e);
    if (n < 1) n = 1;
    if (n > 256) n = 256;
    if (zm_pool_new(&zm__default_pool, (int)n) != ZM_OK) zm__default_pool = NULL;
}
zm_pool *zm_pool_default(void) {
    pthread_once(&zm__default_once, zm__default_init);
    return zm__default_pool; /* NULL (single-threaded) if threads could not start */
}
