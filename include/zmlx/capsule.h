/* Repro capsules: the JSON record `zmlx validate` writes so a run can be
 * reproduced and compared (`zmlx report`). Written and read with cJSON; the
 * reader treats the file as hostile (not JSON, missing fields, wrong types,
 * absurd sizes all give ZM_ERR_FORMAT naming the field).
 * Tested by tests/test_capsule.c. */
#ifndef ZMLX_CAPSULE_H
#define ZMLX_CAPSULE_H

#include "zmlx/core.h"
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZM_CAPSULE_VERSION 1
#define ZM_CAPSULE_MAX_RUNS 64

typedef struct zm_capsule_run {
    char variant[16];     /* "stock" or "patched" */
    double prefill_tok_s;
    double decode_tok_s;
    uint64_t peak_mem;    /* bytes (device memory on CUDA, RSS on CPU) */
} zm_capsule_run;

typedef struct zm_capsule {
    /* where and when */
    char date[40], host[128], cpu[160], gpu[160], driver[64], compiler[160];
    char version[32], commit[48], command[2048];
    /* what */
    char model_file[512], arch[32], model_type[16];
    uint64_t model_size;
    /* how */
    char device[8], patterns[1024];
    int max_tokens, runs, threads, prompt_tokens;
    /* per-run numbers */
    int n_runs;
    zm_capsule_run run[ZM_CAPSULE_MAX_RUNS];
    /* summary */
    double stock_decode, patched_decode;         /* medians, tok/s */
    double stock_decode_min, stock_decode_max, patched_decode_min, patched_decode_max;
    double stock_prefill, patched_prefill;       /* medians, tok/s */
    double speedup;                              /* patched / stock decode */
    int fidelity_pass, matched, total, first_divergence; /* -1 if none */
} zm_capsule;

/* Fill date, host, cpu, gpu, driver, compiler, version and commit from this
 * machine and build. */
void zm_capsule_fill_env(zm_capsule *c);
zm_status zm_capsule_write(const zm_capsule *c, const char *path);
/* Parse a capsule; *c is zeroed first. */
zm_status zm_capsule_read(zm_capsule *c, const char *path);
zm_status zm_capsule_parse(zm_capsule *c, const char *json, size_t len);

#ifdef __cplusplus
}
#endif
#endif
