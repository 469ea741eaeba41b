#include "engine/config.h"

#include <cmath>

namespace lamina::engine {
namespace {

using format::DType;
using format::Layout;

bool Fail(std::string* err, const std::string& msg) {
  if (err) *err = msg;
  return false;
}

const char* DTypeName(uint32_t d) {
  switch (static_cast<DType>(d)) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    case DType::kQ8C:
      return "Q8C";
    case DType::kQ4G:
      return "Q4G";
  }
  return "unknown";
}

bool IsFloat(uint32_t d) {
  return d == static_cast<uint32_t>(DType::kF32) || d == static_cast<uint32_t>(DType::kF16) ||
         d == static_cast<uint32_t>(DType::kBF16);
}

// Checks the (dtype, layout) pair and the 2-D shape [n, k] of tensor `name`.
bool CheckMatrix(const format::TensorEntry& t, const std::string& name, uint64_t n, uint64_t k,
                 bool allow_q4, std::string* err) {
  if (t.n_dims != 2 || t.shape[0] != n || t.shape[1] != k)
    return Fail(err, "tensor " + name + ": shape must be [" + std::to_string(n) + ", " +
                         std::to_string(k) + "]");
  const bool ok = (IsFloat(t.dtype) && t.layout == static_cast<uint32_t>(Layout::kRowMajor)) ||
                  (t.dtype == static_cast<uint32_t>(DType::kQ8C) &&
                   t.layout == static_cast<uint32_t>(Layout::kQ8C_R4K4)) ||
                  (allow_q4 && t.dtype == static_cast<uint32_t>(DType::kQ4G) &&
                   (t.layout == static_cast<uint32_t>(Layout::kQ4G_R4K8) ||
                    t.layout == static_cast<uint32_t>(Layout::kQ4G_R4K8_F16S)) &&
                   t.group_size == 32);
  if (!ok)
    return Fail(err, "tensor " + name + ": unsupported dtype " + DTypeName(t.dtype) + " / layout " +
                         std::to_string(t.layout) + " for this role");
  return true;
}

}  // namespace

bool ConfigFromHParams(const format::HParams& hp, Config* c, std::string* err) {
  auto bad = [&](const char* field, const std::string& why) {
    return Fail(err, std::string("hparams.") + field + ": " + why);
  };
  if (hp.arch != static_cast<uint32_t>(format::Arch::kLlama)) return bad("arch", "not llama");
  const uint32_t kMax = 1u << 20;
  if (hp.dim == 0 || hp.dim > kMax) return bad("dim", "out of range");
  if (hp.n_layers == 0 || hp.n_layers > 1024) return bad("n_layers", "out of range");
  if (hp.n_heads == 0 || hp.n_heads > 4096) return bad("n_heads", "out of range");
  if (hp.n_kv_heads == 0 || hp.n_heads % hp.n_kv_heads != 0)
    return bad("n_kv_heads", "must divide n_heads");
  if (hp.head_dim == 0 || hp.head_dim % 2 != 0 || hp.head_dim > 1024)
    return bad("head_dim", "must be even and <= 1024");
  if (static_cast<uint64_t>(hp.n_heads) * hp.head_dim != hp.dim)
    return bad("head_dim", "dim != n_heads * head_dim");
  if (hp.ffn_dim == 0 || hp.ffn_dim > kMax) return bad("ffn_dim", "out of range");
  if (hp.vocab_size == 0 || hp.vocab_size > (1u << 24)) return bad("vocab_size", "out of range");
  if (hp.max_context == 0 || hp.max_context > (1u << 24)) return bad("max_context", "out of range");
  if (!(hp.norm_eps > 0.f) || !std::isfinite(hp.norm_eps)) return bad("norm_eps", "must be > 0");
  if (!(hp.rope_theta > 0.f) || !std::isfinite(hp.rope_theta))
    return bad("rope_theta", "must be > 0");
  if (hp.rope_scaling > static_cast<uint32_t>(format::RopeScaling::kLlama3))
    return bad("rope_scaling", "unknown");
  const bool llama3 = hp.rope_scaling == static_cast<uint32_t>(format::RopeScaling::kLlama3);
  if (llama3) {
    if (!(hp.rope_factor > 0.f)) return bad("rope_factor", "must be > 0");
    if (!(hp.rope_low_freq_factor > 0.f) || !(hp.rope_high_freq_factor > hp.rope_low_freq_factor))
      return bad("rope_high_freq_factor", "need 0 < low < high");
    if (hp.rope_orig_max_pos == 0) return bad("rope_orig_max_pos", "must be > 0");
  }
  if (hp.n_stop_ids > 8) return bad("n_stop_ids", "> 8");
  if (hp.lora_rank > 4096) return bad("lora_rank", "out of range");
  c->dim = static_cast<int>(hp.dim);
  c->n_layers = static_cast<int>(hp.n_layers);
  c->n_heads = static_cast<int>(hp.n_heads);
  c->n_kv_heads = static_cast<int>(hp.n_kv_heads);
  c->head_dim = static_cast<int>(hp.head_dim);
  c->q_dim = c->n_heads * c->head_dim;
  c->kv_dim = c->n_kv_heads * c->head_dim;
  c->ffn_dim = static_cast<int>(hp.ffn_dim);
  c->vocab = static_cast<int>(hp.vocab_size);
  c->max_context = static_cast<int>(hp.max_context);
  c->norm_eps = hp.norm_eps;
  c->rope_theta = hp.rope_theta;
  c->rope_llama3 = llama3;
  c->rope_factor = hp.rope_factor;
  c->rope_low = hp.rope_low_freq_factor;
  c->rope_high = hp.rope_high_freq_factor;
  c->rope_orig_max_pos = static_cast<int>(hp.rope_orig_max_pos);
  c->bos_id = hp.bos_id < hp.vocab_size ? static_cast<int>(hp.bos_id) : -1;
  c->eos_id = hp.eos_id < hp.vocab_size ? static_cast<int>(hp.eos_id) : -1;
  c->stop_ids.clear();
  for (uint32_t i = 0; i < hp.n_stop_ids; ++i)
    if (hp.stop_ids[i] < hp.vocab_size) c->stop_ids.push_back(static_cast<int32_t>(hp.stop_ids[i]));
  if (c->stop_ids.empty() && c->eos_id >= 0) c->stop_ids.push_back(c->eos_id);
  c->lora_rank = static_cast<int>(hp.lora_rank);
  c->lora_scale = hp.lora_scale;
  return true;
}

bool BindWeights(const ModelFile& f, const Config& c, Weights* w, std::string* err) {
  auto find = [&](const std::string& name, const format::TensorEntry** t) {
    *t = f.Find(name);
    if (!*t) return Fail(err, "tensor " + name + ": missing");
    return true;
  };
  auto bind_matrix = [&](const std::string& name, uint64_t n, uint64_t k, bool allow_q4, bool lora,
                         Matrix* m) {
    const format::TensorEntry* t;
    if (!find(name, &t) || !CheckMatrix(*t, name, n, k, allow_q4, err)) return false;
    m->data = f.Data(*t);
    m->dtype = static_cast<DType>(t->dtype);
    m->layout = static_cast<Layout>(t->layout);
    m->N = static_cast<int>(n);
    m->K = static_cast<int>(k);
    m->hadamard_input = (t->flags & format::kTensorHadamardInput) != 0;
    if (lora && c.lora_rank > 0) {
      const format::TensorEntry* a = f.Find(name + ".lora_a");
      const format::TensorEntry* b = f.Find(name + ".lora_b");
      if (!a || !b) return Fail(err, "tensor " + name + ".lora_a/.lora_b: missing (lora_rank > 0)");
      const uint64_t r = static_cast<uint64_t>(c.lora_rank);
      for (const format::TensorEntry* t2 : {a, b}) {
        const std::string nm = name + (t2 == a ? ".lora_a" : ".lora_b");
        if (!IsFloat(t2->dtype) || t2->layout != static_cast<uint32_t>(Layout::kRowMajor))
          return Fail(err, "tensor " + nm + ": must be F32/F16/BF16 row-major");
        const uint64_t e0 = t2 == a ? r : n, e1 = t2 == a ? k : r;
        if (t2->n_dims != 2 || t2->shape[0] != e0 || t2->shape[1] != e1)
          return Fail(err, "tensor " + nm + ": shape must be [" + std::to_string(e0) + ", " +
                               std::to_string(e1) + "]");
      }
      m->lora_a = f.Data(*a);
      m->lora_a_type = static_cast<int>(a->dtype);
      m->lora_b = f.Data(*b);
      m->lora_b_type = static_cast<int>(b->dtype);
    }
    return true;
  };
  auto bind_norm = [&](const std::string& name, const float** out) {
    const format::TensorEntry* t;
    if (!find(name, &t)) return false;
    if (t->dtype != static_cast<uint32_t>(DType::kF32) || t->n_dims != 1 ||
        t->shape[0] != static_cast<uint64_t>(c.dim))
      return Fail(err, "tensor " + name + ": must be F32 [" + std::to_string(c.dim) + "]");
    *out = reinterpret_cast<const float*>(f.Data(*t));
    return true;
  };

  // Embedding: float row-major, Q8C or Q4G (lookup dequantizes one row).
  if (!bind_matrix("tok_embd", c.vocab, c.dim, true, false, &w->tok_embd)) return false;
  w->tok_embd.hadamard_input = false;
  if (!bind_norm("output_norm", &w->output_norm)) return false;
  if (f.tied_embeddings()) {
    w->output = w->tok_embd;
  } else {
    // The output layer may be any matrix encoding (q8c by default, q4g from GGUF Q4_0).
    if (!bind_matrix("output", c.vocab, c.dim, true, false, &w->output)) return false;
  }

  w->layers.assign(c.n_layers, LayerWeights{});
  for (int i = 0; i < c.n_layers; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    LayerWeights& l = w->layers[i];
    if (!bind_norm(p + "attn_norm", &l.attn_norm) || !bind_norm(p + "ffn_norm", &l.ffn_norm) ||
        !bind_matrix(p + "attn_q", c.q_dim, c.dim, true, true, &l.wq) ||
        !bind_matrix(p + "attn_k", c.kv_dim, c.dim, true, true, &l.wk) ||
        !bind_matrix(p + "attn_v", c.kv_dim, c.dim, true, true, &l.wv) ||
        !bind_matrix(p + "attn_output", c.dim, c.q_dim, true, true, &l.wo) ||
        !bind_matrix(p + "ffn_gate", c.ffn_dim, c.dim, true, true, &l.w_gate) ||
        !bind_matrix(p + "ffn_up", c.ffn_dim, c.dim, true, true, &l.w_up) ||
        !bind_matrix(p + "ffn_down", c.dim, c.ffn_dim, true, true, &l.w_down))
      return false;
    for (const Matrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up})
      if (m->hadamard_input)
        return Fail(err, "tensor " + p + ": the Hadamard-input flag is valid on ffn_down only");
    if (l.w_down.hadamard_input && (c.ffn_dim & (c.ffn_dim - 1)) != 0)
      return Fail(err, "tensor " + p + "ffn_down: Hadamard input needs a power-of-two ffn_dim");
  }
  return true;
}

}  // namespace lamina::engine
