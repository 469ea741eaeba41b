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

}  // namespace

// llama-run --bench: returns the exit status.
int Bench(const Args& a) {
  using Clock = std::chrono::steady_clock;
  auto ms_since = [](Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  };
  lamina_model_params mp = lamina_model_default_params();
  if (!a.kernels.empty()) mp.kernels = a.kernels.c_str();
  lamina_model* model = nullptr;
  lamina_status st = lamina_model_load(a.model.c_str(), &mp, &model);
  if (st != LAMINA_OK) return Fail("loading the model", st);
  lamina_model_info mi;
  lamina_model_get_info(model, &mi);
  const long n_prompt = a.bench_prompt, n_gen = a.n_predict;
  lamina_context* ctx = nullptr;
  if (const int rc = CreateContext(a, model, mi, false, &ctx)) return rc;
  lamina_context_info ci;
  lamina_context_get_info(ctx, &ci);
  if (n_prompt + n_gen > ci.n_ctx) {
    std::fprintf(stderr,
                 "llama-run: --bench: -p %ld + -n %ld tokens do not fit the context (%d; -c)\n",
                 n_prompt, n_gen, ci.n_ctx);
    lamina_context_free(ctx);
    lamina_model_free(model);
    return 2;
  }
  lamina_sampler_params sp = lamina_sampler_default_params();
  sp.temperature = 0;  // greedy
  lamina_sampler* smp = nullptr;
  st = lamina_sampler_create(model, &sp, &smp);
  if (st != LAMINA_OK) {
    lamina_context_free(ctx);
    lamina_model_free(model);
    return Fail("sampler", st);
  }
  std::vector<int32_t> ids(static_cast<size_t>(n_prompt));
  for (long i = 0; i < n_prompt; ++i)
    ids[i] = static_cast<int32_t>((static_cast<int64_t>(i) * 7919) % mi.vocab_size);

  std::vector<double> pre_tps, dec_tps;
  int rc = 0;
  std::unique_ptr<Spec> spec;
  if (Speculative(a)) {
    spec.reset(new Spec());
    rc = SetUpSpec(a, ci, spec.get());
  }
  for (long r = 0; r < a.reps && rc == 0; ++r) {
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
      st = Generate(spec.get(), ctx, smp, nullptr, 0, static_cast<size_t>(n_gen), nullptr, nullptr,
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
                   r + 1, a.reps, pre_tps.back(), dec_tps.back());
  }
  lamina_stats stats;
  std::memset(&stats, 0, sizeof(stats));
  lamina_context_get_stats(ctx, &stats);
  lamina_sampler_free(smp);
  lamina_context_free(ctx);
  if (rc != 0) {
    lamina_model_free(model);
    return rc;
  }
  const double pre = Median(pre_tps), dec = Median(dec_tps);
  const char* kv = KvName(ci.kv_type);
  if (a.json) {
    std::string j = "{\"model\": ";
    AppendJsonString(&j, a.model);
    char buf[2048];
    std::snprintf(
        buf, sizeof(buf),
        ", \"weight_scheme\": \"%s\", \"file_bytes\": %llu, \"dim\": %d, \"n_layers\": %d, "
        "\"n_heads\": %d, \"n_kv_heads\": %d, \"head_dim\": %d, \"ffn_dim\": %d, "
        "\"vocab_size\": %d, \"kernel_tier\": \"%s\", \"threads\": %d, \"n_ctx\": %d, "
        "\"kv_type\": \"%s\", \"kv_bytes\": %llu, \"n_batch\": %d, \"n_prompt\": %ld, "
        "\"n_gen\": %ld, \"reps\": %ld, \"load_ms\": %.3f, \"prefill_tok_s\": %.3f, "
        "\"decode_tok_s\": %.3f, ",
        mi.weight_scheme, static_cast<unsigned long long>(mi.file_bytes), mi.dim, mi.n_layers,
        mi.n_heads, mi.n_kv_heads, mi.head_dim, mi.ffn_dim, mi.vocab_size, mi.kernel_tier,
        ci.n_threads, ci.n_ctx, kv, static_cast<unsigned long long>(ci.kv_bytes), ci.n_batch,
        n_prompt, n_gen, a.reps, mi.load_ms, pre, dec);
    j += buf;
    j += "\"prefill_tok_s_runs\": " + JsonArray(pre_tps) +
         ", \"decode_tok_s_runs\": " + JsonArray(dec_tps);
    if (spec) {
      const lamina_speculative_stats& t = spec->total;
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
                  static_cast<unsigned long long>(stats.peak_rss_bytes));
    j += buf;
    std::fputs(j.c_str(), stdout);
  } else {
    std::printf("%-10s %s\n", "model", a.model.c_str());
    std::printf("%-10s dim %d, %d layers, %d heads (%d kv, head_dim %d), ffn %d, vocab %d\n",
                "dims", mi.dim, mi.n_layers, mi.n_heads, mi.n_kv_heads, mi.head_dim, mi.ffn_dim,
                mi.vocab_size);
    std::printf("%-10s %s (file %.1f MiB)\n", "weights", mi.weight_scheme,
                mi.file_bytes / 1048576.0);
    std::printf("%-10s %s\n", "kernels", mi.kernel_tier);
    std::printf("%-10s %d\n", "threads", ci.n_threads);
    std::printf("%-10s %d (KV %s, %.1f MiB), batch %d\n", "context", ci.n_ctx, kv,
                ci.kv_bytes / 1048576.0, ci.n_batch);
    std::printf("%-10s %.2f ms\n", "load", mi.load_ms);
    std::printf("%-10s %ld tokens: %10.2f tok/s  (median of %ld)\n", "prefill", n_prompt, pre,
                a.reps);
    std::printf("%-10s %ld tokens: %10.2f tok/s  (median of %ld)\n", "decode", n_gen, dec, a.reps);
    std::printf("%-10s %.1f MiB\n", "peak RSS", stats.peak_rss_bytes / 1048576.0);
  }
  if (spec) PrintSpecStats(spec->total);
  std::fflush(stdout);
  lamina_model_free(model);
  return 0;
}

}  // namespace lamina::run
