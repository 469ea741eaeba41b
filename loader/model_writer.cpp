#include "loader/model_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "loader/model_file.h"

namespace lamina {
namespace {

using format::DType;
using format::Layout;

bool MulOk(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }

// Dimension bound that keeps every RoundUp and product below overflow and
// every index inside an int (the packers and kernels use int N, K).
constexpr uint64_t kMaxDim = (1ull << 31) - 1;

}  // namespace

uint64_t TensorBytes(DType dtype, Layout layout, const uint64_t* shape, uint32_t n_dims,
                     uint32_t group_size) {
  if (n_dims < 1 || n_dims > 4 || shape == nullptr) return 0;
  for (uint32_t i = 0; i < n_dims; ++i)
    if (shape[i] == 0 || shape[i] > kMaxDim) return 0;
  switch (dtype) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16: {
      if (layout != Layout::kRowMajor || group_size != 0) return 0;
      uint64_t n = dtype == DType::kF32 ? 4 : 2;
      for (uint32_t i = 0; i < n_dims; ++i)
        if (!MulOk(n, shape[i], &n)) return 0;
      return n;
    }
    case DType::kQ8C: {
      if (layout != Layout::kQ8C_R4K4 || n_dims != 2 || group_size != 0) return 0;
      const uint64_t blocks = format::RoundUp(shape[0], 4) / 4;
      const uint64_t bb = format::kQ8BlockBytes(format::RoundUp(shape[1], 32));
      uint64_t n;
      return MulOk(blocks, bb, &n) ? n : 0;
    }
    case DType::kQ4G: {
      if ((layout != Layout::kQ4G_R4K8 && layout != Layout::kQ4G_R4K8_F16S) || n_dims != 2 ||
          group_size != format::kQ4Group)
        return 0;
      const uint64_t blocks = format::RoundUp(shape[0], 4) / 4;
      const uint64_t kp = format::RoundUp(shape[1], 32);
      const uint64_t bb =
          layout == Layout::kQ4G_R4K8 ? format::kQ4BlockBytes(kp) : format::kQ4F16SBlockBytes(kp);
      uint64_t n;
      return MulOk(blocks, bb, &n) ? n : 0;
    }
  }
  return 0;
}

ModelWriter::~ModelWriter() {
  if (f_) {
    std::fclose(f_);
    f_ = nullptr;
    ::unlink(tmp_path_.c_str());
  }
}

namespace {
bool WriteZeros(FILE* f, uint64_t n) {
  static const uint8_t kZeros[4096] = {};
  while (n > 0) {
    const size_t c = n < sizeof(kZeros) ? static_cast<size_t>(n) : sizeof(kZeros);
    if (std::fwrite(kZeros, 1, c, f) != c) return false;
    n -= c;
  }
  return true;
}
std::string Errno() { return std::strerror(errno); }
}  // namespace

bool ModelWriter::Open(const std::string& path, std::string* err) {
  if (f_) {
    *err = path + ": writer already open";
    return false;
  }
  path_ = path;
  tmp_path_ = path + ".tmp";
  f_ = std::fopen(tmp_path_.c_str(), "wb");
  if (!f_) {
    *err = tmp_path_ + ": cannot create: " + Errno();
    return false;
  }
  std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
  // Placeholder header + padding up to the data region; the header is
  // rewritten by Finish().
  if (!WriteZeros(f_, format::kDataAlign)) {
    *err = tmp_path_ + ": write failed: " + Errno();
    return false;
  }
  pos_ = format::kDataAlign;
  dir_.clear();
  return true;
}

bool ModelWriter::AddTensor(const std::string& name, DType dtype, Layout layout,
                            const std::vector<uint64_t>& shape, uint32_t group_size, uint32_t flags,
                            const void* data, size_t size, std::string* err) {
  const std::string where = path_ + ": tensor " + name + ": ";
  if (!f_) {
    *err = where + "writer is not open";
    return false;
  }
  format::TensorEntry e{};
  if (name.empty() || name.size() >= sizeof(e.name)) {
    *err = where + "name empty or longer than " + std::to_string(sizeof(e.name) - 1) + " bytes";
    return false;
  }
  for (const auto& d : dir_) {
    if (name == d.name) {
      *err = where + "duplicate name";
      return false;
    }
  }
  if (shape.empty() || shape.size() > 4) {
    *err = where + "n_dims must be 1..4";
    return false;
  }
  const uint64_t expect =
      TensorBytes(dtype, layout, shape.data(), static_cast<uint32_t>(shape.size()), group_size);
  if (expect == 0) {
    *err = where + "invalid dtype/layout/shape/group_size combination";
    return false;
  }
  if (expect != size) {
    *err = where + "size " + std::to_string(size) + " != expected " + std::to_string(expect);
    return false;
  }
  const uint64_t off = format::RoundUp(pos_, format::kTensorAlign);
  if (!WriteZeros(f_, off - pos_) || (size && std::fwrite(data, 1, size, f_) != size)) {
    *err = tmp_path_ + ": write failed: " + Errno();
    return false;
  }
  pos_ = off + size;
  std::memcpy(e.name, name.data(), name.size());
  e.dtype = static_cast<uint32_t>(dtype);
  e.layout = static_cast<uint32_t>(layout);
  e.n_dims = static_cast<uint32_t>(shape.size());
  e.flags = flags;
  for (size_t i = 0; i < shape.size(); ++i) e.shape[i] = shape[i];
  e.group_size = group_size;
  e.offset = off;
  e.size = size;
  dir_.push_back(e);
  return true;
}

bool ModelWriter::Finish(std::string* err) {
  if (!f_) {
    *err = path_ + ": writer is not open";
    return false;
  }
  auto fail = [&](const std::string& what) {
    *err = what;
    std::fclose(f_);
    f_ = nullptr;
    ::unlink(tmp_path_.c_str());
    return false;
  };
  format::FileHeader h{};
  std::memcpy(h.magic, format::kMagic, sizeof(h.magic));
  h.version_major = format::kVersionMajor;
  h.version_minor = format::kVersionMinor;
  h.header_size = sizeof(format::FileHeader);
  h.flags = flags_;
  h.tensor_entry_size = sizeof(format::TensorEntry);
  h.n_tensors = dir_.size();
  h.data_offset = format::kDataAlign;
  h.data_size = pos_ - format::kDataAlign;
  const uint64_t dir_off = format::RoundUp(pos_, format::kTensorAlign);
  h.tensor_dir_offset = dir_off;
  const uint64_t dir_bytes = dir_.size() * sizeof(format::TensorEntry);
  uint64_t p = dir_off + dir_bytes;
  if (!tokenizer_.empty()) {
    h.tokenizer_offset = p;
    h.tokenizer_size = tokenizer_.size();
    p += tokenizer_.size();
  }
  h.file_size = format::RoundUp(p, format::kFileAlign);
  if (scheme_.size() >= sizeof(h.weight_scheme))
    return fail(path_ + ": weight scheme name too long: " + scheme_);
  std::memcpy(h.weight_scheme, scheme_.data(), scheme_.size());
  h.hparams = hparams_;
  h.base_binding = base_binding_;

  if (!WriteZeros(f_, dir_off - pos_) ||
      (dir_bytes && std::fwrite(dir_.data(), 1, dir_bytes, f_) != dir_bytes) ||
      (!tokenizer_.empty() &&
       std::fwrite(tokenizer_.data(), 1, tokenizer_.size(), f_) != tokenizer_.size()) ||
      !WriteZeros(f_, h.file_size - p) || std::fflush(f_) != 0 ||
      std::fseek(f_, 0, SEEK_SET) != 0 || std::fwrite(&h, 1, sizeof(h), f_) != sizeof(h) ||
      std::fflush(f_) != 0)
    return fail(tmp_path_ + ": write failed: " + Errno());
  pos_ = h.file_size;
  if (::fsync(fileno(f_)) != 0) return fail(tmp_path_ + ": fsync failed: " + Errno());
  FILE* f = f_;
  f_ = nullptr;
  if (std::fclose(f) != 0) {
    ::unlink(tmp_path_.c_str());
    *err = tmp_path_ + ": close failed: " + Errno();
    return false;
  }
  // Never publish a file the loader would refuse.
  std::string verr;
  {
    auto mf = ModelFile::Open(tmp_path_, LoadOptions{}, &verr);
    if (!mf) {
      ::unlink(tmp_path_.c_str());
      *err = path_ + ": refusing to write an invalid model: " + verr;
      return false;
    }
  }
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    ::unlink(tmp_path_.c_str());
    *err = path_ + ": rename from " + tmp_path_ + " failed: " + Errno();
    return false;
  }
  // Make the rename durable: fsync the containing directory (best effort).
  std::string dir = ".";
  const size_t slash = path_.rfind('/');
  if (slash != std::string::npos) dir = slash == 0 ? "/" : path_.substr(0, slash);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return true;
}

}  // namespace lamina
