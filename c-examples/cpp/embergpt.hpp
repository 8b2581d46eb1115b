// embergpt.hpp: a small C++17 RAII wrapper over the embergpt C API (header-only).
//
// Model owns its handle storage and borrows the GGUF bytes (keep them alive);
// Context owns its arena (sized by the library, allocated once). Both are
// movable, not copyable (moving keeps the heap blocks, so handles stay valid).
// Failures throw embergpt::Error carrying the egpt_status.
#ifndef EMBERGPT_HPP
#define EMBERGPT_HPP

#include "embergpt.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
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

  private:
    std::unique_ptr<unsigned char[]> arena_;
    std::size_t arena_len_ = 0;
    egpt_context *ctx_ = nullptr;
};

}  // namespace embergpt

#endif
