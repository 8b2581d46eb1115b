/*
 * bad_input.c: drive every bad input through the embergpt C API (C99).
 *
 *   bad_input [MODEL.gguf [quick]]      (default tests/fixtures/gpt2/a.q8_0.gguf)
 *
 * Each call must return its documented status, leave its out-parameters
 * untouched, and leave the model and context usable: after the bad calls the
 * context is reset and re-run, and its logits must be bit-identical to a
 * reference run made before. Built and run plainly, under AddressSanitizer +
 * UBSan and under valgrind by `make -C c-examples test`. Exit status 0 only if
 * every check passed.
 */
#include "embergpt.h"
#include "example_util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int n_pass, n_fail;
/* "quick" as the second argument thins the truncation/corruption sweeps (valgrind). */
static size_t sweep_step = 1;

static void expect_at(egpt_status got, egpt_status want, const char *what, int line) {
    if (got == want) {
        n_pass++;
    } else {
        n_fail++;
        printf("FAIL line %d: %s: got %u (%s), want %u (%s)\n", line, what, (unsigned)got,
               egpt_status_str(got), (unsigned)want, egpt_status_str(want));
    }
}
#define EXPECT(call, want) expect_at((call), (want), #call, __LINE__)

static void check_at(int ok, const char *what, int line) {
    if (ok) {
        n_pass++;
    } else {
        n_fail++;
        printf("FAIL line %d: %s\n", line, what);
    }
}
#define CHECK(cond) check_at((cond) ? 1 : 0, #cond, __LINE__)

/* Sentinels: out-parameters must keep them when a call fails. */
#define SENT_SIZE ((size_t)0x5A5A5A5Au)
#define SENT_PTR ((void *)&sentinel_target)
static int sentinel_target;

static uint64_t model_mem[EGPT_MODEL_STORAGE_SIZE / sizeof(uint64_t)];
static uint64_t model_mem2[EGPT_MODEL_STORAGE_SIZE / sizeof(uint64_t)];
static uint64_t zeros[EGPT_MODEL_STORAGE_SIZE / sizeof(uint64_t)];

static const uint32_t PROMPT[3] = {5, 17, 42};
static float *reference; /* logits after PROMPT, n_vocab floats */
static size_t n_vocab;

/* Reset, run PROMPT, compare logits bit-for-bit with the reference. */
static int usable(egpt_context *ctx) {
    const float *l = NULL;
    size_t n = 0;
    if (egpt_context_reset(ctx) != EGPT_OK) return 0;
    if (egpt_context_eval(ctx, PROMPT, 3) != EGPT_OK) return 0;
    if (egpt_context_logits(ctx, &l, &n) != EGPT_OK) return 0;
    return n == n_vocab && memcmp(l, reference, n * sizeof(float)) == 0;
}

static int is_known_error(egpt_status s) {
    return s != EGPT_OK && strcmp(egpt_status_str(s), "unknown status") != 0;
}

/* Histogram of statuses seen over the truncation / corruption sweeps. */
static unsigned histo[256];
static void count(egpt_status s) {
    histo[s < 256 ? s : 255]++;
}
static void print_histo(const char *what) {
    unsigned i;
    printf("%s:", what);
    for (i = 0; i < 256; i++) {
        if (histo[i] != 0) {
            printf(" %s=%u", i == 0 ? "OK" : egpt_status_str(i), histo[i]);
        }
    }
    printf("\n");
    memset(histo, 0, sizeof histo);
}

static void test_static_strings(void) {
    unsigned s;
    CHECK(egpt_version() != NULL && strcmp(egpt_version(), EGPT_VERSION) == 0);
    CHECK(egpt_abi_version() == EGPT_ABI_VERSION);
    for (s = 0; s < 300; s++) {
        CHECK(egpt_status_str(s) != NULL);
    }
    CHECK(strcmp(egpt_status_str(EGPT_OK), "success") == 0);
    CHECK(strcmp(egpt_status_str(17), "unknown status") == 0);
    CHECK(strcmp(egpt_status_str(UINT32_MAX), "unknown status") == 0);
    CHECK(strcmp(egpt_status_str(EGPT_ERR_NULL_POINTER), "NULL pointer argument") == 0);
    CHECK(strcmp(egpt_backend_name(EGPT_BACKEND_AUTO), "auto") == 0);
    CHECK(strcmp(egpt_backend_name(EGPT_BACKEND_SCALAR), "scalar") == 0);
    CHECK(strcmp(egpt_backend_name(-1), "unknown backend") == 0);
    CHECK(strcmp(egpt_backend_name(1000), "unknown backend") == 0);
    CHECK(egpt_backend_available(EGPT_BACKEND_AUTO) == 1);
    CHECK(egpt_backend_available(EGPT_BACKEND_SCALAR) == 1);
    CHECK(egpt_backend_available(-7) == 0);
    CHECK(egpt_backend_available(egpt_backend_best()) == 1);
    CHECK(strcmp(egpt_type_name(8), "q8_0") == 0);
    CHECK(strcmp(egpt_type_name(4), "unknown type") == 0);
    CHECK(strcmp(egpt_type_name(UINT32_MAX), "unknown type") == 0);
}

static void test_model_open(const unsigned char *bytes, size_t len) {
    egpt_model *m = (egpt_model *)SENT_PTR;
    size_t msize = egpt_model_size();
    unsigned char *copy;
    size_t i;

    CHECK(msize <= EGPT_MODEL_STORAGE_SIZE);
    EXPECT(egpt_model_open(NULL, len, model_mem2, sizeof model_mem2, &m), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_model_open(bytes, len, NULL, sizeof model_mem2, &m), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_model_open(bytes, len, model_mem2, sizeof model_mem2, NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_model_open(bytes, len, model_mem2, msize - 1, &m), EGPT_ERR_BUFFER_TOO_SMALL);
    EXPECT(egpt_model_open(bytes, len, model_mem2, 0, &m), EGPT_ERR_BUFFER_TOO_SMALL);
    EXPECT(egpt_model_open(bytes, SIZE_MAX, model_mem2, sizeof model_mem2, &m), EGPT_ERR_BAD_PARAMETER);
    EXPECT(egpt_model_open(bytes, 0, model_mem2, sizeof model_mem2, &m), EGPT_ERR_BAD_MAGIC);
    CHECK(m == (egpt_model *)SENT_PTR);

    /* Every model memory alignment works with exactly egpt_model_size() bytes. */
    for (i = 0; i < 16; i++) {
        egpt_model *mm = NULL;
        EXPECT(egpt_model_open(bytes, len, (unsigned char *)model_mem2 + i, msize, &mm), EGPT_OK);
        CHECK(mm != NULL);
    }

    /* Truncated at every offset of the first 8 KiB, then every 509th byte. */
    for (i = 0; i < len; i += (i < 8192 ? sweep_step : 509)) {
        egpt_status s = egpt_model_open(bytes, i, model_mem2, sizeof model_mem2, &m);
        count(s);
        if (!is_known_error(s)) {
            printf("FAIL truncated at %zu: status %u\n", i, (unsigned)s);
            n_fail++;
        }
        if (m != (egpt_model *)SENT_PTR) {
            printf("FAIL truncated at %zu: out-parameter written\n", i);
            n_fail++;
            m = (egpt_model *)SENT_PTR;
        }
    }
    n_pass++;
    print_histo("truncated");

    /* Corrupt bytes: each of the first 4 KiB set to 0x00, 0xFF and incremented.
     * Either an error (and out untouched) or a model that evaluates without crashing. */
    copy = (unsigned char *)malloc(len);
    if (copy == NULL) {
        n_fail++;
        return;
    }
    memcpy(copy, bytes, len);
    for (i = 0; i < len && i < 4096; i += sweep_step) {
        unsigned char v[3];
        int k;
        v[0] = 0x00;
        v[1] = 0xFF;
        v[2] = (unsigned char)(bytes[i] + 1);
        for (k = 0; k < 3; k++) {
            egpt_status s;
            if (v[k] == bytes[i]) continue;
            copy[i] = v[k];
            m = (egpt_model *)SENT_PTR;
            s = egpt_model_open(copy, len, model_mem2, sizeof model_mem2, &m);
            count(s);
            if (s != EGPT_OK) {
                if (!is_known_error(s) || m != (egpt_model *)SENT_PTR) {
                    printf("FAIL corrupt byte %zu=%u: status %u\n", i, v[k], (unsigned)s);
                    n_fail++;
                }
            } else {
                /* Loaded (e.g. a changed name or value that is still valid): must evaluate. */
                egpt_context_params p = egpt_context_default_params();
                egpt_model_info info;
                size_t need = 0;
                memset(&info, 0, sizeof info);
                info.struct_size = sizeof info;
                if (egpt_model_get_info(m, &info) != EGPT_OK) {
                    n_fail++;
                } else {
                    p.n_batch = 4;
                    if (egpt_context_arena_size(m, &p, &need) == EGPT_OK && need < ((size_t)64 << 20)) {
                        void *arena = malloc(need);
                        egpt_context *c = NULL;
                        uint32_t t = 0;
                        if (arena != NULL && egpt_context_create(m, &p, arena, need, &c) == EGPT_OK) {
                            egpt_status e = egpt_context_eval(c, &t, 1);
                            if (e != EGPT_OK) {
                                printf("FAIL corrupt byte %zu: loaded but eval gave %u\n", i, (unsigned)e);
                                n_fail++;
                            }
                        }
                        free(arena);
                    }
                }
            }
        }
        copy[i] = bytes[i];
    }
    n_pass++;
    free(copy);
    print_histo("corrupt");
}

static void test_model_queries(const egpt_model *model) {
    egpt_model_info info, before;
    uint32_t ty = 0xABCDu;
    const egpt_model *zero_model = (const egpt_model *)(const void *)zeros;

    memset(&info, 0x5A, sizeof info);
    info.struct_size = sizeof info;
    before = info;
    EXPECT(egpt_model_get_info(NULL, &info), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_model_get_info(model, NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_model_get_info(zero_model, &info), EGPT_ERR_BAD_STATE);
    EXPECT(egpt_model_get_info((const egpt_model *)(const void *)((const char *)model + 1), &info),
           EGPT_ERR_BAD_STATE);
    info.struct_size = 0;
    EXPECT(egpt_model_get_info(model, &info), EGPT_ERR_BAD_STRUCT_SIZE);
    info.struct_size = sizeof info - 1;
    EXPECT(egpt_model_get_info(model, &info), EGPT_ERR_BAD_STRUCT_SIZE);
    info.struct_size = sizeof info + 8;
    EXPECT(egpt_model_get_info(model, &info), EGPT_ERR_BAD_STRUCT_SIZE);
    info.struct_size = sizeof info;
    CHECK(memcmp(&info, &before, sizeof info) == 0);
    EXPECT(egpt_model_get_info(model, &info), EGPT_OK);
    CHECK(strcmp(info.architecture, "gpt2") == 0);
    CHECK(info.n_vocab > 0 && info.n_layer > 0);

    EXPECT(egpt_model_tensor_type(NULL, "token_embd.weight", 17, &ty), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_model_tensor_type(model, NULL, 17, &ty), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_model_tensor_type(model, "token_embd.weight", 17, NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_model_tensor_type(model, "no.such.tensor", 14, &ty), EGPT_ERR_MISSING_TENSOR);
    EXPECT(egpt_model_tensor_type(model, "token_embd.weight", 16, &ty), EGPT_ERR_MISSING_TENSOR);
    EXPECT(egpt_model_tensor_type(model, "\xff\xfe", 2, &ty), EGPT_ERR_MISSING_TENSOR);
    EXPECT(egpt_model_tensor_type(model, "x", SIZE_MAX, &ty), EGPT_ERR_BAD_PARAMETER);
    EXPECT(egpt_model_tensor_type(zero_model, "token_embd.weight", 17, &ty), EGPT_ERR_BAD_STATE);
    CHECK(ty == 0xABCDu);
    EXPECT(egpt_model_tensor_type(model, "token_embd.weight", 17, &ty), EGPT_OK);
    CHECK(strcmp(egpt_type_name(ty), "unknown type") != 0);
}

static void test_params(const egpt_model *model, const egpt_model_info *info) {
    egpt_context_params p = egpt_context_default_params();
    size_t sz = SENT_SIZE;
    egpt_backend b;
    const egpt_model *zero_model = (const egpt_model *)(const void *)zeros;

    CHECK(p.struct_size == sizeof p);
    EXPECT(egpt_context_arena_size(NULL, &p, &sz), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_arena_size(model, NULL, &sz), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_arena_size(model, &p, NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_arena_size(zero_model, &p, &sz), EGPT_ERR_BAD_STATE);
    p.struct_size = sizeof p - 1;
    EXPECT(egpt_context_arena_size(model, &p, &sz), EGPT_ERR_BAD_STRUCT_SIZE);
    p.struct_size = 0;
    EXPECT(egpt_context_arena_size(model, &p, &sz), EGPT_ERR_BAD_STRUCT_SIZE);
    p = egpt_context_default_params();
    p.n_ctx = info->n_ctx + 1;
    EXPECT(egpt_context_arena_size(model, &p, &sz), EGPT_ERR_BAD_CONTEXT_LENGTH);
    p = egpt_context_default_params();
    p.n_batch = 0;
    EXPECT(egpt_context_arena_size(model, &p, &sz), EGPT_ERR_BAD_BATCH_SIZE);
    p.n_ctx = 4;
    p.n_batch = 5;
    EXPECT(egpt_context_arena_size(model, &p, &sz), EGPT_ERR_BAD_BATCH_SIZE);
    p = egpt_context_default_params();
    p.n_batch = 4;
    p.backend = 1000;
    EXPECT(egpt_context_arena_size(model, &p, &sz), EGPT_ERR_BAD_PARAMETER);
    p.backend = -1;
    EXPECT(egpt_context_arena_size(model, &p, &sz), EGPT_ERR_BAD_PARAMETER);
    CHECK(sz == SENT_SIZE);

    /* A forced backend this CPU cannot run: creation refuses it. */
    for (b = EGPT_BACKEND_SCALAR; b <= EGPT_BACKEND_SIMD128; b++) {
        if (!egpt_backend_available(b)) {
            void *arena;
            egpt_context *c = (egpt_context *)SENT_PTR;
            p = egpt_context_default_params();
            p.n_batch = 4;
            p.backend = b;
            EXPECT(egpt_context_arena_size(model, &p, &sz), EGPT_OK);
            arena = malloc(sz);
            if (arena != NULL) {
                EXPECT(egpt_context_create(model, &p, arena, sz, &c), EGPT_ERR_BACKEND_UNAVAILABLE);
                CHECK(c == (egpt_context *)SENT_PTR);
            }
            free(arena);
            break;
        }
    }
}

static void test_create(const egpt_model *model) {
    egpt_context_params p = egpt_context_default_params();
    size_t need = 0, off;
    unsigned char *arena;
    egpt_context *c = (egpt_context *)SENT_PTR;
    const egpt_model *zero_model = (const egpt_model *)(const void *)zeros;

    p.n_batch = 4;
    EXPECT(egpt_context_arena_size(model, &p, &need), EGPT_OK);
    arena = (unsigned char *)malloc(need + 64);
    if (arena == NULL) {
        n_fail++;
        return;
    }
    EXPECT(egpt_context_create(NULL, &p, arena, need, &c), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_create(model, NULL, arena, need, &c), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_create(model, &p, NULL, need, &c), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_create(model, &p, arena, need, NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_create(zero_model, &p, arena, need, &c), EGPT_ERR_BAD_STATE);
    EXPECT(egpt_context_create(model, &p, arena, 0, &c), EGPT_ERR_ARENA_TOO_SMALL);
    p.struct_size = 8;
    EXPECT(egpt_context_create(model, &p, arena, need, &c), EGPT_ERR_BAD_STRUCT_SIZE);
    p.struct_size = sizeof p;
    /* One byte short fails and exactly enough works, at every start alignment. */
    for (off = 0; off < 64; off++) {
        egpt_context *ok = NULL;
        uint32_t t = 1;
        EXPECT(egpt_context_create(model, &p, arena + off, need - 1, &c), EGPT_ERR_ARENA_TOO_SMALL);
        CHECK(c == (egpt_context *)SENT_PTR);
        EXPECT(egpt_context_create(model, &p, arena + off, need, &ok), EGPT_OK);
        EXPECT(egpt_context_eval(ok, &t, 1), EGPT_OK);
    }
    /* A context handle is not a model. */
    {
        egpt_context *ok = NULL;
        EXPECT(egpt_context_create(model, &p, arena, need, &ok), EGPT_OK);
        EXPECT(egpt_context_create((const egpt_model *)(const void *)ok, &p, arena + 1, need, &c),
               EGPT_ERR_BAD_STATE);
    }
    free(arena);
}

static void test_context(egpt_context *ctx, const egpt_model *model, size_t n_ctx) {
    uint32_t tokens[256];
    uint32_t unaligned_store[4];
    const float *lp = (const float *)SENT_PTR;
    float *buf;
    size_t n = SENT_SIZE, rows = SENT_SIZE, i, n_past = SENT_SIZE;
    egpt_backend be = -99;
    egpt_context *zero_ctx = (egpt_context *)(void *)zeros;
    egpt_context *model_as_ctx = (egpt_context *)(void *)(uintptr_t)model;

    buf = (float *)malloc((n_vocab + 1) * sizeof(float));
    if (buf == NULL) {
        n_fail++;
        return;
    }
    for (i = 0; i < 256; i++) tokens[i] = (uint32_t)(i % n_vocab);

    /* Wrong order: logits before any eval. */
    EXPECT(egpt_context_reset(ctx), EGPT_OK);
    EXPECT(egpt_context_logits(ctx, &lp, &n), EGPT_ERR_NO_LOGITS);
    EXPECT(egpt_context_all_logits(ctx, &lp, &rows, &n), EGPT_ERR_NO_LOGITS);
    EXPECT(egpt_context_copy_logits(ctx, buf, n_vocab, &n), EGPT_ERR_NO_LOGITS);
    CHECK(lp == (const float *)SENT_PTR && n == SENT_SIZE && rows == SENT_SIZE);

    /* NULLs and non-handles everywhere. */
    EXPECT(egpt_context_eval(NULL, tokens, 1), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_eval(ctx, NULL, 1), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_eval(zero_ctx, tokens, 1), EGPT_ERR_BAD_STATE);
    EXPECT(egpt_context_eval(model_as_ctx, tokens, 1), EGPT_ERR_BAD_STATE);
    EXPECT(egpt_context_eval_all(NULL, tokens, 1), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_eval_all(ctx, NULL, 1), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_eval_all(zero_ctx, tokens, 1), EGPT_ERR_BAD_STATE);
    EXPECT(egpt_context_logits(NULL, &lp, &n), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_logits(ctx, NULL, &n), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_logits(ctx, &lp, NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_logits(zero_ctx, &lp, &n), EGPT_ERR_BAD_STATE);
    EXPECT(egpt_context_all_logits(NULL, &lp, &rows, &n), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_all_logits(ctx, NULL, &rows, &n), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_all_logits(ctx, &lp, NULL, &n), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_all_logits(ctx, &lp, &rows, NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_copy_logits(NULL, buf, n_vocab, &n), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_copy_logits(ctx, NULL, n_vocab, &n), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_copy_logits(ctx, buf, n_vocab, NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_rewind(NULL, 0), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_rewind(zero_ctx, 0), EGPT_ERR_BAD_STATE);
    EXPECT(egpt_context_reset(NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_reset(model_as_ctx), EGPT_ERR_BAD_STATE);
    EXPECT(egpt_context_n_past(NULL, &n_past), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_n_past(ctx, NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_n_ctx(NULL, &n), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_n_ctx(ctx, NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_n_batch(NULL, &n), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_n_batch(ctx, NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_backend(NULL, &be), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_backend(ctx, NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_context_backend(zero_ctx, &be), EGPT_ERR_BAD_STATE);
    EXPECT(egpt_context_n_past((const egpt_context *)(const void *)((const char *)ctx + 1), &n_past),
           EGPT_ERR_BAD_STATE);
    CHECK(n_past == SENT_SIZE && be == -99);
    CHECK(usable(ctx));

    /* Bad token lists: nothing evaluated, n_past unchanged. */
    EXPECT(egpt_context_reset(ctx), EGPT_OK);
    EXPECT(egpt_context_eval(ctx, tokens, 2), EGPT_OK);
    EXPECT(egpt_context_eval(ctx, tokens, 0), EGPT_ERR_EMPTY_INPUT);
    tokens[1] = (uint32_t)n_vocab;
    EXPECT(egpt_context_eval(ctx, tokens, 3), EGPT_ERR_TOKEN_OUT_OF_RANGE);
    tokens[1] = UINT32_MAX;
    EXPECT(egpt_context_eval(ctx, tokens, 3), EGPT_ERR_TOKEN_OUT_OF_RANGE);
    EXPECT(egpt_context_eval_all(ctx, tokens + 1, 1), EGPT_ERR_TOKEN_OUT_OF_RANGE);
    tokens[1] = 1;
    EXPECT(egpt_context_eval(ctx, tokens, n_ctx - 1), EGPT_ERR_CONTEXT_FULL);
    EXPECT(egpt_context_eval(ctx, tokens, SIZE_MAX), EGPT_ERR_CONTEXT_FULL);
    memcpy(unaligned_store, tokens, sizeof unaligned_store);
    EXPECT(egpt_context_eval(ctx, (const uint32_t *)(const void *)((const char *)unaligned_store + 1), 1),
           EGPT_ERR_BAD_PARAMETER);
    EXPECT(egpt_context_n_past(ctx, &n_past), EGPT_OK);
    CHECK(n_past == 2);

    /* eval_all needs logits_all: this context keeps one row. */
    EXPECT(egpt_context_eval_all(ctx, tokens, 2), EGPT_ERR_BATCH_TOO_LARGE);
    EXPECT(egpt_context_eval_all(ctx, tokens, 1), EGPT_OK);
    EXPECT(egpt_context_all_logits(ctx, &lp, &rows, &n), EGPT_OK);
    CHECK(rows == 1 && n == n_vocab);

    /* Buffer too small: nothing written. */
    buf[0] = 12345.0f;
    n = SENT_SIZE;
    EXPECT(egpt_context_copy_logits(ctx, buf, n_vocab - 1, &n), EGPT_ERR_BUFFER_TOO_SMALL);
    EXPECT(egpt_context_copy_logits(ctx, buf, 0, &n), EGPT_ERR_BUFFER_TOO_SMALL);
    CHECK(buf[0] == 12345.0f && n == SENT_SIZE);
    EXPECT(egpt_context_copy_logits(ctx, buf, n_vocab + 1, &n), EGPT_OK);
    CHECK(n == n_vocab);

    /* Rewind: past the end fails; to the end keeps logits; earlier drops them. */
    EXPECT(egpt_context_rewind(ctx, 4), EGPT_ERR_BAD_POSITION);
    EXPECT(egpt_context_rewind(ctx, SIZE_MAX), EGPT_ERR_BAD_POSITION);
    EXPECT(egpt_context_rewind(ctx, 3), EGPT_OK);
    EXPECT(egpt_context_logits(ctx, &lp, &n), EGPT_OK);
    EXPECT(egpt_context_rewind(ctx, 1), EGPT_OK);
    lp = (const float *)SENT_PTR;
    EXPECT(egpt_context_logits(ctx, &lp, &n), EGPT_ERR_NO_LOGITS);
    CHECK(lp == (const float *)SENT_PTR);
    EXPECT(egpt_context_n_past(ctx, &n_past), EGPT_OK);
    CHECK(n_past == 1);

    /* Context overflow: fill to n_ctx exactly, then one more. */
    EXPECT(egpt_context_reset(ctx), EGPT_OK);
    EXPECT(egpt_context_eval(ctx, tokens, n_ctx), EGPT_OK);
    EXPECT(egpt_context_eval(ctx, tokens, 1), EGPT_ERR_CONTEXT_FULL);
    EXPECT(egpt_context_n_past(ctx, &n_past), EGPT_OK);
    CHECK(n_past == n_ctx);
    EXPECT(egpt_context_logits(ctx, &lp, &n), EGPT_OK);
    EXPECT(egpt_context_rewind(ctx, n_ctx - 1), EGPT_OK);
    EXPECT(egpt_context_eval(ctx, tokens, 1), EGPT_OK);
    EXPECT(egpt_context_reset(ctx), EGPT_OK);
    EXPECT(egpt_context_logits(ctx, &lp, &n), EGPT_ERR_NO_LOGITS);

    /* Still usable, bit for bit. */
    CHECK(usable(ctx));
    free(buf);
}

/* A context with logits_all: eval_all row i equals decoding token by token. */
static void test_eval_all(const egpt_model *model) {
    egpt_context_params p = egpt_context_default_params();
    size_t need = 0, rows = 0, n = 0, i;
    void *arena;
    egpt_context *c = NULL;
    const float *all = NULL, *one = NULL;
    float *copy;
    uint32_t tokens[5] = {3, 1, 4, 1, 5};

    p.n_batch = 4;
    p.logits_all = 1;
    EXPECT(egpt_context_arena_size(model, &p, &need), EGPT_OK);
    arena = malloc(need);
    copy = (float *)malloc(4 * n_vocab * sizeof(float));
    if (arena == NULL || copy == NULL) {
        n_fail++;
        free(arena);
        free(copy);
        return;
    }
    EXPECT(egpt_context_create(model, &p, arena, need, &c), EGPT_OK);
    EXPECT(egpt_context_eval_all(c, tokens, 5), EGPT_ERR_BATCH_TOO_LARGE);
    EXPECT(egpt_context_eval_all(c, tokens, 4), EGPT_OK);
    EXPECT(egpt_context_all_logits(c, &all, &rows, &n), EGPT_OK);
    CHECK(rows == 4 && n == n_vocab);
    memcpy(copy, all, 4 * n_vocab * sizeof(float));
    EXPECT(egpt_context_reset(c), EGPT_OK);
    for (i = 0; i < 4; i++) {
        EXPECT(egpt_context_eval(c, tokens + i, 1), EGPT_OK);
        EXPECT(egpt_context_logits(c, &one, &n), EGPT_OK);
        CHECK(memcmp(one, copy + i * n_vocab, n_vocab * sizeof(float)) == 0);
    }
    free(arena);
    free(copy);
}

int main(int argc, char **argv) {
    static const char *const defaults[] = {"tests/fixtures/gpt2/a.q8_0.gguf",
                                           "../tests/fixtures/gpt2/a.q8_0.gguf", NULL};
    const char *path = argc > 1 ? argv[1] : first_existing(defaults);
    unsigned char *bytes;
    size_t len = 0, need = 0, n = 0;
    egpt_model *model = NULL;
    egpt_model_info info;
    egpt_context_params p;
    egpt_context *ctx = NULL;
    void *arena;
    const float *l = NULL;

    if (argc > 2 && strcmp(argv[2], "quick") == 0) {
        sweep_step = 7;
    }
    if (path == NULL || (bytes = read_file(path, &len)) == NULL) {
        fprintf(stderr, "bad_input: no model\n");
        return 1;
    }
    test_static_strings();
    if (egpt_model_open(bytes, len, model_mem, sizeof model_mem, &model) != EGPT_OK) {
        fprintf(stderr, "bad_input: cannot open %s\n", path);
        return 1;
    }
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    EXPECT(egpt_model_get_info(model, &info), EGPT_OK);
    n_vocab = info.n_vocab;

    /* The reference run: PROMPT's logits before any bad input. */
    p = egpt_context_default_params();
    p.n_batch = 4;
    EXPECT(egpt_context_arena_size(model, &p, &need), EGPT_OK);
    arena = malloc(need);
    reference = (float *)malloc(n_vocab * sizeof(float));
    if (arena == NULL || reference == NULL) return 1;
    EXPECT(egpt_context_create(model, &p, arena, need, &ctx), EGPT_OK);
    EXPECT(egpt_context_eval(ctx, PROMPT, 3), EGPT_OK);
    EXPECT(egpt_context_copy_logits(ctx, reference, n_vocab, &n), EGPT_OK);

    test_model_open(bytes, len);
    test_model_queries(model);
    test_params(model, &info);
    test_create(model);
    test_context(ctx, model, info.n_ctx);
    test_eval_all(model);
    /* The model and the first context survived everything. */
    CHECK(usable(ctx));
    EXPECT(egpt_context_logits(ctx, &l, &n), EGPT_OK);

    free(reference);
    free(arena);
    free(bytes);
    printf("bad_input: %d passed, %d failed\n", n_pass, n_fail);
    return n_fail == 0 ? 0 : 1;
}
