// GGUF v2/v3 reader (see gguf_reader.h).
#include "tools/convert/gguf_reader.h"

#include <cerrno>
#include <cstring>

#include "loader/mem_budget.h"

namespace lamina::gguf {
namespace {

constexpr int kMaxDepth = 4;
constexpr uint64_t kMaxString = 1ull << 30;
// Each array element becomes a ~100-byte Value, so element counts are capped
// (a hostile file could otherwise ask ~100x its size in memory). Llama 3's
// vocabulary is the largest legitimate array (128256 tokens, 280147 merges).
constexpr uint64_t kMaxArrayElems = 1ull << 22;
constexpr uint64_t kMaxTotalArrayElems = 1ull << 23;  // over all metadata
// Metadata and tensor directory memory is bounded by MemBudget(file size)
// (loader/mem_budget.h): 4 million empty strings (33 MB) used to take 430 MB.
// Legitimate files stay far below (a Llama 3 vocabulary: ~50 MB of Values in
// a file of 700 MB or more). Charged before each allocation.
class Cursor {
 public:
  Cursor(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  size_t pos() const { return pos_; }
  bool Get(void* out, size_t k) {
    if (k > n_ - pos_) return false;
    std::memcpy(out, d_ + pos_, k);
    pos_ += k;
    return true;
  }
  template <typename T>
  bool Get(T* v) {
    return Get(static_cast<void*>(v), sizeof(T));
  }
  bool Str(std::string* s) {
    uint64_t len;
    if (!Get(&len) || len > kMaxString || len > n_ - pos_) return false;
    s->assign(reinterpret_cast<const char*>(d_ + pos_), len);
    pos_ += len;
    return true;
  }
  size_t left() const { return n_ - pos_; }
  const uint8_t* peek() const { return d_ + pos_; }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t pos_ = 0;
};

size_t ScalarSize(ValueType t) {
  switch (t) {
    case ValueType::kU8:
    case ValueType::kI8:
    case ValueType::kBool:
      return 1;
    case ValueType::kU16:
    case ValueType::kI16:
      return 2;
    case ValueType::kU32:
    case ValueType::kI32:
    case ValueType::kF32:
      return 4;
    case ValueType::kU64:
    case ValueType::kI64:
    case ValueType::kF64:
      return 8;
    default:
      return 0;
  }
}

/// `budget`: array elements still allowed in the whole metadata (decremented);
/// `mem`: the memory budget (charged for strings and array elements).
bool ReadValue(Cursor& c, ValueType t, int depth, uint64_t* budget, MemBudget* mem, Value* v,
               std::string* why) {
  v->type = t;
  switch (t) {
    case ValueType::kString: {
      uint64_t len = 0;
      if (c.left() >= 8) std::memcpy(&len, c.peek(), 8);
      if (len <= c.left() && !mem->Charge(MemBudget::Str(len), why)) return false;
      if (!c.Str(&v->s)) {
        *why = "string runs past the end of the file";
        return false;
      }
      return true;
    }
    case ValueType::kArray: {
      if (depth >= kMaxDepth) {
        *why = "arrays nested too deeply";
        return false;
      }
      uint32_t et;
      uint64_t n;
      if (!c.Get(&et) || !c.Get(&n)) {
        *why = "truncated array header";
        return false;
      }
      if (et > 12) {
        *why = "unknown array element type " + std::to_string(et);
        return false;
      }
      v->elem = static_cast<ValueType>(et);
      // Every element takes at least one byte (strings: 8): cap by what is left.
      const size_t min_size = v->elem == ValueType::kString  ? 8
                              : v->elem == ValueType::kArray ? 12
                                                             : ScalarSize(v->elem);
      if (n > c.left() / min_size) {
        *why = "array of " + std::to_string(n) + " elements runs past the end of the file";
        return false;
      }
      if (n > kMaxArrayElems) {
        *why = "array of " + std::to_string(n) + " elements exceeds the limit of " +
               std::to_string(kMaxArrayElems);
        return false;
      }
      if (n > *budget) {
        *why = "array of " + std::to_string(n) +
               " elements exceeds the metadata's total array-element limit of " +
               std::to_string(kMaxTotalArrayElems);
        return false;
      }
      *budget -= n;
      if (!mem->Charge(n * sizeof(Value), why)) return false;
      v->arr.resize(n);
      for (uint64_t k = 0; k < n; ++k) {
        if (!ReadValue(c, v->elem, depth + 1, budget, mem, &v->arr[k], why)) return false;
      }
      return true;
    }
    default: {
      const size_t sz = ScalarSize(t);
      if (sz == 0) {
        *why = "unknown value type " + std::to_string(static_cast<uint32_t>(t));
        return false;
      }
      uint8_t b[8] = {};
      if (!c.Get(b, sz)) {
        *why = "truncated value";
        return false;
      }
      switch (t) {
        case ValueType::kU8:
          v->u = b[0];
          v->i = b[0];
          v->f = b[0];
          break;
        case ValueType::kBool:
          v->u = b[0] != 0;
          v->i = v->u;
          v->f = static_cast<double>(v->u);
          break;
        case ValueType::kI8:
          v->i = static_cast<int8_t>(b[0]);
          break;
        case ValueType::kU16: {
          uint16_t x;
          std::memcpy(&x, b, 2);
          v->u = x;
          v->i = x;
          break;
        }
        case ValueType::kI16: {
          int16_t x;
          std::memcpy(&x, b, 2);
          v->i = x;
          break;
        }
        case ValueType::kU32: {
          uint32_t x;
          std::memcpy(&x, b, 4);
          v->u = x;
          v->i = x;
          break;
        }
        case ValueType::kI32: {
          int32_t x;
          std::memcpy(&x, b, 4);
          v->i = x;
          break;
        }
        case ValueType::kU64: {
          uint64_t x;
          std::memcpy(&x, b, 8);
          v->u = x;
          v->i = static_cast<int64_t>(x);
          break;
        }
        case ValueType::kI64: {
          int64_t x;
          std::memcpy(&x, b, 8);
          v->i = x;
          break;
        }
        case ValueType::kF32: {
          float x;
          std::memcpy(&x, b, 4);
          v->f = x;
          break;
        }
        case ValueType::kF64: {
          double x;
          std::memcpy(&x, b, 8);
          v->f = x;
          break;
        }
        default:
          break;
      }
      if (t == ValueType::kI8 || t == ValueType::kI16 || t == ValueType::kI32 ||
          t == ValueType::kI64) {
        v->u = static_cast<uint64_t>(v->i);
        v->f = static_cast<double>(v->i);
      } else if (t == ValueType::kU16 || t == ValueType::kU32 || t == ValueType::kU64) {
        v->f = static_cast<double>(v->u);
      }
      return true;
    }
  }
}

}  // namespace

bool Value::is_int() const {
  switch (type) {
    case ValueType::kU8:
    case ValueType::kI8:
    case ValueType::kU16:
    case ValueType::kI16:
    case ValueType::kU32:
    case ValueType::kI32:
    case ValueType::kU64:
    case ValueType::kI64:
      return true;
    default:
      return false;
  }
}

const char* GgmlTypeName(uint32_t t) {
  switch (t) {
    case kGgmlF32:
      return "F32";
    case kGgmlF16:
      return "F16";
    case kGgmlQ4_0:
      return "Q4_0";
    case kGgmlQ4_1:
      return "Q4_1";
    case kGgmlQ5_0:
      return "Q5_0";
    case kGgmlQ5_1:
      return "Q5_1";
    case kGgmlQ8_0:
      return "Q8_0";
    case kGgmlQ8_1:
      return "Q8_1";
    case kGgmlQ2_K:
      return "Q2_K";
    case kGgmlQ3_K:
      return "Q3_K";
    case kGgmlQ4_K:
      return "Q4_K";
    case kGgmlQ5_K:
      return "Q5_K";
    case kGgmlQ6_K:
      return "Q6_K";
    case kGgmlQ8_K:
      return "Q8_K";
    case kGgmlBF16:
      return "BF16";
    default:
      return "unknown";
  }
}

bool GgmlBlock(uint32_t t, uint64_t* elems, uint64_t* bytes) {
  switch (t) {
    case kGgmlF32:
      *elems = 1;
      *bytes = 4;
      return true;
    case kGgmlF16:
    case kGgmlBF16:
      *elems = 1;
      *bytes = 2;
      return true;
    case kGgmlQ4_0:
      *elems = 32;
      *bytes = 18;
      return true;
    case kGgmlQ4_1:
      *elems = 32;
      *bytes = 20;
      return true;
    case kGgmlQ5_0:
      *elems = 32;
      *bytes = 22;
      return true;
    case kGgmlQ5_1:
      *elems = 32;
      *bytes = 24;
      return true;
    case kGgmlQ8_0:
      *elems = 32;
      *bytes = 34;
      return true;
    case kGgmlQ8_1:
      *elems = 32;
      *bytes = 36;
      return true;
    case kGgmlQ2_K:
      *elems = 256;
      *bytes = 84;
      return true;
    case kGgmlQ3_K:
      *elems = 256;
      *bytes = 110;
      return true;
    case kGgmlQ4_K:
      *elems = 256;
      *bytes = 144;
      return true;
    case kGgmlQ5_K:
      *elems = 256;
      *bytes = 176;
      return true;
    case kGgmlQ6_K:
      *elems = 256;
      *bytes = 210;
      return true;
    case kGgmlQ8_K:
      *elems = 256;
      *bytes = 292;
      return true;
    default:
      return false;
  }
}

File::~File() = default;

bool File::Open(const std::string& path, std::string* err) {
  if (!map_.Open(path, err)) return false;
  if (map_.size() == 0) {
    *err = path + ": empty file";
    return false;
  }
  return OpenMemory(map_.data(), map_.size(), path, err);
}

bool File::OpenMemory(const uint8_t* data, size_t size, const std::string& label,
                      std::string* err) {
  base_ = data;
  size_ = size;
  label_ = label;
  kv_.clear();
  kv_index_.clear();
  tensors_.clear();
  t_index_.clear();
  if (!Parse(err)) {
    *err = label_ + ": " + *err;
    return false;
  }
  return true;
}

bool File::Parse(std::string* err) {
  Cursor c(base_, size_);
  char magic[4];
  if (!c.Get(magic, 4) || std::memcmp(magic, "GGUF", 4) != 0) {
    *err = "not a GGUF file (bad magic)";
    return false;
  }
  uint64_t n_tensors, n_kv;
  if (!c.Get(&version_) || !c.Get(&n_tensors) || !c.Get(&n_kv)) {
    *err = "truncated GGUF header";
    return false;
  }
  if (version_ != 2 && version_ != 3) {
    *err = "GGUF version " + std::to_string(version_) + " is not supported (2 and 3 are)";
    return false;
  }
  if (n_kv > c.left() / 12 || n_tensors > c.left() / 24) {
    *err = "header counts (" + std::to_string(n_tensors) + " tensors, " + std::to_string(n_kv) +
           " keys) exceed the file size";
    return false;
  }
  uint64_t budget = kMaxTotalArrayElems;
  MemBudget mem(size_);
  // Per entry: the kv_ slot (x3: vector growth), the index's map node, heap keys.
  const uint64_t kv_cost = 3 * sizeof(kv_[0]) + 96;
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key, why;
    uint32_t t;
    if (!c.Str(&key) || !c.Get(&t)) {
      *err = "metadata entry " + std::to_string(k) + ": truncated key";
      return false;
    }
    if (!mem.Charge(kv_cost + 2 * MemBudget::Str(key.size()), &why)) {
      *err = "metadata entry " + std::to_string(k) + ": " + why;
      return false;
    }
    Value v;
    if (t > 12 || !ReadValue(c, static_cast<ValueType>(t), 0, &budget, &mem, &v, &why)) {
      *err = "metadata " + key + ": " + (t > 12 ? "unknown value type " + std::to_string(t) : why);
      return false;
    }
    if (kv_index_.count(key)) {
      *err = "duplicate metadata key " + key;
      return false;
    }
    kv_index_[key] = kv_.size();
    kv_.emplace_back(key, std::move(v));
  }
  uint64_t alignment = 32;
  if (const Value* a = Find("general.alignment")) {
    if (!a->is_int() || a->u == 0 || a->u > 65536 || (a->u & (a->u - 1)) != 0) {
      *err = "general.alignment must be a power of two <= 65536";
      return false;
    }
    alignment = a->u;
  }
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorInfo ti;
    uint32_t nd;
    if (!c.Str(&ti.name) || !c.Get(&nd)) {
      *err = "tensor info " + std::to_string(k) + ": truncated";
      return false;
    }
    std::string why;
    if (!mem.Charge(3 * sizeof(TensorInfo) + 96 + 4 * 8 + 2 * MemBudget::Str(ti.name.size()),
                    &why)) {
      *err = "tensor info " + std::to_string(k) + ": " + why;
      return false;
    }
    if (nd == 0 || nd > 4) {
      *err = "tensor " + ti.name + ": " + std::to_string(nd) + " dimensions (1..4 supported)";
      return false;
    }
    ti.dims.resize(nd);
    for (uint32_t d = 0; d < nd; ++d) {
      if (!c.Get(&ti.dims[d])) {
        *err = "tensor " + ti.name + ": truncated dimensions";
        return false;
      }
    }
    if (!c.Get(&ti.type) || !c.Get(&ti.offset)) {
      *err = "tensor " + ti.name + ": truncated info";
      return false;
    }
    uint64_t be, bb;
    if (!GgmlBlock(ti.type, &be, &bb)) {
      *err = "tensor " + ti.name + ": unknown ggml type " + std::to_string(ti.type);
      return false;
    }
    uint64_t n = 1;
    for (uint64_t d : ti.dims) {
      if (d == 0 || d > (1ull << 40) || n > (1ull << 40) / d) {
        *err = "tensor " + ti.name + ": bad or too large dimensions";
        return false;
      }
      n *= d;
    }
    if (ti.dims[0] % be != 0) {
      *err = "tensor " + ti.name + ": row length " + std::to_string(ti.dims[0]) +
             " is not a multiple of the " + GgmlTypeName(ti.type) + " block (" +
             std::to_string(be) + ")";
      return false;
    }
    ti.nbytes = n / be * bb;
    if (t_index_.count(ti.name)) {
      *err = "duplicate tensor " + ti.name;
      return false;
    }
    t_index_[ti.name] = tensors_.size();
    tensors_.push_back(std::move(ti));
  }
  const uint64_t data_start = (c.pos() + alignment - 1) / alignment * alignment;
  for (TensorInfo& ti : tensors_) {
    if (ti.offset % alignment != 0) {
      *err = "tensor " + ti.name + ": offset " + std::to_string(ti.offset) + " not aligned to " +
             std::to_string(alignment);
      return false;
    }
    if (data_start > size_ || ti.offset > size_ - data_start ||
        ti.nbytes > size_ - data_start - ti.offset) {
      *err = "tensor " + ti.name + ": data (" + std::to_string(ti.nbytes) + " bytes at " +
             std::to_string(ti.offset) + ") beyond end of file (truncated?)";
      return false;
    }
    ti.data = base_ + data_start + ti.offset;
  }
  return true;
}

const Value* File::Find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const TensorInfo* File::FindTensor(const std::string& name) const {
  auto it = t_index_.find(name);
  return it == t_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace lamina::gguf
