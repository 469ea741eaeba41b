// The zip part of the .pth reader (pth_reader.h): a stored zip archive (a
// torch.save file) mapped read-only, its central directory parsed strictly.
//
// Accepted: stored (method 0) entries, ZIP64 sizes/offsets, one archive
// prefix; anything else is a clear error naming the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tools/convert/mapped_file.h"

namespace lamina::pth {

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

}  // namespace lamina::pth
