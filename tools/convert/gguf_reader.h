// A bounds-checked reader for GGUF v2/v3 files (llama.cpp's model format):
// metadata key/values (all types, arrays included, nesting limited), tensor
// infos, data section aligned to general.alignment. The file is mmapped;
// tensor data are views into the mapping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tools/convert/mapped_file.h"

namespace lamina::gguf {

enum class ValueType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

struct Value {
  ValueType type = ValueType::kU8;
  uint64_t u = 0;                   // unsigned integers and bool
  int64_t i = 0;                    // every integer type (signed view)
  double f = 0;                     // float types, and integers converted
  std::string s;                    // kString
  ValueType elem = ValueType::kU8;  // kArray: element type
  std::vector<Value> arr;           // kArray
  bool is_int() const;
  bool is_num() const { return is_int() || type == ValueType::kF32 || type == ValueType::kF64; }
};

// ggml tensor types lamina reads (others are named in errors).
enum GgmlType : uint32_t {
  kGgmlF32 = 0,
  kGgmlF16 = 1,
  kGgmlQ4_0 = 2,
  kGgmlQ4_1 = 3,
  kGgmlQ5_0 = 6,
  kGgmlQ5_1 = 7,
  kGgmlQ8_0 = 8,
  kGgmlQ8_1 = 9,
  kGgmlQ2_K = 10,
  kGgmlQ3_K = 11,
  kGgmlQ4_K = 12,
  kGgmlQ5_K = 13,
  kGgmlQ6_K = 14,
  kGgmlQ8_K = 15,
  kGgmlBF16 = 30,
};
const char* GgmlTypeName(uint32_t t);
/// Elements per block and bytes per block of a type; false if unknown.
bool GgmlBlock(uint32_t t, uint64_t* elems, uint64_t* bytes);

struct TensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // GGUF order: dims[0] is the contiguous (row) length
  uint32_t type = 0;
  uint64_t offset = 0;  // from the data section start
  const uint8_t* data = nullptr;
  uint64_t nbytes = 0;
  uint64_t numel() const {
    uint64_t n = 1;
    for (uint64_t d : dims) n *= d;
    return n;
  }
};

class File {
 public:
  File() = default;
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  bool Open(const std::string& path, std::string* err);
  /// Over caller-owned memory (tests); `data` must outlive the File.
  bool OpenMemory(const uint8_t* data, size_t size, const std::string& label, std::string* err);

  uint32_t version() const { return version_; }
  const Value* Find(const std::string& key) const;
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* FindTensor(const std::string& name) const;
  const std::string& label() const { return label_; }

 private:
  bool Parse(std::string* err);
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  convert::MappedFile map_;  // Open(); unused by OpenMemory
  std::string label_;
  uint32_t version_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::map<std::string, size_t> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> t_index_;
};

}  // namespace lamina::gguf
