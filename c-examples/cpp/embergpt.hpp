// embergpt.hpp: a small C++17 RAII wrapper over the embergpt C API (header-only).
//
// Model owns its handle storage and borrows the GGUF bytes (keep them alive);
// Context, Tokenizer and Sampler own their arenas (sized by the library,
// allocated once). All are movable, not copyable (moving keeps the heap blocks,
// so handles stay valid). Failures throw embergpt::Error carrying the
// egpt_status. generate() streams text to a std::function; an exception thrown
// by it stops generation and is rethrown after the C call returns (it never
// crosses the C frames).
#ifndef EMBERGPT_HPP
#define EMBERGPT_HPP

#include "embergpt.h"

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace embergpt {

class Error : public std::runtime_error {
  public:
    Error(const char *what, egpt_status status)
        : std::runtime_error(std::string(what) + ": " + egpt_status_str(status)), status_(status) {}
    egpt_status status() const noexcept { return status_; }

  private:
    egpt_status status_;
};

inline void check(egpt_status s, const char *what) {
    if (s != EGPT_OK) {
        throw Error(what, s);
    }
}

// A read-only view of floats owned by a Context (valid until its next eval/rewind/reset).
struct FloatView {
    const float *data = nullptr;
    std::size_t size = 0;
    const float *begin() const noexcept { return data; }
    const float *end() const noexcept { return data + size; }
    float operator[](std::size_t i) const noexcept { return data[i]; }
};

class Model {
  public:
    // `bytes` must outlive the Model and every Context made from it.
    Model(const std::uint8_t *bytes, std::size_t len)
        : mem_(new unsigned char[egpt_model_size()]) {
        check(egpt_model_open(bytes, len, mem_.get(), egpt_model_size(), &model_), "egpt_model_open");
    }
    const egpt_model *get() const noexcept { return model_; }

    egpt_model_info info() const {
        egpt_model_info i{};
        i.struct_size = sizeof i;
        check(egpt_model_get_info(model_, &i), "egpt_model_get_info");
        return i;
    }

  private:
    std::unique_ptr<unsigned char[]> mem_;
    egpt_model *model_ = nullptr;
};

class Context {
  public:
    Context(const Model &model, const egpt_context_params &params) {
        std::size_t n = 0;
        check(egpt_context_arena_size(model.get(), &params, &n), "egpt_context_arena_size");
        arena_.reset(new unsigned char[n]);
        arena_len_ = n;
        check(egpt_context_create(model.get(), &params, arena_.get(), n, &ctx_), "egpt_context_create");
    }

    void eval(const std::vector<std::uint32_t> &tokens) {
        check(egpt_context_eval(ctx_, tokens.data(), tokens.size()), "egpt_context_eval");
    }
    void eval(std::uint32_t token) { check(egpt_context_eval(ctx_, &token, 1), "egpt_context_eval"); }
    void eval_all(const std::vector<std::uint32_t> &tokens) {
        check(egpt_context_eval_all(ctx_, tokens.data(), tokens.size()), "egpt_context_eval_all");
    }
    FloatView logits() const {
        FloatView v;
        check(egpt_context_logits(ctx_, &v.data, &v.size), "egpt_context_logits");
        return v;
    }
    // All rows of the last eval_all, row-major; `rows` receives the row count.
    FloatView all_logits(std::size_t &rows) const {
        FloatView v;
        std::size_t n_vocab = 0;
        check(egpt_context_all_logits(ctx_, &v.data, &rows, &n_vocab), "egpt_context_all_logits");
        v.size = rows * n_vocab;
        return v;
    }
    void rewind(std::size_t pos) { check(egpt_context_rewind(ctx_, pos), "egpt_context_rewind"); }
    void reset() { check(egpt_context_reset(ctx_), "egpt_context_reset"); }
    std::size_t n_past() const {
        std::size_t n = 0;
        check(egpt_context_n_past(ctx_, &n), "egpt_context_n_past");
        return n;
    }
    std::size_t arena_bytes() const noexcept { return arena_len_; }
    egpt_context *get() noexcept { return ctx_; }

  private:
    std::unique_ptr<unsigned char[]> arena_;
    std::size_t arena_len_ = 0;
    egpt_context *ctx_ = nullptr;
};

class Tokenizer {
  public:
    // The tokenizer of a model (its GGUF bytes must outlive the Tokenizer).
    explicit Tokenizer(const Model &model) {
        std::size_t n = 0;
        check(egpt_tokenizer_arena_size(model.get(), &n), "egpt_tokenizer_arena_size");
        arena_.reset(new unsigned char[n]);
        check(egpt_tokenizer_create(model.get(), arena_.get(), n, &tok_), "egpt_tokenizer_create");
    }
    // The tokenizer of any GGUF file with tokenizer metadata (a vocabulary-only file works).
    Tokenizer(const std::uint8_t *bytes, std::size_t len) {
        std::size_t n = 0;
        check(egpt_tokenizer_arena_size_gguf(bytes, len, &n), "egpt_tokenizer_arena_size_gguf");
        arena_.reset(new unsigned char[n]);
        check(egpt_tokenizer_create_gguf(bytes, len, arena_.get(), n, &tok_), "egpt_tokenizer_create_gguf");
    }

    std::vector<std::uint32_t> tokenize(std::string_view text, bool parse_special = false) {
        std::vector<std::uint32_t> ids(text.size());  // enough for GPT-2: never more ids than bytes
        std::size_t n = 0;
        const int special = parse_special ? 1 : 0;
        egpt_status s = egpt_tokenize(tok_, text.data(), text.size(), special, ids.data(), ids.size(), &n);
        if (s == EGPT_ERR_BUFFER_TOO_SMALL) {  // SentencePiece can need more; n says how many
            ids.resize(n);
            s = egpt_tokenize(tok_, text.data(), text.size(), special, ids.data(), ids.size(), &n);
        }
        check(s, "egpt_tokenize");
        ids.resize(n);
        return ids;
    }
    std::string detokenize(const std::vector<std::uint32_t> &ids, bool skip_special = false) const {
        std::size_t n = 0;
        const int skip = skip_special ? 1 : 0;
        const egpt_status s = egpt_detokenize(tok_, ids.data(), ids.size(), skip, nullptr, 0, &n);
        if (s != EGPT_ERR_BUFFER_TOO_SMALL) check(s, "egpt_detokenize");  // OK: empty text
        std::string out(n, '\0');
        check(egpt_detokenize(tok_, ids.data(), ids.size(), skip, &out[0], out.size(), &n), "egpt_detokenize");
        out.resize(n);
        return out;
    }
    std::string piece(std::uint32_t id) const {
        std::string out(info().max_token_len, '\0');
        std::size_t n = 0;
        check(egpt_token_to_piece(tok_, id, &out[0], out.size(), &n), "egpt_token_to_piece");
        out.resize(n);
        return out;
    }
    egpt_tokenizer_info info() const {
        egpt_tokenizer_info i{};
        i.struct_size = sizeof i;
        check(egpt_tokenizer_get_info(tok_, &i), "egpt_tokenizer_get_info");
        return i;
    }
    const egpt_tokenizer *get() const noexcept { return tok_; }

  private:
    std::unique_ptr<unsigned char[]> arena_;
    egpt_tokenizer *tok_ = nullptr;
};

class Sampler {
  public:
    Sampler(const Model &model, const egpt_sampler_params &params) {
        std::size_t n = 0;
        check(egpt_sampler_arena_size(model.get(), &params, &n), "egpt_sampler_arena_size");
        arena_.reset(new unsigned char[n]);
        check(egpt_sampler_create(model.get(), &params, arena_.get(), n, &s_), "egpt_sampler_create");
    }
    std::uint32_t sample(FloatView logits) {
        std::uint32_t t = 0;
        check(egpt_sampler_sample(s_, logits.data, logits.size, &t), "egpt_sampler_sample");
        return t;
    }
    void accept(std::uint32_t token) { check(egpt_sampler_accept(s_, token), "egpt_sampler_accept"); }
    void reset() { check(egpt_sampler_reset(s_), "egpt_sampler_reset"); }
    egpt_sampler *get() noexcept { return s_; }

  private:
    std::unique_ptr<unsigned char[]> arena_;
    egpt_sampler *s_ = nullptr;
};

// Called with each token id and its UTF-8-complete text (id EGPT_NO_TOKEN for the
// held bytes released at the end); return false to stop.
using TokenFn = std::function<bool(std::uint32_t, std::string_view)>;

struct GenerateOptions {
    std::size_t max_tokens = 0;  // 0: no limit
    std::vector<std::string> stop;
    bool stop_at_eos = true;
};

namespace detail {
struct Trampoline {
    TokenFn *fn;
    std::exception_ptr error;
    static int call(void *user, std::uint32_t token, const char *bytes, std::size_t len) noexcept {
        auto *t = static_cast<Trampoline *>(user);
        try {
            return (*t->fn)(token, std::string_view(bytes, len)) ? 0 : 1;
        } catch (...) {
            t->error = std::current_exception();
            return 1;
        }
    }
};
}  // namespace detail

inline egpt_generate_result generate(Context &ctx, const Tokenizer &tok, Sampler &sampler,
                                     const std::vector<std::uint32_t> &prompt, const GenerateOptions &opt,
                                     TokenFn on_token) {
    std::vector<const char *> strs;
    std::vector<std::size_t> lens;
    for (const std::string &s : opt.stop) {
        strs.push_back(s.data());
        lens.push_back(s.size());
    }
    egpt_generate_params p = egpt_generate_default_params();
    p.max_tokens = opt.max_tokens;
    p.stop_strings = strs.empty() ? nullptr : strs.data();
    p.stop_lens = lens.empty() ? nullptr : lens.data();
    p.n_stop = strs.size();
    p.stop_at_eos = opt.stop_at_eos ? 1 : 0;
    egpt_generate_result r{};
    r.struct_size = sizeof r;
    detail::Trampoline t{&on_token, nullptr};
    const egpt_status s = egpt_generate(ctx.get(), tok.get(), sampler.get(), prompt.data(), prompt.size(), &p,
                                        on_token ? &detail::Trampoline::call : nullptr, &t, &r);
    if (t.error) std::rethrow_exception(t.error);
    check(s, "egpt_generate");
    return r;
}

}  // namespace embergpt

#endif
