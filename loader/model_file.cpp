#include "loader/model_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "loader/finite.h"
#include "loader/llama_schema.h"
#include "loader/model_writer.h"

namespace lamina {
namespace {

using format::DType;
using format::FileHeader;
using format::HParams;
using format::Layout;
using format::TensorEntry;

// The hyperparameter limits and the graph live in loader/llama_schema.h.
constexpr uint64_t kMaxTensors = 1u << 20;

// Largest K of a q8c tensor. Why: the q8c matmuls (kernels/ref MatmulQ8C and
// every tier) sum idot = sum_k w[k] q[k] in int32, with w and q int8 (q is 0
// in the padding columns): |w q| <= 128 * 128, so |idot| and every partial sum
// are <= 16384 K = 2^30 at K = 2^16 — no int32 overflow (and the SIMD tiers,
// whose adds wrap, agree with the ref). K = 2^17 could reach 2^31. The zero
// point correction zp * wsum is computed in int64 on every tier, so the
// file's wsum needs no check (reading it would touch every row block's page:
// +8.6 ms CPU per 1B load, docs/PERFORMANCE.md). The output layer and the
// embedding have K = dim <= schema::kMaxDim = 2^16 anyway. q4g needs no cap: its int32
// sums are per group of 32 (|sum| <= 32*8*128, x16 in the SDOT kernels: 2^19)
// and then accumulate in float.
constexpr uint64_t kMaxQ8CK = 1u << 16;
static_assert(16384ull * kMaxQ8CK <= 2147483647ull, "q8c int32 accumulators can overflow");

bool AddOk(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_add_overflow(a, b, out); }
bool MulOk(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }

std::string U(uint64_t v) { return std::to_string(v); }

using format::DTypeName;

std::string ShapeStr(const TensorEntry& t) {
  std::string s = "[";
  for (uint32_t i = 0; i < t.n_dims && i < 4; ++i) s += (i ? ", " : "") + U(t.shape[i]);
  return s + "]";
}

struct Region {
  uint64_t begin, end;
  const char* what;
};

class Validator {
 public:
  Validator(const uint8_t* data, size_t size, const std::string& name, std::string* err)
      : data_(data), size_(size), name_(name), err_(err) {}

  bool Run() {
    if (!CheckHeader()) return false;
    if (!CheckHParams()) return false;
    if (!CheckDirectory()) return false;
    return (h_.flags & format::kFlagAdapter) ? CheckAdapter() : CheckGraph();
  }

 private:
  bool Fail(const std::string& what) {
    *err_ = name_ + ": " + what;
    return false;
  }
  bool FailT(const TensorEntry& t, const std::string& what) {
    return Fail("tensor " + std::string(t.name) + ": " + what);
  }

  bool CheckHeader() {
    if (size_ < sizeof(FileHeader))
      return Fail("file too small to be a lamina model (" + U(size_) + " bytes, header is " +
                  U(sizeof(FileHeader)) + ")");
    std::memcpy(&h_, data_, sizeof(h_));
    if (std::memcmp(h_.magic, format::kMagic, sizeof(h_.magic)) != 0) {
      if (std::memcmp(h_.magic, "GGUF", 4) == 0)
        return Fail("bad magic: this is a GGUF file; convert it with lamina-convert");
      if (std::memcmp(h_.magic, format::kMagic, 6) == 0)
        return Fail("bad magic: bytes 6-7 damaged (text-mode or 7-bit transfer?)");
      return Fail("bad magic: not a lamina model file");
    }
    if (h_.version_major != format::kVersionMajor)
      return Fail("unsupported format version " + U(h_.version_major) + "." + U(h_.version_minor) +
                  " (this reader supports " + U(format::kVersionMajor) + ".x)");
    if (h_.header_size != sizeof(FileHeader))
      return Fail("header_size " + U(h_.header_size) + " != " + U(sizeof(FileHeader)));
    if (h_.tensor_entry_size != sizeof(TensorEntry))
      return Fail("tensor_entry_size " + U(h_.tensor_entry_size) + " != " + U(sizeof(TensorEntry)));
    if (h_.file_size != size_)
      return Fail("file_size field " + U(h_.file_size) + " != actual size " + U(size_) +
                  (h_.file_size > size_ ? " (truncated file?)" : ""));
    if (h_.file_size % format::kFileAlign != 0)
      return Fail("file_size " + U(h_.file_size) + " is not a multiple of " +
                  U(format::kFileAlign));
    if (h_.flags & ~static_cast<uint32_t>(format::kFlagTiedEmbeddings | format::kFlagAdapter))
      return Fail("unknown header flags 0x" + Hex(h_.flags) + " (file needs a newer reader)");
    if ((h_.flags & format::kFlagAdapter) && (h_.flags & format::kFlagTiedEmbeddings))
      return Fail("header flags: an adapter file cannot have tied embeddings");
    if (std::memchr(h_.weight_scheme, 0, sizeof(h_.weight_scheme)) == nullptr)
      return Fail("weight_scheme is not NUL-terminated");
    // Regions: header, data, directory, tokenizer — in bounds, disjoint.
    uint64_t end;
    if (h_.data_offset % format::kDataAlign != 0 || h_.data_offset < sizeof(FileHeader))
      return Fail("data_offset " + U(h_.data_offset) + " is not a nonzero multiple of " +
                  U(format::kDataAlign));
    if (!AddOk(h_.data_offset, h_.data_size, &end) || end > size_)
      return Fail("data region (offset " + U(h_.data_offset) + ", size " + U(h_.data_size) +
                  ") beyond end of file");
    regions_.push_back({h_.data_offset, end, "data region"});
    if (h_.n_tensors == 0) return Fail("no tensors");
    if (h_.n_tensors > kMaxTensors) return Fail("n_tensors " + U(h_.n_tensors) + " too large");
    uint64_t dir_bytes;
    if (!MulOk(h_.n_tensors, sizeof(TensorEntry), &dir_bytes) ||
        !AddOk(h_.tensor_dir_offset, dir_bytes, &end) || end > size_)
      return Fail("tensor directory (offset " + U(h_.tensor_dir_offset) + ", " + U(h_.n_tensors) +
                  " entries) beyond end of file");
    if (h_.tensor_dir_offset % 8 != 0)
      return Fail("tensor_dir_offset " + U(h_.tensor_dir_offset) + " is not 8-aligned");
    regions_.push_back({h_.tensor_dir_offset, end, "tensor directory"});
    if (h_.tokenizer_size == 0) {
      if (h_.tokenizer_offset != 0) return Fail("tokenizer_offset nonzero with tokenizer_size 0");
    } else {
      if (!AddOk(h_.tokenizer_offset, h_.tokenizer_size, &end) || end > size_)
        return Fail("tokenizer blob (offset " + U(h_.tokenizer_offset) + ", size " +
                    U(h_.tokenizer_size) + ") beyond end of file");
      regions_.push_back({h_.tokenizer_offset, end, "tokenizer blob"});
    }
    regions_.push_back({0, sizeof(FileHeader), "header"});
    for (size_t i = 0; i < regions_.size(); ++i)
      for (size_t j = i + 1; j < regions_.size(); ++j) {
        const Region &a = regions_[i], &b = regions_[j];
        if (a.begin < b.end && b.begin < a.end)
          return Fail(std::string(a.what) + " overlaps " + b.what);
      }
    return true;
  }

  static std::string Hex(uint32_t v) {
    char b[16];
    std::snprintf(b, sizeof(b), "%x", v);
    return b;
  }

  bool CheckHParams() {
    std::string why;
    return schema::ValidateHParams(h_.hparams, &why) || Fail(why);
  }

  bool CheckDirectory() {
    dir_.resize(h_.n_tensors);
    std::memcpy(dir_.data(), data_ + h_.tensor_dir_offset, h_.n_tensors * sizeof(TensorEntry));
    const uint64_t data_end = h_.data_offset + h_.data_size;
    index_.reserve(dir_.size() * 2);
    for (size_t i = 0; i < dir_.size(); ++i) {
      TensorEntry& t = dir_[i];
      const void* nul = std::memchr(t.name, 0, sizeof(t.name));
      if (nul == nullptr) {
        t.name[sizeof(t.name) - 1] = 0;  // local copy: make it printable
        return Fail("tensor #" + U(i) + " (\"" + std::string(t.name) +
                    "...\"): name not NUL-terminated");
      }
      const size_t len = static_cast<const char*>(nul) - t.name;
      if (len == 0) return Fail("tensor #" + U(i) + ": empty name");
      for (size_t c = 0; c < len; ++c) {
        const unsigned char ch = static_cast<unsigned char>(t.name[c]);
        if (ch < 0x21 || ch > 0x7e)
          return Fail("tensor #" + U(i) + ": name contains a non-printable character");
      }
      if (!index_.emplace(std::string_view(t.name, len), i).second)
        return FailT(t, "duplicate tensor name");
      if (t.dtype > static_cast<uint32_t>(DType::kQ4G))
        return FailT(t, "unknown dtype " + U(t.dtype));
      if (t.layout > static_cast<uint32_t>(Layout::kQ4G_R4K8_F16S))
        return FailT(t, "unknown layout " + U(t.layout));
      if (t.n_dims < 1 || t.n_dims > 4) return FailT(t, "n_dims " + U(t.n_dims) + " not in 1..4");
      for (uint32_t d = 0; d < 4; ++d) {
        if (d < t.n_dims && t.shape[d] == 0) return FailT(t, "shape[" + U(d) + "] is 0");
        if (d < t.n_dims && t.shape[d] > 0x7fffffffull)
          return FailT(t, "shape[" + U(d) + "] = " + U(t.shape[d]) + " too large");
        if (d >= t.n_dims && t.shape[d] != 0)
          return FailT(t, "shape[" + U(d) + "] nonzero beyond n_dims");
      }
      if (t.flags & ~static_cast<uint32_t>(format::kTensorHadamardInput))
        return FailT(t, "unknown flags 0x" + Hex(t.flags));
      const uint64_t expect =
          TensorBytes(static_cast<DType>(t.dtype), static_cast<Layout>(t.layout), t.shape, t.n_dims,
                      t.group_size);
      if (expect == 0)
        return FailT(t, std::string("invalid dtype/layout/group_size combination (") +
                            DTypeName(t.dtype) + ", layout " + U(t.layout) + ", group_size " +
                            U(t.group_size) + ", shape " + ShapeStr(t) + ")");
      if (t.size != expect)
        return FailT(t,
                     "size " + U(t.size) + " != " + U(expect) + " implied by shape " + ShapeStr(t));
      uint64_t end;
      if (!AddOk(t.offset, t.size, &end) || end > size_)
        return FailT(t, "offset beyond end of file");
      if (t.offset % format::kTensorAlign != 0)
        return FailT(t, "offset " + U(t.offset) + " not aligned to " + U(format::kTensorAlign));
      if (t.offset < h_.data_offset || end > data_end) return FailT(t, "outside the data region");
      if (t.dtype == static_cast<uint32_t>(DType::kQ8C) && !CheckQ8CK(t)) return false;
    }
    // No two tensors overlap.
    std::vector<size_t> order(dir_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return dir_[a].offset < dir_[b].offset; });
    for (size_t i = 1; i < order.size(); ++i) {
      const TensorEntry& a = dir_[order[i - 1]];
      const TensorEntry& b = dir_[order[i]];
      if (a.offset + a.size > b.offset) return FailT(b, "overlaps tensor " + std::string(a.name));
    }
    return true;
  }

  // q8c: K <= kMaxQ8CK (see there; the row sums are not read).
  bool CheckQ8CK(const TensorEntry& t) {
    if (t.shape[1] > kMaxQ8CK)
      return FailT(t, "q8c K = " + U(t.shape[1]) + " exceeds " + U(kMaxQ8CK) +
                          " (int32 accumulators could overflow)");
    return true;
  }

  // Norm vectors (f32 [dim], 2 per layer + 1) are small: checked for NaN/Inf
  // at load. Big tensors are not scanned (see docs/FORMAT.md).
  bool CheckFiniteVector(const TensorEntry& t) {
    const float* v = reinterpret_cast<const float*>(data_ + t.offset);  // 256-aligned
    const size_t i = FirstNonFinite(v, t.shape[0]);
    if (i == t.shape[0]) return true;
    float f;
    std::memcpy(&f, v + i, 4);
    return FailT(t, "element " + U(i) + " is " + (f != f ? "NaN" : "Inf") +
                        " (norm weights must be finite)");
  }

  const TensorEntry* Get(const std::string& n) const {
    auto it = index_.find(n);
    return it == index_.end() ? nullptr : &dir_[it->second];
  }

  // A tensor of the graph: present, with the exact shape, an allowed dtype
  // and only the flags its row allows.
  bool Need(const schema::TensorRef& r, const TensorEntry** out) {
    const TensorEntry* t = Get(r.name);
    if (!t) return Fail("tensor " + r.name + ": missing");
    bool shape_ok = t->n_dims == r.shape.size();
    for (size_t i = 0; shape_ok && i < r.shape.size(); ++i) shape_ok = t->shape[i] == r.shape[i];
    if (!shape_ok) {
      std::string want = "[";
      for (size_t i = 0; i < r.shape.size(); ++i) want += (i ? ", " : "") + U(r.shape[i]);
      return FailT(*t, "shape " + ShapeStr(*t) + ", expected " + want + "]");
    }
    if (!schema::TypeAllowed(r.types(), t->dtype))
      return FailT(*t, std::string("dtype ") + DTypeName(t->dtype) + " not allowed here");
    if (t->flags & format::kTensorHadamardInput) {
      if (r.lora || !(r.spec->traits & schema::kHadamardAllowed))
        return FailT(
            *t, "Hadamard flag is only valid on " + schema::RowsWith(schema::kHadamardAllowed));
      const uint64_t k = t->shape[1];
      if ((k & (k - 1)) != 0) return FailT(*t, "Hadamard flag needs a power-of-two K, got " + U(k));
    }
    *out = t;
    return true;
  }

  bool CheckTensor(const schema::TensorRef& r) {
    const TensorEntry* t = nullptr;
    if (!Need(r, &t)) return false;
    if ((r.spec->traits & schema::kCheckFinite) && !CheckFiniteVector(*t)) return false;
    if (!(r.spec->traits & schema::kLoraAllowed)) return true;
    const uint32_t rank = h_.hparams.lora_rank;
    if (rank == 0) {
      if (Get(schema::LoraName(r.name, 1)) || Get(schema::LoraName(r.name, 2)))
        return Fail("tensor " + r.name + ".lora_a/b: present but hparams.lora_rank is 0");
      return true;
    }
    for (int ab = 1; ab <= 2; ++ab)
      if (!Need(schema::LoraRef(r, ab, rank), &t)) return false;
    return true;
  }

  bool CheckGraph() {
    const bool tied = h_.flags & format::kFlagTiedEmbeddings;
    if (tied)
      for (const schema::TensorSpec& s : schema::kTensors)
        if ((s.traits & schema::kUntiedOnly) && Get(s.name))
          return Fail("tensor " + std::string(s.name) + ": present although embeddings are tied");
    return schema::ForEachTensor(h_.hparams, tied,
                                 [&](const schema::TensorRef& r) { return CheckTensor(r); });
  }

  // A LoRA adapter file (kFlagAdapter): only "blk.<i>.<linear>.lora_a/.lora_b"
  // pairs, float row-major, shaped by the (base model's) hparams and rank;
  // every value finite (adapters are small: the scan costs little).
  bool CheckAdapter() {
    const HParams& p = h_.hparams;
    if (p.lora_rank == 0)
      return Fail("hparams.lora_rank = 0: an adapter file needs its rank (1.." +
                  U(schema::kMaxLoraRank) + ")");
    if (h_.tokenizer_size != 0) return Fail("an adapter file embeds no tokenizer");
    const uint64_t dim = p.dim, ffn = p.ffn_dim, r = p.lora_rank;
    const uint64_t qd = static_cast<uint64_t>(p.n_heads) * p.head_dim;
    const uint64_t kvd = static_cast<uint64_t>(p.n_kv_heads) * p.head_dim;
    const uint64_t shapes[7][2] = {{qd, dim},  {kvd, dim}, {kvd, dim}, {dim, qd},
                                   {ffn, dim}, {ffn, dim}, {dim, ffn}};
    for (const TensorEntry& t : dir_) {
      const std::string n = t.name;
      // blk.<i>.<linear>.lora_a|b
      unsigned layer = 0;
      int consumed = 0;
      if (std::sscanf(n.c_str(), "blk.%u.%n", &layer, &consumed) != 1 || consumed == 0 ||
          n.compare(0, consumed, "blk." + U(layer) + ".") != 0)
        return FailT(t, "not a LoRA tensor name (blk.<i>.<linear>.lora_a / .lora_b)");
      if (layer >= p.n_layers)
        return FailT(t, "layer " + U(layer) + " beyond hparams.n_layers " + U(p.n_layers));
      const std::string rest = n.substr(consumed);
      int lin = -1, ab = -1;
      for (int i = 0; i < 7 && lin < 0; ++i)
        for (int k = 0; k < 2; ++k)
          if (rest == std::string(format::kLinearNames[i]) + (k ? ".lora_b" : ".lora_a")) {
            lin = i;
            ab = k;
          }
      if (lin < 0) return FailT(t, "not a LoRA tensor name (blk.<i>.<linear>.lora_a / .lora_b)");
      const std::string base = "blk." + U(layer) + "." + format::kLinearNames[lin];
      if (!Get(base + (ab ? ".lora_a" : ".lora_b")))
        return FailT(
            t, std::string("its pair ") + base + (ab ? ".lora_a" : ".lora_b") + " is missing");
      const std::vector<uint64_t> want =
          ab ? std::vector<uint64_t>{shapes[lin][0], r} : std::vector<uint64_t>{r, shapes[lin][1]};
      if (t.n_dims != 2 || t.shape[0] != want[0] || t.shape[1] != want[1])
        return FailT(
            t, "shape " + ShapeStr(t) + ", expected [" + U(want[0]) + ", " + U(want[1]) + "]");
      if (!schema::TypeAllowed(schema::kLoraTypes, t.dtype))
        return FailT(t, std::string("dtype ") + DTypeName(t.dtype) + " not allowed here");
      if (t.layout != static_cast<uint32_t>(Layout::kRowMajor))
        return FailT(t, "LoRA tensors must be row-major");
      const uint64_t count = t.shape[0] * t.shape[1];
      const uint8_t* d = data_ + t.offset;
      uint64_t bad = count;
      if (t.dtype == static_cast<uint32_t>(DType::kF32)) {
        bad = FirstNonFinite(reinterpret_cast<const float*>(d), count);
      } else {
        const uint16_t mask = t.dtype == static_cast<uint32_t>(DType::kF16) ? 0x7c00 : 0x7f80;
        for (uint64_t i = 0; i < count && bad == count; ++i) {
          uint16_t v;
          std::memcpy(&v, d + 2 * i, 2);
          if ((v & mask) == mask) bad = i;
        }
      }
      if (bad != count)
        return FailT(t, "element " + U(bad) + " is NaN or Inf (adapter weights must be finite)");
    }
    return true;
  }

  const uint8_t* data_;
  size_t size_;
  const std::string& name_;
  std::string* err_;
  FileHeader h_{};
  std::vector<Region> regions_;
  std::vector<TensorEntry> dir_;
  std::unordered_map<std::string_view, size_t> index_;
};

}  // namespace

uint64_t ModelFile::AdapterBinding() const {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64
  auto mix = [&h](const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  };
  mix(&hparams(), offsetof(HParams, lora_rank));
  auto norm = [&](const std::string& n) {
    const TensorEntry* t = Find(n);
    if (t) mix(Data(*t), t->size);
  };
  for (uint32_t l = 0; l < hparams().n_layers; ++l) {
    norm("blk." + U(l) + ".attn_norm");
    norm("blk." + U(l) + ".ffn_norm");
  }
  norm("output_norm");
  return h;
}

bool ValidateModelImage(const uint8_t* data, size_t size, const std::string& name,
                        std::string* err) {
  std::string local;
  if (!err) err = &local;
  if (data == nullptr && size != 0) {
    *err = name + ": null image";
    return false;
  }
  Validator v(data, size, name, err);
  return v.Run();
}

std::unique_ptr<ModelFile> ModelFile::Open(const std::string& path, const LoadOptions& opts,
                                           std::string* err) {
  std::string local;
  if (!err) err = &local;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *err = path + ": cannot open: " + std::strerror(errno);
    return nullptr;
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    *err = path + ": cannot stat: " + std::strerror(errno);
    ::close(fd);
    return nullptr;
  }
  if (!S_ISREG(st.st_mode)) {
    *err = path + ": not a regular file";
    ::close(fd);
    return nullptr;
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < sizeof(format::FileHeader)) {
    ::close(fd);
    *err = path + ": file too small to be a lamina model (" + std::to_string(size) +
           " bytes, header is " + std::to_string(sizeof(format::FileHeader)) + ")";
    return nullptr;
  }
  int mflags = MAP_SHARED;
#ifdef MAP_POPULATE
  if (opts.populate) mflags |= MAP_POPULATE;
#endif
  void* p = ::mmap(nullptr, size, PROT_READ, mflags, fd, 0);
  const int map_errno = errno;
  ::close(fd);
  if (p == MAP_FAILED) {
    *err = path + ": mmap failed: " + std::strerror(map_errno);
    return nullptr;
  }
  std::unique_ptr<ModelFile> m(new ModelFile());
  m->path_ = path;
  m->base_ = static_cast<const uint8_t*>(p);
  m->size_ = size;
  if (!ValidateModelImage(m->base_, size, path, err)) return nullptr;
  m->header_ = reinterpret_cast<const format::FileHeader*>(m->base_);
  m->dir_ = reinterpret_cast<const format::TensorEntry*>(m->base_ + m->header_->tensor_dir_offset);
  if (opts.willneed && m->header_->data_size > 0) {
    // The data region starts page-aligned (kDataAlign is the largest Arm page).
    (void)::madvise(const_cast<uint8_t*>(m->base_) + m->header_->data_offset, m->header_->data_size,
                    MADV_WILLNEED);
  }
  if (opts.mlock) {
    if (::mlock(m->base_, size) != 0) {
      const int e = errno;
      struct rlimit rl {};
      std::string lim = "unknown";
      if (::getrlimit(RLIMIT_MEMLOCK, &rl) == 0)
        lim = rl.rlim_cur == RLIM_INFINITY ? "unlimited" : std::to_string(rl.rlim_cur) + " bytes";
      *err = path + ": mlock of " + std::to_string(size) + " bytes failed: " + std::strerror(e) +
             " (RLIMIT_MEMLOCK is " + lim + "; raise it with `ulimit -l` or run without mlock)";
      return nullptr;
    }
    m->locked_ = true;
  }
  return m;
}

ModelFile::~ModelFile() {
  if (base_) {
    if (locked_) ::munlock(base_, size_);
    ::munmap(const_cast<uint8_t*>(base_), size_);
  }
}

const format::TensorEntry* ModelFile::Find(const std::string& name) const {
  // Linear scan over a few hundred entries; the engine resolves names once.
  for (size_t i = 0; i < n_tensors(); ++i)
    if (std::strncmp(dir_[i].name, name.c_str(), sizeof(dir_[i].name)) == 0 &&
        name.size() < sizeof(dir_[i].name))
      return &dir_[i];
  return nullptr;
}

}  // namespace lamina
