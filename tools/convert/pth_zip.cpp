// The zip part of the .pth reader: central directory, ZIP64, local headers.
#include "tools/convert/pth_zip.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "loader/mem_budget.h"
#include "tools/convert/le_bytes.h"

namespace lamina::pth {
namespace {

using convert::LoadLe16;
using convert::LoadLe32;
using convert::LoadLe64;

constexpr uint32_t kSigEocd = 0x06054b50;
constexpr uint32_t kSigZip64Locator = 0x07064b50;
constexpr uint32_t kSigZip64Eocd = 0x06064b50;
constexpr uint32_t kSigCentral = 0x02014b50;
constexpr uint32_t kSigLocal = 0x04034b50;

}  // namespace

ZipArchive::~ZipArchive() = default;

bool ZipArchive::Open(const std::string& path, std::string* err) {
  if (!map_.Open(path, err)) return false;
  if (map_.size() == 0) {
    *err = path + ": empty file, not a zip archive";
    return false;
  }
  return OpenMemory(map_.data(), map_.size(), path, err);
}

bool ZipArchive::OpenMemory(const uint8_t* data, size_t size, const std::string& label,
                            std::string* err) {
  base_ = data;
  size_ = size;
  label_ = label;
  entries_.clear();
  index_.clear();
  if (!Parse(err)) {
    *err = label_ + ": " + *err;
    return false;
  }
  return true;
}

bool ZipArchive::Parse(std::string* err) {
  if (size_ < 22) {
    *err = "too small to be a zip archive (" + std::to_string(size_) + " bytes; truncated?)";
    return false;
  }
  // End of central directory: scan back over a possible comment (<= 65535 B).
  size_t eocd = SIZE_MAX;
  const size_t lowest = size_ > 22 + 65535 ? size_ - 22 - 65535 : 0;
  for (size_t p = size_ - 22 + 1; p-- > lowest;) {
    if (LoadLe32(base_ + p) == kSigEocd && p + 22 + LoadLe16(base_ + p + 20) == size_) {
      eocd = p;
      break;
    }
  }
  if (eocd == SIZE_MAX) {
    *err = "no zip end-of-central-directory record (not a torch.save archive, or truncated)";
    return false;
  }
  const uint8_t* e = base_ + eocd;
  uint64_t n_entries = LoadLe16(e + 10);
  uint64_t cd_size = LoadLe32(e + 12);
  uint64_t cd_offset = LoadLe32(e + 16);
  if (LoadLe16(e + 4) != 0 || LoadLe16(e + 6) != 0 || LoadLe16(e + 8) != LoadLe16(e + 10)) {
    *err = "multi-disk zip archives are not supported";
    return false;
  }
  if (n_entries == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_offset == 0xFFFFFFFFu) {
    if (eocd < 20 || LoadLe32(base_ + eocd - 20) != kSigZip64Locator) {
      *err = "zip end record needs ZIP64 but the ZIP64 locator is missing";
      return false;
    }
    const uint64_t z64 = LoadLe64(base_ + eocd - 20 + 8);
    if (z64 > eocd || eocd - z64 < 56 || LoadLe32(base_ + z64) != kSigZip64Eocd) {
      *err = "bad ZIP64 end-of-central-directory offset";
      return false;
    }
    const uint8_t* z = base_ + z64;
    if (LoadLe32(z + 16) != 0 || LoadLe32(z + 20) != 0 || LoadLe64(z + 24) != LoadLe64(z + 32)) {
      *err = "multi-disk zip archives are not supported";
      return false;
    }
    n_entries = LoadLe64(z + 32);
    cd_size = LoadLe64(z + 40);
    cd_offset = LoadLe64(z + 48);
  }
  if (cd_offset > size_ || cd_size > size_ - cd_offset) {
    *err = "central directory (offset " + std::to_string(cd_offset) + ", size " +
           std::to_string(cd_size) + ") lies outside the file (truncated?)";
    return false;
  }
  if (n_entries > cd_size / 46) {
    *err = "central directory claims " + std::to_string(n_entries) + " entries in " +
           std::to_string(cd_size) + " bytes";
    return false;
  }
  // Entries and their index: ~150 bytes per >= 46-byte directory record, so
  // the directory is charged to MemBudget (loader/mem_budget.h).
  MemBudget mem(cd_size);
  size_t p = cd_offset;
  const size_t cd_end = cd_offset + cd_size;
  for (uint64_t i = 0; i < n_entries; ++i) {
    if (cd_end - p < 46 || LoadLe32(base_ + p) != kSigCentral) {
      *err = "bad central directory entry " + std::to_string(i) + " at offset " + std::to_string(p);
      return false;
    }
    const uint8_t* c = base_ + p;
    const uint16_t flags = LoadLe16(c + 8), method = LoadLe16(c + 10);
    uint64_t csize = LoadLe32(c + 20), usize = LoadLe32(c + 24);
    const size_t nlen = LoadLe16(c + 28), elen = LoadLe16(c + 30), clen = LoadLe16(c + 32);
    uint64_t local = LoadLe32(c + 42);
    if (cd_end - p - 46 < nlen + elen + clen) {
      *err = "central directory entry " + std::to_string(i) + " overruns the directory";
      return false;
    }
    std::string why;
    if (!mem.Charge(3 * sizeof(Entry) + 96 + 2 * MemBudget::Str(nlen), &why)) {
      *err = "central directory " + why;
      return false;
    }
    std::string name(reinterpret_cast<const char*>(c + 46), nlen);
    // ZIP64 extended information.
    const uint8_t* x = c + 46 + nlen;
    size_t xl = elen;
    while (xl >= 4) {
      const uint16_t id = LoadLe16(x), sz = LoadLe16(x + 2);
      if (sz > xl - 4) {
        *err = "entry " + name + ": malformed extra field";
        return false;
      }
      if (id == 0x0001) {
        const uint8_t* q = x + 4;
        size_t left = sz;
        auto take = [&](uint64_t* v) {
          if (*v != 0xFFFFFFFFu) return true;
          if (left < 8) return false;
          *v = LoadLe64(q);
          q += 8;
          left -= 8;
          return true;
        };
        if (!take(&usize) || !take(&csize) || !take(&local)) {
          *err = "entry " + name + ": truncated ZIP64 extra field";
          return false;
        }
      }
      x += 4 + sz;
      xl -= 4 + sz;
    }
    if (flags & 1) {
      *err = "entry " + name + " is encrypted";
      return false;
    }
    if (method != 0) {
      *err = "entry " + name + " is compressed (method " + std::to_string(method) +
             "); torch.save writes stored entries only";
      return false;
    }
    if (csize != usize) {
      *err = "entry " + name + ": stored entry with compressed size " + std::to_string(csize) +
             " != size " + std::to_string(usize);
      return false;
    }
    if (local > size_ || size_ - local < 30 || LoadLe32(base_ + local) != kSigLocal) {
      *err = "entry " + name + ": bad local header offset " + std::to_string(local);
      return false;
    }
    const uint64_t data = local + 30 + LoadLe16(base_ + local + 26) + LoadLe16(base_ + local + 28);
    if (data > size_ || usize > size_ - data) {
      *err = "entry " + name + ": data (" + std::to_string(usize) + " bytes at " +
             std::to_string(data) + ") beyond end of file (truncated?)";
      return false;
    }
    if (index_.count(name)) {
      *err = "duplicate entry " + name;
      return false;
    }
    index_[name] = entries_.size();
    entries_.push_back({name, data, usize});
    p += 46 + nlen + elen + clen;
  }
  return true;
}

void ZipArchive::Release(const uint8_t* p, size_t n) const {
  const uint8_t* m = map_.data();
  if (!m || p < m || p >= m + map_.size()) return;  // OpenMemory, or not in the map
  map_.Release(static_cast<uint64_t>(p - m), n);
}

const ZipArchive::Entry* ZipArchive::Find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

}  // namespace lamina::pth
