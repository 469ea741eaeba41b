// A small, strict reader for PyTorch's torch.save zip archives holding a
// state dict (Meta's consolidated.00.pth): the zip central directory (stored
// entries only, ZIP64 aware; pth_zip.h), and the pickle (protocol 2) subset
// torch.save writes for {name: tensor} (pth_pickle.h). Tensors are views into
// the mmapped file.
//
// What is accepted (anything else is a clear error naming the file): the zip
// subset of pth_zip.h, the pickle opcodes and callables of pth_pickle.h, and
// contiguous little-endian tensors inside their storages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tools/convert/pth_zip.h"

namespace lamina::pth {

enum class DType { kF32, kF16, kBF16, kF64, kI8, kU8, kI16, kI32, kI64, kBool };
const char* DTypeName(DType t);
size_t DTypeSize(DType t);

struct Tensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // contiguous, numel * DTypeSize bytes, inside the mmap
  size_t nbytes = 0;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

/// A torch.save'd state dict.
class StateDict {
 public:
  /// Opens the archive and decodes `<prefix>/data.pkl`. False + *err on error.
  bool Open(const std::string& path, std::string* err);
  bool OpenMemory(const uint8_t* data, size_t size, const std::string& label, std::string* err);

  const std::vector<Tensor>& tensors() const { return tensors_; }
  const Tensor* Find(const std::string& name) const;
  /// See ZipArchive::Release.
  void Release(const Tensor& t) const { zip_.Release(t.data, t.nbytes); }

 private:
  bool Decode(std::string* err);
  ZipArchive zip_;
  std::vector<Tensor> tensors_;
  std::map<std::string, size_t> index_;
};

}  // namespace lamina::pth
