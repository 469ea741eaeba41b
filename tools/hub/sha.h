// SHA-256 (FIPS 180-4) and SHA-1 (for git blob ids), streaming, for checking
// downloaded files against the hashes Hugging Face publishes: the sha256 of an
// LFS file, the git blob id (sha1 of "blob <size>\0" + content) of any other.
// Tools only; not a security boundary beyond integrity of the transfer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace lamina::hub {

class Sha256 {
 public:
  Sha256();
  void Update(const void* data, size_t n);
  /// Lowercase hex digest (64 characters); the object is spent afterwards.
  std::string HexDigest();

 private:
  void Block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t used_ = 0;
  uint64_t total_ = 0;
};

class Sha1 {
 public:
  Sha1();
  void Update(const void* data, size_t n);
  /// Lowercase hex digest (40 characters); the object is spent afterwards.
  std::string HexDigest();

 private:
  void Block(const uint8_t* p);
  uint32_t h_[5];
  uint8_t buf_[64];
  size_t used_ = 0;
  uint64_t total_ = 0;
};

/// Hashes the file at `path`: its sha256 and its git blob id. False + *err
/// when it cannot be read.
bool HashFile(const std::string& path, std::string* sha256, std::string* git_blob_sha1,
              std::string* err);

}  // namespace lamina::hub
