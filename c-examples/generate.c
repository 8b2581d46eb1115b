/*
 * generate.c: text in, text out through the embergpt C API (C99).
 *
 *   generate [MODEL.gguf] [PROMPT] [MAX_TOKENS] [STOP]
 *
 * MODEL defaults to the bundled cli/assets/shakespeare-q8_0.gguf (looked up from
 * the repository root or from c-examples/); it must carry a tokenizer in its
 * metadata. PROMPT defaults to "ROMEO:", MAX_TOKENS to 64; STOP is an optional
 * stop string. Sampling uses the default chain (temperature 0.8, top-k 40,
 * top-p 0.95, min-p 0.05) with the fixed seed 42, so the output is the same on
 * every run and platform.
 *
 * stdout: the prompt, then the generated text as it streams, then a newline
 * (tests/c_examples.rs compares it with the Rust API). stderr: what happened.
 *
 * Memory: the file bytes (read by this program), the model handle (static
 * storage) and ONE block holding the three arenas (context, tokenizer,
 * sampler) at the sizes the library computes, allocated once before anything
 * runs; plus the prompt's token ids. The library itself allocates nothing.
 */
#include "embergpt.h"
#include "example_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED 42

static uint64_t model_mem[EGPT_MODEL_STORAGE_SIZE / sizeof(uint64_t)];

static int fail(const char *what, egpt_status s) {
    fprintf(stderr, "%s: %s (status %u)\n", what, egpt_status_str(s), (unsigned)s);
    return 1;
}

/* The per-token callback: print the token's (UTF-8-complete) text as it comes. */
static int on_token(void *user, uint32_t token, const char *bytes, size_t len) {
    size_t *n_bytes = (size_t *)user;
    (void)token;
    fwrite(bytes, 1, len, stdout);
    fflush(stdout);
    *n_bytes += len;
    return 0; /* nonzero would stop generation */
}

static const char *reason_name(egpt_stop_reason r) {
    switch (r) {
    case EGPT_STOP_EOS: return "end of text";
    case EGPT_STOP_STRING: return "stop string";
    case EGPT_STOP_BUDGET: return "max tokens";
    case EGPT_STOP_CONTEXT_FULL: return "context full";
    case EGPT_STOP_CALLBACK: return "callback";
    default: return "?";
    }
}

int main(int argc, char **argv) {
    static const char *const defaults[] = {"cli/assets/shakespeare-q8_0.gguf",
                                           "../cli/assets/shakespeare-q8_0.gguf", NULL};
    const char *path = argc > 1 ? argv[1] : first_existing(defaults);
    const char *prompt = argc > 2 ? argv[2] : "ROMEO:";
    long max_tokens = argc > 3 ? strtol(argv[3], NULL, 10) : 64;
    const char *stop = argc > 4 ? argv[4] : NULL;
    size_t bytes_len = 0, ctx_len = 0, tok_len = 0, smp_len = 0, n_prompt = 0, n_text = 0;
    unsigned char *bytes = NULL, *arenas = NULL;
    uint32_t *ids = NULL;
    egpt_model *model = NULL;
    egpt_context *ctx = NULL;
    egpt_tokenizer *tok = NULL;
    egpt_sampler *sampler = NULL;
    egpt_model_info info;
    egpt_context_params cp;
    egpt_sampler_params sp;
    egpt_generate_params gp;
    egpt_generate_result res;
    egpt_status s;
    size_t stop_len = stop != NULL ? strlen(stop) : 0;
    int rc = 1;

    if (path == NULL) {
        fprintf(stderr, "no model given and cli/assets/shakespeare-q8_0.gguf not found\n");
        return 1;
    }
    if ((bytes = read_file(path, &bytes_len)) == NULL) {
        return 1;
    }
    s = egpt_model_open(bytes, bytes_len, model_mem, sizeof model_mem, &model);
    if (s != EGPT_OK) {
        rc = fail("egpt_model_open", s);
        goto out;
    }
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    if ((s = egpt_model_get_info(model, &info)) != EGPT_OK) {
        rc = fail("egpt_model_get_info", s);
        goto out;
    }

    /* 1. Ask for the three arena sizes, then allocate once. */
    cp = egpt_context_default_params();
    if (cp.n_batch > info.n_ctx) {
        cp.n_batch = info.n_ctx;
    }
    sp = egpt_sampler_default_params();
    sp.seed = SEED;
    if ((s = egpt_context_arena_size(model, &cp, &ctx_len)) != EGPT_OK) {
        rc = fail("egpt_context_arena_size", s);
        goto out;
    }
    if ((s = egpt_tokenizer_arena_size(model, &tok_len)) != EGPT_OK) {
        rc = fail("egpt_tokenizer_arena_size (does the model have a tokenizer?)", s);
        goto out;
    }
    if ((s = egpt_sampler_arena_size(model, &sp, &smp_len)) != EGPT_OK) {
        rc = fail("egpt_sampler_arena_size", s);
        goto out;
    }
    arenas = (unsigned char *)malloc(ctx_len + tok_len + smp_len);
    if (arenas == NULL) {
        fprintf(stderr, "cannot allocate %zu arena bytes\n", ctx_len + tok_len + smp_len);
        goto out;
    }
    /* Any alignment works: the three arenas are simply consecutive. */
    if ((s = egpt_context_create(model, &cp, arenas, ctx_len, &ctx)) != EGPT_OK ||
        (s = egpt_tokenizer_create(model, arenas + ctx_len, tok_len, &tok)) != EGPT_OK ||
        (s = egpt_sampler_create(model, &sp, arenas + ctx_len + tok_len, smp_len, &sampler)) !=
            EGPT_OK) {
        rc = fail("create", s);
        goto out;
    }
    fprintf(stderr, "model %s: n_vocab=%zu n_ctx=%zu n_layer=%zu weights=%s; arenas: context %zu, "
                    "tokenizer %zu, sampler %zu bytes\n",
            path, info.n_vocab, info.n_ctx, info.n_layer, egpt_type_name(info.weight_type),
            ctx_len, tok_len, smp_len);

    /* 2. Tokenize the prompt: a size query (NULL, 0) first, then the ids. */
    s = egpt_tokenize(tok, prompt, strlen(prompt), 0, NULL, 0, &n_prompt);
    if (s != EGPT_OK && s != EGPT_ERR_BUFFER_TOO_SMALL) {
        rc = fail("egpt_tokenize (count)", s);
        goto out;
    }
    ids = (uint32_t *)malloc((n_prompt > 0 ? n_prompt : 1) * sizeof *ids);
    if (ids == NULL) {
        goto out;
    }
    if ((s = egpt_tokenize(tok, prompt, strlen(prompt), 0, ids, n_prompt, &n_prompt)) != EGPT_OK) {
        rc = fail("egpt_tokenize", s);
        goto out;
    }
    fprintf(stderr, "prompt: %zu tokens\n", n_prompt);

    /* 3. Generate, streaming text to stdout. */
    gp = egpt_generate_default_params();
    gp.max_tokens = max_tokens > 0 ? (size_t)max_tokens : 0;
    if (stop != NULL) {
        gp.stop_strings = &stop;
        gp.stop_lens = &stop_len;
        gp.n_stop = 1;
    }
    memset(&res, 0, sizeof res);
    res.struct_size = sizeof res;
    fputs(prompt, stdout);
    s = egpt_generate(ctx, tok, sampler, ids, n_prompt, &gp, on_token, &n_text, &res);
    fputs("\n", stdout);
    if (s != EGPT_OK) {
        rc = fail("egpt_generate", s);
        goto out;
    }
    fprintf(stderr, "[%s after %zu tokens, %zu bytes]\n", reason_name(res.stop_reason),
            res.n_sampled, n_text);
    rc = 0;
out:
    free(ids);
    free(arenas);
    free(bytes);
    return rc;
}
