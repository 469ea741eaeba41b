// lamina-perplexity: perplexity of a model on a text file and, with --kl-base,
// how far its next-token distributions are from a base model's (llama.cpp's
// llama-perplexity / --kl-divergence habits).
//
//   lamina-perplexity -m MODEL.lamina -f TEXT.txt [-c CTX] [--kl-base BASE.lamina]
//                     [--json] [-t N] [--kernels T] [--kv f16|f32]
//
// Method (llama.cpp's convention): the whole file is tokenized with the
// model's embedded tokenizer, BOS first; the tokens are cut into
// non-overlapping windows of CTX tokens (a partial last window is dropped);
// the first token of every window is set to BOS; each window is evaluated
// from an empty cache and only the second half is scored: the logits at
// positions p = CTX/2 .. CTX-2 predict token p+1 (CTX-1-CTX/2 tokens per
// window), so every scored token has at least CTX/2 tokens of context.
//   PPL = exp(mean nll), stderr = PPL * sqrt((E[nll^2] - E[nll]^2) / (n-1)).
//   KL = mean over scored tokens of sum_v p_base(v) log(p_base(v) / p(v));
//   kl_p99 its 99th percentile (linear interpolation, NumPy's default);
//   top1 = fraction of tokens where both argmaxes agree (first max on ties);
//   ppl_ratio = PPL(model) / PPL(base). Everything is accumulated in double.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "tools/common/cli.h"
#include "tools/convert/calibrate.h"

namespace {

using lamina::tools::ParseInt;

using lamina::engine::Context;
using lamina::engine::ContextOptions;
using lamina::engine::EvalStatus;
using lamina::engine::Model;
using lamina::engine::ModelOptions;

struct Args {
  std::string model, file, base, kernels;
  int ctx = 512;
  int threads = 0;
  bool json = false;
  lamina::kern::KvType kv = lamina::kern::KvType::kF16;
};

void Usage(FILE* f) {
  std::fprintf(
      f,
      "usage: lamina-perplexity -m MODEL.lamina -f TEXT.txt [-c CTX] [--kl-base BASE.lamina]\n"
      "                         [--json] [-t N] [--kernels ref|neon|dotprod|i8mm|sve]\n"
      "                         [--kv f16|f32]\n"
      "\n"
      "Perplexity of MODEL on TEXT (UTF-8), llama.cpp's convention: the text is tokenized\n"
      "with the model's tokenizer (BOS first) and cut into non-overlapping windows of CTX\n"
      "tokens (default 512, at most the model's context; a partial last window is dropped).\n"
      "Each window starts with BOS and is evaluated from an empty cache; only its second\n"
      "half is scored (positions CTX/2 .. CTX-2 predict the next token), so every scored\n"
      "token sees at least CTX/2 tokens of context. Prints PPL +/- its standard error.\n"
      "\n"
      "--kl-base BASE: also evaluate BASE (same vocabulary; e.g. the f32 conversion) on\n"
      "the same tokens and print mean KL(base || model) over the scored tokens, its 99th\n"
      "percentile, top-1 agreement and PPL(model) / PPL(base).\n"
      "--json: one object {\"n_tokens\", \"ppl\", \"ppl_stderr\"[, \"kl\", \"kl_p99\", \"top1\",\n"
      "\"ppl_ratio\"]} on stdout (n_tokens = scored tokens). Progress goes to stderr.\n"
      "-t N threads (default: all cores), --kernels: force a kernel tier, --kv: KV cache\n"
      "type (default f16).\n");
}

int BadUsage(const std::string& msg) {
  std::fprintf(stderr, "lamina-perplexity: %s\n", msg.c_str());
  Usage(stderr);
  return 2;
}

// 0 on success; else the exit code (usage errors print their message).
int ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    if (f == "-h" || f == "--help") {
      Usage(stdout);
      std::exit(0);
    }
    if (f == "--json") {
      a->json = true;
      continue;
    }
    if (i + 1 >= argc) return BadUsage(f + " needs a value");
    const char* v = argv[++i];
    if (f == "-m" || f == "--model") {
      a->model = v;
    } else if (f == "-f" || f == "--file") {
      a->file = v;
    } else if (f == "--kl-base") {
      a->base = v;
    } else if (f == "--kernels") {
      a->kernels = v;
    } else if (f == "-c" || f == "--ctx-size") {
      if (!ParseInt(v, 4, 1 << 24, &a->ctx))
        return BadUsage(std::string("-c: expected an integer >= 4, got '") + v + "'");
    } else if (f == "-t" || f == "--threads") {
      if (!ParseInt(v, 1, 512, &a->threads))
        return BadUsage(std::string("-t: expected 1..512, got '") + v + "'");
    } else if (f == "--kv") {
      const std::string s = v;
      if (s == "f16") {
        a->kv = lamina::kern::KvType::kF16;
      } else if (s == "f32") {
        a->kv = lamina::kern::KvType::kF32;
      } else {
        return BadUsage("--kv: expected f16 or f32, got '" + s + "'");
      }
    } else {
      return BadUsage("unknown option " + f);
    }
  }
  if (a->model.empty()) return BadUsage("-m MODEL is required");
  if (a->file.empty()) return BadUsage("-f TEXT is required");
  return 0;
}

int Fail(const std::string& msg) {
  std::fprintf(stderr, "lamina-perplexity: %s\n", msg.c_str());
  return 1;
}

// A context of n_ctx tokens that keeps the logits of every position.
std::unique_ptr<Context> MakeContext(const Args& a, const Model& model, const std::string& path,
                                     int n_ctx, int n_batch, std::string* err) {
  ContextOptions co;
  co.n_ctx = n_ctx;
  co.n_batch = n_batch;
  co.n_threads = a.threads;
  co.kv_type = a.kv;
  co.logits_all = true;
  auto ctx = Context::Create(model, co, err);
  if (!ctx) *err = path + ": " + *err;
  return ctx;
}

// log-sum-exp of n logits, in double.
double LogSumExp(const float* l, int n) {
  double mx = l[0];
  for (int i = 1; i < n; ++i) mx = std::max(mx, static_cast<double>(l[i]));
  double s = 0;
  for (int i = 0; i < n; ++i) s += std::exp(static_cast<double>(l[i]) - mx);
  return mx + std::log(s);
}

int ArgMax(const float* l, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (l[i] > l[best]) best = i;
  return best;
}

// KL(p_base || p_model) = sum_v p_b (log p_b - log p_m), both log-softmaxes in double.
double KlDivergence(const float* base, double lse_base, const float* model, double lse_model,
                    int n) {
  double kl = 0;
  for (int i = 0; i < n; ++i) {
    const double lb = static_cast<double>(base[i]) - lse_base;
    const double lm = static_cast<double>(model[i]) - lse_model;
    kl += std::exp(lb) * (lb - lm);
  }
  return kl;
}

// NumPy's default percentile (linear interpolation between closest ranks).
double Percentile(std::vector<double> v, double pct) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double h = (static_cast<double>(v.size()) - 1) * pct / 100.0;
  const size_t lo = static_cast<size_t>(std::floor(h));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (h - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

// exp(mean) and llama.cpp's standard error of the perplexity.
void PplAndError(double sum, double sum2, uint64_t n, double* ppl, double* se) {
  const double mean = sum / static_cast<double>(n);
  *ppl = std::exp(mean);
  const double var = sum2 / static_cast<double>(n) - mean * mean;
  *se = (n > 1 && var > 0) ? *ppl * std::sqrt(var / static_cast<double>(n - 1)) : 0.0;
}

int Main(int argc, char** argv) {
  Args a;
  if (const int rc = ParseArgs(argc, argv, &a)) return rc;
  std::string err;

  ModelOptions mo;
  mo.kernels = a.kernels;
  std::unique_ptr<Model> model = Model::Load(a.model, mo, &err);
  if (!model) return Fail(err);
  const lamina::Tokenizer* tok = model->tokenizer();
  if (!tok)
    return Fail(a.model + ": no usable tokenizer (" + model->tokenizer_error() +
                "); lamina-perplexity tokenizes the text with the model's tokenizer");
  const int vocab = model->config().vocab;
  const int n_ctx = std::min(a.ctx, model->config().max_context);
  if (n_ctx < a.ctx)
    std::fprintf(stderr, "[lamina-perplexity] -c %d clamped to the model's maximum context %d\n",
                 a.ctx, n_ctx);
  if (n_ctx < 4) return Fail(a.model + ": maximum context " + std::to_string(n_ctx) + " < 4");

  // The text, BOS first.
  std::vector<int32_t> ids;
  if (!lamina::convert::ReadTextTokens(*tok, a.file, static_cast<size_t>(n_ctx), &ids, &err))
    return Fail(err + (err.find("shorter") != std::string::npos
                           ? " (use a smaller -c or a longer text)"
                           : ""));
  const int n_windows = static_cast<int>(ids.size() / static_cast<size_t>(n_ctx));
  const int first = n_ctx / 2;

  // Contexts. n_batch bounds the logits buffer (n_batch x vocab floats) and
  // the work buffers; windows are evaluated in chunks of it.
  const int n_batch = std::min(n_ctx, 128);
  std::unique_ptr<Context> mc = MakeContext(a, *model, a.model, n_ctx, n_batch, &err);
  if (!mc) return Fail(err);
  std::unique_ptr<Model> base;
  std::unique_ptr<Context> bc;
  const bool kl = !a.base.empty();
  if (kl) {
    base = Model::Load(a.base, mo, &err);
    if (!base) return Fail(err);
    if (base->config().vocab != vocab)
      return Fail("--kl-base: " + a.base + " has a vocabulary of " +
                  std::to_string(base->config().vocab) + " tokens, " + a.model + " of " +
                  std::to_string(vocab) + ": both models must share the vocabulary");
    if (base->config().max_context < n_ctx)
      return Fail("--kl-base: " + a.base + " has a maximum context of " +
                  std::to_string(base->config().max_context) + " < " + std::to_string(n_ctx));
    bc = MakeContext(a, *base, a.base, n_ctx, n_batch, &err);
    if (!bc) return Fail(err);
  }
  std::fprintf(stderr,
               "[lamina-perplexity] %s: %zu tokens, %d windows of %d (scoring %d per window), "
               "kernels %s, threads %d\n",
               a.file.c_str(), ids.size(), n_windows, n_ctx, n_ctx - 1 - first,
               lamina::kern::TierName(model->tier()), mc->n_threads());

  double nll = 0, nll2 = 0, bnll = 0, kl_sum = 0;
  uint64_t n = 0, agree = 0;
  std::vector<double> kls;
  std::vector<int32_t> win(static_cast<size_t>(n_ctx));
  const auto t0 = std::chrono::steady_clock::now();
  for (int w = 0; w < n_windows; ++w) {
    std::copy(ids.begin() + static_cast<ptrdiff_t>(w) * n_ctx,
              ids.begin() + static_cast<ptrdiff_t>(w + 1) * n_ctx, win.begin());
    if (tok->bos_id() >= 0) win[0] = tok->bos_id();
    mc->Clear();
    if (kl) bc->Clear();
    for (int j = 0; j < n_ctx; j += n_batch) {
      const int cnt = std::min(n_batch, n_ctx - j);
      // Positions j..j+cnt-1; scored: p in [first, n_ctx-2] predicting p+1.
      const bool any = j + cnt - 1 >= first && j <= n_ctx - 2;
      if (mc->Eval(win.data() + j, cnt, &err) != EvalStatus::kOk)
        return Fail(a.model + ": eval failed: " + err);
      if (kl && bc->Eval(win.data() + j, cnt, &err) != EvalStatus::kOk)
        return Fail(a.base + ": eval failed: " + err);
      if (!any) continue;
      for (int i = 0; i < cnt; ++i) {
        const int p = j + i;
        if (p < first || p > n_ctx - 2) continue;
        const int target = win[static_cast<size_t>(p) + 1];
        const float* lm = mc->logits_row(i);
        const double lse = LogSumExp(lm, vocab);
        const double t = lse - static_cast<double>(lm[target]);
        nll += t;
        nll2 += t * t;
        ++n;
        if (kl) {
          const float* lb = bc->logits_row(i);
          const double lse_b = LogSumExp(lb, vocab);
          bnll += lse_b - static_cast<double>(lb[target]);
          const double d = KlDivergence(lb, lse_b, lm, lse, vocab);
          kl_sum += d;
          kls.push_back(d);
          agree += ArgMax(lb, vocab) == ArgMax(lm, vocab);
        }
      }
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double eta = s / (w + 1) * (n_windows - w - 1);
    std::fprintf(stderr, "[lamina-perplexity] window %d/%d: ppl %.4f%s, %.1f s, ETA %.1f s\n",
                 w + 1, n_windows, std::exp(nll / static_cast<double>(n)),
                 kl ? (", KL " + std::to_string(kl_sum / static_cast<double>(n))).c_str() : "", s,
                 eta);
  }

  double ppl, se;
  PplAndError(nll, nll2, n, &ppl, &se);
  double kl_mean = 0, kl_p99 = 0, top1 = 0, base_ppl = 0;
  if (kl) {
    kl_mean = kl_sum / static_cast<double>(n);
    kl_p99 = Percentile(kls, 99.0);
    top1 = static_cast<double>(agree) / static_cast<double>(n);
    base_ppl = std::exp(bnll / static_cast<double>(n));
  }
  if (a.json) {
    std::printf("{\"n_tokens\": %llu, \"ppl\": %.17g, \"ppl_stderr\": %.17g",
                static_cast<unsigned long long>(n), ppl, se);
    if (kl)
      std::printf(", \"kl\": %.17g, \"kl_p99\": %.17g, \"top1\": %.17g, \"ppl_ratio\": %.17g",
                  kl_mean, kl_p99, top1, ppl / base_ppl);
    std::printf("}\n");
  } else {
    std::printf("%s on %s: %llu tokens scored (%d windows of %d, second half)\n", a.model.c_str(),
                a.file.c_str(), static_cast<unsigned long long>(n), n_windows, n_ctx);
    std::printf("PPL = %.4f +/- %.5f\n", ppl, se);
    if (kl)
      std::printf(
          "vs %s (PPL %.4f): mean KL %.6f, KL p99 %.6f, top-1 agreement %.2f%%, PPL ratio "
          "%.4f\n",
          a.base.c_str(), base_ppl, kl_mean, kl_p99, 100.0 * top1, ppl / base_ppl);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return lamina::tools::RunMain("lamina-perplexity", Main, argc, argv);
}
