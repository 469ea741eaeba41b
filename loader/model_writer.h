// Streams a lamina model file to disk: tensors are appended as they are
// produced (bounded memory), the directory and header are written at the end,
// and the file appears atomically (written as "<path>.tmp", fsync, rename).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "loader/format.h"

namespace lamina {

class ModelWriter {
 public:
  ModelWriter() = default;
  ~ModelWriter();  // removes the temp file if Finish() was not reached
  ModelWriter(const ModelWriter&) = delete;
  ModelWriter& operator=(const ModelWriter&) = delete;

  bool Open(const std::string& path, std::string* err);
  void SetHParams(const format::HParams& hp) { hparams_ = hp; }
  void SetFlags(uint32_t flags) { flags_ = flags; }
  void SetScheme(const std::string& scheme) { scheme_ = scheme; }
  /// Adapter files (kFlagAdapter): the base model's binding hash.
  void SetBaseBinding(uint64_t binding) { base_binding_ = binding; }
  void SetTokenizer(std::vector<uint8_t> blob) { tokenizer_ = std::move(blob); }

  /// Appends a tensor; `size` must equal the (dtype, layout, shape) byte size.
  bool AddTensor(const std::string& name, format::DType dtype, format::Layout layout,
                 const std::vector<uint64_t>& shape, uint32_t group_size, uint32_t flags,
                 const void* data, size_t size, std::string* err);
  /// Writes directory, tokenizer, header; fsync; rename to the final path.
  bool Finish(std::string* err);

  uint64_t bytes_written() const { return pos_; }

 private:
  std::string path_, tmp_path_;
  FILE* f_ = nullptr;
  uint64_t pos_ = 0;
  format::HParams hparams_{};
  uint32_t flags_ = 0;
  uint64_t base_binding_ = 0;
  std::string scheme_;
  std::vector<uint8_t> tokenizer_;
  std::vector<format::TensorEntry> dir_;
};

/// Bytes a tensor of this dtype/layout/shape occupies; 0 for an invalid
/// combination. Overflow-checked (returns 0 on overflow).
uint64_t TensorBytes(format::DType dtype, format::Layout layout, const uint64_t* shape,
                     uint32_t n_dims, uint32_t group_size);

}  // namespace lamina
