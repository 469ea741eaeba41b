#include "engine/config.h"

#include "loader/llama_schema.h"

namespace lamina::engine {
namespace {

using format::DType;
using format::Layout;
using schema::TensorId;

bool Fail(std::string* err, const std::string& msg) {
  if (err) *err = msg;
  return false;
}

// Where each schema tensor lands in Weights: a matrix or a norm vector. The
// switch has no default, so -Wswitch (an error under -Werror) names a new
// schema::TensorId until it gets its slot here.
struct Slot {
  Matrix* m = nullptr;
  const float** v = nullptr;
};
Slot SlotOf(Weights* w, TensorId id, int layer) {
  LayerWeights* l = layer >= 0 ? &w->layers[static_cast<size_t>(layer)] : nullptr;
  switch (id) {
    case TensorId::kTokEmbd:
      return {&w->tok_embd, nullptr};
    case TensorId::kAttnNorm:
      return {nullptr, &l->attn_norm};
    case TensorId::kAttnQ:
      return {&l->wq, nullptr};
    case TensorId::kAttnK:
      return {&l->wk, nullptr};
    case TensorId::kAttnV:
      return {&l->wv, nullptr};
    case TensorId::kAttnOutput:
      return {&l->wo, nullptr};
    case TensorId::kFfnNorm:
      return {nullptr, &l->ffn_norm};
    case TensorId::kFfnGate:
      return {&l->w_gate, nullptr};
    case TensorId::kFfnUp:
      return {&l->w_up, nullptr};
    case TensorId::kFfnDown:
      return {&l->w_down, nullptr};
    case TensorId::kOutputNorm:
      return {nullptr, &w->output_norm};
    case TensorId::kOutput:
      return {&w->output, nullptr};
  }
  return {};
}

}  // namespace

bool ConfigFromHParams(const format::HParams& hp, Config* c, std::string* err) {
  // The one validator (loader/llama_schema.h); ModelFile::Open has run it
  // already, this guards direct callers.
  if (!schema::ValidateHParams(hp, err)) return false;
  const bool llama3 = hp.rope_scaling == static_cast<uint32_t>(format::RopeScaling::kLlama3);
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
  // ModelFile::Open validated the file against the same schema (presence,
  // shapes, types, flags, LoRA pairs): this only binds.
  const format::HParams& hp = f.hparams();
  if (static_cast<int>(hp.n_layers) != c.n_layers || static_cast<int>(hp.lora_rank) != c.lora_rank)
    return Fail(err, "config does not match the file's hparams");
  w->layers.assign(static_cast<size_t>(c.n_layers), LayerWeights{});
  auto find = [&](const std::string& name) {
    const format::TensorEntry* t = f.Find(name);
    if (!t) Fail(err, "tensor " + name + ": missing");
    return t;
  };
  const bool ok = schema::ForEachTensor(hp, f.tied_embeddings(), [&](const schema::TensorRef& r) {
    const format::TensorEntry* t = find(r.name);
    if (!t) return false;
    const Slot s = SlotOf(w, r.spec->id, r.layer);
    if (s.v) {
      *s.v = reinterpret_cast<const float*>(f.Data(*t));
      return true;
    }
    Matrix* m = s.m;
    m->data = f.Data(*t);
    m->dtype = static_cast<DType>(t->dtype);
    m->layout = static_cast<Layout>(t->layout);
    m->N = static_cast<int>(r.rows());
    m->K = static_cast<int>(r.cols());
    m->hadamard_input = (t->flags & format::kTensorHadamardInput) != 0;
    if ((r.spec->traits & schema::kLoraAllowed) && hp.lora_rank > 0) {
      const format::TensorEntry* a = find(schema::LoraRef(r, 1, hp.lora_rank).name);
      const format::TensorEntry* b = find(schema::LoraRef(r, 2, hp.lora_rank).name);
      if (!a || !b) return false;
      m->lora_a = f.Data(*a);
      m->lora_a_type = static_cast<int>(a->dtype);
      m->lora_b = f.Data(*b);
      m->lora_b_type = static_cast<int>(b->dtype);
    }
    return true;
  });
  if (!ok) return false;
  // Tied: the output layer is the embedding's view.
  if (f.tied_embeddings()) w->output = w->tok_embd;
  return true;
}

}  // namespace lamina::engine
