// embed.cpp - embedding libawq in a C++ program: RAII wrappers over the C API (awq.h), errors as
// exceptions that carry the library's detail, a chat turn with streamed output.
//
//   awq-example-embed MODEL_DIR [QUESTION] [-n N] [--device D]
//
// awq.h is plain C with extern "C" guards, so C++ includes it directly. The wrappers below are
// an illustration of the ownership rules the header states (each handle has one destroy
// function that accepts NULL; the runtime outlives tokenizers and models, a model outlives its
// sessions); they are not part of the library. Build: see examples/README.md.
#include <awq.h>

#include <functional>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace awqpp {

// A failed call: the status code and the runtime's detail ("config.json: ...").
class Error : public std::runtime_error {
  public:
    Error(awq_status st, const std::string &what)
        : std::runtime_error(what + ": " + awq_status_str(st)), status_(st) {}
    awq_status status() const noexcept { return status_; }

  private:
    awq_status status_;
};

// unique_ptr with the library's destroy function as deleter, e.g. Handle<awq_model, awq_model_destroy>.
template <typename T, void (*Destroy)(T *)> struct Deleter {
    void operator()(T *p) const noexcept { Destroy(p); }
};
template <typename T, void (*Destroy)(T *)> using Handle = std::unique_ptr<T, Deleter<T, Destroy>>;

using LogFn = std::function<void(awq_log_level, const char *)>;

class Runtime {
  public:
    explicit Runtime(LogFn log = nullptr, int n_threads = 0) : log_(new LogFn(std::move(log))) {
        awq_runtime_params p = awq_runtime_params_default();
        if (*log_) {
            p.log = &Runtime::trampoline;
            p.log_user = log_.get(); // stable address: the std::function lives on the heap
        }
        p.n_threads = n_threads;
        awq_runtime *rt = nullptr;
        awq_status st = awq_runtime_create(&rt, &p);
        if (st != AWQ_OK) throw Error(st, "awq_runtime_create");
        rt_.reset(rt);
    }
    awq_runtime *get() const noexcept { return rt_.get(); }
    // Throws with the detail of the last failure on this runtime.
    void check(awq_status st, const char *what) const {
        if (st != AWQ_OK) throw Error(st, std::string(what) + ": " + awq_runtime_last_error(get()));
    }

  private:
    static void trampoline(awq_log_level level, const char *msg, void *user) {
        (*static_cast<LogFn *>(user))(level, msg);
    }
    std::unique_ptr<LogFn> log_; // declared first: destroyed after the runtime that calls it
    Handle<awq_runtime, awq_runtime_destroy> rt_;
};

class Tokenizer {
  public:
    Tokenizer(const Runtime &rt, const std::string &model_dir) : rt_(rt) {
        awq_tokenizer *t = nullptr;
        rt.check(awq_tokenizer_load(&t, rt.get(), model_dir.c_str()), "awq_tokenizer_load");
        tok_.reset(t);
    }
    awq_tokenizer *get() const noexcept { return tok_.get(); }

    std::vector<int32_t> encode(const std::string &text, bool add_special) const {
        int64_t n = 0; // query the size, then fill
        rt_.check(awq_tokenizer_encode(get(), text.data(), text.size(), add_special, nullptr, 0, &n),
                  "awq_tokenizer_encode");
        std::vector<int32_t> ids(static_cast<size_t>(n));
        rt_.check(awq_tokenizer_encode(get(), text.data(), text.size(), add_special, ids.data(), n, &n),
                  "awq_tokenizer_encode");
        return ids;
    }
    // Renders {role, content} pairs with the model's chat template.
    std::string apply_chat(const std::vector<std::pair<std::string, std::string>> &messages) const {
        std::vector<awq_chat_message> msgs;
        for (const auto &m : messages) msgs.push_back({m.first.c_str(), m.second.c_str()});
        char *out = nullptr; // owned by us: released with awq_free
        rt_.check(awq_tokenizer_apply_chat(get(), msgs.data(), static_cast<int32_t>(msgs.size()), true, &out),
                  "awq_tokenizer_apply_chat");
        std::unique_ptr<char, Deleter<void, awq_free>> guard(out);
        return std::string(out);
    }
    bool is_eog(int32_t id) const noexcept { return awq_tokenizer_is_eog(get(), id); }

  private:
    const Runtime &rt_;
    Handle<awq_tokenizer, awq_tokenizer_destroy> tok_;
};

class Model {
  public:
    Model(const Runtime &rt, const std::string &dir, const std::string &device = "auto") : rt_(rt) {
        awq_model_params p = awq_model_params_default();
        p.device = device.c_str();
        awq_model *m = nullptr;
        rt.check(awq_model_load(&m, rt.get(), dir.c_str(), &p), "awq_model_load");
        model_.reset(m);
        rt.check(awq_model_get_info(m, &info_), "awq_model_get_info");
    }
    awq_model *get() const noexcept { return model_.get(); }
    const awq_model_info &info() const noexcept { return info_; }
    const Runtime &runtime() const noexcept { return rt_; }

  private:
    const Runtime &rt_;
    Handle<awq_model, awq_model_destroy> model_;
    awq_model_info info_{};
};

class Session {
  public:
    Session(const Model &m, int32_t n_ctx) : model_(m), logits_(static_cast<size_t>(m.info().vocab_size)) {
        awq_session *s = nullptr;
        m.runtime().check(awq_session_create(&s, m.get(), n_ctx), "awq_session_create");
        s_.reset(s);
    }
    // Appends tokens to the KV cache; returns the next-token logits (vocab,).
    std::vector<float> &eval(const std::vector<int32_t> &ids) {
        model_.runtime().check(
            awq_session_eval(s_.get(), ids.data(), static_cast<int32_t>(ids.size()), logits_.data(), false),
            "awq_session_eval");
        return logits_;
    }
    int32_t n_past() const noexcept { return awq_session_n_past(s_.get()); }

  private:
    const Model &model_;
    Handle<awq_session, awq_session_destroy> s_;
    std::vector<float> logits_;
};

// Generates up to n_predict tokens after the prompt, handing each complete UTF-8 piece to on_text.
inline std::string generate(const Tokenizer &tok, Session &sess, const std::vector<int32_t> &prompt,
                            int n_predict, float temperature,
                            const std::function<void(const std::string &)> &on_text) {
    awq_sampler_params sp = awq_sampler_params_default();
    sp.temperature = temperature;
    awq_sampler *smp = nullptr;
    if (awq_status st = awq_sampler_create(&smp, &sp)) throw Error(st, "awq_sampler_create");
    Handle<awq_sampler, awq_sampler_destroy> sampler(smp);
    awq_detok *dt = nullptr;
    if (awq_status st = awq_detok_create(&dt, tok.get(), true)) throw Error(st, "awq_detok_create");
    Handle<awq_detok, awq_detok_destroy> detok(dt);

    std::string text;
    char buf[256];
    size_t len = 0;
    std::vector<float> *logits = &sess.eval(prompt);
    for (int i = 0; i < n_predict; i++) {
        int32_t id = awq_sampler_sample(sampler.get(), logits->data(), static_cast<int32_t>(logits->size()));
        if (tok.is_eog(id)) break;
        if (awq_detok_push(detok.get(), id, buf, sizeof buf, &len) == AWQ_OK && len) {
            text.append(buf, len);
            on_text(std::string(buf, len));
        }
        if (i + 1 < n_predict) logits = &sess.eval({id});
    }
    if (awq_detok_flush(detok.get(), buf, sizeof buf, &len) == AWQ_OK && len) {
        text.append(buf, len);
        on_text(std::string(buf, len));
    }
    return text;
}

} // namespace awqpp

int main(int argc, char **argv) {
    if (argc < 2) {
        std::cerr << "usage: awq-example-embed MODEL_DIR [QUESTION] [-n N] [--device D]\n";
        return 2;
    }
    std::string dir = argv[1], question = "What is the capital of France?", device = "auto";
    int n_predict = 24;
    for (int i = 2; i < argc; i++) {
        std::string a = argv[i];
        if (a == "-n" && i + 1 < argc)
            n_predict = std::stoi(argv[++i]);
        else if (a == "--device" && i + 1 < argc)
            device = argv[++i];
        else
            question = a;
    }
    try {
        // Declaration order is lifetime order: the runtime outlives the tokenizer and the model,
        // the model outlives the session; destructors run in reverse.
        awqpp::Runtime rt([](awq_log_level level, const char *msg) {
            if (level <= AWQ_LOG_LEVEL_WARN) std::cerr << "[awq] " << msg << "\n";
        });

        // Errors come back as exceptions with the library's detail; nothing leaks on the way out.
        try {
            awqpp::Model missing(rt, dir + "/no-such-model");
        } catch (const awqpp::Error &e) {
            std::cerr << "(expected) " << e.what() << "\n";
        }

        awqpp::Tokenizer tok(rt, dir);
        awqpp::Model model(rt, dir, device);
        std::cerr << "model " << model.info().arch << " on " << model.info().device << "\n";

        std::string prompt = tok.apply_chat({{"user", question}});
        std::vector<int32_t> ids = tok.encode(prompt, false); // the template wrote the BOS text
        awqpp::Session sess(model, static_cast<int32_t>(ids.size()) + n_predict);
        std::cout << question << "\n> " << std::flush;
        awqpp::generate(tok, sess, ids, n_predict, 0.0f,
                        [](const std::string &piece) { std::cout << piece << std::flush; });
        std::cout << "\n(" << sess.n_past() << " tokens in the session)\n";
    } catch (const std::exception &e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
