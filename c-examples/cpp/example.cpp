// example.cpp: greedy decoding with the C++ wrapper, then a check that the
// logits of one batched eval_all equal those of decoding token by token.
//   cpp_example [MODEL.gguf]
#include "embergpt.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "tests/fixtures/gpt2/a.q8_0.gguf";
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        std::fprintf(stderr, "cannot open %s\n", path);
        return 1;
    }
    const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    try {
        embergpt::Model model(bytes.data(), bytes.size());
        const egpt_model_info info = model.info();
        egpt_context_params p = egpt_context_default_params();
        p.n_batch = std::min<std::size_t>(8, info.n_ctx);
        p.logits_all = 1;
        embergpt::Context ctx(model, p);
        std::printf("cpp: %s, %zu-token vocabulary, arena %zu bytes\n", info.architecture, info.n_vocab,
                    ctx.arena_bytes());

        std::vector<std::uint32_t> seq = {1, 2, 3};
        ctx.eval(seq);
        for (int i = 0; i < 5; i++) {
            const embergpt::FloatView l = ctx.logits();
            const auto next = static_cast<std::uint32_t>(std::max_element(l.begin(), l.end()) - l.begin());
            seq.push_back(next);
            ctx.eval(next);
        }
        std::printf("cpp: greedy");
        for (auto t : seq) std::printf(" %u", static_cast<unsigned>(t));
        std::printf("\n");

        // eval_all over the first 8 tokens == the same tokens decoded one by one.
        const std::vector<std::uint32_t> batch(seq.begin(), seq.begin() + 8);
        ctx.reset();
        ctx.eval_all(batch);
        std::size_t rows = 0;
        const embergpt::FloatView all = ctx.all_logits(rows);
        const std::vector<float> saved(all.begin(), all.end());
        ctx.reset();
        for (std::size_t i = 0; i < rows; i++) {
            ctx.eval(batch[i]);
            const embergpt::FloatView l = ctx.logits();
            if (std::memcmp(l.data, saved.data() + i * info.n_vocab, info.n_vocab * sizeof(float)) != 0) {
                std::fprintf(stderr, "cpp: row %zu differs between eval_all and eval\n", i);
                return 1;
            }
        }

        // Errors surface as exceptions carrying the status.
        try {
            ctx.rewind(ctx.n_past() + 1);
            std::fprintf(stderr, "cpp: rewind past the end did not throw\n");
            return 1;
        } catch (const embergpt::Error &e) {
            if (e.status() != EGPT_ERR_BAD_POSITION) return 1;
            std::printf("cpp: expected error: %s\n", e.what());
        }
        std::printf("cpp: ok\n");
        return 0;
    } catch (const embergpt::Error &e) {
        std::fprintf(stderr, "cpp: %s\n", e.what());
        return 1;
    }
}
