// LoRA adapters applied at run time (issue 16): a small adapter file
// (loader/format.h kFlagAdapter, written by lamina-convert --lora-adapter) is
// mapped and validated against one loaded model; contexts then attach any
// number of adapters with a scale each (Context::SetAdapters). The model stays
// shared and read-only: every context may use different adapters at once.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "loader/model_file.h"

namespace lamina::engine {

/// Adapters one context can attach at once (Context::SetAdapters).
inline constexpr int kMaxAdapters = 16;

/// One adapted linear: A [r, K], B [N, r], float row-major (format::DType
/// F32 / F16 / BF16, widened by the float matmul kernel). a == nullptr: the
/// adapter leaves this linear alone. On a linear whose input the engine
/// rotates (Matrix::hadamard_input: SpinQuant, lamina-convert's R4) a is
/// the adapter's own A times that Hadamard, f32, owned by the Adapter: the
/// file stays in the unrotated space and binds to any base.
struct AdapterMatrix {
  const void* a = nullptr;
  int a_type = 0;
  const void* b = nullptr;
  int b_type = 0;
};

class Adapter {
 public:
  /// Maps and validates `path` (an adapter file) against `model`: every
  /// tensor's layer exists in the model and its shape fits the model's linear
  /// ([r, K] / [N, r]), and the file's base binding is the model's
  /// (ModelFile::AdapterBinding). nullptr + *err naming the tensor otherwise.
  /// A on a Hadamard-input linear is rotated here (AdapterMatrix): r x K
  /// floats per such linear (rank 16 on the 1B's ffn_down: 8 MiB in all).
  static std::unique_ptr<Adapter> Load(const Model& model, const std::string& path,
                                       std::string* err);

  const Model& model() const { return *model_; }
  int rank() const { return rank_; }
  /// alpha / r (or alpha / sqrt(r) for rsLoRA), from the file.
  float scale() const { return scale_; }
  /// Number of adapted linears (A/B pairs).
  int n_matrices() const { return n_matrices_; }
  /// linear: format::kLinearNames index.
  const AdapterMatrix& matrix(int layer, int linear) const {
    return m_[static_cast<size_t>(layer) * 7 + static_cast<size_t>(linear)];
  }
  const std::string& path() const { return file_->path(); }

 private:
  Adapter() = default;
  // am->a <- A H in rotated_a_ (A: r rows of K, am's type). False + *err when
  // out of memory.
  bool RotateA(AdapterMatrix* am, uint64_t r, uint64_t K, std::string* err);
  std::unique_ptr<ModelFile> file_;
  const Model* model_ = nullptr;
  int rank_ = 0;
  float scale_ = 0.f;
  int n_matrices_ = 0;
  std::vector<AdapterMatrix> m_;               // [model n_layers][7]
  std::vector<std::vector<float>> rotated_a_;  // A H of Hadamard-input linears
};

}  // namespace lamina::engine
