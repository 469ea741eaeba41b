// SHA-256 (FIPS 180-4) and SHA-1 (for git blob ids), streaming, for checking
// downloaded files against the hashes Hugging Face publishes: the sha256 of an
// LFS file, the git blob id (sha1 of "blob <size>\0" + content) of any other.
// Tools only; not a security boundary beyond integrity of the transfer.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace lamina::hub {

/// The Merkle-Damgard framing both hashes share: input is buffered into
/// 64-byte blocks for Hash::Block(const uint8_t*); Finish() appends 0x80,
/// zeros and the message length in bits (big-endian).
template <typename Hash>
class BlockHash {
 public:
  void Update(const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    total_ += n;
    while (n > 0) {
      const size_t take = std::min(n, sizeof(buf_) - used_);
      std::memcpy(buf_ + used_, p, take);
      used_ += take;
      p += take;
      n -= take;
      if (used_ == sizeof(buf_)) {
        static_cast<Hash*>(this)->Block(buf_);
        used_ = 0;
      }
    }
  }

 protected:
  void Finish() {
    const uint64_t bits = total_ * 8;
    const uint8_t pad[64] = {0x80};
    Update(pad, used_ < 56 ? 56 - used_ : 120 - used_);
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
    Update(len, 8);
  }

 private:
  uint8_t buf_[64];
  size_t used_ = 0;
  uint64_t total_ = 0;
};

class Sha256 : public BlockHash<Sha256> {
 public:
  Sha256();
  /// Lowercase hex digest (64 characters); the object is spent afterwards.
  std::string HexDigest();

 private:
  friend class BlockHash<Sha256>;
  void Block(const uint8_t* p);
  uint32_t h_[8];
};

class Sha1 : public BlockHash<Sha1> {
 public:
  Sha1();
  /// Lowercase hex digest (40 characters); the object is spent afterwards.
  std::string HexDigest();

 private:
  friend class BlockHash<Sha1>;
  void Block(const uint8_t* p);
  uint32_t h_[5];
};

/// Hashes the file at `path`: its sha256 and/or its git blob id (either
/// pointer may be null: that hash is skipped). False + *err when it cannot be
/// read.
bool HashFile(const std::string& path, std::string* sha256, std::string* git_blob_sha1,
              std::string* err);

}  // namespace lamina::hub
