// karpathy/llama2.c legacy checkpoints (.bin, version 0): a header of seven
// int32 {dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len}
// (negative vocab_size: the classifier is not shared), then f32 tensors in
// PyTorch [out, in] order: token_embedding, rms_att[L], wq[L], wk[L], wv[L],
// wo[L], rms_ffn[L], w1[L], w2[L], w3[L], rms_final, freq_cis_real,
// freq_cis_imag, [wcls]. llama2.c's wq/wk already use the interleaved RoPE
// pairing (Meta order), so no permutation. Tokenizer: tokenizer.bin (or
// tok<vocab>.bin) beside the checkpoint, or --tokenizer.
#include <algorithm>
#include <cstring>

#include "tools/convert/convert.h"
#include "tools/convert/convert_util.h"

namespace lamina::convert {
namespace {

using schema::TensorId;

// llama2.c's TransformerWeights field for each schema tensor (run.c names).
constexpr schema::NameMap kLlama2cNames = {"",
                                           {{TensorId::kTokEmbd, "token_embedding_table"},
                                            {TensorId::kAttnNorm, "rms_att_weight"},
                                            {TensorId::kAttnQ, "wq"},
                                            {TensorId::kAttnK, "wk"},
                                            {TensorId::kAttnV, "wv"},
                                            {TensorId::kAttnOutput, "wo"},
                                            {TensorId::kFfnNorm, "rms_ffn_weight"},
                                            {TensorId::kFfnGate, "w1"},
                                            {TensorId::kFfnUp, "w3"},
                                            {TensorId::kFfnDown, "w2"},
                                            {TensorId::kOutputNorm, "rms_final_weight"},
                                            {TensorId::kOutput, "wcls"}}};
static_assert(schema::NameMapComplete(kLlama2cNames),
              "every schema tensor needs its llama2.c name");
// The fields in file order; per-layer fields hold all layers back to back.
// freq_cis_real/imag are legacy RoPE tables ([seq_len, head_dim / 2] each),
// skipped; wcls is present only when the classifier is not shared.
constexpr const char* kLlama2cOrder[] = {"token_embedding_table",
                                         "rms_att_weight",
                                         "wq",
                                         "wk",
                                         "wv",
                                         "wo",
                                         "rms_ffn_weight",
                                         "w1",
                                         "w2",
                                         "w3",
                                         "rms_final_weight",
                                         "freq_cis_real",
                                         "freq_cis_imag",
                                         "wcls"};

}  // namespace

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
  if (h[0] % h[3] != 0) {
    *err = bin + ": inconsistent header (dim " + std::to_string(h[0]) + ", n_heads " +
           std::to_string(h[3]) + ", n_kv_heads " + std::to_string(h[4]) + ")";
    return false;
  }
  schema::LlamaDims dims;
  dims.dim = h[0];
  dims.ffn_dim = h[1];
  dims.n_layers = h[2];
  dims.n_heads = h[3];
  dims.n_kv_heads = h[4];
  dims.vocab_size = shared ? h[5] : -int64_t{h[5]};
  dims.max_context = h[6];
  dims.norm_eps = 1e-5f;
  dims.rope_theta = 10000.f;
  format::HParams hp;
  if (!schema::MakeHParams(dims, &hp, err)) {
    *err = bin + ": " + *err;
    return false;
  }
  hp.bos_id = 1;
  hp.eos_id = 2;
  hp.n_stop_ids = 1;
  hp.stop_ids[0] = 2;

  // Element offsets of each field (f32 units after the header), from the
  // schema shapes.
  const uint64_t L = hp.n_layers, V = hp.vocab_size;
  uint64_t off[schema::kNumTensors] = {}, pos = 0;
  for (const char* field : kLlama2cOrder) {
    const schema::TensorSpec* spec = nullptr;
    for (const schema::TensorSpec& sp : schema::kTensors)
      if (std::strcmp(schema::SourceOf(kLlama2cNames, sp.id), field) == 0) spec = &sp;
    if (!spec) {  // freq_cis_*
      pos += uint64_t{hp.max_context} * hp.head_dim / 2;
      continue;
    }
    if (spec->id == TensorId::kOutput && shared) continue;
    const schema::TensorRef r = schema::MakeRef(*spec, 0, hp);
    off[static_cast<int>(spec->id)] = pos;
    pos +=
        ((spec->traits & schema::kPerLayer) ? L : 1) * r.rows() * std::max<uint64_t>(r.cols(), 1);
  }
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

  // Shared, but the output layer's type differs from the embedding's: two
  // tensors, both from the shared matrix.
  const bool untie = shared && OutputUntied(o);
  const bool file_tied = shared && !untie;
  st.Begin(schema::CountTensors(hp, file_tied));
  const bool ok = schema::ForEachTensor(hp, file_tied, [&](const schema::TensorRef& r) {
    const TensorId id = untie && r.spec->id == TensorId::kOutput ? TensorId::kTokEmbd : r.spec->id;
    const uint64_t n = r.rows() * std::max<uint64_t>(r.cols(), 1);
    const uint64_t at = off[static_cast<int>(id)] + (r.layer >= 0 ? r.layer * n : 0);
    if (r.spec->role == Role::kNorm) {
      std::vector<float> v(n);
      std::memcpy(v.data(), base + at * 4, n * 4);
      return EmitVector(w, &st, r.name, v.data(), n, err);
    }
    return EmitMatrix(w, &st, r.name, r.spec->role, r.rows(), r.cols(), rows_at(at, r.cols()), o,
                      err);
  });
  if (!ok) return false;
  w.SetHParams(hp);
  w.SetFlags(shared && !untie ? static_cast<uint32_t>(format::kFlagTiedEmbeddings) : 0u);
  w.SetScheme(o.weights);
  if (!w.Finish(err)) return false;
  st.Summary(out, w.bytes_written());
  return true;
}

}  // namespace lamina::convert
