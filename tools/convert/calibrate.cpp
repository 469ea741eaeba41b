// GPTQ driven by lamina's own forward pass (calibrate.h).
#include "tools/convert/calibrate.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/engine.h"
#include "loader/finite.h"
#include "loader/format.h"
#include "tools/convert/hessian.h"

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

// Tokens per forward chunk, so also per Hessian update. Why 512 (one default
// window): the f32 sums of a chunk are added into the double H once per chunk,
// K^2 values (64 Mi for ffn_down on 1B), so longer chunks amortize that pass;
// the activations of 512 tokens stay small (1B: ~40 MiB).
constexpr int kChunk = 512;

// Linear groups sharing an input: slot -> (first kLinearNames index, members).
struct Group {
  int first;
  std::vector<int> members;
};
const Group kGroups[4] = {{0, {0, 1, 2}}, {3, {3}}, {4, {4, 5}}, {6, {6}}};

// Wall and process CPU seconds (all threads), per phase.
struct Times {
  double wall = 0, cpu = 0;
};
struct Stamp {
  std::chrono::steady_clock::time_point wall;
  double cpu;
};
double CpuNow() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}
Stamp Now() { return {std::chrono::steady_clock::now(), CpuNow()}; }
// *t += the time since s.
void AddSince(const Stamp& s, Times* t) {
  t->wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - s.wall).count();
  t->cpu += CpuNow() - s.cpu;
}

// Drops the mapped pages of [p, p + n) (read no more).
void DropPages(const void* p, uint64_t n) {
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t a = reinterpret_cast<uintptr_t>(p) / page * page;
  (void)::madvise(reinterpret_cast<void*>(a), n + (reinterpret_cast<uintptr_t>(p) - a),
                  MADV_DONTNEED);
}

// Blocks done of `total` after `all` (of which fwd in the forward passes, h
// accumulating the Hessians, solve in GPTQ); ETA = the mean block time x the
// blocks left (every block has the same shape and token count). Without a
// terminal, one line per block, with the CPU times too.
void Progress(bool quiet, int done, int total, const Times& all, const Times& fwd, const Times& h,
              const Times& solve) {
  if (quiet) return;
  const double eta = done ? all.wall / done * (total - done) : 0;
  if (!::isatty(2)) {
    if (done > 0)
      std::fprintf(stderr,
                   "[gptq] block %d/%d done, %.1f s (forward %.1f s, H %.1f s, solve %.1f s), "
                   "ETA %.1f s; CPU %.1f s (forward %.1f s, H %.1f s, solve %.1f s)\n",
                   done, total, all.wall, fwd.wall, h.wall, solve.wall, eta, all.cpu, fwd.cpu,
                   h.cpu, solve.cpu);
    return;
  }
  constexpr int kWidth = 30;
  const int fill = total ? done * kWidth / total : kWidth;
  std::fprintf(stderr,
               "\r\033[K[gptq] [%.*s%.*s] %d/%d blocks, %.1f s (forward %.1f, H %.1f, solve "
               "%.1f), ETA %.1f s",
               fill, "##############################", kWidth - fill,
               "..............................", done, total, all.wall, fwd.wall, h.wall,
               solve.wall, eta);
  if (done == total) std::fputc('\n', stderr);
}

// GPTQ of linear `name` of the f32 model (skipped when it is not f32: a
// pre-quantized GGUF tensor is kept as it is) with its input's Hessian h
// [K][K] (overwritten): its q4 values go into *plan (under *mu) and its
// dequantized values replace the float ones in the file (fd), so the block's
// second run, through the shared mapping, sees them.
bool SolveLinear(const ModelFile& mf, const std::string& name, int K, double* h,
                 const CalibOptions& o, int fd, const std::string& path, std::mutex* mu,
                 Q4Plan* plan, std::string* err) {
  const format::TensorEntry* t = mf.Find(name);
  if (!t || t->dtype != static_cast<uint32_t>(format::DType::kF32) || t->n_dims != 2) return true;
  const uint64_t N = t->shape[0];
  if (t->shape[1] != static_cast<uint64_t>(K)) {
    *err =
        name + ": input width " + std::to_string(t->shape[1]) + " != observed " + std::to_string(K);
    return false;
  }
  std::vector<float> w(N * K);
  std::memcpy(w.data(), mf.Data(*t), w.size() * sizeof(float));
  Q4Matrix q;
  if (!GptqQuantize(w.data(), N, static_cast<uint64_t>(K), h, o.damp, o.act_order, &q, err)) {
    *err = name + ": " + *err;
    return false;
  }
  const size_t bytes = w.size() * sizeof(float);
  if (::pwrite(fd, w.data(), bytes, static_cast<off_t>(t->offset)) != static_cast<ssize_t>(bytes)) {
    *err = "cannot write " + path + ": " + std::strerror(errno);
    return false;
  }
  std::lock_guard<std::mutex> lock(*mu);
  (*plan)[name] = std::move(q);
  return true;
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
  co.n_batch = std::min(W, kChunk);
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
      *err = f32_model +
             ": calibration forward pass failed: NaN or Inf in the token embedding "
             "(tok_embd) of calibration token " +
             std::to_string(bad / dim);
      return false;
    }
  }
  // Runs block l over every window: on a copy of the hidden states up to
  // ffn_down's input (`in_place` false: only the observer's Hessians are
  // wanted), or all of it, replacing them.
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
        if (ctx->EvalLayer(l, x, M, p, err, !in_place) != engine::EvalStatus::kOk) {
          *err = f32_model + ": calibration forward pass failed: " + *err;
          return false;
        }
      }
    return true;
  };

  // Block l's four Hessians, accumulated from the observed linear inputs.
  engine::ThreadPool pool(ctx->n_threads());
  std::unique_ptr<HessianAccumulator> acc[4];
  for (int s = 0; s < 4; ++s)
    acc[s].reset(new HessianAccumulator(s == 3   ? cfg.ffn_dim
                                        : s == 1 ? cfg.q_dim
                                                 : dim,
                                        model->kernels()));
  Times t_h, t_fwd, t_solve, t_all;  // t_h: inside the first run of each block
  bool observing = false;            // the first run only
  ctx->SetLinearInputObserver([&](int, int linear, const float* x, int M, int K) {
    if (!observing) return;
    for (int s = 0; s < 4; ++s)
      if (kGroups[s].first == linear && acc[s]->K() == K) {
        const Stamp th = Now();
        acc[s]->Add(x, M, pool);
        AddSince(th, &t_h);
      }
  });

  const Stamp t0 = Now();
  Progress(o.quiet, 0, n_layers, Times(), Times(), Times(), Times());
  const ModelFile& mf = model->file();
  for (int l = 0; l < n_layers; ++l) {
    for (auto& a : acc) std::fill(a->H().begin(), a->H().end(), 0.0);
    Stamp tl = Now();
    const Times h0 = t_h;
    observing = true;
    if (!run_block(l, false)) return false;
    observing = false;
    AddSince(tl, &t_fwd);
    t_fwd.wall -= t_h.wall - h0.wall;
    t_fwd.cpu -= t_h.cpu - h0.cpu;
    tl = Now();
    for (auto& a : acc) {
      // The full symmetric H (GptqQuantize reads both triangles).
      std::vector<double>& h = a->H();
      const size_t K = static_cast<size_t>(a->K());
      for (size_t i = 0; i < K; ++i)
        for (size_t j = i + 1; j < K; ++j) h[i * K + j] = h[j * K + i];
    }
    // The block's GPTQ solves are independent: they run side by side on the
    // engine's thread count, largest first (ffn_down's is most of a block).
    struct Task {
      int slot, linear;
      bool owns_h;  // the group's last member: GptqQuantize may overwrite H
    };
    std::vector<Task> tasks;
    for (int s : {3, 2, 0, 1})
      for (size_t mi = 0; mi < kGroups[s].members.size(); ++mi)
        tasks.push_back({s, kGroups[s].members[mi], mi + 1 == kGroups[s].members.size()});
    // Members sharing an H copy it before its owner may start.
    std::atomic<int> next{0};
    std::mutex mu;
    std::string first_err;
    std::vector<std::vector<double>> copies(tasks.size());
    for (size_t i = 0; i < tasks.size(); ++i)
      if (!tasks[i].owns_h) copies[i] = acc[tasks[i].slot]->H();
    auto solve = [&](int, int) {
      for (size_t i; (i = static_cast<size_t>(next.fetch_add(1))) < tasks.size();) {
        const Task& tk = tasks[i];
        const std::string name = "blk." + std::to_string(l) + "." + format::kLinearNames[tk.linear];
        std::string e;
        if (!SolveLinear(mf, name, acc[tk.slot]->K(),
                         tk.owns_h ? acc[tk.slot]->H().data() : copies[i].data(), o, fd, f32_model,
                         &mu, plan, &e)) {
          std::lock_guard<std::mutex> lock(mu);
          if (first_err.empty()) first_err = e;
        }
        std::vector<double>().swap(copies[i]);
      }
    };
    pool.RunF(solve);
    if (!first_err.empty()) {
      *err = first_err;
      return false;
    }
    AddSince(tl, &t_solve);
    // The next block's inputs, from this block's quantized weights.
    tl = Now();
    if (l + 1 < n_layers && !run_block(l, true)) return false;
    AddSince(tl, &t_fwd);
    // This block's weights are read no more: drop their mapped pages so the
    // resident set stays at about one block of the f32 model.
    for (int li = 0; li < 7; ++li)
      if (const format::TensorEntry* t =
              mf.Find("blk." + std::to_string(l) + "." + format::kLinearNames[li]))
        DropPages(mf.Data(*t), t->size);
    t_all = Times();
    AddSince(t0, &t_all);
    Progress(o.quiet, l + 1, n_layers, t_all, t_fwd, t_h, t_solve);
  }
  if (!o.quiet)
    std::fprintf(stderr,
                 "[gptq] CPU time %.1f s: forward %.1f s, H %.1f s, solve %.1f s (%zu tokens)\n",
                 t_all.cpu, t_fwd.cpu, t_h.cpu, t_solve.cpu, n_tok);
  return true;
}

}  // namespace lamina::convert
