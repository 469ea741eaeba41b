#include "loader/llama_schema.h"

#include <cmath>
#include <cstdio>

namespace lamina::schema {
namespace {

using format::HParams;

std::string U(uint64_t v) { return std::to_string(v); }
std::string F(double v) {
  char b[32];
  std::snprintf(b, sizeof(b), "%g", v);
  return b;
}

bool Bad(std::string* err, const std::string& field, const std::string& v, const char* why) {
  if (err) *err = "hparams." + field + " = " + v + ": " + why;
  return false;
}

}  // namespace

bool ValidateHParams(const HParams& p, std::string* err) {
  auto bad = [&](const std::string& field, const std::string& v, const char* why) {
    return Bad(err, field, v, why);
  };
  if (p.arch != static_cast<uint32_t>(format::Arch::kLlama))
    return bad("arch", U(p.arch), "unknown architecture");
  if (p.dim == 0 || p.dim > kMaxDim) return bad("dim", U(p.dim), "out of range");
  if (p.n_layers == 0 || p.n_layers > kMaxLayers)
    return bad("n_layers", U(p.n_layers), "out of range");
  if (p.n_heads == 0 || p.n_heads > kMaxHeads) return bad("n_heads", U(p.n_heads), "out of range");
  if (p.n_kv_heads == 0 || p.n_kv_heads > p.n_heads || p.n_heads % p.n_kv_heads != 0)
    return bad("n_kv_heads", U(p.n_kv_heads), "must divide n_heads");
  if (p.head_dim == 0 || p.head_dim % 2 != 0 || p.head_dim > kMaxHeadDim)
    return bad("head_dim", U(p.head_dim), "must be even and <= 1024");
  if (static_cast<uint64_t>(p.n_heads) * p.head_dim != p.dim)
    return bad("dim", U(p.dim), "!= n_heads * head_dim");
  if (p.ffn_dim == 0 || p.ffn_dim > kMaxFfn) return bad("ffn_dim", U(p.ffn_dim), "out of range");
  if (p.vocab_size == 0 || p.vocab_size > kMaxVocab)
    return bad("vocab_size", U(p.vocab_size), "out of range");
  if (p.max_context == 0 || p.max_context > kMaxContext)
    return bad("max_context", U(p.max_context), "out of range");
  if (!std::isfinite(p.norm_eps) || !(p.norm_eps > 0.f) || !(p.norm_eps < 1.f))
    return bad("norm_eps", F(p.norm_eps), "must be finite, > 0 and < 1");
  if (!std::isfinite(p.rope_theta) || !(p.rope_theta > 0.f))
    return bad("rope_theta", F(p.rope_theta), "must be finite and > 0");
  if (p.rope_scaling == static_cast<uint32_t>(format::RopeScaling::kLlama3)) {
    if (!std::isfinite(p.rope_factor) || !(p.rope_factor >= 1.f))
      return bad("rope_factor", F(p.rope_factor), "must be finite and >= 1");
    if (!std::isfinite(p.rope_low_freq_factor) || !(p.rope_low_freq_factor > 0.f))
      return bad("rope_low_freq_factor", F(p.rope_low_freq_factor), "must be finite and > 0");
    if (!std::isfinite(p.rope_high_freq_factor) ||
        !(p.rope_high_freq_factor > p.rope_low_freq_factor))
      return bad("rope_high_freq_factor", F(p.rope_high_freq_factor),
                 "must be finite and > rope_low_freq_factor");
    if (p.rope_orig_max_pos == 0 || p.rope_orig_max_pos > kMaxContext)
      return bad("rope_orig_max_pos", U(p.rope_orig_max_pos), "out of range");
  } else if (p.rope_scaling != static_cast<uint32_t>(format::RopeScaling::kNone)) {
    return bad("rope_scaling", U(p.rope_scaling), "unknown scaling type");
  }
  if (p.bos_id != kNoId && p.bos_id >= p.vocab_size)
    return bad("bos_id", U(p.bos_id), "not below vocab_size");
  if (p.eos_id != kNoId && p.eos_id >= p.vocab_size)
    return bad("eos_id", U(p.eos_id), "not below vocab_size");
  if (p.n_stop_ids > kMaxStopIds) return bad("n_stop_ids", U(p.n_stop_ids), "more than 8");
  for (uint32_t i = 0; i < p.n_stop_ids; ++i)
    if (p.stop_ids[i] >= p.vocab_size)
      return bad("stop_ids[" + U(i) + "]", U(p.stop_ids[i]), "not below vocab_size");
  if (p.lora_rank > kMaxLoraRank) return bad("lora_rank", U(p.lora_rank), "out of range");
  if (p.lora_rank > 0 && !std::isfinite(p.lora_scale))
    return bad("lora_scale", F(p.lora_scale), "must be finite");
  return true;
}

bool MakeHParams(const LlamaDims& d, HParams* hp, std::string* err) {
  // Narrowing guard: every count must fit a u32 before ValidateHParams sees it.
  const struct {
    const char* field;
    int64_t v;
  } counts[] = {{"dim", d.dim},
                {"n_layers", d.n_layers},
                {"n_heads", d.n_heads},
                {"n_kv_heads", d.n_kv_heads},
                {"head_dim", d.head_dim},
                {"ffn_dim", d.ffn_dim},
                {"vocab_size", d.vocab_size},
                {"max_context", d.max_context},
                {"rope_orig_max_pos", d.rope_orig_max_pos},
                {"lora_rank", d.lora_rank}};
  for (const auto& c : counts)
    if (c.v < 0 || c.v > int64_t{0xFFFFFFFF})
      return Bad(err, c.field, std::to_string(c.v), "out of range");
  if (d.n_heads == 0) return Bad(err, "n_heads", "0", "out of range");
  HParams p{};
  p.arch = static_cast<uint32_t>(format::Arch::kLlama);
  p.dim = static_cast<uint32_t>(d.dim);
  p.n_layers = static_cast<uint32_t>(d.n_layers);
  p.n_heads = static_cast<uint32_t>(d.n_heads);
  p.n_kv_heads = static_cast<uint32_t>(d.n_kv_heads ? d.n_kv_heads : d.n_heads);
  p.head_dim = static_cast<uint32_t>(d.head_dim ? d.head_dim : d.dim / d.n_heads);
  p.ffn_dim = static_cast<uint32_t>(d.ffn_dim);
  p.vocab_size = static_cast<uint32_t>(d.vocab_size);
  p.max_context = static_cast<uint32_t>(d.max_context);
  p.norm_eps = static_cast<float>(d.norm_eps);
  p.rope_theta = static_cast<float>(d.rope_theta);
  if (d.rope_llama3) {
    p.rope_scaling = static_cast<uint32_t>(format::RopeScaling::kLlama3);
    p.rope_factor = static_cast<float>(d.rope_factor);
    p.rope_low_freq_factor = static_cast<float>(d.rope_low_freq_factor);
    p.rope_high_freq_factor = static_cast<float>(d.rope_high_freq_factor);
    p.rope_orig_max_pos = static_cast<uint32_t>(d.rope_orig_max_pos);
  } else {
    p.rope_scaling = static_cast<uint32_t>(format::RopeScaling::kNone);
  }
  p.lora_rank = static_cast<uint32_t>(d.lora_rank);
  p.lora_scale = static_cast<float>(d.lora_scale);
  if (!ValidateHParams(p, err)) return false;
  *hp = p;
  return true;
}

uint64_t DimValue(Dim d, const HParams& hp) {
  switch (d) {
    case Dim::kNone:
      return 0;
    case Dim::kDim:
      return hp.dim;
    case Dim::kVocab:
      return hp.vocab_size;
    case Dim::kQDim:
      return uint64_t{hp.n_heads} * hp.head_dim;
    case Dim::kKvDim:
      return uint64_t{hp.n_kv_heads} * hp.head_dim;
    case Dim::kFfn:
      return hp.ffn_dim;
    case Dim::kLoraRank:
      return hp.lora_rank;
  }
  return 0;
}

std::string TensorName(const TensorSpec& s, int layer) {
  if (!(s.traits & kPerLayer)) return s.name;
  return "blk." + std::to_string(layer) + "." + s.name;
}

TensorRef MakeRef(const TensorSpec& s, int layer, const HParams& hp) {
  TensorRef r;
  r.spec = &s;
  r.layer = (s.traits & kPerLayer) ? layer : -1;
  r.name = TensorName(s, layer);
  r.shape.push_back(DimValue(s.rows, hp));
  if (s.cols != Dim::kNone) r.shape.push_back(DimValue(s.cols, hp));
  return r;
}

std::string LoraName(const std::string& base, int which) {
  return base + (which == 1 ? ".lora_a" : ".lora_b");
}

TensorRef LoraRef(const TensorRef& base, int which, uint32_t rank) {
  TensorRef r;
  r.spec = base.spec;
  r.layer = base.layer;
  r.lora = which;
  r.name = LoraName(base.name, which);
  if (which == 1)
    r.shape = {rank, base.cols()};
  else
    r.shape = {base.rows(), rank};
  return r;
}

size_t CountTensors(const HParams& hp, bool tied) {
  size_t n = 0;
  ForEachTensor(hp, tied, [&](const TensorRef& r) {
    n += 1 + ((r.spec->traits & kLoraAllowed) && hp.lora_rank > 0 ? 2 : 0);
    return true;
  });
  return n;
}

std::string RowsWith(uint32_t t) {
  std::string s;
  for (const TensorSpec& r : kTensors)
    if (r.traits & t) s += (s.empty() ? "" : " and ") + std::string(r.name);
  return s;
}

const char* SourceOf(const NameMap& m, TensorId id) {
  for (const NameMapEntry& e : m.entries)
    if (e.id == id) return e.source;
  return nullptr;
}

std::string SourceName(const NameMap& m, TensorId id, int layer) {
  const char* s = SourceOf(m, id);
  if (!s) return "";
  if (!(Spec(id).traits & kPerLayer)) return s;
  return m.layer_prefix + std::to_string(layer) + "." + s;
}

}  // namespace lamina::schema
