// example.cpp: greedy decoding with the C++ wrapper, a check that the logits of
// one batched eval_all equal those of decoding token by token, then text:
// tokenize / detokenize with a GGUF vocabulary and streaming generation.
//   cpp_example [MODEL.gguf [VOCAB.gguf]]
// VOCAB defaults to tests/fixtures/tokenizer/gpt2-vocab.gguf (GPT-2's 50257 tokens:
// the fixture model's ids 0..255 are GPT-2 byte tokens, so the pair can generate).
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
        // Text.
        const char *vpath = argc > 2 ? argv[2] : "tests/fixtures/tokenizer/gpt2-vocab.gguf";
        std::ifstream vf(vpath, std::ios::binary);
        if (!vf) {
            std::fprintf(stderr, "cannot open %s\n", vpath);
            return 1;
        }
        const std::vector<std::uint8_t> vbytes((std::istreambuf_iterator<char>(vf)), std::istreambuf_iterator<char>());
        embergpt::Tokenizer tok(vbytes.data(), vbytes.size());
        const std::string text = "Hello world, \xc3\xa9t\xc3\xa9 \xe2\x82\xac<|endoftext|>";
        const std::vector<std::uint32_t> ids = tok.tokenize(text, true);
        if (ids.size() < 3 || ids[0] != 15496 || ids[1] != 995 || ids.back() != 50256 ||
            tok.detokenize(ids) != text || tok.detokenize(ids, true) != text.substr(0, text.size() - 13) ||
            tok.piece(15496) != "Hello") {
            std::fprintf(stderr, "cpp: tokenizer round trip failed\n");
            return 1;
        }
        std::printf("cpp: %zu ids for %zu bytes, round trip ok\n", ids.size(), text.size());

        egpt_sampler_params sp = egpt_sampler_default_params();
        sp.seed = 7;
        embergpt::Sampler sampler(model, sp);
        embergpt::GenerateOptions opt;
        opt.max_tokens = 8;
        std::string out;
        std::vector<std::uint32_t> gen;
        ctx.reset();
        const egpt_generate_result r =
            embergpt::generate(ctx, tok, sampler, {1, 2, 3}, opt, [&](std::uint32_t id, std::string_view t) {
                if (id != EGPT_NO_TOKEN) gen.push_back(id);
                out.append(t);
                return true;
            });
        if (r.stop_reason != EGPT_STOP_BUDGET || gen.size() != 8 || tok.detokenize(gen) != out) {
            std::fprintf(stderr, "cpp: generation result unexpected\n");
            return 1;
        }
        // An exception in the callback stops generation and reaches the caller.
        ctx.reset();
        sampler.reset();
        try {
            embergpt::generate(ctx, tok, sampler, {1, 2, 3}, opt,
                               [](std::uint32_t, std::string_view) -> bool { throw std::runtime_error("stop"); });
            return 1;
        } catch (const std::runtime_error &e) {
            if (std::string(e.what()) != "stop") return 1;
        }
        std::printf("cpp: generated %zu tokens: %zu bytes\n", gen.size(), out.size());
        std::printf("cpp: ok\n");
        return 0;
    } catch (const embergpt::Error &e) {
        std::fprintf(stderr, "cpp: %s\n", e.what());
        return 1;
    }
}
