#include "engine/adapter.h"

#include <cstring>
#include <new>

#include "kernels/ref/fp16.h"

namespace lamina::engine {

namespace {
std::string ShapeStr(uint64_t a, uint64_t b) {
  return "[" + std::to_string(a) + ", " + std::to_string(b) + "]";
}
}  // namespace

// The linear sees x' = H x (H the engine's orthonormal, symmetric Walsh-
// Hadamard: H H = I), so B(A x) = B((A H) x'): each row a of A becomes a H
// (= H a, H symmetric), computed by the model's own Hadamard kernel on the
// row widened to f32.
bool Adapter::RotateA(AdapterMatrix* am, uint64_t r, uint64_t K, std::string* err) {
  const size_t n = static_cast<size_t>(r) * static_cast<size_t>(K);
  try {
    std::vector<float> rot(n);
    switch (static_cast<format::DType>(am->a_type)) {
      case format::DType::kF32:
        std::memcpy(rot.data(), am->a, n * sizeof(float));
        break;
      case format::DType::kF16: {
        const uint16_t* s = static_cast<const uint16_t*>(am->a);
        for (size_t i = 0; i < n; ++i) rot[i] = F16ToF32(s[i]);
        break;
      }
      default: {  // kBF16 (the loader admits no other adapter type)
        const uint16_t* s = static_cast<const uint16_t*>(am->a);
        for (size_t i = 0; i < n; ++i) rot[i] = BF16ToF32(s[i]);
        break;
      }
    }
    const kern::HadamardKernel& h = model_->kernels().hadamard;
    for (uint64_t i = 0; i < r; ++i) h.run(rot.data() + i * K, static_cast<int>(K));
    rotated_a_.push_back(std::move(rot));
  } catch (const std::bad_alloc&) {
    *err = "out of memory rotating it for the model's Hadamard-input linear (" +
           std::to_string(n * sizeof(float)) + " bytes)";
    return false;
  }
  // A moved std::vector keeps its buffer: earlier pointers stay valid.
  am->a = rotated_a_.back().data();
  am->a_type = static_cast<int>(format::DType::kF32);
  return true;
}

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
      AdapterMatrix& am = ad->m_[static_cast<size_t>(l) * 7 + i];
      am.a = f.Data(*a);
      am.a_type = static_cast<int>(a->dtype);
      am.b = f.Data(*b);
      am.b_type = static_cast<int>(b->dtype);
      if (m.hadamard_input && !ad->RotateA(&am, a->shape[0], K, err)) {
        *err = path + ": tensor " + n + ".lora_a: " + *err;
        return nullptr;
      }
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
