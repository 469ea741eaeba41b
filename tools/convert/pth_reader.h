// A small, strict reader for PyTorch's torch.save zip archives holding a
// state dict (Meta's consolidated.00.pth): the zip central directory (stored
// entries only, ZIP64 aware), and the pickle (protocol 2) subset torch.save
// writes for {name: tensor}. Tensors are views into the mmapped file.
//
// What is accepted (anything else is a clear error naming the file):
//   zip: stored (method 0) entries, ZIP64 sizes/offsets, one archive prefix;
//   pickle opcodes: PROTO FRAME STOP MARK EMPTY_DICT EMPTY_TUPLE EMPTY_LIST
//     TUPLE TUPLE1 TUPLE2 TUPLE3 BINUNICODE SHORT_BINUNICODE BININT BININT1
//     BININT2 LONG1 BINFLOAT NEWFALSE NEWTRUE NONE GLOBAL REDUCE BINPERSID
//     SETITEM SETITEMS APPEND APPENDS BUILD BINGET LONG_BINGET BINPUT
//     LONG_BINPUT MEMOIZE;
//   callables: collections.OrderedDict, torch._utils._rebuild_tensor_v2,
//     torch._utils._rebuild_parameter; storages torch.<T>Storage (typed) and
//     dtype globals torch.<dtype>.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tools/convert/mapped_file.h"

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

/// A stored zip archive mapped read-only. Entry data are views into the map.
class ZipArchive {
 public:
  ZipArchive() = default;
  ~ZipArchive();
  ZipArchive(const ZipArchive&) = delete;
  ZipArchive& operator=(const ZipArchive&) = delete;

  /// Maps `path` and reads its central directory. False + *err on any problem.
  bool Open(const std::string& path, std::string* err);
  /// Same, over caller-owned memory (tests); `data` must outlive the archive.
  bool OpenMemory(const uint8_t* data, size_t size, const std::string& label, std::string* err);

  struct Entry {
    std::string name;
    uint64_t offset = 0;  // of the data, from file start
    uint64_t size = 0;
  };
  const std::vector<Entry>& entries() const { return entries_; }
  const Entry* Find(const std::string& name) const;
  const uint8_t* base() const { return base_; }
  const std::string& label() const { return label_; }
  /// Drops the mapped pages of [p, p+n) from this process's memory (they are
  /// re-read from the file if touched again): keeps a conversion's RSS bounded.
  void Release(const uint8_t* p, size_t n) const;

 private:
  bool Parse(std::string* err);
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  convert::MappedFile map_;  // Open(); unused by OpenMemory
  std::string label_;
  std::vector<Entry> entries_;
  std::map<std::string, size_t> index_;
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
