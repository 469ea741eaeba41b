// llama-run --bench: load time, median prefill and decode tokens/s over -r
// repetitions (synthetic ids, greedy), peak RSS; a table or one JSON object.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tools/run/run.h"

namespace lamina::run {
namespace {

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void AppendJsonString(std::string* out, const std::string& s) {
  *out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      *out += '\\';
      *out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      *out += buf;
    } else {
      *out += static_cast<char>(c);
    }
  }
  *out += '"';
}

std::string JsonArray(const std::vector<double>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%s%.3f", i ? ", " : "", v[i]);
    s += buf;
  }
  return s + "]";
}

/// What --bench measured, for the report.
struct Result {
  std::string model;
  lamina_model_info mi;
  lamina_context_info ci;
  long n_prompt = 0, n_gen = 0, reps = 0;
  std::vector<double> pre_tps, dec_tps;  // per repetition
  lamina_stats stats{};
  const Spec* spec = nullptr;
};

/// Runs the repetitions: clear the KV cache, prefill ids, decode n_gen tokens
/// greedily (speculatively with --lookup/--draft). 0 or the exit code.
int Measure(const Args& a, lamina_context* ctx, lamina_sampler* smp, Spec* spec,
            const std::vector<int32_t>& ids, Result* r) {
  using Clock = std::chrono::steady_clock;
  auto ms_since = [](Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  };
  const long n_prompt = r->n_prompt, n_gen = r->n_gen;
  std::vector<double>& pre_tps = r->pre_tps;
  std::vector<double>& dec_tps = r->dec_tps;
  lamina_status st;
  int rc = 0;
  for (long rep = 0; rep < a.reps && rc == 0; ++rep) {
    lamina_kv_clear(ctx);
    Clock::time_point t0 = Clock::now();
    st = lamina_eval(ctx, ids.data(), ids.size());
    const double pre_ms = ms_since(t0);
    if (st != LAMINA_OK) {
      rc = Fail("prefill", st);
      break;
    }
    t0 = Clock::now();
    long generated = n_gen;
    if (spec && n_gen > 0) {
      // Speculative: up to n_gen tokens (a stop token may end it earlier).
      lamina_generate_result res;
      st = Generate(spec, a, ctx, smp, nullptr, 0, static_cast<size_t>(n_gen), nullptr, nullptr,
                    &res);
      if (st != LAMINA_OK) {
        rc = Fail("decode", st);
        break;
      }
      generated = static_cast<long>(res.n_generated);
    }
    for (long g = 0; !spec && g < n_gen; ++g) {
      int32_t tok = 0;
      st = lamina_sample(smp, ctx, &tok);
      if (st == LAMINA_OK) st = lamina_eval(ctx, &tok, 1);
      if (st != LAMINA_OK) {
        rc = Fail("decode", st);
        break;
      }
    }
    const double dec_ms = ms_since(t0);
    pre_tps.push_back(pre_ms > 0 ? 1000.0 * n_prompt / pre_ms : 0);
    dec_tps.push_back(generated > 0 && dec_ms > 0 ? 1000.0 * generated / dec_ms : 0);
    if (!a.json)
      std::fprintf(stderr, "[llama-run] bench rep %ld/%ld: prefill %.2f tok/s, decode %.2f tok/s\n",
                   rep + 1, a.reps, pre_tps.back(), dec_tps.back());
  }
  return rc;
}

void PrintJson(const Result& r) {
  std::string j = "{\"model\": ";
  AppendJsonString(&j, r.model);
  char buf[2048];
  std::snprintf(buf, sizeof(buf),
                ", \"weight_scheme\": \"%s\", \"file_bytes\": %llu, \"dim\": %d, \"n_layers\": %d, "
                "\"n_heads\": %d, \"n_kv_heads\": %d, \"head_dim\": %d, \"ffn_dim\": %d, "
                "\"vocab_size\": %d, \"kernel_tier\": \"%s\", \"threads\": %d, \"n_ctx\": %d, "
                "\"kv_type\": \"%s\", \"kv_bytes\": %llu, \"n_batch\": %d, \"n_prompt\": %ld, "
                "\"n_gen\": %ld, \"reps\": %ld, \"load_ms\": %.3f, \"prefill_tok_s\": %.3f, "
                "\"decode_tok_s\": %.3f, ",
                r.mi.weight_scheme, static_cast<unsigned long long>(r.mi.file_bytes), r.mi.dim,
                r.mi.n_layers, r.mi.n_heads, r.mi.n_kv_heads, r.mi.head_dim, r.mi.ffn_dim,
                r.mi.vocab_size, r.mi.kernel_tier, r.ci.n_threads, r.ci.n_ctx, KvName(r.ci.kv_type),
                static_cast<unsigned long long>(r.ci.kv_bytes), r.ci.n_batch, r.n_prompt, r.n_gen,
                r.reps, r.mi.load_ms, Median(r.pre_tps), Median(r.dec_tps));
  j += buf;
  j += "\"prefill_tok_s_runs\": " + JsonArray(r.pre_tps) +
       ", \"decode_tok_s_runs\": " + JsonArray(r.dec_tps);
  if (r.spec) {
    const lamina_speculative_stats& t = r.spec->total;
    std::snprintf(buf, sizeof(buf),
                  ", \"spec_generated\": %llu, \"spec_drafted\": %llu, \"spec_accepted\": %llu, "
                  "\"spec_target_passes\": %llu, \"spec_draft_passes\": %llu",
                  static_cast<unsigned long long>(t.generated),
                  static_cast<unsigned long long>(t.drafted),
                  static_cast<unsigned long long>(t.accepted),
                  static_cast<unsigned long long>(t.target_passes),
                  static_cast<unsigned long long>(t.draft_passes));
    j += buf;
  }
  std::snprintf(buf, sizeof(buf), ", \"peak_rss_bytes\": %llu}\n",
                static_cast<unsigned long long>(r.stats.peak_rss_bytes));
  j += buf;
  std::fputs(j.c_str(), stdout);
}

void PrintTable(const Result& r) {
  std::printf("%-10s %s\n", "model", r.model.c_str());
  std::printf("%-10s dim %d, %d layers, %d heads (%d kv, head_dim %d), ffn %d, vocab %d\n", "dims",
              r.mi.dim, r.mi.n_layers, r.mi.n_heads, r.mi.n_kv_heads, r.mi.head_dim, r.mi.ffn_dim,
              r.mi.vocab_size);
  std::printf("%-10s %s (file %.1f MiB)\n", "weights", r.mi.weight_scheme,
              r.mi.file_bytes / 1048576.0);
  std::printf("%-10s %s\n", "kernels", r.mi.kernel_tier);
  std::printf("%-10s %d\n", "threads", r.ci.n_threads);
  std::printf("%-10s %d (KV %s, %.1f MiB), batch %d\n", "context", r.ci.n_ctx, KvName(r.ci.kv_type),
              r.ci.kv_bytes / 1048576.0, r.ci.n_batch);
  std::printf("%-10s %.2f ms\n", "load", r.mi.load_ms);
  std::printf("%-10s %ld tokens: %10.2f tok/s  (median of %ld)\n", "prefill", r.n_prompt,
              Median(r.pre_tps), r.reps);
  std::printf("%-10s %ld tokens: %10.2f tok/s  (median of %ld)\n", "decode", r.n_gen,
              Median(r.dec_tps), r.reps);
  std::printf("%-10s %.1f MiB\n", "peak RSS", r.stats.peak_rss_bytes / 1048576.0);
}

}  // namespace

int Bench(const Args& a) {
  ModelPtr model;
  if (const int rc = LoadModel(a, a.model, "loading the model", &model)) return rc;
  Result r;
  r.model = a.model;
  r.n_prompt = a.bench_prompt;
  r.n_gen = a.n_predict;
  r.reps = a.reps;
  lamina_model_get_info(model.get(), &r.mi);
  ContextPtr ctx;
  if (const int rc = CreateContext(a, model.get(), r.mi, false, &ctx)) return rc;
  lamina_context_get_info(ctx.get(), &r.ci);
  if (r.n_prompt + r.n_gen > r.ci.n_ctx) {
    std::fprintf(stderr,
                 "llama-run: --bench: -p %ld + -n %ld tokens do not fit the context (%d; -c)\n",
                 r.n_prompt, r.n_gen, r.ci.n_ctx);
    return 2;
  }
  lamina_sampler_params sp = lamina_sampler_default_params();
  sp.temperature = 0;  // greedy
  lamina_sampler* s = nullptr;
  const lamina_status st = lamina_sampler_create(model.get(), &sp, &s);
  if (st != LAMINA_OK) return Fail("sampler", st);
  SamplerPtr smp(s);
  std::vector<int32_t> ids(static_cast<size_t>(r.n_prompt));
  for (long i = 0; i < r.n_prompt; ++i)
    ids[i] = static_cast<int32_t>((static_cast<int64_t>(i) * 7919) % r.mi.vocab_size);

  std::unique_ptr<Spec> spec;  // after ctx: the draft is freed first
  int rc = SetUpSpec(a, r.ci, &spec);
  if (rc == 0) rc = Measure(a, ctx.get(), smp.get(), spec.get(), ids, &r);
  lamina_context_get_stats(ctx.get(), &r.stats);
  if (rc != 0) return rc;
  r.spec = spec.get();
  if (a.json)
    PrintJson(r);
  else
    PrintTable(r);
  if (spec) PrintSpecStats(spec->total);
  std::fflush(stdout);
  return 0;
}

}  // namespace lamina::run
