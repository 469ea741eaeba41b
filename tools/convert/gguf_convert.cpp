// Converter for Llama-architecture GGUF files (llama.cpp).
//
// Tensor mapping (GGUF names are lamina's names + ".weight"):
//   Q4_0 linears  -> Q4G exactly (scale = f16 d widened, values q - 8), under
//                    the default --weights q4; other schemes get the exact
//                    dequantized values through the float path.
//   F32/F16/BF16  -> the float path (convert::EmitMatrix, --weights rules).
//   Q8_0 and the other supported block types (Q4_1, Q5_0, Q5_1, Q4_K, Q5_K,
//                    Q6_K) -> dequantized exactly to f32, then the float path:
//                    for the output layer / embedding under q4 this is a
//                    RE-QUANTIZATION to Q8C (per-row scale = amax/127); for a
//                    linear it is a re-quantization to Q4G (group 32).
// GGUF q/k rows: llama.cpp's converter permutes Hugging Face's rotate-half
// rows into Meta's interleaved order (llama.cpp's "norm" RoPE), which is the
// engine's order: no permutation here. llama3 RoPE scaling is recovered from
// the rope_freqs tensor llama.cpp stores for Llama 3.1/3.2.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "kernels/ref/fp16.h"
#include "loader/format.h"
#include "loader/model_writer.h"
#include "loader/pack.h"
#include "tokenizer/tokenizer.h"
#include "tools/convert/convert.h"
#include "tools/convert/convert_util.h"
#include "tools/convert/gguf_reader.h"
#include "tools/import/tokenizer_import.h"

namespace lamina::convert {
namespace {

using gguf::TensorInfo;
using schema::TensorId;

// llama.cpp's GGUF names for the schema's tensors (its LLM_TENSOR_NAMES):
// lamina's names + ".weight", except the embedding.
constexpr schema::NameMap kGgufNames = {"blk.",
                                        {{TensorId::kTokEmbd, "token_embd.weight"},
                                         {TensorId::kAttnNorm, "attn_norm.weight"},
                                         {TensorId::kAttnQ, "attn_q.weight"},
                                         {TensorId::kAttnK, "attn_k.weight"},
                                         {TensorId::kAttnV, "attn_v.weight"},
                                         {TensorId::kAttnOutput, "attn_output.weight"},
                                         {TensorId::kFfnNorm, "ffn_norm.weight"},
                                         {TensorId::kFfnGate, "ffn_gate.weight"},
                                         {TensorId::kFfnUp, "ffn_up.weight"},
                                         {TensorId::kFfnDown, "ffn_down.weight"},
                                         {TensorId::kOutputNorm, "output_norm.weight"},
                                         {TensorId::kOutput, "output.weight"}}};
static_assert(schema::NameMapComplete(kGgufNames), "every schema tensor needs its GGUF name");
// Read for the RoPE scaling, not converted.
constexpr const char* kGgufRopeFreqs = "rope_freqs.weight";

float H2F(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return F16ToF32(h);
}

// K-quant 6-bit scale/min unpacking (ggml get_scale_min_k4).
void ScaleMinK4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Dequantizes one block (ggml's dequantize_row_* reference order) into out.
void DequantBlock(uint32_t type, const uint8_t* b, float* out) {
  switch (type) {
    case gguf::kGgmlQ4_0: {
      const float d = H2F(b);
      for (int j = 0; j < 16; ++j) {
        out[j] = static_cast<float>((b[2 + j] & 0xF) - 8) * d;
        out[j + 16] = static_cast<float>((b[2 + j] >> 4) - 8) * d;
      }
      break;
    }
    case gguf::kGgmlQ4_1: {
      const float d = H2F(b), m = H2F(b + 2);
      for (int j = 0; j < 16; ++j) {
        out[j] = static_cast<float>(b[4 + j] & 0xF) * d + m;
        out[j + 16] = static_cast<float>(b[4 + j] >> 4) * d + m;
      }
      break;
    }
    case gguf::kGgmlQ5_0:
    case gguf::kGgmlQ5_1: {
      const bool q51 = type == gguf::kGgmlQ5_1;
      const float d = H2F(b), m = q51 ? H2F(b + 2) : 0.f;
      uint32_t qh;
      std::memcpy(&qh, b + (q51 ? 4 : 2), 4);
      const uint8_t* qs = b + (q51 ? 8 : 6);
      for (int j = 0; j < 16; ++j) {
        const int xh0 = ((qh >> j) << 4) & 0x10;
        const int xh1 = (qh >> (j + 12)) & 0x10;
        const int x0 = (qs[j] & 0xF) | xh0, x1 = (qs[j] >> 4) | xh1;
        if (q51) {
          out[j] = static_cast<float>(x0) * d + m;
          out[j + 16] = static_cast<float>(x1) * d + m;
        } else {
          out[j] = static_cast<float>(x0 - 16) * d;
          out[j + 16] = static_cast<float>(x1 - 16) * d;
        }
      }
      break;
    }
    case gguf::kGgmlQ8_0: {
      const float d = H2F(b);
      for (int j = 0; j < 32; ++j) out[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
      break;
    }
    case gguf::kGgmlQ4_K:
    case gguf::kGgmlQ5_K: {
      const bool q5 = type == gguf::kGgmlQ5_K;
      const float d = H2F(b), dmin = H2F(b + 2);
      const uint8_t* scales = b + 4;
      const uint8_t* qh = b + 16;
      const uint8_t* q = b + (q5 ? 48 : 16);
      int is = 0;
      uint8_t u1 = 1, u2 = 2;
      float* y = out;
      for (int j = 0; j < 256; j += 64) {
        uint8_t sc, m;
        ScaleMinK4(is + 0, scales, &sc, &m);
        const float d1 = d * sc, m1 = dmin * m;
        ScaleMinK4(is + 1, scales, &sc, &m);
        const float d2 = d * sc, m2 = dmin * m;
        for (int l = 0; l < 32; ++l)
          *y++ = d1 * static_cast<float>((q[l] & 0xF) + (q5 && (qh[l] & u1) ? 16 : 0)) - m1;
        for (int l = 0; l < 32; ++l)
          *y++ = d2 * static_cast<float>((q[l] >> 4) + (q5 && (qh[l] & u2) ? 16 : 0)) - m2;
        q += 32;
        is += 2;
        u1 = static_cast<uint8_t>(u1 << 2);
        u2 = static_cast<uint8_t>(u2 << 2);
      }
      break;
    }
    case gguf::kGgmlQ6_K: {
      const uint8_t* ql = b;
      const uint8_t* qh = b + 128;
      const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
      const float d = H2F(b + 208);
      float* y = out;
      for (int n = 0; n < 256; n += 128) {
        for (int l = 0; l < 32; ++l) {
          const int is = l / 16;
          const int q1 = static_cast<int>((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
          const int q2 = static_cast<int>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
          const int q3 = static_cast<int>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
          const int q4 = static_cast<int>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
          y[l + 0] = d * sc[is + 0] * q1;
          y[l + 32] = d * sc[is + 2] * q2;
          y[l + 64] = d * sc[is + 4] * q3;
          y[l + 96] = d * sc[is + 6] * q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
      }
      break;
    }
    default:
      break;
  }
}

bool Dequantizable(uint32_t t) {
  switch (t) {
    case gguf::kGgmlF32:
    case gguf::kGgmlF16:
    case gguf::kGgmlBF16:
    case gguf::kGgmlQ4_0:
    case gguf::kGgmlQ4_1:
    case gguf::kGgmlQ5_0:
    case gguf::kGgmlQ5_1:
    case gguf::kGgmlQ8_0:
    case gguf::kGgmlQ4_K:
    case gguf::kGgmlQ5_K:
    case gguf::kGgmlQ6_K:
      return true;
    default:
      return false;
  }
}

// Rows [r0, r0+n) of a [N, K] GGUF tensor as f32.
void RowsF32(const TensorInfo& t, uint64_t K, uint64_t r0, uint64_t n, float* out) {
  uint64_t be, bb;
  gguf::GgmlBlock(t.type, &be, &bb);
  const uint64_t row_bytes = K / be * bb;
  for (uint64_t r = 0; r < n; ++r) {
    const uint8_t* src = t.data + (r0 + r) * row_bytes;
    float* dst = out + r * K;
    switch (t.type) {
      case gguf::kGgmlF32:
        std::memcpy(dst, src, K * 4);
        break;
      case gguf::kGgmlF16:
        for (uint64_t k = 0; k < K; ++k) dst[k] = H2F(src + 2 * k);
        break;
      case gguf::kGgmlBF16:
        for (uint64_t k = 0; k < K; ++k) {
          uint16_t h;
          std::memcpy(&h, src + 2 * k, 2);
          dst[k] = BF16ToF32(h);
        }
        break;
      default:
        for (uint64_t b = 0; b < K / be; ++b) DequantBlock(t.type, src + b * bb, dst + b * be);
        break;
    }
  }
}

struct Gctx {
  const gguf::File* f;
  ModelWriter* w;
  Stats* stats;
  const ConvertOptions* o;
  int n_exact_q4 = 0, n_requant = 0, n_float = 0;
  std::vector<std::string> requant_names;
};

bool TFail(const Gctx& c, const std::string& name, const std::string& what, std::string* err) {
  *err = c.f->label() + ": tensor " + name + ": " + what;
  return false;
}

bool CheckShape(const Gctx& c, const TensorInfo& t, std::vector<uint64_t> want_pt,
                std::string* err) {
  // GGUF dims are reversed PyTorch dims.
  std::vector<uint64_t> got(t.dims.rbegin(), t.dims.rend());
  if (got != want_pt) {
    auto str = [](const std::vector<uint64_t>& v) {
      std::string s = "[";
      for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
      return s + "]";
    };
    return TFail(c, t.name, "shape " + str(got) + " (PyTorch order), expected " + str(want_pt),
                 err);
  }
  return true;
}

const TensorInfo* Need(const Gctx& c, const std::string& name, std::string* err) {
  const TensorInfo* t = c.f->FindTensor(name);
  if (!t) *err = c.f->label() + ": tensor " + name + " missing";
  return t;
}

bool EmitMat(Gctx& c, const std::string& gname, const std::string& name, Role role, uint64_t N,
             uint64_t K, std::string* err) {
  const TensorInfo* t = Need(c, gname, err);
  if (!t) return false;
  if (!CheckShape(c, *t, {N, K}, err)) return false;
  if (!Dequantizable(t->type))
    return TFail(c, gname,
                 std::string("ggml type ") + gguf::GgmlTypeName(t->type) +
                     " is not supported (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, "
                     "Q5_1, Q8_0, Q4_K, Q5_K, Q6_K)",
                 err);
  format::DType target;
  if (!TypeFor(role, *c.o, &target, err)) return false;
  if (t->type == gguf::kGgmlQ4_0 && target == format::DType::kQ4G) {
    // Exact: Q4_0 block (d, 16 bytes: element j low nibble, j+16 high nibble,
    // value q - 8) = one q4g group with scale d. d is an f16, so the default
    // Q4G_R4K8_F16S layout holds it exactly (--q4-scales f32: Q4G_R4K8).
    const uint64_t G = K / 32, chunk = 256;
    const format::Layout layout = Q4Layout(*c.o);
    const bool f16s = layout == format::Layout::kQ4G_R4K8_F16S;
    std::vector<uint8_t> packed(f16s ? pack::Q4GF16SBytes(static_cast<int>(N), static_cast<int>(K))
                                     : pack::Q4GBytes(static_cast<int>(N), static_cast<int>(K)));
    const size_t bb = f16s ? format::kQ4F16SBlockBytes(K) : format::kQ4BlockBytes(K);
    std::vector<int8_t> vals(chunk * K);
    std::vector<float> sc(chunk * G);
    for (uint64_t r0 = 0; r0 < N; r0 += chunk) {
      const uint64_t n = std::min(chunk, N - r0);
      for (uint64_t r = 0; r < n; ++r) {
        for (uint64_t g = 0; g < G; ++g) {
          const uint8_t* b = t->data + ((r0 + r) * G + g) * 18;
          sc[r * G + g] = H2F(b);
          int8_t* v = &vals[r * K + g * 32];
          for (int j = 0; j < 16; ++j) {
            v[j] = static_cast<int8_t>((b[2 + j] & 0xF) - 8);
            v[j + 16] = static_cast<int8_t>((b[2 + j] >> 4) - 8);
          }
        }
      }
      for (uint64_t b = 0; b < n; b += 4) {
        const int nb = static_cast<int>(std::min<uint64_t>(4, n - b));
        uint8_t* dst = packed.data() + (r0 + b) / 4 * bb;
        if (!f16s) {
          pack::PackQ4G(&vals[b * K], &sc[b * G], nb, static_cast<int>(K), dst);
        } else if (!pack::PackQ4GF16S(&vals[b * K], &sc[b * G], nb, static_cast<int>(K), dst)) {
          return TFail(c, gname, "a Q4_0 block scale is NaN", err);
        }
      }
    }
    if (!c.w->AddTensor(name, format::DType::kQ4G, layout, {N, K}, 32, 0, packed.data(),
                        packed.size(), err))
      return false;
    c.stats->Add(name, format::DType::kQ4G, {N, K});
    ++c.n_exact_q4;
    return true;
  }
  const bool is_float =
      t->type == gguf::kGgmlF32 || t->type == gguf::kGgmlF16 || t->type == gguf::kGgmlBF16;
  if (is_float) {
    ++c.n_float;
  } else {
    const format::DType dt = target;
    if (dt == format::DType::kQ4G || dt == format::DType::kQ8C) {
      ++c.n_requant;
      if (c.requant_names.size() < 4)
        c.requant_names.push_back(gname + " (" + gguf::GgmlTypeName(t->type) + ")");
    }
  }
  const TensorInfo& tr = *t;
  return EmitMatrix(
      *c.w, c.stats, name, role, N, K,
      [&tr, K](uint64_t r0, uint64_t n, float* out) { RowsF32(tr, K, r0, n, out); }, *c.o, err);
}

bool EmitVec(Gctx& c, const std::string& gname, const std::string& name, uint64_t n,
             std::string* err) {
  const TensorInfo* t = Need(c, gname, err);
  if (!t) return false;
  if (!CheckShape(c, *t, {n}, err)) return false;
  if (t->type != gguf::kGgmlF32 && t->type != gguf::kGgmlF16 && t->type != gguf::kGgmlBF16)
    return TFail(c, gname,
                 std::string("norm weights of type ") + gguf::GgmlTypeName(t->type) +
                     " (expected F32/F16/BF16)",
                 err);
  std::vector<float> f(n);
  RowsF32(*t, n, 0, 1, f.data());
  return EmitVector(*c.w, c.stats, name, f.data(), n, err);
}

// Reads an unsigned metadata integer; absent -> *out unchanged (unless required).
bool MetaU(const gguf::File& f, const std::string& key, bool required, uint64_t lo, uint64_t hi,
           uint64_t* out, std::string* err) {
  const gguf::Value* v = f.Find(key);
  if (!v) {
    if (required) *err = f.label() + ": metadata " + key + " missing";
    return !required;
  }
  if (!v->is_int() || v->i < 0 || v->u < lo || v->u > hi) {
    *err = f.label() + ": metadata " + key + " must be an integer in [" + std::to_string(lo) +
           ", " + std::to_string(hi) + "]";
    return false;
  }
  *out = v->u;
  return true;
}

bool MetaF(const gguf::File& f, const std::string& key, double* out, std::string* err) {
  const gguf::Value* v = f.Find(key);
  if (!v) return true;
  if (!v->is_num()) {
    *err = f.label() + ": metadata " + key + " must be a number";
    return false;
  }
  *out = v->f;
  return true;
}

const std::string* MetaS(const gguf::File& f, const std::string& key) {
  const gguf::Value* v = f.Find(key);
  return v && v->type == gguf::ValueType::kString ? &v->s : nullptr;
}

// The llama3 RoPE factors llama.cpp's converter stores in rope_freqs.weight.
std::vector<double> Llama3Factors(int head_dim, double theta, double factor, double low,
                                  double high, double orig) {
  std::vector<double> r;
  const double low_wl = orig / low, high_wl = orig / high;
  for (int i = 0; i < head_dim; i += 2) {
    const double freq = 1.0 / std::pow(theta, static_cast<double>(i) / head_dim);
    const double wl = 2 * M_PI / freq;
    if (wl < high_wl)
      r.push_back(1.0);
    else if (wl > low_wl)
      r.push_back(factor);
    else {
      const double sm = (orig / wl - low) / (high - low);
      r.push_back(1.0 / ((1 - sm) / factor + sm));
    }
  }
  return r;
}

bool ReadVocab(const gguf::File& f, GgufVocab* v, std::string* err) {
  const std::string* model = MetaS(f, "tokenizer.ggml.model");
  const gguf::Value* toks = f.Find("tokenizer.ggml.tokens");
  if (!model || !toks) return false;
  v->model = *model;
  if (const std::string* pre = MetaS(f, "tokenizer.ggml.pre")) v->pre = *pre;
  if (toks->type != gguf::ValueType::kArray || toks->elem != gguf::ValueType::kString) {
    *err = f.label() + ": tokenizer.ggml.tokens is not a string array";
    return false;
  }
  for (const auto& t : toks->arr) v->tokens.push_back(t.s);
  if (const gguf::Value* s = f.Find("tokenizer.ggml.scores")) {
    if (s->type != gguf::ValueType::kArray || s->arr.size() != v->tokens.size() ||
        !(s->arr.empty() || s->arr[0].is_num())) {
      *err = f.label() + ": tokenizer.ggml.scores is not a number array of the vocabulary's size";
      return false;
    }
    for (const auto& x : s->arr) v->scores.push_back(static_cast<float>(x.f));
  }
  if (const gguf::Value* s = f.Find("tokenizer.ggml.token_type")) {
    if (s->type != gguf::ValueType::kArray || s->arr.size() != v->tokens.size() ||
        !(s->arr.empty() || s->arr[0].is_int())) {
      *err = f.label() +
             ": tokenizer.ggml.token_type is not an integer array of the vocabulary's size";
      return false;
    }
    for (const auto& x : s->arr) v->types.push_back(static_cast<int32_t>(x.i));
  }
  if (const gguf::Value* s = f.Find("tokenizer.ggml.merges")) {
    if (s->type != gguf::ValueType::kArray || s->elem != gguf::ValueType::kString) {
      *err = f.label() + ": tokenizer.ggml.merges is not a string array";
      return false;
    }
    for (const auto& x : s->arr) v->merges.push_back(x.s);
  }
  auto id = [&](const char* key, int32_t* out) {
    const gguf::Value* x = f.Find(key);
    if (x && x->is_int() && x->u < v->tokens.size()) *out = static_cast<int32_t>(x->u);
  };
  id("tokenizer.ggml.bos_token_id", &v->bos_id);
  id("tokenizer.ggml.eos_token_id", &v->eos_id);
  id("tokenizer.ggml.unknown_token_id", &v->unk_id);
  id("tokenizer.ggml.padding_token_id", &v->pad_id);
  if (const gguf::Value* b = f.Find("tokenizer.ggml.add_bos_token");
      b && b->type == gguf::ValueType::kBool)
    v->add_bos = b->u != 0;
  return true;
}

}  // namespace

bool ConvertGguf(const std::string& path, const std::string& out, const ConvertOptions& o,
                 std::string* err) {
  gguf::File f;
  if (!f.Open(path, err)) return false;
  const std::string* arch = MetaS(f, "general.architecture");
  if (!arch) {
    *err = path + ": metadata general.architecture missing";
    return false;
  }
  if (*arch != "llama") {
    *err = path + ": architecture '" + *arch + "' is not supported (only 'llama')";
    return false;
  }
  uint64_t dim = 0, n_layers = 0, ffn = 0, n_heads = 0, n_kv = 0, ctx = 2048, expert = 0;
  if (!MetaU(f, "llama.embedding_length", true, 1, schema::kMaxDim, &dim, err) ||
      !MetaU(f, "llama.block_count", true, 1, schema::kMaxLayers, &n_layers, err) ||
      !MetaU(f, "llama.feed_forward_length", true, 1, schema::kMaxFfn, &ffn, err) ||
      !MetaU(f, "llama.attention.head_count", true, 1, schema::kMaxHeads, &n_heads, err) ||
      !MetaU(f, "llama.context_length", false, 1, schema::kMaxContext, &ctx, err) ||
      !MetaU(f, "llama.expert_count", false, 0, 1 << 16, &expert, err))
    return false;
  n_kv = n_heads;
  if (!MetaU(f, "llama.attention.head_count_kv", false, 1, schema::kMaxHeads, &n_kv, err))
    return false;
  if (expert > 0) {
    *err = path + ": mixture-of-experts llama models are not supported";
    return false;
  }
  if (dim % n_heads != 0 || n_heads % n_kv != 0 || (dim / n_heads) % 2 != 0) {
    *err = path + ": inconsistent heads (embedding_length " + std::to_string(dim) +
           ", head_count " + std::to_string(n_heads) + ", head_count_kv " + std::to_string(n_kv) +
           ")";
    return false;
  }
  const uint64_t head_dim = dim / n_heads;
  uint64_t rope_dim = head_dim, key_len = head_dim;
  if (!MetaU(f, "llama.rope.dimension_count", false, 1, 1 << 16, &rope_dim, err) ||
      !MetaU(f, "llama.attention.key_length", false, 1, 1 << 16, &key_len, err))
    return false;
  if (rope_dim != head_dim || key_len != head_dim) {
    *err = path +
           ": partial RoPE or a head size other than embedding_length/head_count is not "
           "supported (rope.dimension_count " +
           std::to_string(rope_dim) + ")";
    return false;
  }
  double eps = 1e-5, theta = 10000.0;
  if (!MetaF(f, "llama.attention.layer_norm_rms_epsilon", &eps, err) ||
      !MetaF(f, "llama.rope.freq_base", &theta, err))
    return false;
  const std::string embd_name = schema::SourceOf(kGgufNames, TensorId::kTokEmbd);
  const std::string head_name = schema::SourceOf(kGgufNames, TensorId::kOutput);
  const TensorInfo* embd = f.FindTensor(embd_name);
  if (!embd || embd->dims.size() != 2) {
    *err = path + ": tensor " + embd_name + " missing or not a matrix";
    return false;
  }
  const uint64_t vocab = embd->dims[1];
  uint64_t meta_vocab = vocab;
  if (!MetaU(f, "llama.vocab_size", false, 1, schema::kMaxVocab, &meta_vocab, err)) return false;
  if (meta_vocab != vocab) {
    *err = path + ": llama.vocab_size " + std::to_string(meta_vocab) + " disagrees with " +
           embd_name + " (" + std::to_string(vocab) + " rows)";
    return false;
  }

  schema::LlamaDims dims;
  dims.dim = static_cast<int64_t>(dim);
  dims.n_layers = static_cast<int64_t>(n_layers);
  dims.n_heads = static_cast<int64_t>(n_heads);
  dims.n_kv_heads = static_cast<int64_t>(n_kv);
  dims.head_dim = static_cast<int64_t>(head_dim);
  dims.ffn_dim = static_cast<int64_t>(ffn);
  dims.vocab_size = static_cast<int64_t>(vocab);
  dims.max_context = static_cast<int64_t>(ctx);
  dims.norm_eps = eps;
  dims.rope_theta = theta;

  if (const std::string* st = MetaS(f, "llama.rope.scaling.type")) {
    if (*st != "none" && *st != "llama3") {
      *err = path + ": RoPE scaling type '" + *st + "' is not supported (none, llama3)";
      return false;
    }
  }
  if (const TensorInfo* rf = f.FindTensor(kGgufRopeFreqs)) {
    if (rf->type != gguf::kGgmlF32 || rf->dims.size() != 1 || rf->dims[0] != head_dim / 2) {
      *err = path + ": " + kGgufRopeFreqs + " must be F32 [" + std::to_string(head_dim / 2) + "]";
      return false;
    }
    std::vector<float> got(head_dim / 2);
    std::memcpy(got.data(), rf->data, got.size() * 4);
    double factor = 1, low = 1, high = 4, orig = 8192;
    for (float g : got) factor = std::max(factor, static_cast<double>(g));
    if (!MetaF(f, "llama.rope.scaling.factor", &factor, err) ||
        !MetaF(f, "llama.rope.scaling.low_freq_factor", &low, err) ||
        !MetaF(f, "llama.rope.scaling.high_freq_factor", &high, err) ||
        !MetaF(f, "llama.rope.scaling.original_context_length", &orig, err))
      return false;
    const std::vector<double> want =
        Llama3Factors(static_cast<int>(head_dim), theta, factor, low, high, orig);
    for (size_t i = 0; i < want.size(); ++i) {
      if (std::fabs(got[i] - want[i]) > 1e-4 * want[i]) {
        *err = path + ": " + kGgufRopeFreqs + "[" + std::to_string(i) +
               "] = " + std::to_string(got[i]) + " is not llama3 scaling (factor " +
               std::to_string(factor) + ", low 1, high 4, original 8192 expects " +
               std::to_string(want[i]) + ")";
        return false;
      }
    }
    if (factor != 1.0) {
      dims.rope_llama3 = true;
      dims.rope_factor = factor;
      dims.rope_low_freq_factor = low;
      dims.rope_high_freq_factor = high;
      dims.rope_orig_max_pos = static_cast<int64_t>(orig);
    }
  }
  format::HParams hp;
  if (!schema::MakeHParams(dims, &hp, err)) {
    *err = path + ": " + *err;
    return false;
  }

  // Tokenizer: --tokenizer overrides; else the GGUF vocabulary.
  ModelWriter w;
  if (!w.Open(out, err)) return false;
  Stats stats(o.quiet);
  bool have_tok = false;
  if (o.no_tokenizer) {
  } else if (!o.tokenizer_path.empty()) {
    if (!EmbedTokenizerFile(w, o.tokenizer_path, &hp, false, err)) return false;
    have_tok = true;
  } else {
    GgufVocab v;
    err->clear();
    if (ReadVocab(f, &v, err)) {
      if (v.tokens.size() > vocab) {
        *err = path + ": the vocabulary has " + std::to_string(v.tokens.size()) +
               " tokens, more than token_embd.weight's " + std::to_string(vocab) + " rows";
        return false;
      }
      std::string terr;
      std::unique_ptr<Tokenizer> tok = TokenizerFromGguf(v, &terr);
      if (!tok) {
        *err = path + ": tokenizer: " + terr;
        return false;
      }
      // The file's own ids win (e.g. Llama 3.x Instruct GGUFs: eos = <|eot_id|>).
      const int32_t bos = v.bos_id >= 0 ? v.bos_id : tok->bos_id();
      const int32_t eos = v.eos_id >= 0 ? v.eos_id : tok->eos_id();
      if (bos >= 0) hp.bos_id = static_cast<uint32_t>(bos);
      if (eos >= 0) hp.eos_id = static_cast<uint32_t>(eos);
      std::vector<int32_t> stops = tok->stop_ids();
      if (eos >= 0) stops.push_back(eos);
      for (int32_t s : stops) {
        if (s < 0 || static_cast<uint64_t>(s) >= vocab || hp.n_stop_ids >= 8) continue;
        if (std::find(hp.stop_ids, hp.stop_ids + hp.n_stop_ids, static_cast<uint32_t>(s)) ==
            hp.stop_ids + hp.n_stop_ids)
          hp.stop_ids[hp.n_stop_ids++] = static_cast<uint32_t>(s);
      }
      w.SetTokenizer(tok->Serialize());
      have_tok = true;
    } else if (!err->empty()) {
      return false;
    }
  }
  if (!have_tok) {
    stats.Warn(path +
               " has no tokenizer metadata: the model is driven by token ids "
               "(llama-run --tokens)");
    hp.bos_id = static_cast<uint32_t>(vocab >= 2 ? vocab - 2 : 0);
    hp.eos_id = static_cast<uint32_t>(vocab - 1);
  }
  if (hp.n_stop_ids == 0) {
    hp.n_stop_ids = 1;
    hp.stop_ids[0] = hp.eos_id;
  }

  Gctx c{&f, &w, &stats, &o, 0, 0, 0, {}};
  // Tied, but --output and --embedding types differ: "output" is written from
  // the embedding as a second tensor and the file is untied.
  const bool has_head = f.FindTensor(head_name) != nullptr;
  const bool untie = !has_head && OutputUntied(o);
  const bool tied = !has_head && !untie;
  stats.Begin(schema::CountTensors(hp, tied));
  const bool ok = schema::ForEachTensor(hp, tied, [&](const schema::TensorRef& r) {
    const TensorId id = r.spec->id;
    const std::string src =
        id == TensorId::kOutput && untie ? embd_name : schema::SourceName(kGgufNames, id, r.layer);
    if (r.spec->role == Role::kNorm) return EmitVec(c, src, r.name, r.rows(), err);
    return EmitMat(c, src, r.name, r.spec->role, r.rows(), r.cols(), err);
  });
  if (!ok) return false;
  // Every tensor must be one of the graph's (biases, MoE, etc. would be
  // silently wrong).
  std::set<std::string> known = {kGgufRopeFreqs};
  for (const schema::TensorSpec& s : schema::kTensors)
    for (uint32_t l = 0; l < ((s.traits & schema::kPerLayer) ? hp.n_layers : 1); ++l)
      known.insert(schema::SourceName(kGgufNames, s.id, static_cast<int>(l)));
  std::string extra;
  for (const auto& t : f.tensors())
    if (!known.count(t.name) && extra.size() < 200) extra += (extra.empty() ? "" : ", ") + t.name;
  if (!extra.empty()) {
    *err = path + ": unsupported tensor(s): " + extra;
    return false;
  }
  if (tied) w.SetFlags(static_cast<uint32_t>(format::kFlagTiedEmbeddings));
  w.SetHParams(hp);
  w.SetScheme(c.n_exact_q4 ? "gguf-q4_0" : o.weights);
  if (!w.Finish(err)) return false;
  if (!o.quiet) {
    std::string rq;
    for (const auto& n : c.requant_names) rq += (rq.empty() ? "" : ", ") + n;
    std::fprintf(stderr,
                 "lamina-convert: GGUF v%u: %d Q4_0 linears mapped exactly onto q4g, %d float "
                 "tensors through --weights %s, %d block-quantized tensors RE-QUANTIZED%s%s%s\n",
                 f.version(), c.n_exact_q4, c.n_float, o.weights.c_str(), c.n_requant,
                 rq.empty() ? "" : " (", rq.c_str(),
                 rq.empty() ? "" : (c.n_requant > 4 ? ", ...)" : ")"));
    stats.Summary(out, w.bytes_written());
  }
  return true;
}

}  // namespace lamina::convert
