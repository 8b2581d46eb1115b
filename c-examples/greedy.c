/*
 * greedy.c: greedy decoding on token ids through the embergpt C API (C99),
 * with the model/context functions only (no tokenizer: any GPT-2 GGUF works).
 * For text in and text out see generate.c.
 *
 *   greedy [MODEL.gguf] [N_STEPS] [PROMPT_TOKEN_ID ...]
 *
 * MODEL defaults to cli/assets/shakespeare-q8_0.gguf if present, else
 * tests/fixtures/gpt2/a.q8_0.gguf (looked up from the repository root or from
 * c-examples/). It evaluates the prompt ids, then repeatedly picks the argmax
 * token (first index of the maximum) and evaluates it, printing each id. The
 * last line is "generated: ID ID ..." (parsed by tests/c_examples.rs, which
 * compares it with the Rust API).
 *
 * Memory: the file bytes (read by this program), the model handle (static
 * storage of EGPT_MODEL_STORAGE_SIZE bytes) and one arena of the size the
 * library computes, allocated once. The library itself allocates nothing.
 */
#include "embergpt.h"
#include "example_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PROMPT 64

static uint64_t model_mem[EGPT_MODEL_STORAGE_SIZE / sizeof(uint64_t)];

static int fail(const char *what, egpt_status s) {
    fprintf(stderr, "%s: %s (status %u)\n", what, egpt_status_str(s), (unsigned)s);
    return 1;
}

static uint32_t argmax(const float *v, size_t n) {
    size_t i, best = 0;
    for (i = 1; i < n; i++) {
        if (v[i] > v[best]) {
            best = i;
        }
    }
    return (uint32_t)best;
}

int main(int argc, char **argv) {
    static const char *const defaults[] = {
        "cli/assets/shakespeare-q8_0.gguf", "../cli/assets/shakespeare-q8_0.gguf",
        "tests/fixtures/gpt2/a.q8_0.gguf",  "../tests/fixtures/gpt2/a.q8_0.gguf", NULL};
    const char *path = argc > 1 ? argv[1] : first_existing(defaults);
    long steps = argc > 2 ? strtol(argv[2], NULL, 10) : 16;
    uint32_t prompt[MAX_PROMPT];
    size_t n_prompt = 0, bytes_len = 0, arena_len = 0, n_past = 0, n_vocab = 0;
    unsigned char *bytes = NULL;
    void *arena = NULL;
    egpt_model *model = NULL;
    egpt_context *ctx = NULL;
    egpt_model_info info;
    egpt_context_params params;
    egpt_backend backend = EGPT_BACKEND_AUTO;
    egpt_status s;
    const float *logits = NULL;
    int i, rc = 1;

    printf("embergpt %s (ABI %u)\n", egpt_version(), (unsigned)egpt_abi_version());
    if (path == NULL) {
        fprintf(stderr, "no model given and no default model found\n");
        return 1;
    }
    if (egpt_model_size() > sizeof model_mem) {
        fprintf(stderr, "model handle needs %zu bytes\n", egpt_model_size());
        return 1;
    }
    bytes = read_file(path, &bytes_len);
    if (bytes == NULL) {
        return 1;
    }
    s = egpt_model_open(bytes, bytes_len, model_mem, sizeof model_mem, &model);
    if (s != EGPT_OK) {
        rc = fail("egpt_model_open", s);
        goto out;
    }
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    s = egpt_model_get_info(model, &info);
    if (s != EGPT_OK) {
        rc = fail("egpt_model_get_info", s);
        goto out;
    }
    printf("model: %s arch=%s n_vocab=%zu n_ctx=%zu n_embd=%zu n_layer=%zu n_head=%zu n_ff=%zu "
           "weights=%s\n",
           path, info.architecture, info.n_vocab, info.n_ctx, info.n_embd, info.n_layer,
           info.n_head, info.n_ff, egpt_type_name(info.weight_type));

    for (i = 3; i < argc && n_prompt < MAX_PROMPT; i++) {
        prompt[n_prompt++] = (uint32_t)strtoul(argv[i], NULL, 10);
    }
    if (n_prompt == 0) {
        prompt[0] = 1 % (uint32_t)info.n_vocab;
        prompt[1] = 2 % (uint32_t)info.n_vocab;
        prompt[2] = 3 % (uint32_t)info.n_vocab;
        n_prompt = 3;
    }

    params = egpt_context_default_params();
    if (params.n_batch > info.n_ctx) {
        params.n_batch = info.n_ctx;
    }
    s = egpt_context_arena_size(model, &params, &arena_len);
    if (s != EGPT_OK) {
        rc = fail("egpt_context_arena_size", s);
        goto out;
    }
    arena = malloc(arena_len);
    if (arena == NULL) {
        fprintf(stderr, "cannot allocate %zu arena bytes\n", arena_len);
        goto out;
    }
    s = egpt_context_create(model, &params, arena, arena_len, &ctx);
    if (s != EGPT_OK) {
        rc = fail("egpt_context_create", s);
        goto out;
    }
    (void)egpt_context_backend(ctx, &backend);
    printf("arena: %zu bytes, backend %s\n", arena_len, egpt_backend_name(backend));

    printf("prompt:");
    for (i = 0; i < (int)n_prompt; i++) {
        printf(" %u", (unsigned)prompt[i]);
    }
    printf("\n");
    s = egpt_context_eval(ctx, prompt, n_prompt);
    if (s != EGPT_OK) {
        rc = fail("egpt_context_eval (prompt)", s);
        goto out;
    }

    printf("generated:");
    for (i = 0; i < steps; i++) {
        uint32_t next;
        s = egpt_context_logits(ctx, &logits, &n_vocab);
        if (s != EGPT_OK) {
            rc = fail("egpt_context_logits", s);
            goto out;
        }
        next = argmax(logits, n_vocab);
        printf(" %u", (unsigned)next);
        fflush(stdout);
        s = egpt_context_eval(ctx, &next, 1);
        if (s == EGPT_ERR_CONTEXT_FULL) {
            break; /* the context is full: stop, as any generator must */
        }
        if (s != EGPT_OK) {
            printf("\n");
            rc = fail("egpt_context_eval", s);
            goto out;
        }
    }
    printf("\n");
    (void)egpt_context_n_past(ctx, &n_past);
    fprintf(stderr, "n_past %zu\n", n_past);
    rc = 0;
out:
    free(arena);
    free(bytes);
    return rc;
}
