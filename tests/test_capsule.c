/* Capsules: write -> read round trip, hostile capsules (not JSON, missing
 * fields, wrong types, too many runs), and `zmlx report` on hand-made capsules.
 * Run: build/tests/test_capsule */
#include "harness.h"
#include "zmlx/capsule.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

static void make_capsule(zm_capsule *c) {
    memset(c, 0, sizeof *c);
    zm_capsule_fill_env(c);
    snprintf(c->command, sizeof c->command, "zmlx validate -m \"a b.gguf\" --runs %d", (int)(zt_rand_u64() % 9 + 1));
    snprintf(c->model_file, sizeof c->model_file, "tiny-%llu.gguf", (unsigned long long)(zt_rand_u64() % 1000));
    snprintf(c->arch, sizeof c->arch, "qwen3moe");
    snprintf(c->model_type, sizeof c->model_type, "q4_0");
    snprintf(c->device, sizeof c->device, "cpu");
    snprintf(c->patterns, sizeof c->patterns, "moe_gating,swiglu");
    c->model_size = zt_rand_u64() % (1ull << 40);
    c->max_tokens = 200; c->runs = 3; c->threads = 2; c->prompt_tokens = 17;
    c->n_runs = 6;
    for (int i = 0; i < 6; i++) {
        snprintf(c->run[i].variant, sizeof c->run[i].variant, i < 3 ? "stock" : "patched");
        c->run[i].prefill_tok_s = zt_uniform(1, 1000);
        c->run[i].decode_tok_s = zt_uniform(1, 1000);
        c->run[i].peak_mem = zt_rand_u64() % (1ull << 36);
    }
    c->stock_decode = zt_uniform(1, 100); c->patched_decode = zt_uniform(1, 100);
    c->stock_decode_min = 1; c->stock_decode_max = 2; c->patched_decode_min = 3; c->patched_decode_max = 4;
    c->stock_prefill = 5; c->patched_prefill = 6;
    c->speedup = c->patched_decode / c->stock_decode;
    c->fidelity_pass = 1; c->matched = 200; c->total = 200; c->first_divergence = -1;
}

static void test_roundtrip(void) {
    zm_capsule a, b;
    make_capsule(&a);
    char path[300];
    snprintf(path, sizeof path, "%s/a.json", dir);
    ZT_OK(zm_capsule_write(&a, path));
    ZT_OK(zm_capsule_read(&b, path));
    ZT_CHECK(!strcmp(a.command, b.command) && !strcmp(a.model_file, b.model_file) && !strcmp(a.date, b.date), "strings");
    ZT_CHECK(!strcmp(a.cpu, b.cpu) && !strcmp(a.commit, b.commit) && !strcmp(a.patterns, b.patterns), "env strings");
    ZT_CHECK(a.model_size == b.model_size && a.n_runs == b.n_runs && a.prompt_tokens == b.prompt_tokens, "ints");
    for (int i = 0; i < a.n_runs; i++) {
        ZT_CHECK(!strcmp(a.run[i].variant, b.run[i].variant), "variant %d", i);
        ZT_CHECK(fabs(a.run[i].decode_tok_s - b.run[i].decode_tok_s) <= 1e-9 * a.run[i].decode_tok_s, "decode %d", i);
        ZT_CHECK(a.run[i].peak_mem == b.run[i].peak_mem, "peak %d", i);
    }
    ZT_CHECK(fabs(a.speedup - b.speedup) < 1e-12 && b.fidelity_pass && b.first_divergence == -1, "summary");
}

static zm_status parse(const char *s) {
    zm_capsule c;
    return zm_capsule_parse(&c, s, strlen(s));
}

static void test_hostile(void) {
    ZT_CHECK(parse("") == ZM_ERR_FORMAT, "empty");
    ZT_CHECK(parse("not json {") == ZM_ERR_FORMAT && strstr(zm_last_error(), "not JSON"), "not json: %s", zm_last_error());
    ZT_CHECK(parse("[1,2]") == ZM_ERR_FORMAT, "array top level");
    ZT_CHECK(parse("{\"zmlx_capsule\": 1}") == ZM_ERR_FORMAT && strstr(zm_last_error(), "env"), "missing env: %s", zm_last_error());
    ZT_CHECK(parse("{\"zmlx_capsule\": \"1\"}") == ZM_ERR_FORMAT && strstr(zm_last_error(), "number"), "type: %s", zm_last_error());
    ZT_CHECK(parse("{\"zmlx_capsule\": 99}") == ZM_ERR_FORMAT && strstr(zm_last_error(), "version"), "version");
    /* a valid capsule with one field broken in each way */
    zm_capsule a;
    make_capsule(&a);
    char path[300];
    snprintf(path, sizeof path, "%s/b.json", dir);
    ZT_OK(zm_capsule_write(&a, path));
    FILE *f = fopen(path, "r");
    static char txt[1 << 16];
    size_t n = fread(txt, 1, sizeof txt - 1, f);
    fclose(f);
    txt[n] = 0;
    ZT_OK(parse(txt));
    static char mod[1 << 16];
    struct { const char *from, *to, *msg; } cases[] = {
        {"\"decode_tok_s\":", "\"decode_tok_x\":", "decode_tok_s"},
        {"\"fidelity\":\t\"PASS\"", "\"fidelity\":\t\"MAYBE\"", "fidelity"},
        {"\"architecture\":\t\"qwen3moe\"", "\"architecture\":\t7", "architecture"},
        {"\"max_tokens\":\t200", "\"max_tokens\":\t2.5", "max_tokens"},
        {"\"matched\":\t200", "\"matched\":\t201", "matched"},
        {"\"runs\":\t[", "\"runs\":\t\"x\", \"ignored\":\t[", "runs must be an array"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = strstr(txt, cases[i].from);
        ZT_CHECK(p != NULL, "case %zu: pattern %s not in capsule", i, cases[i].from);
        if (!p) continue;
        size_t pre = (size_t)(p - txt);
        snprintf(mod, sizeof mod, "%.*s%s%s", (int)pre, txt, cases[i].to, p + strlen(cases[i].from));
        zm_status s = parse(mod);
        ZT_CHECK(s == ZM_ERR_FORMAT && strstr(zm_last_error(), cases[i].msg), "case %s: %d %s", cases[i].msg, s, zm_last_error());
    }
    /* truncated at every 97th byte: never crashes, always an error */
    for (size_t cut = 0; cut < n - 2; cut += 97) ZT_CHECK(zm_capsule_parse(&a, txt, cut) == ZM_ERR_FORMAT, "cut %zu", cut);
    /* too many runs */
    char *big = malloc(1 << 20);
    char *p = strstr(txt, "\"runs\":\t[");
    size_t pre = (size_t)(p - txt) + strlen("\"runs\":\t[");
    size_t off = (size_t)snprintf(big, 1 << 20, "%.*s", (int)pre, txt);
    for (int i = 0; i < ZM_CAPSULE_MAX_RUNS + 1; i++)
        off += (size_t)snprintf(big + off, (1 << 20) - off, "{\"variant\":\"stock\",\"prefill_tok_s\":1,\"decode_tok_s\":1,\"peak_mem_bytes\":1},");
    snprintf(big + off, (1 << 20) - off, "%s", p + strlen("\"runs\":\t[") );
    ZT_CHECK(zm_capsule_parse(&a, big, strlen(big)) == ZM_ERR_FORMAT && strstr(zm_last_error(), "runs"), "too many runs: %s", zm_last_error());
    free(big);
    ZT_CHECK(zm_capsule_read(&a, "/nonexistent/x.json") == ZM_ERR_IO, "missing file");
}

static void test_report_cli(void) {
    zm_capsule a, b;
    make_capsule(&a);
    make_capsule(&b);
    snprintf(b.device, sizeof b.device, "cuda");
    b.fidelity_pass = 0; b.matched = 150; b.first_divergence = 150;
    char pa[300], pb[300], pc[300], cmd[1200];
    snprintf(pa, sizeof pa, "%s/r1.json", dir);
    snprintf(pb, sizeof pb, "%s/r2.json", dir);
    snprintf(pc, sizeof pc, "%s/bad.json", dir);
    ZT_OK(zm_capsule_write(&a, pa));
    ZT_OK(zm_capsule_write(&b, pb));
    FILE *f = fopen(pc, "w");
    fputs("{\"zmlx_capsule\":1,\"env\":[]}", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "./build/zmlx report %s %s > %s/out.txt 2>&1", pa, pb, dir);
    ZT_CHECK(system(cmd) == 0, "report exit status");
    snprintf(cmd, sizeof cmd, "%s/out.txt", dir);
    f = fopen(cmd, "r");
    static char out[1 << 16];
    size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    if (f) fclose(f);
    out[n] = 0;
    ZT_CHECK(strstr(out, "FAIL 150/200") && strstr(out, "PASS 200/200") && strstr(out, "cuda"), "report text:\n%s", out);
    snprintf(cmd, sizeof cmd, "./build/zmlx report %s > %s/out2.txt 2>&1", pc, dir);
    ZT_CHECK(system(cmd) != 0, "bad capsule must fail");
    snprintf(cmd, sizeof cmd, "%s/out2.txt", dir);
    f = fopen(cmd, "r");
    n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    if (f) fclose(f);
    out[n] = 0;
    ZT_CHECK(strstr(out, "env must be an object") != NULL, "message names the field: %s", out);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/zt_capsule_%d", (int)getpid());
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    if (system(cmd) != 0) return 1;
    ZT_RUN(test_roundtrip);
    ZT_RUN(test_hostile);
    ZT_RUN(test_report_cli);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    return zt_finish();
}
