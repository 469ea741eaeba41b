// The Llama graph as data: every tensor a .lamina file holds (name, shape as a
// function of the hyperparameters, allowed types, per-layer or global, what
// may ride on it), and the one hyperparameter validator with its one set of
// limits. Everyone who needs to know "what a Llama model is" reads it:
//   - the loader validates a file against it (loader/model_file.cpp),
//   - the engine binds its weights by it (engine/config.cpp BindWeights),
//   - every converter names and shapes its tensors through it (tools/convert/,
//     one source-name map each) and fills HParams through MakeHParams.
// Adding a tensor: one row in kTensors (and its TensorId), its use in
// engine/forward.cpp (+ its slot in engine/config.cpp, which -Wswitch enforces),
// and one entry in each converter's name map (docs/ARCHITECTURE.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "loader/format.h"

namespace lamina::schema {

// ---- the hyperparameter limits (one set, used by the loader, the engine and
// the converters). Far above any Llama 3.x model, low enough that no product
// of them overflows 64 bits and every index fits an int.
inline constexpr uint32_t kMaxDim = 1u << 16;  // model width
inline constexpr uint32_t kMaxFfn = 1u << 18;
inline constexpr uint32_t kMaxVocab = 1u << 22;
inline constexpr uint32_t kMaxLayers = 1024;
inline constexpr uint32_t kMaxHeads = 1024;
inline constexpr uint32_t kMaxHeadDim = 1024;
inline constexpr uint32_t kMaxContext = 1u << 24;
inline constexpr uint32_t kMaxLoraRank = 1024;
inline constexpr uint32_t kMaxStopIds = 8;
inline constexpr uint32_t kNoId = 0xFFFFFFFFu;  // bos/eos "none"
// Why these fit: the largest [rows, cols] product is vocab x dim = 2^38
// elements; a q/kv width is at most heads x head_dim = 2^20 (and must equal
// dim <= 2^16); every dimension stays below 2^31 (an int).
static_assert(uint64_t{kMaxVocab} * kMaxDim < (uint64_t{1} << 40), "tensor sizes fit 64 bits");
static_assert(uint64_t{kMaxHeads} * kMaxHeadDim < (uint64_t{1} << 31), "q width fits an int");
static_assert(kMaxFfn < (1u << 31) && kMaxVocab < (1u << 31) && kMaxContext < (1u << 31),
              "every dimension fits an int");
static_assert(kMaxStopIds == sizeof(format::HParams::stop_ids) / sizeof(uint32_t),
              "stop id limit = HParams.stop_ids");

/// Checks every HParams field against the limits and each other (dim ==
/// n_heads * head_dim, GQA divisibility, finite eps/theta, the llama3 RoPE
/// factors, ids below vocab_size, ...). False + *err = "hparams.<field> = <v>:
/// <why>" (e.g. "hparams.n_kv_heads = 3: must divide n_heads").
bool ValidateHParams(const format::HParams& hp, std::string* err);

/// The architecture numbers a converter reads from its checkpoint; MakeHParams
/// turns them into HParams. Signed 64-bit so raw source values (negative,
/// huge) are range-checked before they are narrowed.
struct LlamaDims {
  int64_t dim = 0, n_layers = 0, n_heads = 0;
  int64_t n_kv_heads = 0;  // 0: n_heads (no GQA)
  int64_t head_dim = 0;    // 0: dim / n_heads
  int64_t ffn_dim = 0, vocab_size = 0, max_context = 0;
  double norm_eps = 1e-5, rope_theta = 10000.0;
  bool rope_llama3 = false;  // llama3 RoPE scaling with the four values below
  double rope_factor = 0, rope_low_freq_factor = 0, rope_high_freq_factor = 0;
  int64_t rope_orig_max_pos = 0;
  int64_t lora_rank = 0;  // 0: no adaptors
  double lora_scale = 0;
};

/// A zeroed HParams with arch = llama and the fields of `d` (bos/eos/stop ids
/// 0 / none: the caller sets them from its tokenizer), validated by
/// ValidateHParams. False + *err ("hparams.<field> = ...") when out of range.
bool MakeHParams(const LlamaDims& d, format::HParams* hp, std::string* err);

// ---- the tensors ------------------------------------------------------------

/// Every tensor of the Llama graph, in file order (see ForEachTensor).
enum class TensorId : uint8_t {
  kTokEmbd,
  kAttnNorm,
  kAttnQ,
  kAttnK,
  kAttnV,
  kAttnOutput,
  kFfnNorm,
  kFfnGate,
  kFfnUp,
  kFfnDown,
  kOutputNorm,
  kOutput,
};
inline constexpr int kNumTensors = 12;

/// A symbolic dimension: which hyperparameter expression a shape entry is.
enum class Dim : uint8_t {
  kNone,      // no such dimension (1-D tensor)
  kDim,       // hp.dim
  kVocab,     // hp.vocab_size
  kQDim,      // hp.n_heads * hp.head_dim
  kKvDim,     // hp.n_kv_heads * hp.head_dim
  kFfn,       // hp.ffn_dim
  kLoraRank,  // hp.lora_rank
};
uint64_t DimValue(Dim d, const format::HParams& hp);

/// What a tensor is to a converter: decides the type a float source gets
/// under --weights (tools/convert/convert.h TypeFor).
enum class Role : uint8_t { kLinear, kEmbedding, kOutput, kNorm, kLora };

/// Sets of format::DType values, one bit per type.
constexpr uint32_t TypeBit(format::DType d) { return 1u << static_cast<uint32_t>(d); }
inline constexpr uint32_t kF32Only = TypeBit(format::DType::kF32);
inline constexpr uint32_t kFloatTypes =
    TypeBit(format::DType::kF32) | TypeBit(format::DType::kF16) | TypeBit(format::DType::kBF16);
inline constexpr uint32_t kMatrixTypes =
    kFloatTypes | TypeBit(format::DType::kQ8C) | TypeBit(format::DType::kQ4G);
/// LoRA adaptors: any float type. The float matmul (kernels.h
/// MatmulFloatKernel) takes f32, f16 and bf16 on every tier, bit-exact to
/// kernels/ref (kernels_test MatmulFloatExact), and the engine passes the
/// adaptor's type through.
inline constexpr uint32_t kLoraTypes = kFloatTypes;
inline bool TypeAllowed(uint32_t types, uint32_t dtype) {
  return dtype < 32 && (types >> dtype & 1u) != 0;
}

/// Per-row properties (named, instead of runs of bare booleans).
enum Trait : uint32_t {
  kPerLayer = 1u << 0,         // one per block, named "blk.<i>.<name>"
  kUntiedOnly = 1u << 1,       // present iff the file lacks kFlagTiedEmbeddings
  kCheckFinite = 1u << 2,      // small f32 vector, checked for NaN/Inf at load
  kLoraAllowed = 1u << 3,      // "<name>.lora_a/.lora_b" present iff hp.lora_rank > 0
  kHadamardAllowed = 1u << 4,  // may carry kTensorHadamardInput (needs a power-of-two K)
};

struct TensorSpec {
  TensorId id;
  const char* name;  // file name, or the suffix after "blk.<i>." when kPerLayer
  Dim rows, cols;    // shape [rows] (cols == kNone) or [rows, cols] = [out N, in K]
  uint32_t types;    // allowed DTypes (TypeBit set); layouts follow the dtype (format.h)
  Role role;
  uint32_t traits;  // Trait bits
};

// clang-format off
/// The table. Rows are in file order; a contiguous run of kPerLayer rows is
/// one block, repeated n_layers times (ForEachTensor).
inline constexpr TensorSpec kTensors[kNumTensors] = {
  // id                   name           rows          cols          types          role              traits
  {TensorId::kTokEmbd,    "tok_embd",    Dim::kVocab,  Dim::kDim,    kMatrixTypes,  Role::kEmbedding, 0},
  {TensorId::kAttnNorm,   "attn_norm",   Dim::kDim,    Dim::kNone,   kF32Only,      Role::kNorm,      kPerLayer | kCheckFinite},
  {TensorId::kAttnQ,      "attn_q",      Dim::kQDim,   Dim::kDim,    kMatrixTypes,  Role::kLinear,    kPerLayer | kLoraAllowed},
  {TensorId::kAttnK,      "attn_k",      Dim::kKvDim,  Dim::kDim,    kMatrixTypes,  Role::kLinear,    kPerLayer | kLoraAllowed},
  {TensorId::kAttnV,      "attn_v",      Dim::kKvDim,  Dim::kDim,    kMatrixTypes,  Role::kLinear,    kPerLayer | kLoraAllowed},
  {TensorId::kAttnOutput, "attn_output", Dim::kDim,    Dim::kQDim,   kMatrixTypes,  Role::kLinear,    kPerLayer | kLoraAllowed},
  {TensorId::kFfnNorm,    "ffn_norm",    Dim::kDim,    Dim::kNone,   kF32Only,      Role::kNorm,      kPerLayer | kCheckFinite},
  {TensorId::kFfnGate,    "ffn_gate",    Dim::kFfn,    Dim::kDim,    kMatrixTypes,  Role::kLinear,    kPerLayer | kLoraAllowed},
  {TensorId::kFfnUp,      "ffn_up",      Dim::kFfn,    Dim::kDim,    kMatrixTypes,  Role::kLinear,    kPerLayer | kLoraAllowed},
  {TensorId::kFfnDown,    "ffn_down",    Dim::kDim,    Dim::kFfn,    kMatrixTypes,  Role::kLinear,    kPerLayer | kLoraAllowed | kHadamardAllowed},
  {TensorId::kOutputNorm, "output_norm", Dim::kDim,    Dim::kNone,   kF32Only,      Role::kNorm,      kCheckFinite},
  {TensorId::kOutput,     "output",      Dim::kVocab,  Dim::kDim,    kMatrixTypes,  Role::kOutput,    kUntiedOnly},
};
// clang-format on

inline constexpr const TensorSpec& Spec(TensorId id) { return kTensors[static_cast<int>(id)]; }

namespace detail {
constexpr bool RowsIndexedById() {
  for (int i = 0; i < kNumTensors; ++i)
    if (static_cast<int>(kTensors[i].id) != i) return false;
  return true;
}
// ForEachTensor repeats one run of per-layer rows: they must be contiguous.
constexpr bool OnePerLayerRun() {
  int runs = 0;
  for (int i = 0; i < kNumTensors; ++i)
    if ((kTensors[i].traits & kPerLayer) && (i == 0 || !(kTensors[i - 1].traits & kPerLayer)))
      ++runs;
  return runs == 1;
}
constexpr bool TraitsConsistent() {
  for (const TensorSpec& s : kTensors) {
    const bool vec = s.cols == Dim::kNone;
    // Vectors: f32 only (the engine reads them as float*), no adaptor or flag.
    if (vec && (s.types != kF32Only || (s.traits & (kLoraAllowed | kHadamardAllowed))))
      return false;
    if ((s.traits & kCheckFinite) && !vec) return false;
    // The tied-file check looks untied-only rows up by their global name.
    if ((s.traits & kUntiedOnly) && (s.traits & kPerLayer)) return false;
    if ((s.traits & (kLoraAllowed | kHadamardAllowed)) && s.role != Role::kLinear) return false;
    if (s.rows == Dim::kNone || s.rows == Dim::kLoraRank || s.cols == Dim::kLoraRank) return false;
  }
  return true;
}
constexpr bool StrEq(const char* a, const char* b) {
  while (*a && *a == *b) ++a, ++b;
  return *a == *b;
}
// format::kLinearNames (the calibration hook's linear index) lists the
// linear rows in table order.
constexpr bool LinearNamesMatch() {
  int k = 0;
  for (const TensorSpec& s : kTensors) {
    if (s.role != Role::kLinear) continue;
    if (k >= 7 || !StrEq(s.name, format::kLinearNames[k])) return false;
    ++k;
  }
  return k == 7;
}
}  // namespace detail
static_assert(detail::LinearNamesMatch(), "format::kLinearNames must list the linear rows");
static_assert(detail::RowsIndexedById(), "kTensors[i].id must be TensorId i");
static_assert(detail::OnePerLayerRun(), "per-layer rows must form one contiguous run");
static_assert(detail::TraitsConsistent(), "a row's traits contradict its shape or role");

/// One tensor of one model: its row, block (-1 for a global tensor), file
/// name and shape.
struct TensorRef {
  const TensorSpec* spec = nullptr;
  int layer = -1;
  std::string name;             // "tok_embd", "blk.3.attn_q", "blk.3.attn_q.lora_a"
  std::vector<uint64_t> shape;  // [rows] or [rows, cols]
  int lora = 0;                 // 0: the tensor itself; 1: its .lora_a; 2: its .lora_b
  uint64_t rows() const { return shape[0]; }
  uint64_t cols() const { return shape.size() > 1 ? shape[1] : 0; }
  uint32_t types() const { return lora ? kLoraTypes : spec->types; }
};

/// The file name of row `s` in block `layer` ("blk.<layer>.<name>" or the global name).
std::string TensorName(const TensorSpec& s, int layer);
/// The tensor of row `s` in block `layer` of a model with hyperparameters hp.
TensorRef MakeRef(const TensorSpec& s, int layer, const format::HParams& hp);
/// "<base>.lora_a" (which = 1) or "<base>.lora_b" (which = 2).
std::string LoraName(const std::string& base, int which);
/// The LoRA adaptor of a kLoraAllowed linear W [N, K]: which = 1: A
/// "<name>.lora_a" [r, K]; which = 2: B "<name>.lora_b" [N, r].
TensorRef LoraRef(const TensorRef& base, int which, uint32_t rank);

/// Calls fn(const TensorRef&) for every tensor of the graph (hp, tied), in
/// file order: the global rows before the per-layer run, then each block's
/// rows, then the global rows after it. kUntiedOnly rows are skipped when
/// `tied`; LoRA adaptors are not visited (LoraRef). Stops at the first fn
/// that returns false and returns false.
template <class Fn>
bool ForEachTensor(const format::HParams& hp, bool tied, Fn&& fn) {
  int first = 0;
  while (first < kNumTensors && !(kTensors[first].traits & kPerLayer)) ++first;
  int end = first;
  while (end < kNumTensors && (kTensors[end].traits & kPerLayer)) ++end;
  auto visit = [&](int i, int layer) {
    const TensorSpec& s = kTensors[i];
    if (tied && (s.traits & kUntiedOnly)) return true;
    return static_cast<bool>(fn(MakeRef(s, layer, hp)));
  };
  for (int i = 0; i < first; ++i)
    if (!visit(i, -1)) return false;
  for (uint32_t l = 0; l < hp.n_layers; ++l)
    for (int i = first; i < end; ++i)
      if (!visit(i, static_cast<int>(l))) return false;
  for (int i = end; i < kNumTensors; ++i)
    if (!visit(i, -1)) return false;
  return true;
}

/// Number of tensors a file of (hp, tied) holds, LoRA adaptors included.
size_t CountTensors(const format::HParams& hp, bool tied);

/// Names of the rows with trait `t`, joined with " and " ("ffn_down") — for
/// messages such as "the Hadamard flag is only valid on ffn_down".
std::string RowsWith(uint32_t t);

// ---- converter name maps ----------------------------------------------------

/// A checkpoint's names for the schema's tensors: one entry per TensorId.
/// Per-layer entries are the part after `layer_prefix` + "<i>." (e.g. HF
/// "model.layers." + "3." + "self_attn.q_proj.weight"); global entries are
/// full names. An entry may be nullptr when the source has no such tensor.
struct NameMapEntry {
  TensorId id;
  const char* source;
};
struct NameMap {
  const char* layer_prefix;
  NameMapEntry entries[kNumTensors];
};

/// Whether `m` names every TensorId exactly once (static_assert it).
constexpr bool NameMapComplete(const NameMap& m) {
  for (int i = 0; i < kNumTensors; ++i) {
    int n = 0;
    for (const NameMapEntry& e : m.entries) n += static_cast<int>(e.id) == i;
    if (n != 1) return false;
  }
  return true;
}

/// The map's entry for `id` as written (nullptr when it has none).
const char* SourceOf(const NameMap& m, TensorId id);
/// The full source name of tensor `id` in block `layer` (ignored for
/// globals); "" when the map has no name for it.
std::string SourceName(const NameMap& m, TensorId id, int layer);

}  // namespace lamina::schema
