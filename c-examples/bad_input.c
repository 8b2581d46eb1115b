/*
 * bad_input.c: drive every bad input through the embergpt C API (C99).
 *
 *   bad_input [MODEL.gguf [quick|full [VOCAB.gguf]]]
 *
 * MODEL defaults to tests/fixtures/gpt2/a.q8_0.gguf, VOCAB (the tokenizer, for the
 * text functions) to tests/fixtures/tokenizer/gpt2-vocab.gguf.
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

#include <math.h>
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

/* ===================================================================================
 * Text: tokenizer, stream decoder, sampler, generation.
 * The fixture model has no tokenizer; the tokenizer comes from the vocabulary-only
 * GPT-2 GGUF (50257 tokens). Generation pairs the two: the model samples ids below
 * 256, which are GPT-2 byte tokens, so every generated token has text.
 * =================================================================================== */

static int utf8_complete(const unsigned char *s, size_t n) {
    /* The last character of s[0..n] is complete (s is valid UTF-8 text). */
    size_t i = n, k = 0;
    while (i > 0 && k < 4 && (s[i - 1] & 0xC0) == 0x80) {
        i--;
        k++;
    }
    if (i == 0) return k == 0;
    {
        unsigned char b = s[i - 1];
        size_t want = b < 0x80 ? 0 : b >= 0xF0 ? 3 : b >= 0xE0 ? 2 : 1;
        return want == k;
    }
}

static egpt_tokenizer *make_tokenizer(const unsigned char *vocab, size_t vlen, void **arena_out) {
    size_t need = SENT_SIZE;
    unsigned char *arena;
    egpt_tokenizer *tok = (egpt_tokenizer *)SENT_PTR;
    size_t i;

    EXPECT(egpt_tokenizer_arena_size_gguf(NULL, vlen, &need), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_tokenizer_arena_size_gguf(vocab, vlen, NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_tokenizer_arena_size_gguf(vocab, SIZE_MAX, &need), EGPT_ERR_BAD_PARAMETER);
    EXPECT(egpt_tokenizer_arena_size_gguf(vocab, 0, &need), EGPT_ERR_BAD_MAGIC);
    CHECK(is_known_error(egpt_tokenizer_arena_size_gguf(vocab, vlen / 2, &need)));
    CHECK(need == SENT_SIZE);
    EXPECT(egpt_tokenizer_arena_size_gguf(vocab, vlen, &need), EGPT_OK);
    arena = (unsigned char *)malloc(need + 8);
    if (arena == NULL) return NULL;
    EXPECT(egpt_tokenizer_create_gguf(NULL, vlen, arena, need, &tok), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_tokenizer_create_gguf(vocab, vlen, NULL, need, &tok), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_tokenizer_create_gguf(vocab, vlen, arena, need, NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_tokenizer_create_gguf(vocab, vlen, arena, need - 1, &tok), EGPT_ERR_ARENA_TOO_SMALL);
    EXPECT(egpt_tokenizer_create_gguf(vocab, vlen, arena, 0, &tok), EGPT_ERR_ARENA_TOO_SMALL);
    CHECK(is_known_error(egpt_tokenizer_create_gguf(vocab, 100, arena, need, &tok)));
    CHECK(tok == (egpt_tokenizer *)SENT_PTR);
    /* Any arena alignment works with exactly the computed size. */
    for (i = 1; i < 8; i += 3) {
        egpt_tokenizer *t = NULL;
        EXPECT(egpt_tokenizer_create_gguf(vocab, vlen, arena + i, need, &t), EGPT_OK);
        CHECK(t != NULL);
    }
    EXPECT(egpt_tokenizer_create_gguf(vocab, vlen, arena, need, &tok), EGPT_OK);
    *arena_out = arena;
    return tok;
}

static void test_tokenizer(egpt_tokenizer *tok, egpt_context *ctx, const egpt_model *model) {
    static const char hello[] = "Hello world";
    static const char bad_utf8[] = "\xff\xfe" "ab\xc3" "\xe2\x82" "z\xc3\xa9\xed\xa0\x80";
    static const char special[] = "Hello<|endoftext|>";
    uint32_t ids[64], saved[64];
    uint32_t unaligned_store[8];
    char buf[128], saved_buf[128];
    size_t n = SENT_SIZE, i;
    egpt_tokenizer_info ti;
    egpt_tokenizer *zero_tok = (egpt_tokenizer *)(void *)zeros;
    egpt_tokenizer *ctx_as_tok = (egpt_tokenizer *)(void *)ctx;
    const egpt_tokenizer *model_as_tok = (const egpt_tokenizer *)(const void *)model;

    /* A model without tokenizer metadata. */
    EXPECT(egpt_tokenizer_arena_size(model, &n), EGPT_ERR_NO_TOKENIZER);
    EXPECT(egpt_tokenizer_arena_size(NULL, &n), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_tokenizer_arena_size(model, NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_tokenizer_arena_size((const egpt_model *)(const void *)zeros, &n), EGPT_ERR_BAD_STATE);
    EXPECT(egpt_tokenizer_create(model, buf, sizeof buf, (egpt_tokenizer **)&n), EGPT_ERR_NO_TOKENIZER);
    EXPECT(egpt_tokenizer_create(NULL, buf, sizeof buf, (egpt_tokenizer **)&n), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_tokenizer_create(model, NULL, sizeof buf, (egpt_tokenizer **)&n), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_tokenizer_create(model, buf, sizeof buf, NULL), EGPT_ERR_NULL_POINTER);
    CHECK(n == SENT_SIZE);

    /* Info. */
    memset(&ti, 0, sizeof ti);
    ti.struct_size = sizeof ti - 1;
    EXPECT(egpt_tokenizer_get_info(tok, &ti), EGPT_ERR_BAD_STRUCT_SIZE);
    ti.struct_size = sizeof ti;
    EXPECT(egpt_tokenizer_get_info(NULL, &ti), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_tokenizer_get_info(tok, NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_tokenizer_get_info(zero_tok, &ti), EGPT_ERR_BAD_STATE);
    EXPECT(egpt_tokenizer_get_info(model_as_tok, &ti), EGPT_ERR_BAD_STATE);
    CHECK(ti.n_vocab == 0);
    EXPECT(egpt_tokenizer_get_info(tok, &ti), EGPT_OK);
    CHECK(ti.n_vocab == 50257 && ti.n_merges == 50000 && ti.eos == 50256);
    CHECK(ti.max_token_len >= 13 && ti.max_token_len < 256);

    /* Tokenize: NULLs, non-handles, short buffers (needed count reported, buffer untouched). */
    EXPECT(egpt_tokenize(NULL, hello, 11, 0, ids, 64, &n), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_tokenize(tok, hello, 11, 0, ids, 64, NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_tokenize(tok, NULL, 11, 0, ids, 64, &n), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_tokenize(tok, hello, 11, 0, NULL, 64, &n), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_tokenize(zero_tok, hello, 11, 0, ids, 64, &n), EGPT_ERR_BAD_STATE);
    EXPECT(egpt_tokenize(ctx_as_tok, hello, 11, 0, ids, 64, &n), EGPT_ERR_BAD_STATE);
    CHECK(n == SENT_SIZE);
    EXPECT(egpt_tokenize(tok, hello, 11, 0, (uint32_t *)(void *)((char *)unaligned_store + 1), 7, &n),
           EGPT_ERR_BAD_PARAMETER);
    CHECK(n == SENT_SIZE);
    EXPECT(egpt_tokenize(tok, NULL, 0, 0, NULL, 0, &n), EGPT_OK);
    CHECK(n == 0);
    n = SENT_SIZE;
    EXPECT(egpt_tokenize(tok, hello, 11, 0, NULL, 0, &n), EGPT_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 2);
    for (i = 0; i < 64; i++) ids[i] = 0xABCDu;
    memcpy(saved, ids, sizeof ids);
    n = SENT_SIZE;
    EXPECT(egpt_tokenize(tok, hello, 11, 0, ids, 1, &n), EGPT_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 2 && memcmp(ids, saved, sizeof ids) == 0);
    EXPECT(egpt_tokenize(tok, hello, 11, 0, ids, 2, &n), EGPT_OK);
    CHECK(n == 2 && ids[0] == 15496 && ids[1] == 995); /* GPT-2's ids for "Hello", " world" */
    /* Special tokens only with parse_special. */
    EXPECT(egpt_tokenize(tok, special, strlen(special), 1, ids, 64, &n), EGPT_OK);
    CHECK(n == 2 && ids[0] == 15496 && ids[1] == 50256);
    EXPECT(egpt_tokenize(tok, special, strlen(special), 0, ids, 64, &n), EGPT_OK);
    CHECK(n > 2);
    for (i = 0; i < n; i++) CHECK(ids[i] != 50256);
    /* Invalid UTF-8 is defined: byte tokens, and decoding gives the input back. */
    EXPECT(egpt_tokenize(tok, bad_utf8, sizeof bad_utf8 - 1, 0, ids, 64, &n), EGPT_OK);
    {
        size_t m = SENT_SIZE;
        EXPECT(egpt_detokenize(tok, ids, n, 0, buf, sizeof buf, &m), EGPT_OK);
        CHECK(m == sizeof bad_utf8 - 1 && memcmp(buf, bad_utf8, m) == 0);
    }

    /* token_to_piece. */
    memset(buf, 'x', sizeof buf);
    memcpy(saved_buf, buf, sizeof buf);
    n = SENT_SIZE;
    EXPECT(egpt_token_to_piece(NULL, 15496, buf, sizeof buf, &n), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_token_to_piece(tok, 15496, buf, sizeof buf, NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_token_to_piece(tok, 15496, NULL, 5, &n), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_token_to_piece(zero_tok, 15496, buf, sizeof buf, &n), EGPT_ERR_BAD_STATE);
    EXPECT(egpt_token_to_piece(tok, 50257, buf, sizeof buf, &n), EGPT_ERR_TOKEN_OUT_OF_RANGE);
    EXPECT(egpt_token_to_piece(tok, UINT32_MAX, buf, sizeof buf, &n), EGPT_ERR_TOKEN_OUT_OF_RANGE);
    CHECK(n == SENT_SIZE);
    EXPECT(egpt_token_to_piece(tok, 15496, NULL, 0, &n), EGPT_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 5);
    n = SENT_SIZE;
    EXPECT(egpt_token_to_piece(tok, 15496, buf, 4, &n), EGPT_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 5 && memcmp(buf, saved_buf, sizeof buf) == 0);
    EXPECT(egpt_token_to_piece(tok, 15496, buf, 5, &n), EGPT_OK);
    CHECK(n == 5 && memcmp(buf, "Hello", 5) == 0);
    EXPECT(egpt_token_to_piece(tok, 50256, buf, sizeof buf, &n), EGPT_OK);
    CHECK(n == 13 && memcmp(buf, "<|endoftext|>", 13) == 0);

    /* detokenize. */
    ids[0] = 15496;
    ids[1] = 50256;
    ids[2] = 995;
    memcpy(unaligned_store, ids, 3 * sizeof(uint32_t));
    memset(buf, 'x', sizeof buf);
    n = SENT_SIZE;
    EXPECT(egpt_detokenize(NULL, ids, 3, 0, buf, sizeof buf, &n), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_detokenize(tok, NULL, 3, 0, buf, sizeof buf, &n), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_detokenize(tok, ids, 3, 0, NULL, 4, &n), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_detokenize(tok, ids, 3, 0, buf, sizeof buf, NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_detokenize(model_as_tok, ids, 3, 0, buf, sizeof buf, &n), EGPT_ERR_BAD_STATE);
    EXPECT(egpt_detokenize(tok, (const uint32_t *)(const void *)((const char *)unaligned_store + 2), 2, 0,
                           buf, sizeof buf, &n),
           EGPT_ERR_BAD_PARAMETER);
    ids[3] = 50257;
    EXPECT(egpt_detokenize(tok, ids, 4, 0, buf, sizeof buf, &n), EGPT_ERR_TOKEN_OUT_OF_RANGE);
    CHECK(n == SENT_SIZE && buf[0] == 'x');
    EXPECT(egpt_detokenize(tok, ids, 3, 0, NULL, 0, &n), EGPT_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 24);
    n = SENT_SIZE;
    EXPECT(egpt_detokenize(tok, ids, 3, 0, buf, 23, &n), EGPT_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 24 && buf[0] == 'x');
    EXPECT(egpt_detokenize(tok, ids, 3, 0, buf, 24, &n), EGPT_OK);
    CHECK(n == 24 && memcmp(buf, "Hello<|endoftext|> world", 24) == 0);
    EXPECT(egpt_detokenize(tok, ids, 3, 1, buf, sizeof buf, &n), EGPT_OK);
    CHECK(n == 11 && memcmp(buf, "Hello world", 11) == 0);
    EXPECT(egpt_detokenize(tok, NULL, 0, 0, NULL, 0, &n), EGPT_OK);
    CHECK(n == 0);
}

static void test_stream(egpt_tokenizer *tok) {
    static const char text[] = "a\xf0\x9f\xa4\x96 \xc3\xa9\xe2\x82\xac\xe2\x9c\x93 z\xe4\xb8\xad\xe6\x96\x87";
    uint32_t ids[64];
    char out[256], piece[64];
    size_t n_ids = 0, n = SENT_SIZE, total = 0, i, piece_len = 0;
    int held_some = 0;
    egpt_stream_decoder d, saved, zero;

    memset(&zero, 0, sizeof zero);
    EXPECT(egpt_stream_decoder_init(NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_stream_decoder_push(&zero, tok, 64, out, sizeof out, &n), EGPT_ERR_BAD_STATE);
    EXPECT(egpt_stream_decoder_flush(&zero, out, sizeof out, &n), EGPT_ERR_BAD_STATE);
    CHECK(n == SENT_SIZE);
    EXPECT(egpt_stream_decoder_init(&d), EGPT_OK);
    EXPECT(egpt_stream_decoder_push(NULL, tok, 64, out, sizeof out, &n), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_stream_decoder_push(&d, NULL, 64, out, sizeof out, &n), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_stream_decoder_push(&d, tok, 64, NULL, 5, &n), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_stream_decoder_push(&d, tok, 64, out, sizeof out, NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_stream_decoder_push(&d, (const egpt_tokenizer *)(const void *)zeros, 64, out, sizeof out, &n),
           EGPT_ERR_BAD_STATE);
    EXPECT(egpt_stream_decoder_push(&d, tok, 50257, out, sizeof out, &n), EGPT_ERR_TOKEN_OUT_OF_RANGE);
    EXPECT(egpt_stream_decoder_flush(NULL, out, sizeof out, &n), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_stream_decoder_flush(&d, out, sizeof out, NULL), EGPT_ERR_NULL_POINTER);
    CHECK(n == SENT_SIZE);

    EXPECT(egpt_tokenize(tok, text, sizeof text - 1, 0, ids, 64, &n_ids), EGPT_OK);
    for (i = 0; i < n_ids; i++) {
        size_t k = SENT_SIZE;
        EXPECT(egpt_token_to_piece(tok, ids[i], piece, sizeof piece, &piece_len), EGPT_OK);
        /* Too small: the needed size is reported and the decoder is unchanged. */
        saved = d;
        EXPECT(egpt_stream_decoder_push(&d, tok, ids[i], out + total, 0, &k), EGPT_ERR_BUFFER_TOO_SMALL);
        CHECK(k >= piece_len && k <= piece_len + 3 && memcmp(&saved, &d, sizeof d) == 0);
        EXPECT(egpt_stream_decoder_push(&d, tok, ids[i], out + total, k, &n), EGPT_OK);
        if (n != piece_len) held_some = 1;
        total += n;
        CHECK(utf8_complete((const unsigned char *)out, total));
    }
    EXPECT(egpt_stream_decoder_flush(&d, out + total, sizeof out - total, &n), EGPT_OK);
    CHECK(n == 0);
    total += n;
    CHECK(held_some); /* the text has characters split across byte tokens */
    CHECK(total == sizeof text - 1 && memcmp(out, text, total) == 0);

    /* An incomplete character at the end comes out of flush, as it is. */
    EXPECT(egpt_tokenize(tok, "\xe2\x82", 2, 0, ids, 64, &n_ids), EGPT_OK);
    total = 0;
    for (i = 0; i < n_ids; i++) {
        EXPECT(egpt_stream_decoder_push(&d, tok, ids[i], out + total, sizeof out - total, &n), EGPT_OK);
        total += n;
    }
    CHECK(total == 0);
    EXPECT(egpt_stream_decoder_flush(&d, out, 1, &n), EGPT_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 2);
    EXPECT(egpt_stream_decoder_flush(&d, out, 2, &n), EGPT_OK);
    CHECK(n == 2 && memcmp(out, "\xe2\x82", 2) == 0);
    EXPECT(egpt_stream_decoder_flush(&d, NULL, 0, &n), EGPT_OK);
    CHECK(n == 0);
}

static egpt_sampler *make_sampler(const egpt_model *model, const egpt_sampler_params *p, void **arena_out) {
    size_t need = SENT_SIZE;
    unsigned char *arena;
    egpt_sampler *s = NULL;
    EXPECT(egpt_sampler_arena_size(model, p, &need), EGPT_OK);
    arena = (unsigned char *)malloc(need + 8);
    if (arena == NULL) return NULL;
    EXPECT(egpt_sampler_create(model, p, arena + 3, need, &s), EGPT_OK);
    *arena_out = arena;
    return s;
}

static void test_sampler(const egpt_model *model, egpt_context *ctx) {
    egpt_sampler_params p = egpt_sampler_default_params(), q;
    egpt_sampler *s = (egpt_sampler *)SENT_PTR, *g;
    size_t need = SENT_SIZE, i;
    uint32_t t = 0xABCDu, t1, t2, best = 0;
    float *bad;
    void *arena = NULL, *garena = NULL;
    unsigned char small[64];
    egpt_sampler *ctx_as_sampler = (egpt_sampler *)(void *)ctx;

    /* Params out of range. */
    EXPECT(egpt_sampler_arena_size(NULL, &p, &need), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_sampler_arena_size(model, NULL, &need), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_sampler_arena_size(model, &p, NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_sampler_arena_size((const egpt_model *)(const void *)zeros, &p, &need), EGPT_ERR_BAD_STATE);
    q = p; q.struct_size = sizeof q + 8;
    EXPECT(egpt_sampler_arena_size(model, &q, &need), EGPT_ERR_BAD_STRUCT_SIZE);
    q = p; q.struct_size = 0;
    EXPECT(egpt_sampler_arena_size(model, &q, &need), EGPT_ERR_BAD_STRUCT_SIZE);
#define BADP(field, value)                                                          \
    q = p;                                                                          \
    q.field = (value);                                                              \
    EXPECT(egpt_sampler_arena_size(model, &q, &need), EGPT_ERR_BAD_PARAMETER);      \
    EXPECT(egpt_sampler_create(model, &q, small, sizeof small, &s), EGPT_ERR_BAD_PARAMETER)
    BADP(temperature, -1.0f);
    BADP(temperature, (float)NAN);
    BADP(temperature, (float)INFINITY);
    BADP(top_p, 0.0f);
    BADP(top_p, 1.5f);
    BADP(top_p, (float)NAN);
    BADP(min_p, -0.1f);
    BADP(min_p, 2.0f);
    BADP(repeat_penalty, 0.0f);
    BADP(repeat_penalty, -1.0f);
    BADP(repeat_penalty, (float)INFINITY);
    BADP(presence_penalty, (float)NAN);
    BADP(frequency_penalty, (float)-INFINITY);
#undef BADP
    q = p; q.penalty_last_n = SIZE_MAX / 2;
    CHECK(egpt_sampler_arena_size(model, &q, &need) == EGPT_ERR_BAD_PARAMETER ||
          egpt_sampler_arena_size(model, &q, &need) == EGPT_ERR_ARENA_TOO_SMALL);
    CHECK(need == SENT_SIZE);
    EXPECT(egpt_sampler_arena_size(model, &p, &need), EGPT_OK);
    EXPECT(egpt_sampler_create(model, &p, small, sizeof small, &s), EGPT_ERR_ARENA_TOO_SMALL);
    EXPECT(egpt_sampler_create(NULL, &p, small, sizeof small, &s), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_sampler_create(model, &p, NULL, need, &s), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_sampler_create(model, &p, small, need, NULL), EGPT_ERR_NULL_POINTER);
    CHECK(s == (egpt_sampler *)SENT_PTR);
    s = make_sampler(model, &p, &arena);
    if (s == NULL) { n_fail++; return; }

    /* sample / accept / reset. */
    bad = (float *)malloc((n_vocab + 1) * sizeof(float));
    if (bad == NULL) { n_fail++; free(arena); return; }
    EXPECT(egpt_sampler_sample(NULL, reference, n_vocab, &t), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_sampler_sample(s, NULL, n_vocab, &t), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_sampler_sample(s, reference, n_vocab, NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_sampler_sample(ctx_as_sampler, reference, n_vocab, &t), EGPT_ERR_BAD_STATE);
    EXPECT(egpt_sampler_sample((egpt_sampler *)(void *)zeros, reference, n_vocab, &t), EGPT_ERR_BAD_STATE);
    EXPECT(egpt_sampler_sample(s, reference, n_vocab - 1, &t), EGPT_ERR_BAD_PARAMETER);
    EXPECT(egpt_sampler_sample(s, reference, n_vocab + 1, &t), EGPT_ERR_BAD_PARAMETER);
    EXPECT(egpt_sampler_sample(s, (const float *)(const void *)((const char *)bad + 1), n_vocab, &t),
           EGPT_ERR_BAD_PARAMETER);
    for (i = 0; i < n_vocab; i++) bad[i] = (i % 2) ? (float)NAN : (float)-INFINITY;
    EXPECT(egpt_sampler_sample(s, bad, n_vocab, &t), EGPT_ERR_NO_CANDIDATES);
    CHECK(t == 0xABCDu);
    EXPECT(egpt_sampler_accept(NULL, 1), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_sampler_accept(ctx_as_sampler, 1), EGPT_ERR_BAD_STATE);
    EXPECT(egpt_sampler_reset(NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_sampler_reset((egpt_sampler *)(void *)zeros), EGPT_ERR_BAD_STATE);
    /* Deterministic: the same draws after a reset. */
    EXPECT(egpt_sampler_reset(s), EGPT_OK);
    EXPECT(egpt_sampler_sample(s, reference, n_vocab, &t1), EGPT_OK);
    EXPECT(egpt_sampler_accept(s, t1), EGPT_OK);
    EXPECT(egpt_sampler_sample(s, reference, n_vocab, &t2), EGPT_OK);
    EXPECT(egpt_sampler_reset(s), EGPT_OK);
    EXPECT(egpt_sampler_sample(s, reference, n_vocab, &t), EGPT_OK);
    CHECK(t == t1);
    EXPECT(egpt_sampler_accept(s, t), EGPT_OK);
    EXPECT(egpt_sampler_sample(s, reference, n_vocab, &t), EGPT_OK);
    CHECK(t == t2);
    /* Greedy is the argmax (first index of the maximum). */
    q = egpt_sampler_greedy_params();
    g = make_sampler(model, &q, &garena);
    for (i = 1; i < n_vocab; i++) if (reference[i] > reference[best]) best = (uint32_t)i;
    if (g != NULL) {
        EXPECT(egpt_sampler_sample(g, reference, n_vocab, &t), EGPT_OK);
        CHECK(t == best);
    }
    free(bad);
    free(garena);
    free(arena);
}

/* Callback state for the generation tests. */
struct gen_log {
    egpt_context *ctx;
    egpt_sampler *sampler;
    const egpt_tokenizer *tok;
    uint32_t ids[64];
    size_t n_ids, n_bytes, stop_after;
    char text[1024];
    int reentrant_ok, saw_no_token;
};

static int log_token(void *user, uint32_t token, const char *bytes, size_t len) {
    struct gen_log *g = (struct gen_log *)user;
    uint32_t one = 1;
    size_t n = SENT_SIZE;
    char piece[64];
    if (token == EGPT_NO_TOKEN) {
        g->saw_no_token = 1;
    } else if (g->n_ids < 64) {
        g->ids[g->n_ids++] = token;
    }
    if (g->n_bytes + len <= sizeof g->text) {
        memcpy(g->text + g->n_bytes, bytes, len);
        g->n_bytes += len;
    }
    if (g->ctx != NULL) {
        /* The context and sampler are busy; the tokenizer is not. */
        g->reentrant_ok &= egpt_context_eval(g->ctx, &one, 1) == EGPT_ERR_BAD_STATE;
        g->reentrant_ok &= egpt_context_reset(g->ctx) == EGPT_ERR_BAD_STATE;
        g->reentrant_ok &= egpt_sampler_reset(g->sampler) == EGPT_ERR_BAD_STATE;
        g->reentrant_ok &= egpt_generate(g->ctx, g->tok, g->sampler, &one, 1, NULL, NULL, NULL, NULL) ==
                           EGPT_ERR_NULL_POINTER;
        if (token != EGPT_NO_TOKEN) {
            g->reentrant_ok &= egpt_token_to_piece(g->tok, token, piece, sizeof piece, &n) == EGPT_OK;
        }
    }
    return g->stop_after != 0 && g->n_ids >= g->stop_after;
}

static void test_generate(const egpt_model *model, egpt_context *ctx, egpt_tokenizer *tok, size_t n_ctx) {
    egpt_sampler_params sp = egpt_sampler_greedy_params();
    egpt_generate_params gp = egpt_generate_default_params(), q;
    egpt_generate_result r, saved;
    egpt_sampler *s;
    void *sarena = NULL;
    struct gen_log log;
    const char *stops[9] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
    size_t lens[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    const char *null_stop[1] = {NULL};
    static const char long_stop[EGPT_MAX_STOP_LEN + 1] = {0};
    const char *long_stops[1];
    size_t long_len = EGPT_MAX_STOP_LEN + 1, n_past = SENT_SIZE, i;
    uint32_t big = 300, manual[8];
    const float *l = NULL;
    size_t nv = 0;

    long_stops[0] = long_stop;
    s = make_sampler(model, &sp, &sarena);
    if (s == NULL) { n_fail++; return; }
    memset(&r, 0x5A, sizeof r);
    r.struct_size = sizeof r;
    saved = r;
    gp.max_tokens = 4;

    /* NULLs, non-handles, struct sizes. */
    EXPECT(egpt_generate(NULL, tok, s, PROMPT, 3, &gp, NULL, NULL, &r), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_generate(ctx, NULL, s, PROMPT, 3, &gp, NULL, NULL, &r), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_generate(ctx, tok, NULL, PROMPT, 3, &gp, NULL, NULL, &r), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_generate(ctx, tok, s, NULL, 3, &gp, NULL, NULL, &r), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_generate(ctx, tok, s, PROMPT, 3, NULL, NULL, NULL, &r), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_generate(ctx, tok, s, PROMPT, 3, &gp, NULL, NULL, NULL), EGPT_ERR_NULL_POINTER);
    EXPECT(egpt_generate((egpt_context *)(void *)s, tok, s, PROMPT, 3, &gp, NULL, NULL, &r), EGPT_ERR_BAD_STATE);
    EXPECT(egpt_generate(ctx, (const egpt_tokenizer *)(const void *)ctx, s, PROMPT, 3, &gp, NULL, NULL, &r),
           EGPT_ERR_BAD_STATE);
    EXPECT(egpt_generate(ctx, tok, (egpt_sampler *)(void *)tok, PROMPT, 3, &gp, NULL, NULL, &r),
           EGPT_ERR_BAD_STATE);
    q = gp; q.struct_size = sizeof q - 1;
    EXPECT(egpt_generate(ctx, tok, s, PROMPT, 3, &q, NULL, NULL, &r), EGPT_ERR_BAD_STRUCT_SIZE);
    r.struct_size = sizeof r + 1;
    EXPECT(egpt_generate(ctx, tok, s, PROMPT, 3, &gp, NULL, NULL, &r), EGPT_ERR_BAD_STRUCT_SIZE);
    r.struct_size = sizeof r;
    /* Stop strings: too many, empty, too long, NULL. */
    q = gp; q.stop_strings = stops; q.stop_lens = lens; q.n_stop = EGPT_MAX_STOPS + 1;
    EXPECT(egpt_generate(ctx, tok, s, PROMPT, 3, &q, NULL, NULL, &r), EGPT_ERR_BAD_PARAMETER);
    q.n_stop = SIZE_MAX;
    EXPECT(egpt_generate(ctx, tok, s, PROMPT, 3, &q, NULL, NULL, &r), EGPT_ERR_BAD_PARAMETER);
    lens[2] = 0; q.n_stop = 3;
    EXPECT(egpt_generate(ctx, tok, s, PROMPT, 3, &q, NULL, NULL, &r), EGPT_ERR_BAD_PARAMETER);
    lens[2] = 1;
    q.stop_strings = long_stops; q.stop_lens = &long_len; q.n_stop = 1;
    EXPECT(egpt_generate(ctx, tok, s, PROMPT, 3, &q, NULL, NULL, &r), EGPT_ERR_BAD_PARAMETER);
    q.stop_strings = null_stop; q.stop_lens = lens;
    EXPECT(egpt_generate(ctx, tok, s, PROMPT, 3, &q, NULL, NULL, &r), EGPT_ERR_NULL_POINTER);
    q.stop_strings = NULL;
    EXPECT(egpt_generate(ctx, tok, s, PROMPT, 3, &q, NULL, NULL, &r), EGPT_ERR_NULL_POINTER);
    q.stop_strings = stops; q.stop_lens = NULL;
    EXPECT(egpt_generate(ctx, tok, s, PROMPT, 3, &q, NULL, NULL, &r), EGPT_ERR_NULL_POINTER);
    /* Prompt errors: nothing evaluated. */
    EXPECT(egpt_context_reset(ctx), EGPT_OK);
    EXPECT(egpt_generate(ctx, tok, s, NULL, 0, &gp, NULL, NULL, &r), EGPT_ERR_NO_LOGITS); /* wrong order */
    EXPECT(egpt_generate(ctx, tok, s, &big, 1, &gp, NULL, NULL, &r), EGPT_ERR_TOKEN_OUT_OF_RANGE);
    EXPECT(egpt_generate(ctx, tok, s, PROMPT, SIZE_MAX, &gp, NULL, NULL, &r), EGPT_ERR_CONTEXT_FULL);
    EXPECT(egpt_generate(ctx, tok, s, PROMPT, n_ctx + 1, &gp, NULL, NULL, &r), EGPT_ERR_CONTEXT_FULL);
    EXPECT(egpt_generate(ctx, tok, s, (const uint32_t *)(const void *)((const char *)PROMPT + 1), 2, &gp, NULL,
                         NULL, &r),
           EGPT_ERR_BAD_PARAMETER);
    EXPECT(egpt_context_n_past(ctx, &n_past), EGPT_OK);
    CHECK(n_past == 0);
    CHECK(memcmp(&r, &saved, sizeof r) == 0);
    CHECK(usable(ctx));

    /* Greedy generation equals the manual loop (sample argmax, eval), and a stop
     * before the budget never evaluates the last token. */
    EXPECT(egpt_context_reset(ctx), EGPT_OK);
    EXPECT(egpt_context_eval(ctx, PROMPT, 3), EGPT_OK);
    for (i = 0; i < 6; i++) {
        EXPECT(egpt_context_logits(ctx, &l, &nv), EGPT_OK);
        EXPECT(egpt_sampler_sample(s, l, nv, &manual[i]), EGPT_OK);
        EXPECT(egpt_context_eval(ctx, &manual[i], 1), EGPT_OK);
    }
    EXPECT(egpt_context_reset(ctx), EGPT_OK);
    EXPECT(egpt_sampler_reset(s), EGPT_OK);
    memset(&log, 0, sizeof log);
    log.ctx = ctx; log.sampler = s; log.tok = tok; log.reentrant_ok = 1;
    gp.max_tokens = 6;
    EXPECT(egpt_generate(ctx, tok, s, PROMPT, 3, &gp, log_token, &log, &r), EGPT_OK);
    CHECK(r.stop_reason == EGPT_STOP_BUDGET && r.n_sampled == 6 && r.n_emitted == 6 && r.stop_index == -1);
    CHECK(log.n_ids == 6 && memcmp(log.ids, manual, 6 * sizeof(uint32_t)) == 0);
    CHECK(r.unevaluated == manual[5]);
    CHECK(log.reentrant_ok);
    EXPECT(egpt_context_n_past(ctx, &n_past), EGPT_OK);
    CHECK(n_past == 3 + 5);
    {   /* The text given to the callback is the detokenized ids. */
        char want[256];
        size_t m = 0;
        EXPECT(egpt_detokenize(tok, log.ids, log.n_ids, 0, want, sizeof want, &m), EGPT_OK);
        CHECK(m == log.n_bytes && memcmp(want, log.text, m) == 0);
    }
    /* Continue: evaluate the unevaluated token, then generate from the context. */
    EXPECT(egpt_context_eval(ctx, &r.unevaluated, 1), EGPT_OK);
    gp.max_tokens = 1;
    memset(&log, 0, sizeof log);
    EXPECT(egpt_generate(ctx, tok, s, NULL, 0, &gp, log_token, &log, &r), EGPT_OK);
    CHECK(r.stop_reason == EGPT_STOP_BUDGET && log.n_ids == 1);

    /* The callback stops generation. */
    EXPECT(egpt_context_reset(ctx), EGPT_OK);
    EXPECT(egpt_sampler_reset(s), EGPT_OK);
    memset(&log, 0, sizeof log);
    log.stop_after = 2;
    gp.max_tokens = 0;
    EXPECT(egpt_generate(ctx, tok, s, PROMPT, 3, &gp, log_token, &log, &r), EGPT_OK);
    CHECK(r.stop_reason == EGPT_STOP_CALLBACK && r.n_emitted == 2 && log.n_ids == 2 && !log.saw_no_token);

    /* No limit: runs until the context is full. */
    EXPECT(egpt_context_reset(ctx), EGPT_OK);
    memset(&log, 0, sizeof log);
    EXPECT(egpt_generate(ctx, tok, s, PROMPT, 3, &gp, NULL, NULL, &r), EGPT_OK);
    CHECK(r.stop_reason == EGPT_STOP_CONTEXT_FULL && r.n_sampled == n_ctx - 3 + 1);
    /* A full context: a prompt no longer fits; generation from it stops at once. */
    EXPECT(egpt_generate(ctx, tok, s, PROMPT, 1, &gp, NULL, NULL, &r), EGPT_ERR_CONTEXT_FULL);

    /* A stop string: the text before it is emitted, nothing after. */
    EXPECT(egpt_context_reset(ctx), EGPT_OK);
    EXPECT(egpt_sampler_reset(s), EGPT_OK);
    memset(&log, 0, sizeof log);
    gp.max_tokens = 6;
    EXPECT(egpt_generate(ctx, tok, s, PROMPT, 3, &gp, log_token, &log, &r), EGPT_OK);
    if (log.n_bytes >= 4) {
        /* stop at the 3rd..4th generated bytes */
        char stop[2];
        const char *sp1[1];
        size_t sl = 2;
        struct gen_log log2;
        memcpy(stop, log.text + 2, 2);
        sp1[0] = stop;
        q = gp; q.stop_strings = sp1; q.stop_lens = &sl; q.n_stop = 1;
        EXPECT(egpt_context_reset(ctx), EGPT_OK);
        EXPECT(egpt_sampler_reset(s), EGPT_OK);
        memset(&log2, 0, sizeof log2);
        EXPECT(egpt_generate(ctx, tok, s, PROMPT, 3, &q, log_token, &log2, &r), EGPT_OK);
        CHECK(r.stop_reason == EGPT_STOP_STRING && r.stop_index == 0);
        /* the first occurrence of the stop string in the text cuts it */
        for (i = 0; i + 1 < log.n_bytes; i++) {
            if (memcmp(log.text + i, stop, 2) == 0) break;
        }
        CHECK(log2.n_bytes == i && memcmp(log2.text, log.text, i) == 0);
    } else {
        n_fail++;
        printf("FAIL: generated text too short for the stop-string test\n");
    }
    CHECK(usable(ctx));
    free(sarena);
}

int main(int argc, char **argv) {
    static const char *const defaults[] = {"tests/fixtures/gpt2/a.q8_0.gguf",
                                           "../tests/fixtures/gpt2/a.q8_0.gguf", NULL};
    static const char *const vocab_defaults[] = {"tests/fixtures/tokenizer/gpt2-vocab.gguf",
                                                 "../tests/fixtures/tokenizer/gpt2-vocab.gguf", NULL};
    const char *path = argc > 1 ? argv[1] : first_existing(defaults);
    const char *vocab_path = argc > 3 ? argv[3] : first_existing(vocab_defaults);
    unsigned char *bytes, *vocab = NULL;
    size_t vocab_len = 0;
    void *tok_arena = NULL;
    egpt_tokenizer *tok = NULL;
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
    if (vocab_path == NULL || (vocab = read_file(vocab_path, &vocab_len)) == NULL ||
        (tok = make_tokenizer(vocab, vocab_len, &tok_arena)) == NULL) {
        printf("FAIL: no tokenizer (gpt2-vocab.gguf)\n");
        n_fail++;
    } else {
        test_tokenizer(tok, ctx, model);
        test_stream(tok);
        test_sampler(model, ctx);
        test_generate(model, ctx, tok, info.n_ctx);
    }
    /* The model and the first context survived everything. */
    CHECK(usable(ctx));
    EXPECT(egpt_context_logits(ctx, &l, &n), EGPT_OK);

    free(reference);
    free(arena);
    free(tok_arena);
    free(vocab);
    free(bytes);
    printf("bad_input: %d passed, %d failed\n", n_pass, n_fail);
    return n_fail == 0 ? 0 : 1;
}
