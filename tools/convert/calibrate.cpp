// GPTQ driven by lamina's own forward pass (calibrate.h).
#include "tools/convert/calibrate.h"

#include <fcntl.h>
#include <unistd.h>

#include <Eigen/Core>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <vector>

#include "engine/engine.h"
#include "loader/finite.h"
#include "loader/format.h"

namespace lamina::convert {

bool ReadTextTokens(const Tokenizer& tok, const std::string& path, size_t min_tokens,
                    std::vector<int32_t>* ids, std::string* err) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *err = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    *err = "error reading " + path;
    return false;
  }
  if (text.empty()) {
    *err = path + ": the file is empty";
    return false;
  }
  std::string terr;
  if (!tok.Encode(text, tok.bos_id() >= 0, false, ids, &terr)) {
    *err = path + ": " + terr;
    return false;
  }
  if (ids->size() < min_tokens) {
    *err = path + ": " + std::to_string(ids->size()) + " tokens, shorter than one window of " +
           std::to_string(min_tokens) + " tokens";
    return false;
  }
  return true;
}

namespace {

using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Linear groups sharing an input: slot -> (first kLinearNames index, members).
struct Group {
  int first;
  std::vector<int> members;
};
const Group kGroups[4] = {{0, {0, 1, 2}}, {3, {3}}, {4, {4, 5}}, {6, {6}}};

void Progress(bool quiet, int done, int total, double secs) {
  if (quiet) return;
  const bool tty = ::isatty(2);
  if (!tty && done > 0) {
    std::fprintf(stderr, "[gptq] block %d/%d done, %.1f s, ETA %.1f s\n", done, total, secs,
                 secs / done * (total - done));
    return;
  }
  if (!tty) return;
  constexpr int kWidth = 30;
  const int fill = total ? done * kWidth / total : kWidth;
  const double eta = done ? secs / done * (total - done) : 0;
  std::fprintf(stderr, "\r\033[K[gptq] [%.*s%.*s] %d/%d blocks, %.1f s, ETA %.1f s", fill,
               "##############################", kWidth - fill, "..............................",
               done, total, secs, eta);
  if (done == total) std::fputc('\n', stderr);
}

}  // namespace

bool CalibrateGptq(const std::string& f32_model, const std::string& calib_path,
                   const CalibOptions& o, Q4Plan* plan, std::string* err) {
  std::vector<int32_t> ids;
  {
    engine::ModelOptions mo;
    std::unique_ptr<engine::Model> model = engine::Model::Load(f32_model, mo, err);
    if (!model) return false;
    const Tokenizer* tok = model->tokenizer();
    if (!tok) {
      *err = "--calib needs the model's tokenizer to tokenize " + calib_path +
             ", and the model has " + "none (" + model->tokenizer_error() +
             "; give one with --tokenizer)";
      return false;
    }
    const int W = std::min(o.window, model->config().max_context);
    if (!ReadTextTokens(*tok, calib_path, static_cast<size_t>(W), &ids, err)) return false;
  }
  return CalibrateGptqIds(f32_model, ids, calib_path, o, plan, err);
}

bool CalibrateGptqIds(const std::string& f32_model, const std::vector<int32_t>& ids,
                      const std::string& source, const CalibOptions& o, Q4Plan* plan,
                      std::string* err) {
  engine::ModelOptions mo;
  std::unique_ptr<engine::Model> model = engine::Model::Load(f32_model, mo, err);
  if (!model) return false;
  const engine::Config& cfg = model->config();
  const int W = std::min(o.window, cfg.max_context);
  if (ids.size() < static_cast<size_t>(W)) {
    *err = source + ": " + std::to_string(ids.size()) + " tokens, shorter than one window of " +
           std::to_string(W) + " tokens";
    return false;
  }
  const int32_t n_vocab = cfg.vocab;
  for (const int32_t id : ids)
    if (id < 0 || id >= n_vocab) {
      *err = source + ": token id " + std::to_string(id) + " outside the vocabulary (" +
             std::to_string(n_vocab) + ")";
      return false;
    }
  size_t n_windows = ids.size() / static_cast<size_t>(W);
  if (o.max_tokens > 0)
    n_windows = std::max<size_t>(1, std::min(n_windows, static_cast<size_t>(o.max_tokens) / W));
  const int n_layers = cfg.n_layers, dim = cfg.dim;
  const Tokenizer* tok = model->tokenizer();
  const int32_t bos = tok ? tok->bos_id() : cfg.bos_id;
  if (!o.quiet)
    std::fprintf(stderr, "[gptq] %s: %zu windows of %d tokens (%zu tokens), %d blocks\n",
                 source.c_str(), n_windows, W, n_windows * W, n_layers);

  const int fd = ::open(f32_model.c_str(), O_WRONLY);
  if (fd < 0) {
    *err = "cannot write " + f32_model + ": " + std::strerror(errno);
    return false;
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};

  engine::ContextOptions co;
  co.n_ctx = W;
  co.n_batch = std::min(W, 128);
  co.n_threads = o.threads;
  co.kv_type = kern::KvType::kF32;
  std::unique_ptr<engine::Context> ctx = engine::Context::Create(*model, co, err);
  if (!ctx) return false;
  const int B = ctx->n_batch();

  // The residual stream of every calibration token at the input of the
  // current block [n_windows * W][dim]: the embedding rows first, then each
  // block's output once its weights are quantized. Why cache it: the block's
  // inputs then cost one block's forward pass, not the whole model's.
  const size_t n_tok = n_windows * static_cast<size_t>(W);
  std::vector<float> hs;
  try {
    hs.resize(n_tok * static_cast<size_t>(dim));
  } catch (const std::exception&) {
    *err = "out of memory for the hidden states of " + std::to_string(n_tok) +
           " calibration tokens (" + std::to_string(n_tok * dim * sizeof(float) >> 20) +
           " MiB): use fewer with --calib-tokens";
    return false;
  }
  {
    std::vector<int32_t> win(static_cast<size_t>(W));
    for (size_t w = 0; w < n_windows; ++w) {
      std::copy(ids.begin() + static_cast<ptrdiff_t>(w * W),
                ids.begin() + static_cast<ptrdiff_t>((w + 1) * W), win.begin());
      if (bos >= 0) win[0] = bos;
      ctx->EmbedTokens(win.data(), W, hs.data() + w * W * dim);
    }
    const size_t bad = FirstNonFinite(hs.data(), hs.size());
    if (bad != hs.size()) {
      *err = f32_model + ": calibration forward pass failed: NaN or Inf in the token embedding "
             "(tok_embd) of calibration token " + std::to_string(bad / dim);
      return false;
    }
  }
  // Runs block l over every window: on a copy of the hidden states (`in_place`
  // false: only the observer's Hessians are wanted) or replacing them.
  std::vector<float> tmp(static_cast<size_t>(B) * dim);
  auto run_block = [&](int l, bool in_place) {
    for (size_t w = 0; w < n_windows; ++w)
      for (int p = 0; p < W; p += B) {
        const int M = std::min(B, W - p);
        float* x = hs.data() + (w * W + p) * dim;
        if (!in_place) {
          std::memcpy(tmp.data(), x, sizeof(float) * M * dim);
          x = tmp.data();
        }
        if (ctx->EvalLayer(l, x, M, p, err) != engine::EvalStatus::kOk) {
          *err = f32_model + ": calibration forward pass failed: " + *err;
          return false;
        }
      }
    return true;
  };

  const auto t0 = std::chrono::steady_clock::now();
  auto secs = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  Progress(o.quiet, 0, n_layers, 0);
  const ModelFile& mf = model->file();
  for (int l = 0; l < n_layers; ++l) {
    MatD H[4];
    ctx->SetLinearInputObserver([&](int layer, int linear, const float* x, int M, int K) {
      if (layer != l) return;
      for (int s = 0; s < 4; ++s)
        if (kGroups[s].first == linear) {
          if (H[s].rows() == 0) H[s] = MatD::Zero(K, K);
          const MatD X =
              Eigen::Map<
                  const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(x, M,
                                                                                               K)
                  .cast<double>();
          H[s].selfadjointView<Eigen::Lower>().rankUpdate(X.transpose());
        }
    });
    if (!run_block(l, false)) return false;
    ctx->SetLinearInputObserver(nullptr);
    for (int s = 0; s < 4; ++s) {
      if (H[s].rows() == 0) continue;
      const MatD full = H[s].selfadjointView<Eigen::Lower>();
      for (int li : kGroups[s].members) {
        const std::string name = "blk." + std::to_string(l) + "." + format::kLinearNames[li];
        const format::TensorEntry* t = mf.Find(name);
        if (!t || t->dtype != static_cast<uint32_t>(format::DType::kF32) || t->n_dims != 2)
          continue;  // pre-quantized (GGUF Q4_0, ...): kept as it is
        const uint64_t N = t->shape[0], K = t->shape[1];
        if (K != static_cast<uint64_t>(full.rows())) {
          *err = name + ": input width " + std::to_string(K) + " != observed " +
                 std::to_string(full.rows());
          return false;
        }
        std::vector<float> Wt(N * K);
        std::memcpy(Wt.data(), mf.Data(*t), N * K * sizeof(float));
        MatD Hc = full;
        Q4Matrix q;
        if (!GptqQuantize(Wt.data(), N, K, Hc.data(), o.damp, o.act_order, &q, err)) {
          *err = name + ": " + *err;
          return false;
        }
        (*plan)[name] = std::move(q);
        // The dequantized weights replace the float ones: the mapping is
        // shared, so the block's second run below (and the final writer)
        // see them.
        const size_t bytes = Wt.size() * sizeof(float);
        if (::pwrite(fd, Wt.data(), bytes, static_cast<off_t>(t->offset)) !=
            static_cast<ssize_t>(bytes)) {
          *err = "cannot write " + f32_model + ": " + std::strerror(errno);
          return false;
        }
      }
    }
    // The next block's inputs, from this block's quantized weights.
    if (l + 1 < n_layers && !run_block(l, true)) return false;
    Progress(o.quiet, l + 1, n_layers, secs());
  }
  return true;
}

}  // namespace lamina::convert
