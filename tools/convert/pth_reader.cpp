// torch.save state-dict reader (see pth_reader.h): the zip part is
// pth_zip.cpp, the pickle part pth_pickle.cpp; this file turns the decoded
// {name: tensor} dict into checked tensor views into the archive.
#include "tools/convert/pth_reader.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "tools/convert/pth_pickle.h"

namespace lamina::pth {

using pickle::KindName;
using pickle::Obj;
using pickle::P;

const char* DTypeName(DType t) {
  switch (t) {
    case DType::kF32:
      return "float32";
    case DType::kF16:
      return "float16";
    case DType::kBF16:
      return "bfloat16";
    case DType::kF64:
      return "float64";
    case DType::kI8:
      return "int8";
    case DType::kU8:
      return "uint8";
    case DType::kI16:
      return "int16";
    case DType::kI32:
      return "int32";
    case DType::kI64:
      return "int64";
    case DType::kBool:
      return "bool";
  }
  return "?";
}

size_t DTypeSize(DType t) {
  switch (t) {
    case DType::kF32:
    case DType::kI32:
      return 4;
    case DType::kF16:
    case DType::kBF16:
    case DType::kI16:
      return 2;
    case DType::kF64:
    case DType::kI64:
      return 8;
    case DType::kI8:
    case DType::kU8:
    case DType::kBool:
      return 1;
  }
  return 1;
}

bool StateDict::Open(const std::string& path, std::string* err) {
  if (!zip_.Open(path, err)) return false;
  return Decode(err);
}

bool StateDict::OpenMemory(const uint8_t* data, size_t size, const std::string& label,
                           std::string* err) {
  if (!zip_.OpenMemory(data, size, label, err)) return false;
  return Decode(err);
}

bool StateDict::Decode(std::string* err) {
  tensors_.clear();
  index_.clear();
  const std::string& label = zip_.label();
  const ZipArchive::Entry* pkl = nullptr;
  std::string prefix;
  for (const auto& e : zip_.entries()) {
    const size_t slash = e.name.find('/');
    if (slash != std::string::npos && e.name.compare(slash, std::string::npos, "/data.pkl") == 0) {
      pkl = &e;
      prefix = e.name.substr(0, slash);
      break;
    }
  }
  if (!pkl) {
    *err = label +
           ": no <archive>/data.pkl entry (not a torch.save zip archive; legacy "
           "non-zip .pth files are not supported — re-save with torch >= 1.6)";
    return false;
  }
  // torch >= 2.1 records the storages' byte order; lamina reads little-endian only.
  if (const ZipArchive::Entry* bo = zip_.Find(prefix + "/byteorder")) {
    const std::string order(reinterpret_cast<const char*>(zip_.base() + bo->offset),
                            static_cast<size_t>(std::min<uint64_t>(bo->size, 16)));
    if (order != "little") {
      *err = label + ": storages are in '" + order + "' byte order (only little-endian)";
      return false;
    }
  }
  P root;
  if (!pickle::Unpickle(zip_.base() + pkl->offset, pkl->size, &root, err)) {
    *err = label + ": " + *err;
    return false;
  }
  if (root->kind != Obj::kDict) {
    *err = label + ": data.pkl holds a " + KindName(root->kind) + ", not a state dict";
    return false;
  }
  for (const auto& [k, v] : root->dict) {
    if (k->kind != Obj::kStr) {
      *err = label + ": state dict key is a " + KindName(k->kind) + ", not a string";
      return false;
    }
    if (v->kind != Obj::kTensor) {
      *err = label + ": state dict entry " + k->s + " is a " + KindName(v->kind) + ", not a tensor";
      return false;
    }
    Tensor t;
    t.name = k->s;
    t.dtype = v->storage->dtype;
    t.shape = v->shape;
    const std::string where = label + ": tensor " + t.name + ": ";
    const size_t es = DTypeSize(t.dtype);
    // Contiguity and size, overflow-checked.
    int64_t numel = 1;
    for (size_t d = t.shape.size(); d-- > 0;) {
      if (t.shape[d] < 0) {
        *err = where + "negative dimension";
        return false;
      }
      if (t.shape[d] != 1 && v->stride[d] != numel) {
        *err = where + "non-contiguous strides (only contiguous tensors are supported)";
        return false;
      }
      if (t.shape[d] != 0 && numel > (int64_t{1} << 50) / t.shape[d]) {
        *err = where + "too many elements";
        return false;
      }
      numel *= t.shape[d];
    }
    if (v->offset < 0 || v->offset > v->storage->numel || numel > v->storage->numel - v->offset) {
      *err = where + "elements [" + std::to_string(v->offset) + ", +" + std::to_string(numel) +
             ") outside its storage of " + std::to_string(v->storage->numel);
      return false;
    }
    const std::string sname = prefix + "/data/" + v->storage->s;
    const ZipArchive::Entry* se = zip_.Find(sname);
    if (!se) {
      *err = where + "storage entry " + sname + " missing from the archive";
      return false;
    }
    if (static_cast<uint64_t>(v->storage->numel) > se->size / es) {
      *err = where + "storage " + sname + " holds " + std::to_string(se->size) +
             " bytes, fewer than " + std::to_string(v->storage->numel) + " x " + DTypeName(t.dtype);
      return false;
    }
    t.data = zip_.base() + se->offset + static_cast<uint64_t>(v->offset) * es;
    t.nbytes = static_cast<size_t>(numel) * es;
    if (index_.count(t.name)) {
      *err = label + ": duplicate key " + t.name;
      return false;
    }
    index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
  return true;
}

const Tensor* StateDict::Find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace lamina::pth
