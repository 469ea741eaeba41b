// A read-only mmap of a whole input file, shared by the converter's readers
// (safetensors, llama2.c, GGUF, torch zip).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace lamina::convert {

/// A read-only mapping of a whole file (an empty file maps to data() == nullptr,
/// size() == 0).
class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  bool Open(const std::string& path, std::string* err);
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  /// Drops the pages of [off, off+n) from this process (they stay cached).
  void Release(uint64_t off, uint64_t n) const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace lamina::convert
