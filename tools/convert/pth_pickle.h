// The pickle part of the .pth reader (pth_reader.h): a strict unpickler for
// the protocol-2 subset torch.save writes for a {name: tensor} state dict.
// Storages are resolved as persistent ids (not loaded); hostile input (deep
// nesting, huge MARK/object counts, cycles) is refused with a clear error.
//
// Opcodes: PROTO FRAME STOP MARK EMPTY_DICT EMPTY_TUPLE EMPTY_LIST TUPLE
// TUPLE1 TUPLE2 TUPLE3 BINUNICODE SHORT_BINUNICODE BININT BININT1 BININT2
// LONG1 BINFLOAT NEWFALSE NEWTRUE NONE GLOBAL REDUCE BINPERSID SETITEM
// SETITEMS APPEND APPENDS BUILD BINGET LONG_BINGET BINPUT LONG_BINPUT MEMOIZE.
// Callables: collections.OrderedDict, torch._utils._rebuild_tensor_v2,
// torch._utils._rebuild_parameter; storages torch.<T>Storage (typed) and
// dtype globals torch.<dtype>.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tools/convert/pth_reader.h"

namespace lamina::pth::pickle {

struct Obj;
using P = std::shared_ptr<Obj>;

struct Obj {
  enum Kind { kNone, kBool, kInt, kFloat, kStr, kTuple, kList, kDict, kGlobal, kStorage, kTensor };
  Kind kind = kNone;
  int64_t i = 0;
  double f = 0;
  std::string s;  // string; global "module.name"; storage key
  std::vector<P> items;
  std::vector<std::pair<P, P>> dict;
  // storage
  DType dtype = DType::kF32;
  int64_t numel = 0;
  // tensor
  P storage;
  int64_t offset = 0;
  std::vector<int64_t> shape, stride;
  // Nesting bookkeeping (hostile-input guards): `depth` is 1 + the deepest
  // child's depth; `contained` is set once the object is inside another one,
  // after which it may no longer be mutated (so recorded depths never go
  // stale and no reference cycle can be closed).
  int depth = 1;
  bool contained = false;
};

const char* KindName(Obj::Kind k);

/// Decodes the pickle d[0, n) into *root. False + *err (naming the opcode and
/// its offset) on anything outside the subset above or on hostile input.
bool Unpickle(const uint8_t* d, size_t n, P* root, std::string* err);

}  // namespace lamina::pth::pickle
