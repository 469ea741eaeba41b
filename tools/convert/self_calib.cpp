// Self-calibration: calibration tokens sampled from the float model (self_calib.h).
#include "tools/convert/self_calib.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>

#include "engine/engine.h"
#include "engine/sampler.h"
#include "tools/convert/gguf_reader.h"
#include "tools/convert/rotate.h"

namespace lamina::convert {
namespace {

// Cost constants of EstimateSelfCalibSeconds: wall seconds on the 2-core
// x86-64 host shared by other jobs where they were fitted (docs/QUALITY.md,
// "Self-calibration cost"): per weight read by one f32 decode step, per
// vocabulary entry of one draw (the sampler sorts the vocabulary), per weight
// and token of a block's forward pass, per multiply-add of the Hessian
// updates and per flop of the GPTQ solves (calibrate.cpp's blockwise
// pipeline: each block runs over the tokens on its own, not the whole model).
constexpr double kGenSecPerWeight = 3.1e-10;
constexpr double kGenSecPerVocab = 1.8e-7;
constexpr double kFwdSecPerWeight = 1.45e-10;
constexpr double kHessSecPerMac = 5.0e-11;
constexpr double kSolveSecPerFlop = 2.5e-10;

}  // namespace

bool SampleCalibrationIds(const std::string& model_path, int window, const SelfCalibOptions& o,
                          int threads, bool quiet, std::vector<int32_t>* ids, std::string* err) {
  engine::ModelOptions mo;
  std::unique_ptr<engine::Model> model = engine::Model::Load(model_path, mo, err);
  if (!model) return false;
  const engine::Config& c = model->config();
  const int W = std::min(window, c.max_context);
  if (W < 2) {
    *err = model_path + ": a context of " + std::to_string(c.max_context) +
           " token(s) is too short to sample calibration windows (2 or more needed)";
    return false;
  }
  const int n_windows = std::max(1, (o.n_tokens + W - 1) / W);
  // Windows are independent (each from an empty KV cache, its own seed), so
  // they run in parallel on single-threaded contexts: decoding one token of a
  // small model is too little work to split across threads.
  const int n_workers = std::min(n_windows, threads > 0 ? threads : engine::DefaultThreadCount());
  // The calibration forward pass uses the tokenizer's BOS when there is one.
  const Tokenizer* tok = model->tokenizer();
  const int32_t bos = tok ? tok->bos_id() : c.bos_id;
  auto is_stop = [&](int32_t t) {
    return t == c.eos_id || std::find(c.stop_ids.begin(), c.stop_ids.end(), t) != c.stop_ids.end();
  };
  if (!quiet)
    std::fprintf(stderr,
                 "[self-calib] sampling %d windows of %d tokens from the float model "
                 "(temperature %g, seed %llu, %d threads)\n",
                 n_windows, W, static_cast<double>(o.temperature),
                 static_cast<unsigned long long>(o.seed), n_workers);
  ids->assign(static_cast<size_t>(n_windows) * W, 0);
  std::atomic<int> next{0}, done{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  const auto t0 = std::chrono::steady_clock::now();
  auto work = [&] {
    std::string e;
    engine::ContextOptions co;
    co.n_ctx = W;
    co.n_batch = 1;  // one token per step
    co.n_threads = 1;
    co.kv_type = kern::KvType::kF32;  // as the calibration forward pass
    std::unique_ptr<engine::Context> ctx = engine::Context::Create(*model, co, &e);
    engine::SamplerParams sp;
    sp.temperature = o.temperature;
    sp.top_k = 0;
    sp.top_p = o.top_p;
    sp.min_p = o.min_p;
    sp.repeat_penalty = 1.0f;
    engine::Sampler sampler(sp, c.vocab);
    for (int w; ctx && !failed && (w = next++) < n_windows;) {
      // Window w's draws depend on (seed, w) only: any thread count gives
      // the same tokens.
      sampler.rng().Seed(o.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(w));
      int32_t* out = ids->data() + static_cast<size_t>(w) * W;
      ctx->Clear();
      // No BOS: the first token uniformly from the vocabulary (LLM-QAT's start).
      int32_t t = bos >= 0 ? bos : static_cast<int32_t>(sampler.rng().Next() % c.vocab);
      for (int i = 0;; ++i) {
        out[i] = t;
        if (i + 1 == W) break;
        if (ctx->Eval(&t, 1, &e) != engine::EvalStatus::kOk) {
          e = model_path + ": sampling calibration tokens failed: " + e;
          break;
        }
        if (is_stop(t) && bos >= 0 && t != bos) {
          t = bos;  // the next story
          continue;
        }
        t = sampler.Sample(ctx->logits(), nullptr, 0);
      }
      if (!e.empty()) break;
      const int n_done = ++done;
      if (!quiet && (::isatty(2) || n_done == n_windows)) {
        std::lock_guard<std::mutex> lock(mu);
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::fprintf(stderr, "\r\033[K[self-calib] window %d/%d, %.1f s, ETA %.1f s%s", n_done,
                     n_windows, s, s / n_done * (n_windows - n_done),
                     n_done == n_windows ? "\n" : "");
      }
    }
    if (!e.empty()) {
      std::lock_guard<std::mutex> lock(mu);
      if (!failed) *err = e;
      failed = true;
    }
  };
  std::vector<std::thread> pool;
  for (int i = 1; i < n_workers; ++i) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  return !failed;
}

bool ReadModelShape(const std::string& path, ModelShape* s, std::string* err) {
  auto m = ModelFile::Open(path, LoadOptions{}, err);
  if (!m) return false;
  const auto& p = m->hparams();
  s->dim = static_cast<int>(p.dim);
  s->n_layers = static_cast<int>(p.n_layers);
  s->q_dim = static_cast<int>(p.n_heads * p.head_dim);
  s->kv_dim = static_cast<int>(p.n_kv_heads * p.head_dim);
  s->ffn_dim = static_cast<int>(p.ffn_dim);
  s->vocab = static_cast<int>(p.vocab_size);
  s->max_context = static_cast<int>(p.max_context);
  return true;
}

double EstimateSelfCalibSeconds(const ModelShape& s, int n_tokens, int window) {
  const double d = s.dim, q = s.q_dim, kv = s.kv_dim, f = s.ffn_dim, L = s.n_layers;
  const int W = std::max(2, std::min(window, s.max_context));
  const double N = static_cast<double>((std::max(1, n_tokens) + W - 1) / W) * W;
  // Weights one token reads: the linears and the output layer.
  const double p_block = d * (q + 2 * kv) + q * d + 3 * d * f;
  const double p_tok = L * p_block + static_cast<double>(s.vocab) * d;
  // Sampling: one f32 decode step per token (weights streamed from memory).
  const double gen = N * (kGenSecPerWeight * p_tok + kGenSecPerVocab * s.vocab);
  // GPTQ (calibrate.cpp): each block's forward runs over the tokens, H = X^T X
  // of the four inputs of each block, and the solves (~K^3 + N K^2 per linear).
  const double h = L * N * (2 * d * d + q * q + f * f);
  double solve = 0;
  const double K[4] = {d, q, d, f}, Nout[4] = {q + 2 * kv, d, 2 * f, d};
  for (int i = 0; i < 4; ++i) solve += L * (K[i] * K[i] * K[i] + Nout[i] * K[i] * K[i]);
  const double gptq =
      kFwdSecPerWeight * N * L * p_block + kHessSecPerMac * h + kSolveSecPerFlop * solve;
  return gen + gptq;
}

namespace {

// Bytes of the input (a file, or the files of a directory).
uint64_t InputBytes(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  if (!S_ISDIR(st.st_mode)) return static_cast<uint64_t>(st.st_size);
  uint64_t n = 0;
  if (DIR* d = ::opendir(path.c_str())) {
    while (const dirent* e = ::readdir(d))
      if (::stat((path + "/" + e->d_name).c_str(), &st) == 0 && S_ISREG(st.st_mode))
        n += static_cast<uint64_t>(st.st_size);
    ::closedir(d);
  }
  return n;
}

// The one line --quant auto prints when it keeps the data-free search.
void SearchNote(int n_tokens, const char* approx, double secs) {
  std::fprintf(stderr,
               "lamina-convert: data-free scale search (--quant self, GPTQ calibrated on %d "
               "tokens sampled from the model, would take %s%.0f min here)\n",
               n_tokens, approx, secs / 60);
}

}  // namespace

void GptqSource::DecideByInput(const std::string& input) {
  if (mode != Mode::kAuto) return;
  // A GGUF file says its tensor types and sizes; any other float input stores
  // each weight in at most 4 bytes.
  double weights = 0;
  gguf::File g;
  std::string e;
  if (g.Open(input, &e)) {
    for (const gguf::TensorInfo& t : g.tensors()) {
      if (t.type != gguf::kGgmlF32 && t.type != gguf::kGgmlF16 && t.type != gguf::kGgmlBF16) {
        mode = Mode::kNone;  // pre-quantized: kept as it is, the rest searched
        return;
      }
      weights += static_cast<double>(t.numel());
    }
  } else {
    weights = static_cast<double>(InputBytes(input)) / 4;
  }
  // Sampling alone, for that many weights read per token: only the clear
  // cases are decided here (2x margin), the rest on the float model (Decide).
  const double secs = kGenSecPerWeight * weights * self.n_tokens;
  if (secs > 2 * kAutoSelfMaxSeconds) {
    mode = Mode::kNone;
    if (!copts.quiet) SearchNote(self.n_tokens, "> ", secs);
  }
}

bool GptqSource::Decide(const std::string& f32_model, std::string* err) {
  if (mode != Mode::kAuto) return true;
  std::string why;
  if (!IsPlainF32Model(f32_model, &why)) {
    mode = Mode::kNone;  // pre-quantized: kept as it is, the rest searched
    return true;
  }
  ModelShape s;
  if (!ReadModelShape(f32_model, &s, err)) return false;
  if (s.max_context < 2) {  // nothing to sample (SampleCalibrationIds' error)
    mode = Mode::kNone;
    return true;
  }
  const double secs = EstimateSelfCalibSeconds(s, self.n_tokens, copts.window);
  mode = secs <= kAutoSelfMaxSeconds ? Mode::kSelf : Mode::kNone;
  if (copts.quiet) return true;
  if (mode == Mode::kSelf)
    std::fprintf(stderr,
                 "lamina-convert: GPTQ calibrated on %d tokens sampled from the model itself "
                 "(--quant self, est. %.0f s; --quant search: data-free scale search only)\n",
                 self.n_tokens, secs);
  else
    SearchNote(self.n_tokens, "~", secs);
  return true;
}

bool GptqSource::Run(const std::string& f32_model, Q4Plan* plan, std::string* err) const {
  if (mode == Mode::kFile) return CalibrateGptq(f32_model, file, copts, plan, err);
  std::vector<int32_t> ids;
  return SampleCalibrationIds(f32_model, copts.window, self, copts.threads, copts.quiet, &ids,
                              err) &&
         CalibrateGptqIds(f32_model, ids, "self-generated calibration", copts, plan, err);
}

}  // namespace lamina::convert
