// The schema (loader/llama_schema.h) is the one statement of what a Llama
// .lamina file holds: the loader validates by it and the engine binds by it.
// These table-driven tests build one small file per (schema row x dtype /
// layout), per (LoRA adaptor x dtype) and per (row x Hadamard flag), and check
// that the loader accepts exactly what the row allows and that the engine
// loads and evaluates every file the loader accepts (finite logits, the ref
// tier and the CPU's tier bit-identical) and refuses every other one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/ref/fp16.h"
#include "lamina/lamina.h"
#include "loader/llama_schema.h"
#include "loader/model_file.h"
#include "loader/model_writer.h"
#include "loader/pack.h"
#include "tests/testutil.h"

namespace lamina::test {
namespace {

using format::DType;
using format::Layout;

struct Encoding {
  DType dtype;
  Layout layout;
};
// Every (dtype, layout) pair the format defines.
constexpr Encoding kEncodings[] = {
    {DType::kF32, Layout::kRowMajor},  {DType::kF16, Layout::kRowMajor},
    {DType::kBF16, Layout::kRowMajor}, {DType::kQ8C, Layout::kQ8C_R4K4},
    {DType::kQ4G, Layout::kQ4G_R4K8},  {DType::kQ4G, Layout::kQ4G_R4K8_F16S},
};

std::string EncName(const Encoding& e) {
  return std::string(format::DTypeName(e.dtype)) + "/" + format::LayoutName(e.layout);
}

// A tiny GQA model: ffn a power of two (Hadamard), K multiples of 32.
format::HParams TinyHParams(uint32_t lora_rank) {
  schema::LlamaDims d;
  d.dim = 64;
  d.n_layers = 2;
  d.n_heads = 4;
  d.n_kv_heads = 2;
  d.ffn_dim = 128;
  d.vocab_size = 96;
  d.max_context = 64;
  d.lora_rank = lora_rank;
  d.lora_scale = lora_rank ? 0.5 : 0.0;
  format::HParams hp;
  std::string err;
  EXPECT_TRUE(schema::MakeHParams(d, &hp, &err)) << err;
  hp.bos_id = hp.eos_id = schema::kNoId;
  return hp;
}

// Deterministic values in [-a, a) (SplitMix64).
std::vector<float> Values(uint64_t seed, size_t n, float a) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull;
  std::vector<float> v(n);
  for (float& x : v) {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    x = a * (static_cast<float>(z % 65536) / 32768.0f - 1.0f);
  }
  return v;
}

std::vector<uint8_t> ReadFileBytes(const std::string& path) {
  std::vector<uint8_t> v;
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    uint8_t buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) v.insert(v.end(), buf, buf + n);
    std::fclose(f);
  }
  return v;
}

// Packs `v` (row-major [shape]) into `e`; empty when the format cannot express
// it (a quantized vector).
std::vector<uint8_t> Encode(const Encoding& e, const std::vector<uint64_t>& shape,
                            const std::vector<float>& v) {
  std::vector<uint8_t> out;
  switch (e.dtype) {
    case DType::kF32:
      out.resize(v.size() * 4);
      std::memcpy(out.data(), v.data(), out.size());
      return out;
    case DType::kF16:
    case DType::kBF16:
      out.resize(v.size() * 2);
      for (size_t i = 0; i < v.size(); ++i) {
        const uint16_t h = e.dtype == DType::kF16 ? F32ToF16(v[i]) : F32ToBF16(v[i]);
        std::memcpy(out.data() + 2 * i, &h, 2);
      }
      return out;
    default:
      break;
  }
  if (shape.size() != 2) return out;
  const int N = static_cast<int>(shape[0]), K = static_cast<int>(shape[1]);
  std::vector<int8_t> q(v.size());
  if (e.dtype == DType::kQ8C) {
    std::vector<float> sc(N);
    for (int n = 0; n < N; ++n)
      sc[n] = pack::QuantizeRowQ8(&v[size_t(n) * K], K, &q[size_t(n) * K]);
    out.resize(pack::Q8CBytes(N, K));
    pack::PackQ8C(q.data(), sc.data(), N, K, out.data());
    return out;
  }
  const bool f16s = e.layout == Layout::kQ4G_R4K8_F16S;
  const int G = (K + 31) / 32;
  std::vector<float> sc(size_t(N) * G);
  for (int n = 0; n < N; ++n)
    for (int g = 0; g < G; ++g) {
      const size_t at = size_t(n) * K + size_t(g) * 32;
      const int len = std::min(32, K - 32 * g);
      sc[size_t(n) * G + g] = f16s ? pack::QuantizeGroupQ4F16(&v[at], len, &q[at])
                                   : pack::QuantizeGroupQ4(&v[at], len, &q[at]);
    }
  out.resize(f16s ? pack::Q4GF16SBytes(N, K) : pack::Q4GBytes(N, K));
  if (f16s)
    EXPECT_TRUE(pack::PackQ4GF16S(q.data(), sc.data(), N, K, out.data()));
  else
    pack::PackQ4G(q.data(), sc.data(), N, K, out.data());
  return out;
}

// What one tensor of a test file looks like when it differs from the default
// (f32 for everything; values from the tensor's name).
struct Override {
  Encoding enc{DType::kF32, Layout::kRowMajor};
  uint32_t flags = 0;
  bool round_f16 = false;  // values rounded to f16 first (exactly representable)
};

// Writes the graph of (hp, tied) in schema order (LoRA pairs after their
// linear), every tensor f32 unless overridden, plus `extra` tensors (f32
// [vocab, dim]). The image is laid out here, by format.h, not by ModelWriter
// (which refuses to publish a file the loader rejects). False when the format
// cannot express an override (TensorBytes is 0: a quantized vector).
bool WriteModel(const std::string& path, const format::HParams& hp, bool tied,
                const std::map<std::string, Override>& over,
                const std::vector<std::string>& extra = {}) {
  struct Item {
    format::TensorEntry e;
    std::vector<uint8_t> bytes;
  };
  std::vector<Item> items;
  uint64_t seed = 1;
  auto emit = [&](const std::string& name, const std::vector<uint64_t>& shape, bool norm) {
    size_t n = 1;
    for (uint64_t d : shape) n *= d;
    std::vector<float> v = Values(seed++, n, norm ? 0.1f : 1.0f / std::sqrt(float(shape.back())));
    if (norm)
      for (float& x : v) x += 1.0f;
    Override o;
    if (auto it = over.find(name); it != over.end()) o = it->second;
    if (o.round_f16)
      for (float& x : v) x = F16ToF32(F32ToF16(x));
    Item it{};
    std::memcpy(it.e.name, name.data(), std::min(name.size(), sizeof(it.e.name) - 1));
    it.e.dtype = static_cast<uint32_t>(o.enc.dtype);
    it.e.layout = static_cast<uint32_t>(o.enc.layout);
    it.e.n_dims = static_cast<uint32_t>(shape.size());
    it.e.flags = o.flags;
    for (size_t i = 0; i < shape.size(); ++i) it.e.shape[i] = shape[i];
    it.e.group_size = o.enc.dtype == DType::kQ4G ? 32 : 0;
    it.bytes = Encode(o.enc, shape, v);
    it.e.size = it.bytes.size();
    if (it.bytes.empty() || TensorBytes(o.enc.dtype, o.enc.layout, it.e.shape, it.e.n_dims,
                                        it.e.group_size) != it.e.size)
      return false;
    items.push_back(std::move(it));
    return true;
  };
  bool ok = schema::ForEachTensor(hp, tied, [&](const schema::TensorRef& r) {
    if (!emit(r.name, r.shape, r.spec->role == schema::Role::kNorm)) return false;
    if ((r.spec->traits & schema::kLoraAllowed) && hp.lora_rank > 0)
      for (int ab = 1; ab <= 2; ++ab) {
        const schema::TensorRef l = schema::LoraRef(r, ab, hp.lora_rank);
        if (!emit(l.name, l.shape, false)) return false;
      }
    return true;
  });
  for (const std::string& name : extra) ok = ok && emit(name, {hp.vocab_size, hp.dim}, false);
  if (!ok) return false;
  // [header][pad to kDataAlign][tensors, kTensorAlign-aligned][directory][pad to kFileAlign]
  uint64_t pos = format::kDataAlign;
  for (Item& it : items) {
    it.e.offset = format::RoundUp(pos, format::kTensorAlign);
    pos = it.e.offset + it.e.size;
  }
  format::FileHeader h{};
  std::memcpy(h.magic, format::kMagic, sizeof(h.magic));
  h.version_major = format::kVersionMajor;
  h.version_minor = format::kVersionMinor;
  h.header_size = sizeof(h);
  h.tensor_entry_size = sizeof(format::TensorEntry);
  h.flags = tied ? static_cast<uint32_t>(format::kFlagTiedEmbeddings) : 0u;
  h.n_tensors = items.size();
  h.data_offset = format::kDataAlign;
  h.data_size = pos - format::kDataAlign;
  h.tensor_dir_offset = format::RoundUp(pos, format::kTensorAlign);
  const uint64_t end = h.tensor_dir_offset + items.size() * sizeof(format::TensorEntry);
  h.file_size = format::RoundUp(end, format::kFileAlign);
  std::memcpy(h.weight_scheme, "schema-test", 12);
  h.hparams = hp;
  std::vector<uint8_t> img(h.file_size, 0);
  std::memcpy(img.data(), &h, sizeof(h));
  for (size_t i = 0; i < items.size(); ++i) {
    std::memcpy(img.data() + items[i].e.offset, items[i].bytes.data(), items[i].e.size);
    std::memcpy(img.data() + h.tensor_dir_offset + i * sizeof(format::TensorEntry), &items[i].e,
                sizeof(format::TensorEntry));
  }
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) {
    ADD_FAILURE() << "cannot write " << path;
    return false;
  }
  const bool wrote = std::fwrite(img.data(), 1, img.size(), f) == img.size();
  return std::fclose(f) == 0 && wrote;
}

struct ModelDel {
  void operator()(lamina_model* m) const { lamina_model_free(m); }
};
using ModelPtr = std::unique_ptr<lamina_model, ModelDel>;

ModelPtr LoadTier(const std::string& path, const char* tier) {
  lamina_model_params p = lamina_model_default_params();
  p.kernels = tier;
  lamina_model* m = nullptr;
  if (lamina_model_load(path.c_str(), &p, &m) != LAMINA_OK) return nullptr;
  return ModelPtr(m);
}

// Every position's logits of a few tokens (empty on failure).
std::vector<float> Logits(lamina_model* m) {
  lamina_context_params p = lamina_context_default_params();
  p.n_ctx = 16;
  p.n_threads = 1;
  p.logits_all = 1;
  p.kv_type = LAMINA_KV_F32;
  lamina_context* c = nullptr;
  if (lamina_context_create(m, &p, &c) != LAMINA_OK) return {};
  const int32_t toks[5] = {3, 17, 95, 0, 42};
  std::vector<float> out;
  if (lamina_eval(c, toks, 5) == LAMINA_OK) {
    lamina_model_info mi;
    lamina_model_get_info(m, &mi);
    for (int i = 0; i < 5; ++i) {
      const float* l = lamina_get_logits_ith(c, i);
      if (!l) break;
      out.insert(out.end(), l, l + mi.vocab_size);
    }
  }
  lamina_context_free(c);
  return out;
}

// Loader and engine verdicts on one file; when accepted, the engine's logits
// are finite and the same bits on the ref tier and the CPU's best tier.
struct Verdict {
  bool loader = false, engine = false;
  std::string err;
  std::vector<float> logits;
};
Verdict Judge(const std::string& path) {
  Verdict v;
  v.loader = ModelFile::Open(path, LoadOptions{}, &v.err) != nullptr;
  ModelPtr ref = LoadTier(path, "ref");
  ModelPtr best = LoadTier(path, "auto");
  v.engine = ref != nullptr && best != nullptr;
  EXPECT_EQ(ref != nullptr, best != nullptr) << path;
  if (!v.engine) return v;
  v.logits = Logits(ref.get());
  const std::vector<float> b = Logits(best.get());
  EXPECT_FALSE(v.logits.empty()) << path;
  EXPECT_EQ(v.logits.size(), b.size()) << path;
  EXPECT_TRUE(v.logits.size() == b.size() &&
              std::memcmp(v.logits.data(), b.data(), b.size() * 4) == 0)
      << path << ": ref and auto tiers differ";
  for (float x : v.logits)
    if (!std::isfinite(x)) {
      ADD_FAILURE() << path << ": non-finite logit";
      break;
    }
  return v;
}

std::string Dir() { return TestDataDir("schema"); }

// One tensor of the graph in every encoding (row x dtype/layout).
TEST(SchemaMalformed, EveryRowInEveryEncoding) {
  const format::HParams hp = TinyHParams(0);
  int accepted = 0, refused = 0, inexpressible = 0;
  for (const schema::TensorSpec& s : schema::kTensors) {
    const std::string name = schema::TensorName(s, 1);  // the last block
    for (const Encoding& e : kEncodings) {
      const std::string path = Dir() + "/row_" + s.name + "_" + std::to_string(int(e.dtype)) + "_" +
                               std::to_string(int(e.layout)) + ".lamina";
      const bool allowed = schema::TypeAllowed(s.types, static_cast<uint32_t>(e.dtype));
      Override o;
      o.enc = e;
      if (!WriteModel(path, hp, /*tied=*/false, {{name, o}})) {
        // Only the format itself may refuse: a quantized vector.
        EXPECT_EQ(s.cols, schema::Dim::kNone) << name << " " << EncName(e);
        EXPECT_FALSE(allowed) << name << " " << EncName(e);
        ++inexpressible;
        continue;
      }
      const Verdict v = Judge(path);
      EXPECT_EQ(v.loader, allowed) << name << " " << EncName(e) << ": " << v.err;
      EXPECT_EQ(v.engine, v.loader) << name << " " << EncName(e);
      if (!allowed) {
        EXPECT_NE(v.err.find("not allowed here"), std::string::npos) << v.err;
      }
      (v.loader ? accepted : refused)++;
    }
  }
  // 9 matrices x 6 encodings + 3 vectors x f32; 3 vectors x f16/bf16 refused.
  EXPECT_EQ(accepted, 9 * 6 + 3);
  EXPECT_EQ(refused, 3 * 2);
  EXPECT_EQ(inexpressible, 3 * 3);
}

// LoRA adaptors of every linear in every encoding: any float type is allowed
// (the float matmul takes f32, f16 and bf16 on every tier), nothing quantized.
TEST(SchemaMalformed, EveryLoraAdaptorInEveryEncoding) {
  const format::HParams hp = TinyHParams(4);
  for (const schema::TensorSpec& s : schema::kTensors) {
    if (!(s.traits & schema::kLoraAllowed)) continue;
    for (int ab = 1; ab <= 2; ++ab)
      for (const Encoding& e : kEncodings) {
        const std::string name = schema::TensorName(s, 0) + (ab == 1 ? ".lora_a" : ".lora_b");
        const std::string path = Dir() + "/lora_" + s.name + std::to_string(ab) + "_" +
                                 std::to_string(int(e.dtype)) + "_" +
                                 std::to_string(int(e.layout)) + ".lamina";
        Override o;
        o.enc = e;
        ASSERT_TRUE(WriteModel(path, hp, false, {{name, o}})) << name;
        const bool allowed = schema::TypeAllowed(schema::kLoraTypes, uint32_t(e.dtype));
        EXPECT_EQ(allowed, format::IsFloat(e.dtype));
        const Verdict v = Judge(path);
        EXPECT_EQ(v.loader, allowed) << name << " " << EncName(e) << ": " << v.err;
        EXPECT_EQ(v.engine, v.loader) << name << " " << EncName(e);
      }
  }
}

// The Hadamard-input flag on every matrix row: only where the schema allows it.
TEST(SchemaMalformed, HadamardFlagOnEveryRow) {
  const format::HParams hp = TinyHParams(0);
  int allowed_rows = 0;
  for (const schema::TensorSpec& s : schema::kTensors) {
    if (s.cols == schema::Dim::kNone) continue;
    const std::string name = schema::TensorName(s, 0);
    const std::string path = Dir() + "/hadamard_" + s.name + ".lamina";
    Override o;
    o.flags = format::kTensorHadamardInput;
    ASSERT_TRUE(WriteModel(path, hp, false, {{name, o}})) << name;
    const bool allowed = (s.traits & schema::kHadamardAllowed) != 0;
    allowed_rows += allowed;
    const Verdict v = Judge(path);
    EXPECT_EQ(v.loader, allowed) << name << ": " << v.err;
    EXPECT_EQ(v.engine, v.loader) << name;
    if (!allowed) {
      EXPECT_NE(v.err.find("only valid on ffn_down"), std::string::npos) << v.err;
    }
  }
  EXPECT_EQ(allowed_rows, 1);
}

// Presence: each tensor missing, LoRA pairs without a rank, the output layer
// in a tied file; extra unknown names are ignored.
TEST(SchemaMalformed, PresenceRules) {
  format::HParams hp = TinyHParams(0);
  {
    const std::string path = Dir() + "/complete.lamina";
    ASSERT_TRUE(WriteModel(path, hp, false, {}));
    const Verdict v = Judge(path);
    EXPECT_TRUE(v.loader && v.engine) << v.err;
  }
  {  // tied: no "output"; and "output" present in a tied file is refused
    const std::string path = Dir() + "/tied.lamina";
    ASSERT_TRUE(WriteModel(path, hp, true, {}));
    const Verdict v = Judge(path);
    EXPECT_TRUE(v.loader && v.engine) << v.err;
    const std::string bad = Dir() + "/tied_with_output.lamina";
    ASSERT_TRUE(WriteModel(bad, hp, true, {}, {"output"}));
    const Verdict b = Judge(bad);
    EXPECT_FALSE(b.loader || b.engine);
    EXPECT_NE(b.err.find("present although embeddings are tied"), std::string::npos) << b.err;
  }
  {  // an unknown name is ignored (room for minor additions)
    const std::string path = Dir() + "/extra.lamina";
    ASSERT_TRUE(WriteModel(path, hp, false, {}, {"blk.0.future_tensor"}));
    const Verdict v = Judge(path);
    EXPECT_TRUE(v.loader && v.engine) << v.err;
  }
  {  // lora_rank > 0 in the header but a file written without adaptors
    const std::string path = Dir() + "/lora_missing.lamina";
    ASSERT_TRUE(WriteModel(path, hp, false, {}));
    std::vector<uint8_t> img = ReadFileBytes(path);
    reinterpret_cast<format::FileHeader*>(img.data())->hparams.lora_rank = 4;
    std::string err;
    EXPECT_FALSE(ValidateModelImage(img.data(), img.size(), "img", &err));
    EXPECT_NE(err.find("blk.0.attn_q.lora_a: missing"), std::string::npos) << err;
  }
  {  // adaptors without a rank
    const std::string path = Dir() + "/lora_no_rank.lamina";
    ASSERT_TRUE(WriteModel(path, TinyHParams(4), false, {}));
    std::vector<uint8_t> img = ReadFileBytes(path);
    reinterpret_cast<format::FileHeader*>(img.data())->hparams.lora_rank = 0;
    std::string err;
    EXPECT_FALSE(ValidateModelImage(img.data(), img.size(), "img", &err));
    EXPECT_NE(err.find("present but hparams.lora_rank is 0"), std::string::npos) << err;
  }
  // Every tensor, missing (renamed away): refused, naming it.
  schema::ForEachTensor(hp, false, [&](const schema::TensorRef& r) {
    const std::string path = Dir() + "/missing.lamina";
    EXPECT_TRUE(WriteModel(path, hp, false, {}));
    std::vector<uint8_t> img = ReadFileBytes(path);
    const auto& h = *reinterpret_cast<const format::FileHeader*>(img.data());
    auto* dir = reinterpret_cast<format::TensorEntry*>(img.data() + h.tensor_dir_offset);
    for (uint64_t i = 0; i < h.n_tensors; ++i)
      if (r.name == dir[i].name) dir[i].name[0] = 'X';
    std::string err;
    EXPECT_FALSE(ValidateModelImage(img.data(), img.size(), "img", &err)) << r.name;
    EXPECT_NE(err.find("tensor " + r.name + ": missing"), std::string::npos) << err;
    return true;
  });
}

// f16 and bf16 adaptors compute exactly what their values in f32 compute
// (the float matmul widens exactly), on every tier.
TEST(SchemaLora, HalfAdaptorsEqualTheirF32Values) {
  const format::HParams hp = TinyHParams(4);
  std::map<std::string, Override> f32, f16, bf16;
  schema::ForEachTensor(hp, false, [&](const schema::TensorRef& r) {
    if (!(r.spec->traits & schema::kLoraAllowed)) return true;
    for (int ab = 1; ab <= 2; ++ab) {
      const std::string n = schema::LoraRef(r, ab, hp.lora_rank).name;
      Override o;
      o.round_f16 = true;
      f32[n] = o;
      o.enc = {DType::kF16, Layout::kRowMajor};
      f16[n] = o;
    }
    return true;
  });
  const std::string a = Dir() + "/lora_f32.lamina", b = Dir() + "/lora_f16.lamina";
  ASSERT_TRUE(WriteModel(a, hp, false, f32));
  ASSERT_TRUE(WriteModel(b, hp, false, f16));
  const Verdict va = Judge(a), vb = Judge(b);
  ASSERT_TRUE(va.engine && vb.engine) << va.err << vb.err;
  ASSERT_FALSE(va.logits.empty());
  EXPECT_EQ(0, std::memcmp(va.logits.data(), vb.logits.data(), va.logits.size() * 4));
  // Without the adaptors the logits differ (they are used).
  const std::string c = Dir() + "/lora_none.lamina";
  ASSERT_TRUE(WriteModel(c, TinyHParams(0), false, {}));
  const Verdict vc = Judge(c);
  ASSERT_EQ(vc.logits.size(), va.logits.size());
  EXPECT_NE(0, std::memcmp(va.logits.data(), vc.logits.data(), va.logits.size() * 4));
}

// The one hyperparameter validator and its helper.
TEST(SchemaHParams, OneValidatorOneSetOfLimits) {
  schema::LlamaDims d;
  d.dim = 2048;
  d.n_layers = 16;
  d.n_heads = 32;
  d.n_kv_heads = 8;
  d.ffn_dim = 8192;
  d.vocab_size = 128256;
  d.max_context = 131072;
  format::HParams hp;
  std::string err;
  ASSERT_TRUE(schema::MakeHParams(d, &hp, &err)) << err;
  EXPECT_EQ(hp.head_dim, 64u);
  EXPECT_EQ(hp.arch, static_cast<uint32_t>(format::Arch::kLlama));
  const struct {
    int64_t schema::LlamaDims::*field;
    int64_t value;
    const char* msg;
  } bad[] = {
      {&schema::LlamaDims::dim, int64_t{schema::kMaxDim} * 2, "hparams.dim"},
      {&schema::LlamaDims::n_layers, schema::kMaxLayers + 1, "hparams.n_layers"},
      {&schema::LlamaDims::n_kv_heads, 3, "hparams.n_kv_heads = 3: must divide n_heads"},
      {&schema::LlamaDims::ffn_dim, schema::kMaxFfn + 1, "hparams.ffn_dim"},
      {&schema::LlamaDims::vocab_size, schema::kMaxVocab + 1, "hparams.vocab_size"},
      {&schema::LlamaDims::vocab_size, -1, "hparams.vocab_size = -1: out of range"},
      {&schema::LlamaDims::max_context, int64_t{1} << 40, "hparams.max_context"},
      {&schema::LlamaDims::lora_rank, schema::kMaxLoraRank + 1, "hparams.lora_rank"},
  };
  for (const auto& b : bad) {
    schema::LlamaDims x = d;
    x.*b.field = b.value;
    EXPECT_FALSE(schema::MakeHParams(x, &hp, &err)) << b.msg;
    EXPECT_NE(err.find(b.msg), std::string::npos) << err;
  }
  // The limits are inclusive: a model at every limit is valid.
  schema::LlamaDims big = d;
  big.dim = schema::kMaxDim;
  big.n_heads = 64;
  big.n_kv_heads = 64;
  big.ffn_dim = schema::kMaxFfn;
  big.vocab_size = schema::kMaxVocab;
  big.max_context = schema::kMaxContext;
  big.n_layers = schema::kMaxLayers;
  big.lora_rank = schema::kMaxLoraRank;
  EXPECT_TRUE(schema::MakeHParams(big, &hp, &err)) << err;
}

TEST(SchemaTable, NamesShapesAndOrder) {
  const format::HParams hp = TinyHParams(0);
  std::vector<std::string> names;
  schema::ForEachTensor(hp, false, [&](const schema::TensorRef& r) {
    names.push_back(r.name);
    return true;
  });
  ASSERT_EQ(names.size(), 2u + 9u * hp.n_layers + 1u);
  EXPECT_EQ(names.front(), "tok_embd");
  EXPECT_EQ(names[1], "blk.0.attn_norm");
  EXPECT_EQ(names[10], "blk.1.attn_norm");
  EXPECT_EQ(names[names.size() - 2], "output_norm");
  EXPECT_EQ(names.back(), "output");
  EXPECT_EQ(schema::CountTensors(hp, true), names.size() - 1);
  EXPECT_EQ(schema::CountTensors(TinyHParams(4), false), names.size() + 2 * 7 * hp.n_layers);
  const schema::TensorRef q = schema::MakeRef(schema::Spec(schema::TensorId::kAttnK), 1, hp);
  EXPECT_EQ(q.name, "blk.1.attn_k");
  EXPECT_EQ(q.shape, (std::vector<uint64_t>{32, 64}));
  const schema::TensorRef b = schema::LoraRef(q, 2, 4);
  EXPECT_EQ(b.name, "blk.1.attn_k.lora_b");
  EXPECT_EQ(b.shape, (std::vector<uint64_t>{32, 4}));
  EXPECT_EQ(schema::RowsWith(schema::kHadamardAllowed), "ffn_down");
}

}  // namespace
}  // namespace lamina::test
