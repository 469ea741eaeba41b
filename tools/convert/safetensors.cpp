#include "tools/convert/safetensors.h"

#include <cstring>

#include "kernels/ref/fp16.h"
#include "tools/import/json.h"

namespace lamina::convert {

size_t ElemSize(StType t) { return t == StType::kF32 ? 4 : 2; }

// Parses one safetensors file's header; adds its tensors to *out.
bool ReadSafetensors(const MappedFile& f, std::map<std::string, StTensor>* out, std::string* err) {
  const std::string& p = f.path();
  if (f.size() < 8) {
    *err = p + ": too small for a safetensors file";
    return false;
  }
  uint64_t n;
  std::memcpy(&n, f.data(), 8);
  if (n > f.size() - 8 || n > (uint64_t{100} << 20)) {
    *err = p + ": safetensors header length " + std::to_string(n) + " beyond end of file";
    return false;
  }
  json::Value hdr;
  std::string jerr;
  if (!json::Parse(std::string_view(reinterpret_cast<const char*>(f.data()) + 8, n), &hdr, &jerr)) {
    *err = p + ": safetensors header: " + jerr;
    return false;
  }
  if (!hdr.is_object()) {
    *err = p + ": safetensors header is not a JSON object";
    return false;
  }
  const uint64_t base = 8 + n, avail = f.size() - base;
  for (const auto& [name, v] : hdr.members()) {
    if (name == "__metadata__") continue;
    const std::string where = p + ": tensor " + name + ": ";
    const json::Value* dt = v.Find("dtype");
    const json::Value* sh = v.Find("shape");
    const json::Value* off = v.Find("data_offsets");
    if (!dt || !dt->is_string() || !sh || !sh->is_array() || !off || !off->is_array() ||
        off->size() != 2) {
      *err = where + "malformed entry (needs dtype, shape, data_offsets)";
      return false;
    }
    StTensor t;
    t.name = name;
    t.dtype_name = dt->as_string();
    t.dtype = t.dtype_name == "F32"    ? StType::kF32
              : t.dtype_name == "F16"  ? StType::kF16
              : t.dtype_name == "BF16" ? StType::kBF16
                                       : StType::kOther;
    uint64_t elems = 1;
    for (const auto& d : sh->items()) {
      int64_t x;
      if (!d.as_int64(&x) || x < 0 || x > (int64_t{1} << 40) ||
          __builtin_mul_overflow(elems, static_cast<uint64_t>(x), &elems)) {
        *err = where + "bad shape";
        return false;
      }
      t.shape.push_back(static_cast<uint64_t>(x));
    }
    int64_t b, e;
    if (!off->items()[0].as_int64(&b) || !off->items()[1].as_int64(&e) || b < 0 || e < b ||
        static_cast<uint64_t>(e) > avail) {
      *err = where + "data_offsets beyond end of file";
      return false;
    }
    t.file = &f;
    t.offset = base + static_cast<uint64_t>(b);
    t.size = static_cast<uint64_t>(e - b);
    if (t.dtype != StType::kOther) {
      uint64_t bytes;
      if (__builtin_mul_overflow(elems, ElemSize(t.dtype), &bytes) || bytes != t.size) {
        *err = where + "byte size " + std::to_string(t.size) + " does not match shape and dtype";
        return false;
      }
    }
    if (!out->emplace(name, std::move(t)).second) {
      *err = where + "appears in more than one shard";
      return false;
    }
  }
  return true;
}

float LoadElem(StType t, const uint8_t* p) {
  switch (t) {
    case StType::kF32: {
      float f;
      std::memcpy(&f, p, 4);
      return f;
    }
    case StType::kF16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return F16ToF32(h);
    }
    case StType::kBF16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return BF16ToF32(h);
    }
    case StType::kOther:
      break;
  }
  return 0.f;
}

}  // namespace lamina::convert
