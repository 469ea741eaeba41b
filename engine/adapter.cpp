#include "engine/adapter.h"

namespace lamina::engine {

namespace {
std::string ShapeStr(uint64_t a, uint64_t b) {
  return "[" + std::to_string(a) + ", " + std::to_string(b) + "]";
}
}  // namespace

std::unique_ptr<Adapter> Adapter::Load(const Model& model, const std::string& path,
                                       std::string* err) {
  std::unique_ptr<Adapter> ad(new Adapter());
  ad->file_ = ModelFile::Open(path, LoadOptions{}, err);
  if (!ad->file_) return nullptr;
  const ModelFile& f = *ad->file_;
  if (!f.is_adapter()) {
    *err = path +
           ": not a LoRA adapter file (a model? make an adapter with lamina-convert "
           "--lora-adapter PEFT_DIR -m BASE.lamina)";
    return nullptr;
  }
  const format::HParams& hp = f.hparams();
  const Config& c = model.config();
  const Weights& w = model.weights();
  ad->model_ = &model;
  ad->rank_ = static_cast<int>(hp.lora_rank);
  ad->scale_ = hp.lora_scale;
  ad->m_.assign(static_cast<size_t>(c.n_layers) * 7, AdapterMatrix{});
  const uint64_t r = hp.lora_rank;
  // The loader checked that every tensor is a complete blk.<l>.<linear>
  // pair with l < the file's n_layers: walking those names sees them all.
  for (uint32_t l = 0; l < hp.n_layers; ++l) {
    const LayerWeights* L = l < static_cast<uint32_t>(c.n_layers) ? &w.layers[l] : nullptr;
    for (int i = 0; i < 7; ++i) {
      const std::string n = "blk." + std::to_string(l) + "." + format::kLinearNames[i];
      const format::TensorEntry* a = f.Find(n + ".lora_a");
      const format::TensorEntry* b = f.Find(n + ".lora_b");
      if (!a) continue;
      if (!L) {
        *err = path + ": tensor " + n + ".lora_a: layer " + std::to_string(l) +
               " does not exist (the model has " + std::to_string(c.n_layers) + " layers)";
        return nullptr;
      }
      const Matrix* ms[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
      const Matrix& m = *ms[i];
      const uint64_t N = static_cast<uint64_t>(m.N), K = static_cast<uint64_t>(m.K);
      if (a->shape[1] != K || b->shape[0] != N) {
        const bool bad_a = a->shape[1] != K;
        *err = path + ": tensor " + n + (bad_a ? ".lora_a" : ".lora_b") + ": shape " +
               (bad_a ? ShapeStr(a->shape[0], a->shape[1]) : ShapeStr(b->shape[0], b->shape[1])) +
               " does not fit the model's " + n + " " + ShapeStr(N, K) + " (expected " +
               (bad_a ? ShapeStr(r, K) : ShapeStr(N, r)) + ")";
        return nullptr;
      }
      if (m.hadamard_input) {
        *err = path + ": tensor " + n + ".lora_a: the model's " + n +
               " takes a Hadamard-rotated input (SpinQuant, or lamina-convert's default R4): "
               "adapters on it are not supported (convert the base model with --rotate none)";
        return nullptr;
      }
      AdapterMatrix& am = ad->m_[static_cast<size_t>(l) * 7 + i];
      am.a = f.Data(*a);
      am.a_type = static_cast<int>(a->dtype);
      am.b = f.Data(*b);
      am.b_type = static_cast<int>(b->dtype);
      ++ad->n_matrices_;
    }
  }
  const uint64_t want = model.file().AdapterBinding();
  if (f.header().base_binding != want) {
    char buf[160];
    std::snprintf(buf, sizeof(buf), "base binding %016llx, this model's is %016llx",
                  static_cast<unsigned long long>(f.header().base_binding),
                  static_cast<unsigned long long>(want));
    *err = path + ": the adapter was converted for another base model (" + buf +
           ": hyperparameters or norm weights differ); convert it against this model";
    return nullptr;
  }
  return ad;
}

}  // namespace lamina::engine
