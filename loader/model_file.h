// A mapped, validated lamina model file. Opening it is mmap + validation:
// weights are used in place (views into the mapping), never copied or repacked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "loader/format.h"

namespace lamina {

struct LoadOptions {
  bool populate = false;  // MAP_POPULATE: fault every page in at open
  bool willneed = false;  // madvise(MADV_WILLNEED) on the data region
  bool mlock = false;     // mlock the mapping (failure is an error naming the limit)
};

class ModelFile {
 public:
  /// Maps `path` read-only and validates everything before returning: magic,
  /// version, sizes, every offset/size in bounds and aligned, dtype/layout
  /// pairs, byte sizes matching shapes, shapes consistent with the hparams,
  /// every tensor the Llama graph needs present. On failure returns nullptr and
  /// sets *err to "<path>: <what>", e.g. "m.lamina: tensor blk.3.ffn_down:
  /// offset beyond end of file". Never aborts, never reads out of bounds.
  static std::unique_ptr<ModelFile> Open(const std::string& path, const LoadOptions& opts,
                                         std::string* err);
  ~ModelFile();
  ModelFile(const ModelFile&) = delete;
  ModelFile& operator=(const ModelFile&) = delete;

  const std::string& path() const { return path_; }
  size_t file_size() const { return size_; }
  const format::FileHeader& header() const { return *header_; }
  const format::HParams& hparams() const { return header_->hparams; }
  bool tied_embeddings() const { return header_->flags & format::kFlagTiedEmbeddings; }
  /// A LoRA adapter file (format::kFlagAdapter), not a model.
  bool is_adapter() const { return header_->flags & format::kFlagAdapter; }
  /// The hash a LoRA adapter file records of its base model (model files
  /// only): FNV-1a 64 of the hparams before lora_rank (architecture,
  /// vocabulary, RoPE, special ids) and of every norm vector (blk.<i>.attn_norm,
  /// blk.<i>.ffn_norm, output_norm). Norms are f32 under every weight scheme, so
  /// one checkpoint converted to q4, q8 or f32 binds alike; another fine-tune
  /// (or another model of the same shape) does not.
  uint64_t AdapterBinding() const;

  size_t n_tensors() const { return header_->n_tensors; }
  const format::TensorEntry& tensor(size_t i) const { return dir_[i]; }
  /// nullptr when absent.
  const format::TensorEntry* Find(const std::string& name) const;
  /// Start of a tensor's bytes (kTensorAlign-aligned).
  const uint8_t* Data(const format::TensorEntry& t) const { return base_ + t.offset; }

  /// Embedded tokenizer blob (Tokenizer::Deserialize input); size 0 if none.
  const uint8_t* tokenizer_data() const { return base_ + header_->tokenizer_offset; }
  size_t tokenizer_size() const { return header_->tokenizer_size; }

 private:
  ModelFile() = default;
  std::string path_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  bool locked_ = false;
  const format::FileHeader* header_ = nullptr;
  const format::TensorEntry* dir_ = nullptr;
};

/// Validates an in-memory image (the same checks Open does); used by Open and
/// by fuzz/corruption tests. `name` prefixes error messages.
bool ValidateModelImage(const uint8_t* data, size_t size, const std::string& name,
                        std::string* err);

}  // namespace lamina
