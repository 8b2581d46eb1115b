/*
 * host_ref.c: the firmware's decoding on the host, as the reference ci.sh compares
 * the Cortex-M runs with: open MODEL, evaluate the prompt ids, then N_GEN times
 * take the argmax of the logits (ties to the lowest id) and evaluate it. Prints
 * "generated: ID ..." like the firmware. Links the host libembergpt.a (make -C
 * c-examples lib).
 *
 *   host_ref MODEL.gguf N_GEN ID ...
 */
#include "embergpt.h"
#include "example_util.h"

#include <stdio.h>
#include <stdlib.h>

static uint64_t model_mem[EGPT_MODEL_STORAGE_SIZE / sizeof(uint64_t)];

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: host_ref MODEL N_GEN ID ...\n");
        return 2;
    }
    size_t len = 0, n_prompt = 0, need = 0, n_vocab = 0;
    long n_gen = strtol(argv[2], NULL, 10);
    uint32_t prompt[256];
    for (int i = 3; i < argc && n_prompt < 256; i++)
        prompt[n_prompt++] = (uint32_t)strtoul(argv[i], NULL, 10);
    unsigned char *bytes = read_file(argv[1], &len);
    egpt_model *model = NULL;
    egpt_context *ctx = NULL;
    const float *logits = NULL;
    if (bytes == NULL || egpt_model_open(bytes, len, model_mem, sizeof model_mem, &model) != EGPT_OK)
        return 1;
    egpt_context_params params = egpt_context_default_params();
    params.n_batch = 8; /* as the firmware (results do not depend on it) */
    if (egpt_context_arena_size(model, &params, &need) != EGPT_OK)
        return 1;
    void *arena = malloc(need);
    if (arena == NULL || egpt_context_create(model, &params, arena, need, &ctx) != EGPT_OK ||
        egpt_context_eval(ctx, prompt, n_prompt) != EGPT_OK)
        return 1;
    printf("generated:");
    for (long i = 0; i < n_gen; i++) {
        if (egpt_context_logits(ctx, &logits, &n_vocab) != EGPT_OK)
            return 1;
        uint32_t best = 0;
        for (size_t v = 1; v < n_vocab; v++)
            if (logits[v] > logits[best])
                best = (uint32_t)v;
        printf(" %u", (unsigned)best);
        if (i + 1 < n_gen && egpt_context_eval(ctx, &best, 1) != EGPT_OK)
            return 1;
    }
    printf("\n");
    free(arena);
    free(bytes);
    return 0;
}
