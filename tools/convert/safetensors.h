// Safetensors files (Hugging Face checkpoints and PEFT adapters): the JSON
// header parsed and checked against the file (offsets in bounds, byte sizes
// matching shape and dtype); tensors stay in the mapping.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tools/convert/mapped_file.h"

namespace lamina::convert {

enum class StType { kF32, kF16, kBF16, kOther };

struct StTensor {
  std::string name;
  std::string dtype_name;
  StType dtype = StType::kOther;
  std::vector<uint64_t> shape;
  const MappedFile* file = nullptr;
  uint64_t offset = 0;  // from file start
  uint64_t size = 0;
};

/// Bytes per element of a float type (kOther: not meaningful).
size_t ElemSize(StType t);

/// Parses one safetensors file's header; adds its tensors to *out (a name
/// already present is an error: "appears in more than one shard").
bool ReadSafetensors(const MappedFile& f, std::map<std::string, StTensor>* out, std::string* err);

/// Element p of a float tensor as f32 (0 for kOther).
float LoadElem(StType t, const uint8_t* p);

}  // namespace lamina::convert
