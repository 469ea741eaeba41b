// karpathy/llama2.c legacy checkpoints (.bin, version 0): a header of seven
// int32 {dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len}
// (negative vocab_size: the classifier is not shared), then f32 tensors in
// PyTorch [out, in] order: token_embedding, rms_att[L], wq[L], wk[L], wv[L],
// wo[L], rms_ffn[L], w1[L], w2[L], w3[L], rms_final, freq_cis_real,
// freq_cis_imag, [wcls]. llama2.c's wq/wk already use the interleaved RoPE
// pairing (Meta order), so no permutation. Tokenizer: tokenizer.bin (or
// tok<vocab>.bin) beside the checkpoint, or --tokenizer.
#include <cstring>

#include "tools/convert/convert.h"
#include "tools/convert/convert_util.h"

namespace lamina::convert {

bool ConvertLlama2c(const std::string& bin, const std::string& out, const ConvertOptions& o,
                    std::string* err) {
  format::DType probe;
  if (!TypeFor(Role::kLinear, o, &probe, err)) return false;
  MappedFile f;
  if (!f.Open(bin, err)) return false;
  if (f.size() < 28) {
    *err = bin + ": too small for a llama2.c checkpoint (28-byte header)";
    return false;
  }
  int32_t h[7];
  std::memcpy(h, f.data(), sizeof(h));
  const char* names[7] = {"dim",        "hidden_dim", "n_layers", "n_heads",
                          "n_kv_heads", "vocab_size", "seq_len"};
  for (int i = 0; i < 7; ++i) {
    const int64_t v = i == 5 && h[i] < 0 ? -int64_t{h[i]} : h[i];
    if (v <= 0 || v > (int64_t{1} << 24)) {
      *err = bin + ": header field " + names[i] + " = " + std::to_string(h[i]) +
             " out of range (not a llama2.c checkpoint?)";
      return false;
    }
  }
  const bool shared = h[5] > 0;
  format::HParams hp{};
  hp.arch = static_cast<uint32_t>(format::Arch::kLlama);
  hp.dim = static_cast<uint32_t>(h[0]);
  hp.ffn_dim = static_cast<uint32_t>(h[1]);
  hp.n_layers = static_cast<uint32_t>(h[2]);
  hp.n_heads = static_cast<uint32_t>(h[3]);
  hp.n_kv_heads = static_cast<uint32_t>(h[4]);
  hp.vocab_size = static_cast<uint32_t>(shared ? h[5] : -int64_t{h[5]});
  hp.max_context = static_cast<uint32_t>(h[6]);
  if (hp.dim % hp.n_heads != 0 || hp.n_heads % hp.n_kv_heads != 0 || hp.dim > (1u << 16) ||
      hp.n_layers > 1024 || hp.ffn_dim > (1u << 18)) {
    *err = bin + ": inconsistent header (dim " + std::to_string(hp.dim) + ", n_heads " +
           std::to_string(hp.n_heads) + ", n_kv_heads " + std::to_string(hp.n_kv_heads) + ")";
    return false;
  }
  hp.head_dim = hp.dim / hp.n_heads;
  hp.norm_eps = 1e-5f;
  hp.rope_theta = 10000.f;
  hp.rope_scaling = static_cast<uint32_t>(format::RopeScaling::kNone);
  hp.bos_id = 1;
  hp.eos_id = 2;
  hp.n_stop_ids = 1;
  hp.stop_ids[0] = 2;

  const uint64_t d = hp.dim, L = hp.n_layers, ff = hp.ffn_dim, V = hp.vocab_size;
  const uint64_t kvd = uint64_t{hp.n_kv_heads} * hp.head_dim;
  const uint64_t freq = uint64_t{hp.max_context} * hp.head_dim / 2;
  // Element offsets of each section (f32 units after the header).
  uint64_t pos = 0;
  auto take = [&pos](uint64_t n) {
    const uint64_t p = pos;
    pos += n;
    return p;
  };
  const uint64_t o_emb = take(V * d), o_rms_att = take(L * d), o_wq = take(L * d * d),
                 o_wk = take(L * kvd * d), o_wv = take(L * kvd * d), o_wo = take(L * d * d),
                 o_rms_ffn = take(L * d), o_w1 = take(L * ff * d), o_w2 = take(L * d * ff),
                 o_w3 = take(L * ff * d), o_rms_final = take(d);
  take(2 * freq);
  const uint64_t o_wcls = shared ? 0 : take(V * d);
  const uint64_t need = 28 + pos * 4;
  if (f.size() < need) {
    *err = bin + ": truncated: " + std::to_string(f.size()) + " bytes, the header implies " +
           std::to_string(need);
    return false;
  }
  if (f.size() != need && !o.quiet)
    std::fprintf(stderr, "warning: %s: %llu trailing bytes ignored\n", bin.c_str(),
                 static_cast<unsigned long long>(f.size() - need));
  const uint8_t* base = f.data() + 28;
  auto rows_at = [base](uint64_t off, uint64_t K) -> RowFn {
    return [=](uint64_t r0, uint64_t n, float* out) {
      std::memcpy(out, base + (off + r0 * K) * 4, n * K * 4);
    };
  };

  ModelWriter w;
  if (!w.Open(out, err)) return false;
  Stats st(o.quiet);
  std::string tok_path = o.tokenizer_path;
  if (tok_path.empty() && !o.no_tokenizer) {
    const std::string dir = DirName(bin);
    for (const std::string& c : {std::string("tokenizer.bin"), "tok" + std::to_string(V) + ".bin"})
      if (IsFile(dir + "/" + c)) {
        tok_path = dir + "/" + c;
        break;
      }
  }
  if (!tok_path.empty()) {
    if (!EmbedTokenizerFile(w, tok_path, &hp, true, err)) return false;
  } else if (!o.quiet) {
    st.Warn(bin +
            ": no tokenizer.bin beside it (use --tokenizer); the model will be driven by "
            "token ids");
  }

  auto vec = [&](const std::string& name, uint64_t off) {
    std::vector<float> v(d);
    std::memcpy(v.data(), base + off * 4, d * 4);
    return EmitVector(w, &st, name, v.data(), d, err);
  };
  st.Begin(1 + 9 * L + 1 + (shared ? 0 : 1));
  if (!EmitMatrix(w, &st, "tok_embd", Role::kEmbedding, V, d, rows_at(o_emb, d), o, err))
    return false;
  for (uint64_t l = 0; l < L; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    if (!vec(b + "attn_norm", o_rms_att + l * d) ||
        !EmitMatrix(w, &st, b + "attn_q", Role::kLinear, d, d, rows_at(o_wq + l * d * d, d), o,
                    err) ||
        !EmitMatrix(w, &st, b + "attn_k", Role::kLinear, kvd, d, rows_at(o_wk + l * kvd * d, d), o,
                    err) ||
        !EmitMatrix(w, &st, b + "attn_v", Role::kLinear, kvd, d, rows_at(o_wv + l * kvd * d, d), o,
                    err) ||
        !EmitMatrix(w, &st, b + "attn_output", Role::kLinear, d, d, rows_at(o_wo + l * d * d, d), o,
                    err) ||
        !vec(b + "ffn_norm", o_rms_ffn + l * d) ||
        !EmitMatrix(w, &st, b + "ffn_gate", Role::kLinear, ff, d, rows_at(o_w1 + l * ff * d, d), o,
                    err) ||
        !EmitMatrix(w, &st, b + "ffn_down", Role::kLinear, d, ff, rows_at(o_w2 + l * d * ff, ff), o,
                    err) ||
        !EmitMatrix(w, &st, b + "ffn_up", Role::kLinear, ff, d, rows_at(o_w3 + l * ff * d, d), o,
                    err))
      return false;
  }
  if (!vec("output_norm", o_rms_final)) return false;
  if (!shared && !EmitMatrix(w, &st, "output", Role::kOutput, V, d, rows_at(o_wcls, d), o, err))
    return false;
  w.SetHParams(hp);
  w.SetFlags(shared ? static_cast<uint32_t>(format::kFlagTiedEmbeddings) : 0u);
  w.SetScheme(o.weights);
  if (!w.Finish(err)) return false;
  st.Summary(out, w.bytes_written());
  return true;
}

}  // namespace lamina::convert
