// Converter for Meta's Llama 3.x checkpoints in llama-models layout
// (consolidated.00.pth + params.json [+ tokenizer.model]):
//  - the quantized Llama 3.2 releases (QAT+LoRA "QLORA_INT4_EO8" and
//    "SpinQuant_INT4_EO8"): int4 values held in int8 tensors with f32 group
//    scales -> Q4G bit-exactly (no re-quantization); int8 embedding / output
//    with per-row scales -> Q8C exactly; LoRA adaptors -> "<linear>.lora_a/b"
//    unchanged; SpinQuant's online R4 -> kTensorHadamardInput on ffn_down;
//  - float (bf16/f16/f32) Meta checkpoints -> EmitFloatTensor (--weights).
// Meta's wq/wk rows are already in interleaved-RoPE order = the engine's.
//
// SpinQuant detection: params.json quantization_args.spinquant (llama-models'
// QuantizationArgs field) when present; otherwise an int4 checkpoint without
// LoRA adaptors and without lora_args is treated as SpinQuant (Meta released
// exactly two int4 flavours: QAT+LoRA carries adaptors, SpinQuant does not),
// with a note on stderr. ExecuTorch applies R4 the same way (its
// --use_spin_quant native inserts a fast Hadamard transform before w2); R1/R2
// are fused into the weights by Meta.
// Output layer / embedding: ExecuTorch runs these checkpoints with
// --preq_mode 8da4w_output_8da8w --preq_embedding_quantize 8,0, i.e. an 8-bit
// per-channel output layer with 8-bit dynamic per-token activations = q8c.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
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
#include "tools/convert/pth_reader.h"
#include "tools/import/json.h"
#include "tools/import/tokenizer_import.h"

namespace lamina::convert {
namespace {

using pth::DType;
using schema::TensorId;

// Meta's (llama-models) names for the schema's tensors: stems, to which
// ".weight", ".scales", ".zeros" and ".adaptor.A/B.weight" are appended.
constexpr schema::NameMap kMetaNames = {"layers.",
                                        {{TensorId::kTokEmbd, "tok_embeddings"},
                                         {TensorId::kAttnNorm, "attention_norm"},
                                         {TensorId::kAttnQ, "attention.wq"},
                                         {TensorId::kAttnK, "attention.wk"},
                                         {TensorId::kAttnV, "attention.wv"},
                                         {TensorId::kAttnOutput, "attention.wo"},
                                         {TensorId::kFfnNorm, "ffn_norm"},
                                         {TensorId::kFfnGate, "feed_forward.w1"},
                                         {TensorId::kFfnUp, "feed_forward.w3"},
                                         {TensorId::kFfnDown, "feed_forward.w2"},
                                         {TensorId::kOutputNorm, "norm"},
                                         {TensorId::kOutput, "output"}}};
static_assert(schema::NameMapComplete(kMetaNames), "every schema tensor needs its Meta name");

bool IsFloat(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16 || t == DType::kF64;
}

// Exact widening of a float tensor to f32 (f64 is narrowed, round to nearest).
std::vector<float> ToF32(const pth::Tensor& t) {
  const size_t n = static_cast<size_t>(t.numel());
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) {
    switch (t.dtype) {
      case DType::kF32:
        std::memcpy(&out[i], t.data + 4 * i, 4);
        break;
      case DType::kF64: {
        double d;
        std::memcpy(&d, t.data + 8 * i, 8);
        out[i] = static_cast<float>(d);
        break;
      }
      case DType::kF16: {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * i, 2);
        out[i] = F16ToF32(h);
        break;
      }
      case DType::kBF16: {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * i, 2);
        out[i] = BF16ToF32(h);
        break;
      }
      default:
        out[i] = 0;
        break;
    }
  }
  return out;
}

std::string ShapeStr(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

struct Ctx {
  const pth::StateDict* sd;
  ModelWriter* w;
  const ConvertOptions* o;
  std::string file;  // for messages
  std::set<std::string> used;
  Stats* stats = nullptr;
  int n_q4 = 0, n_q8 = 0, n_f32 = 0, n_lora = 0, n_float_path = 0;
  int n_q4_f16s = 0;  // of n_q4: scales all f16-exact, stored as f16
};

// Appends a tensor and records it in the summary.
bool AddT(Ctx& c, const std::string& name, format::DType dt, format::Layout layout,
          const std::vector<uint64_t>& shape, uint32_t group, uint32_t flags, const void* data,
          size_t size, std::string* err) {
  if (!c.w->AddTensor(name, dt, layout, shape, group, flags, data, size, err)) return false;
  if (c.stats) c.stats->Add(name, dt, shape);
  return true;
}

const pth::Tensor* Get(Ctx& c, const std::string& key) {
  const pth::Tensor* t = c.sd->Find(key);
  if (t) c.used.insert(key);
  return t;
}

// Tensors are read once: drop their pages afterwards (bounded RSS).
void Done(const Ctx& c, const std::string& key) {
  if (const pth::Tensor* t = c.sd->Find(key)) c.sd->Release(*t);
}

bool Fail(const Ctx& c, const std::string& key, const std::string& what, std::string* err) {
  *err = c.file + ": " + key + ": " + what;
  return false;
}

// Reads group scales [N, G] or [N, G, 1] (per_row: [N] or [N, 1]), f32/f16/bf16, as f32.
bool ReadScales(Ctx& c, const std::string& key, int64_t N, int64_t G, bool per_row,
                std::vector<float>* out, std::string* err) {
  const pth::Tensor* s = Get(c, key);
  if (!s) return Fail(c, key, "missing (every int4/int8 weight needs its .scales tensor)", err);
  if (!IsFloat(s->dtype))
    return Fail(c, key,
                std::string("scales have dtype ") + pth::DTypeName(s->dtype) +
                    ", expected float32/bfloat16/float16",
                err);
  const std::vector<int64_t>& sh = s->shape;
  const bool ok =
      per_row ? ((sh.size() == 1 && sh[0] == N) || (sh.size() == 2 && sh[0] == N && sh[1] == 1))
              : ((sh.size() == 2 && sh[0] == N && sh[1] == G) ||
                 (sh.size() == 3 && sh[0] == N && sh[1] == G && sh[2] == 1));
  if (!ok)
    return Fail(c, key,
                "scales have shape " + ShapeStr(sh) + ", expected [" + std::to_string(N) +
                    (per_row ? "] (per row)"
                             : ", " + std::to_string(G) + "] or [" + std::to_string(N) + ", " +
                                   std::to_string(G) + ", 1]"),
                err);
  *out = ToF32(*s);
  for (size_t i = 0; i < out->size(); ++i) {
    if (!std::isfinite((*out)[i]))
      return Fail(c, key, "non-finite scale at index " + std::to_string(i), err);
  }
  return true;
}

// Zero points, if present, must be all zero (Meta's int4 is symmetric).
bool CheckZeros(Ctx& c, const std::string& key, std::string* err) {
  const pth::Tensor* z = Get(c, key);
  if (!z) return true;
  if (IsFloat(z->dtype)) {
    for (float f : ToF32(*z))
      if (f != 0.f) return Fail(c, key, "non-zero zero points (only symmetric quantization)", err);
    return true;
  }
  for (size_t i = 0; i < z->nbytes; ++i)
    if (z->data[i] != 0)
      return Fail(c, key, "non-zero zero points (only symmetric quantization)", err);
  return true;
}

// A float [N, K] matrix through the --weights scheme, converted row chunk by
// row chunk (bounded memory: no whole-matrix f32 copy).
bool EmitFloatRows(Ctx& c, const pth::Tensor& t, const std::string& name, Role role, int64_t N,
                   int64_t K, uint32_t flags, std::string* err) {
  const size_t es = pth::DTypeSize(t.dtype);
  const bool ok = EmitMatrix(
      *c.w, c.stats, name, role, static_cast<uint64_t>(N), static_cast<uint64_t>(K),
      [&t, K, es](uint64_t r0, uint64_t n, float* out) {
        pth::Tensor rows = t;
        rows.shape = {static_cast<int64_t>(n), K};
        rows.data = t.data + r0 * static_cast<uint64_t>(K) * es;
        const std::vector<float> f = ToF32(rows);
        std::memcpy(out, f.data(), f.size() * sizeof(float));
      },
      *c.o, err, flags);
  if (ok) c.sd->Release(t);
  return ok;
}

// A block linear: int8-held int4 + group scales -> Q4G exactly; float -> the scheme.
bool EmitLinear(Ctx& c, const std::string& meta, const std::string& name, int64_t N, int64_t K,
                int group, uint32_t flags, std::string* err) {
  const std::string wkey = meta + ".weight";
  const pth::Tensor* t = Get(c, wkey);
  if (!t) return Fail(c, wkey, "missing", err);
  if (t->shape.size() != 2 || t->shape[0] != N || t->shape[1] != K)
    return Fail(c, wkey,
                "shape " + ShapeStr(t->shape) + ", expected [" + std::to_string(N) + ", " +
                    std::to_string(K) + "]",
                err);
  if (IsFloat(t->dtype)) {
    if (c.sd->Find(meta + ".scales"))
      return Fail(c, wkey, "float weight with a .scales tensor (expected int8 values)", err);
    ++c.n_float_path;
    return EmitFloatRows(c, *t, name, Role::kLinear, N, K, flags, err);
  }
  if (t->dtype != DType::kI8)
    return Fail(c, wkey,
                std::string("dtype ") + pth::DTypeName(t->dtype) +
                    ", expected int8 (int4 values) or a float type",
                err);
  if (group != 32)
    return Fail(c, wkey,
                "quantization group size " + std::to_string(group) +
                    " is not supported (lamina's q4g uses 32)",
                err);
  const int8_t* v = reinterpret_cast<const int8_t*>(t->data);
  const size_t n = static_cast<size_t>(N * K);
  for (size_t i = 0; i < n; ++i) {
    if (v[i] < -8 || v[i] > 7)
      return Fail(c, wkey,
                  "value " + std::to_string(v[i]) + " at [" + std::to_string(i / K) + ", " +
                      std::to_string(i % K) + "] is outside the int4 range [-8, 7]",
                  err);
  }
  const int64_t G = (K + 31) / 32;
  std::vector<float> scales;
  if (!ReadScales(c, meta + ".scales", N, G, false, &scales, err)) return false;
  if (!CheckZeros(c, meta + ".zeros", err)) return false;
  // f16 scales (Q4G_R4K8_F16S) only when every scale of the tensor is exactly
  // an f16 value; else f32 (Q4G_R4K8): Meta's int4 values and scales are kept
  // bit for bit either way, so the results match the ExecuTorch math exactly.
  const bool f16s = Q4Layout(*c.o) == format::Layout::kQ4G_R4K8_F16S &&
                    pack::ScalesFitF16(scales.data(), scales.size());
  std::vector<uint8_t> packed(f16s ? pack::Q4GF16SBytes(static_cast<int>(N), static_cast<int>(K))
                                   : pack::Q4GBytes(static_cast<int>(N), static_cast<int>(K)));
  if (f16s) {
    pack::PackQ4GF16S(v, scales.data(), static_cast<int>(N), static_cast<int>(K), packed.data());
    ++c.n_q4_f16s;
  } else {
    pack::PackQ4G(v, scales.data(), static_cast<int>(N), static_cast<int>(K), packed.data());
  }
  ++c.n_q4;
  Done(c, wkey);
  Done(c, meta + ".scales");
  return AddT(c, name, format::DType::kQ4G,
              f16s ? format::Layout::kQ4G_R4K8_F16S : format::Layout::kQ4G_R4K8,
              {static_cast<uint64_t>(N), static_cast<uint64_t>(K)}, 32, flags, packed.data(),
              packed.size(), err);
}

// Embedding / output: int8 + per-row scales -> Q8C exactly; float -> the scheme.
bool EmitRowQuant(Ctx& c, const std::string& meta, const std::string& name, Role role, int64_t N,
                  int64_t K, std::string* err) {
  const std::string wkey = meta + ".weight";
  const pth::Tensor* t = Get(c, wkey);
  if (!t) return Fail(c, wkey, "missing", err);
  if (t->shape.size() != 2 || t->shape[0] != N || t->shape[1] != K)
    return Fail(c, wkey,
                "shape " + ShapeStr(t->shape) + ", expected [" + std::to_string(N) + ", " +
                    std::to_string(K) + "]",
                err);
  if (IsFloat(t->dtype)) {
    ++c.n_float_path;
    return EmitFloatRows(c, *t, name, role, N, K, 0, err);
  }
  if (t->dtype != DType::kI8)
    return Fail(
        c, wkey,
        std::string("dtype ") + pth::DTypeName(t->dtype) + ", expected int8 or a float type", err);
  const int8_t* v = reinterpret_cast<const int8_t*>(t->data);
  std::vector<float> scales;
  if (!ReadScales(c, meta + ".scales", N, 1, true, &scales, err)) return false;
  if (!CheckZeros(c, meta + ".zeros", err)) return false;
  std::vector<uint8_t> packed(pack::Q8CBytes(static_cast<int>(N), static_cast<int>(K)));
  pack::PackQ8C(v, scales.data(), static_cast<int>(N), static_cast<int>(K), packed.data());
  ++c.n_q8;
  Done(c, wkey);
  return AddT(c, name, format::DType::kQ8C, format::Layout::kQ8C_R4K4,
              {static_cast<uint64_t>(N), static_cast<uint64_t>(K)}, 0, 0, packed.data(),
              packed.size(), err);
}

bool EmitNorm(Ctx& c, const std::string& key, const std::string& name, int64_t dim,
              std::string* err) {
  const pth::Tensor* t = Get(c, key);
  if (!t) return Fail(c, key, "missing", err);
  if (!IsFloat(t->dtype))
    return Fail(c, key, std::string("dtype ") + pth::DTypeName(t->dtype) + ", expected float", err);
  if (t->shape.size() != 1 || t->shape[0] != dim)
    return Fail(c, key, "shape " + ShapeStr(t->shape) + ", expected [" + std::to_string(dim) + "]",
                err);
  std::vector<float> f = ToF32(*t);
  ++c.n_f32;
  return AddT(c, name, format::DType::kF32, format::Layout::kRowMajor, {static_cast<uint64_t>(dim)},
              0, 0, f.data(), f.size() * 4, err);
}

// LoRA adaptor pair of one linear, stored unchanged (BF16 or F32 row-major).
bool EmitLora(Ctx& c, const std::string& meta, const std::string& name, int64_t N, int64_t K,
              int64_t rank, bool* present, std::string* err) {
  const std::string ak = meta + ".adaptor.A.weight", bk = meta + ".adaptor.B.weight";
  const pth::Tensor* a = Get(c, ak);
  const pth::Tensor* b = Get(c, bk);
  *present = a || b;
  if (!a && !b) return true;
  if (!a || !b) return Fail(c, a ? bk : ak, "missing (LoRA adaptors come in A/B pairs)", err);
  if (rank == 0) return Fail(c, ak, "LoRA adaptor present but params.json has no lora_args", err);
  const std::pair<const pth::Tensor*, std::pair<std::string, std::vector<int64_t>>> parts[2] = {
      {a, {ak, {rank, K}}}, {b, {bk, {N, rank}}}};
  for (int i = 0; i < 2; ++i) {
    const pth::Tensor* t = parts[i].first;
    const std::string& key = parts[i].second.first;
    const std::vector<int64_t>& want = parts[i].second.second;
    if (t->shape != want)
      return Fail(c, key,
                  "shape " + ShapeStr(t->shape) + ", expected " + ShapeStr(want) +
                      " (lora_args.rank = " + std::to_string(rank) + ")",
                  err);
    const std::string out = schema::LoraName(name, i + 1);
    const std::vector<uint64_t> shape = {static_cast<uint64_t>(want[0]),
                                         static_cast<uint64_t>(want[1])};
    bool ok;
    if (t->dtype == DType::kBF16) {
      ok = AddT(c, out, format::DType::kBF16, format::Layout::kRowMajor, shape, 0, 0, t->data,
                t->nbytes, err);
    } else if (t->dtype == DType::kF32 || t->dtype == DType::kF16 || t->dtype == DType::kF64) {
      std::vector<float> f = ToF32(*t);
      ok = AddT(c, out, format::DType::kF32, format::Layout::kRowMajor, shape, 0, 0, f.data(),
                f.size() * 4, err);
    } else {
      return Fail(
          c, key,
          std::string("dtype ") + pth::DTypeName(t->dtype) + ", expected bfloat16 or float32", err);
    }
    if (!ok) return false;
    Done(c, key);
    ++c.n_lora;
  }
  return true;
}

bool GetInt(const json::Value& p, const char* key, int64_t lo, int64_t hi, int64_t* out,
            const std::string& file, std::string* err, bool required = true) {
  const json::Value* v = p.Find(key);
  if (!v || v->is_null()) {
    if (!required) return true;
    *err = file + ": missing \"" + key + "\"";
    return false;
  }
  if (!v->as_int64(out) || *out < lo || *out > hi) {
    *err = file + ": \"" + key + "\" must be an integer in [" + std::to_string(lo) + ", " +
           std::to_string(hi) + "]";
    return false;
  }
  return true;
}

bool GetNum(const json::Value& p, const char* key, double* out, const std::string& file,
            std::string* err) {
  const json::Value* v = p.Find(key);
  if (!v || v->is_null()) return true;  // keep default
  if (!v->is_number()) {
    *err = file + ": \"" + key + "\" must be a number";
    return false;
  }
  *out = v->as_number();
  return true;
}

bool Exists(const std::string& p) {
  FILE* f = std::fopen(p.c_str(), "rb");
  if (!f) return false;
  std::fclose(f);
  return true;
}

}  // namespace

bool ConvertMeta(const std::string& input, const std::string& out, const ConvertOptions& o,
                 std::string* err) {
  std::string dir = input, pth_path;
  if (input.size() > 4 && input.compare(input.size() - 4, 4, ".pth") == 0) {
    pth_path = input;
    const size_t slash = input.rfind('/');
    dir = slash == std::string::npos ? "." : input.substr(0, slash);
  } else {
    pth_path = dir + "/consolidated.00.pth";
    if (Exists(dir + "/consolidated.01.pth")) {
      *err = dir +
             ": sharded checkpoint (consolidated.01.pth present); only single-file "
             "checkpoints (Llama 3.2 1B/3B) are supported";
      return false;
    }
  }
  // ---- params.json
  const std::string pfile = dir + "/params.json";
  json::Value params;
  if (!json::ParseFile(pfile, &params, err)) return false;
  if (!params.is_object()) {
    *err = pfile + ": not a JSON object";
    return false;
  }
  int64_t dim = 0, n_layers = 0, n_heads = 0, n_kv = 0, vocab = 0, multiple_of = 256;
  if (!GetInt(params, "dim", 1, schema::kMaxDim, &dim, pfile, err) ||
      !GetInt(params, "n_layers", 1, schema::kMaxLayers, &n_layers, pfile, err) ||
      !GetInt(params, "n_heads", 1, schema::kMaxHeads, &n_heads, pfile, err) ||
      !GetInt(params, "vocab_size", 1, schema::kMaxVocab, &vocab, pfile, err) ||
      !GetInt(params, "multiple_of", 1, 1 << 16, &multiple_of, pfile, err, false))
    return false;
  n_kv = n_heads;
  if (!GetInt(params, "n_kv_heads", 1, schema::kMaxHeads, &n_kv, pfile, err, false)) return false;
  if (dim % n_heads != 0 || n_heads % n_kv != 0 || (dim / n_heads) % 2 != 0) {
    *err = pfile + ": inconsistent heads: dim " + std::to_string(dim) + ", n_heads " +
           std::to_string(n_heads) + ", n_kv_heads " + std::to_string(n_kv);
    return false;
  }
  // params.json carries no llama3 RoPE factor: Meta's (and Hugging Face's
  // convert_llama_weights_to_hf) value is 32 for Llama 3.2 1B/3B (dim <= 3072)
  // and 8 for Llama 3.1 (dim >= 4096); "rope_scaling_factor" overrides.
  double ffn_mult = 0, norm_eps = 1e-5, rope_theta = 500000.0;
  double rope_factor = dim <= 3072 ? 32.0 : 8.0;
  if (!GetNum(params, "ffn_dim_multiplier", &ffn_mult, pfile, err) ||
      !GetNum(params, "norm_eps", &norm_eps, pfile, err) ||
      !GetNum(params, "rope_theta", &rope_theta, pfile, err) ||
      !GetNum(params, "rope_scaling_factor", &rope_factor, pfile, err) ||
      !GetNum(params, "rope_scale_factor", &rope_factor, pfile, err))
    return false;
  bool scaled_rope = false;
  if (const json::Value* v = params.Find("use_scaled_rope"))
    scaled_rope = v->is_bool() && v->as_bool();
  // llama-models FeedForward: hidden = int(2 * 4*dim / 3); * multiplier; round up.
  int64_t hidden = (2 * 4 * dim) / 3;
  if (ffn_mult > 0) hidden = static_cast<int64_t>(ffn_mult * static_cast<double>(hidden));
  hidden = multiple_of * ((hidden + multiple_of - 1) / multiple_of);
  int64_t group = 32, lora_rank = 0;
  double lora_scale = 0;
  bool spinquant = false, spin_explicit = false, quantized = false;
  if (const json::Value* q = params.Find("quantization_args"); q && q->is_object()) {
    quantized = true;
    if (!GetInt(*q, "group_size", 1, 1 << 16, &group, pfile + " quantization_args", err, false))
      return false;
    if (const json::Value* s = q->Find("spinquant"); s && s->is_bool()) {
      spinquant = s->as_bool();
      spin_explicit = true;
    }
  }
  if (const json::Value* l = params.Find("lora_args"); l && l->is_object()) {
    if (!GetInt(*l, "rank", 1, schema::kMaxLoraRank, &lora_rank, pfile + " lora_args", err))
      return false;
    lora_scale = 2.0;
    if (!GetNum(*l, "scale", &lora_scale, pfile + " lora_args", err)) return false;
  }

  // ---- the archive
  pth::StateDict sd;
  if (!sd.Open(pth_path, err)) return false;
  const std::string w1_0 = schema::SourceName(kMetaNames, TensorId::kFfnGate, 0) + ".weight";
  const std::string wq_0 = schema::SourceName(kMetaNames, TensorId::kAttnQ, 0);
  if (const pth::Tensor* w1 = sd.Find(w1_0)) {
    if (w1->shape.size() == 2 && w1->shape[0] != hidden) {
      *err = pth_path + ": " + w1_0 + " has " + std::to_string(w1->shape[0]) +
             " rows but params.json gives an FFN width of " + std::to_string(hidden) +
             " (multiple_of * ceil(ffn_dim_multiplier * int(8*dim/3) / multiple_of))";
      return false;
    }
  }
  const bool has_adaptors = sd.Find(wq_0 + ".adaptor.A.weight") != nullptr;
  const pth::Tensor* wq0 = sd.Find(wq_0 + ".weight");
  const bool int4_weights = wq0 && wq0->dtype == DType::kI8;
  if (!spin_explicit && quantized && int4_weights && !has_adaptors && lora_rank == 0) {
    // Meta's releases: QAT+LoRA carries adaptors + lora_args; SpinQuant carries neither.
    spinquant = true;
    if (!o.quiet)
      std::fprintf(stderr,
                   "lamina-convert: int4 checkpoint without LoRA adaptors and without "
                   "quantization_args.spinquant: treating it as SpinQuant (online Hadamard R4 "
                   "before every ffn_down)\n");
  }
  if (spinquant && (hidden & (hidden - 1)) != 0) {
    *err = pfile + ": SpinQuant needs a power-of-two FFN width for the Hadamard R4, got " +
           std::to_string(hidden);
    return false;
  }

  schema::LlamaDims dims;
  dims.dim = dim;
  dims.n_layers = n_layers;
  dims.n_heads = n_heads;
  dims.n_kv_heads = n_kv;
  dims.ffn_dim = hidden;
  dims.vocab_size = vocab;
  dims.norm_eps = norm_eps;
  dims.rope_theta = rope_theta;
  dims.rope_llama3 = scaled_rope;
  if (scaled_rope) {
    dims.rope_factor = rope_factor;
    dims.rope_low_freq_factor = 1.0;
    dims.rope_high_freq_factor = 4.0;
    dims.rope_orig_max_pos = 8192;
  }
  dims.max_context = scaled_rope ? 131072 : 8192;
  int64_t max_seq = 0;
  if (!GetInt(params, "max_seq_len", 1, schema::kMaxContext, &max_seq, pfile, err, false))
    return false;
  if (max_seq > 0) dims.max_context = max_seq;
  dims.lora_rank = has_adaptors ? lora_rank : 0;
  dims.lora_scale = has_adaptors ? static_cast<float>(lora_scale) : 0.f;
  format::HParams hp;
  if (!schema::MakeHParams(dims, &hp, err)) {
    *err = pfile + ": " + *err;
    return false;
  }

  // ---- tokenizer
  std::unique_ptr<Tokenizer> tok;
  const std::string tok_path =
      o.tokenizer_path.empty() ? dir + "/tokenizer.model" : o.tokenizer_path;
  if (o.no_tokenizer) {
  } else if (Exists(tok_path)) {
    tok = TokenizerFromFile(tok_path, err);
    if (!tok) return false;
    if (tok->vocab_size() > vocab) {
      *err = tok_path + ": tokenizer has " + std::to_string(tok->vocab_size()) +
             " tokens, more than the model's vocab_size " + std::to_string(vocab);
      return false;
    }
  } else if (!o.quiet) {
    std::fprintf(stderr,
                 "lamina-convert: warning: %s not found: the model has no tokenizer and is "
                 "driven by token ids (llama-run --tokens)\n",
                 tok_path.c_str());
  }
  // Llama 3.2 Instruct (generation_config.json): bos <|begin_of_text|> 128000, stop on
  // <|end_of_text|> 128001, <|eom_id|> 128008, <|eot_id|> 128009; eos = <|eot_id|>.
  if (vocab >= 128256) {
    hp.bos_id = 128000;
    hp.eos_id = 128009;
    hp.n_stop_ids = 3;
    hp.stop_ids[0] = 128001;
    hp.stop_ids[1] = 128008;
    hp.stop_ids[2] = 128009;
  } else if (tok) {
    hp.bos_id = static_cast<uint32_t>(tok->bos_id());
    hp.eos_id = static_cast<uint32_t>(tok->eos_id());
    const std::vector<int32_t> stops = tok->stop_ids();
    for (int32_t s : stops) {
      if (hp.n_stop_ids < 8 && s >= 0 && s < vocab)
        hp.stop_ids[hp.n_stop_ids++] = static_cast<uint32_t>(s);
    }
  } else {  // synthetic vocabularies: the last two ids
    hp.bos_id = static_cast<uint32_t>(vocab >= 2 ? vocab - 2 : 0);
    hp.eos_id = static_cast<uint32_t>(vocab - 1);
    hp.n_stop_ids = 1;
    hp.stop_ids[0] = hp.eos_id;
  }

  ModelWriter w;
  if (!w.Open(out, err)) return false;
  w.SetHParams(hp);
  std::string scheme = !int4_weights  ? o.weights
                       : has_adaptors ? "meta-qat-lora"
                       : spinquant    ? "meta-spinquant"
                                      : "meta-8da4w";
  w.SetScheme(scheme);
  if (tok) w.SetTokenizer(tok->Serialize());

  Stats stats(o.quiet);
  Ctx c{&sd, &w, &o, pth_path, {}};
  c.stats = &stats;
  // A float embedding shared with the output layer is written twice when
  // --output and --embedding types differ (Meta's int8 one is kept as is).
  const std::string embd_stem = schema::SourceOf(kMetaNames, TensorId::kTokEmbd);
  const std::string head_stem = schema::SourceOf(kMetaNames, TensorId::kOutput);
  const pth::Tensor* emb = sd.Find(embd_stem + ".weight");
  const bool has_head = sd.Find(head_stem + ".weight") != nullptr;
  const bool untie = !has_head && emb && IsFloat(emb->dtype) && OutputUntied(o);
  const bool file_tied = !has_head && !untie;
  const uint32_t flags = file_tied ? static_cast<uint32_t>(format::kFlagTiedEmbeddings) : 0u;
  stats.Begin(schema::CountTensors(hp, file_tied));
  int n_lora_linears = 0;
  const bool ok = schema::ForEachTensor(hp, file_tied, [&](const schema::TensorRef& r) {
    const TensorId id = r.spec->id;
    const std::string meta =
        id == TensorId::kOutput && untie ? embd_stem : schema::SourceName(kMetaNames, id, r.layer);
    const int64_t N = static_cast<int64_t>(r.rows()), K = static_cast<int64_t>(r.cols());
    switch (r.spec->role) {
      case Role::kNorm:
        return EmitNorm(c, meta + ".weight", r.name, N, err);
      case Role::kEmbedding:
      case Role::kOutput:
        return EmitRowQuant(c, meta, r.name, r.spec->role, N, K, err);
      case Role::kLinear: {
        // SpinQuant's online R4: a Hadamard transform on the input of the
        // linears the schema allows it on (ffn_down).
        const uint32_t tf = spinquant && (r.spec->traits & schema::kHadamardAllowed)
                                ? static_cast<uint32_t>(format::kTensorHadamardInput)
                                : 0u;
        if (!EmitLinear(c, meta, r.name, N, K, static_cast<int>(group), tf, err)) return false;
        if (!(r.spec->traits & schema::kLoraAllowed)) return true;
        bool present = false;
        if (!EmitLora(c, meta, r.name, N, K, lora_rank, &present, err)) return false;
        n_lora_linears += present;
        return true;
      }
      case Role::kLora:
        break;
    }
    *err = "tensor " + r.name + ": no Meta mapping for its role";
    return false;
  });
  if (!ok) return false;
  if (has_adaptors && n_lora_linears != 7 * n_layers && !o.quiet)
    std::fprintf(stderr, "lamina-convert: note: LoRA adaptors on %d of %lld linears\n",
                 n_lora_linears, static_cast<long long>(7 * n_layers));
  // Anything left over is reported, never silently dropped.
  std::vector<std::string> unused;
  for (const auto& t : sd.tensors()) {
    if (!c.used.count(t.name) && t.name != "rope.freqs") unused.push_back(t.name);
  }
  if (!unused.empty()) {
    std::string list;
    for (size_t i = 0; i < unused.size() && i < 8; ++i) list += (i ? ", " : "") + unused[i];
    if (unused.size() > 8) list += ", ...";
    *err = pth_path + ": " + std::to_string(unused.size()) +
           " unrecognised tensor(s) in the checkpoint: " + list;
    return false;
  }
  w.SetFlags(flags);
  if (!w.Finish(err)) return false;
  if (!o.quiet) {
    std::fprintf(stderr,
                 "lamina-convert: Meta checkpoint (%s): %d q4g linears kept bit-exact (%d with "
                 "f16-exact scales stored as f16), %d q8c "
                 "(embedding/output, exact), %d f32 norms, %d LoRA tensors (rank %lld, scale "
                 "%g), %d tensors through the float path (--weights %s)%s%s\n",
                 scheme.c_str(), c.n_q4, c.n_q4_f16s, c.n_q8, c.n_f32, c.n_lora,
                 static_cast<long long>(hp.lora_rank), hp.lora_scale, c.n_float_path,
                 o.weights.c_str(), spinquant ? ", SpinQuant Hadamard R4 on every ffn_down" : "",
                 (flags & format::kFlagTiedEmbeddings) ? ", tied embeddings" : "");
    stats.Summary(out, w.bytes_written());
  }
  return true;
}

}  // namespace lamina::convert
