// torch.save zip + pickle reader (see pth_reader.h for what is accepted).
#include "tools/convert/pth_reader.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>

#include "loader/mem_budget.h"

namespace lamina::pth {
namespace {

uint16_t U16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t U32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t U64(const uint8_t* p) { return U32(p) | (static_cast<uint64_t>(U32(p + 4)) << 32); }

constexpr uint32_t kSigEocd = 0x06054b50;
constexpr uint32_t kSigZip64Locator = 0x07064b50;
constexpr uint32_t kSigZip64Eocd = 0x06064b50;
constexpr uint32_t kSigCentral = 0x02014b50;
constexpr uint32_t kSigLocal = 0x04034b50;

std::string Hex2(unsigned v) {
  char b[8];
  std::snprintf(b, sizeof b, "0x%02x", v & 0xFFu);
  return b;
}

}  // namespace

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

// ------------------------------------------------------------------- zip

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
    if (U32(base_ + p) == kSigEocd && p + 22 + U16(base_ + p + 20) == size_) {
      eocd = p;
      break;
    }
  }
  if (eocd == SIZE_MAX) {
    *err = "no zip end-of-central-directory record (not a torch.save archive, or truncated)";
    return false;
  }
  const uint8_t* e = base_ + eocd;
  uint64_t n_entries = U16(e + 10);
  uint64_t cd_size = U32(e + 12);
  uint64_t cd_offset = U32(e + 16);
  if (U16(e + 4) != 0 || U16(e + 6) != 0 || U16(e + 8) != U16(e + 10)) {
    *err = "multi-disk zip archives are not supported";
    return false;
  }
  if (n_entries == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_offset == 0xFFFFFFFFu) {
    if (eocd < 20 || U32(base_ + eocd - 20) != kSigZip64Locator) {
      *err = "zip end record needs ZIP64 but the ZIP64 locator is missing";
      return false;
    }
    const uint64_t z64 = U64(base_ + eocd - 20 + 8);
    if (z64 > eocd || eocd - z64 < 56 || U32(base_ + z64) != kSigZip64Eocd) {
      *err = "bad ZIP64 end-of-central-directory offset";
      return false;
    }
    const uint8_t* z = base_ + z64;
    if (U32(z + 16) != 0 || U32(z + 20) != 0 || U64(z + 24) != U64(z + 32)) {
      *err = "multi-disk zip archives are not supported";
      return false;
    }
    n_entries = U64(z + 32);
    cd_size = U64(z + 40);
    cd_offset = U64(z + 48);
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
    if (cd_end - p < 46 || U32(base_ + p) != kSigCentral) {
      *err = "bad central directory entry " + std::to_string(i) + " at offset " + std::to_string(p);
      return false;
    }
    const uint8_t* c = base_ + p;
    const uint16_t flags = U16(c + 8), method = U16(c + 10);
    uint64_t csize = U32(c + 20), usize = U32(c + 24);
    const size_t nlen = U16(c + 28), elen = U16(c + 30), clen = U16(c + 32);
    uint64_t local = U32(c + 42);
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
      const uint16_t id = U16(x), sz = U16(x + 2);
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
          *v = U64(q);
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
    if (local > size_ || size_ - local < 30 || U32(base_ + local) != kSigLocal) {
      *err = "entry " + name + ": bad local header offset " + std::to_string(local);
      return false;
    }
    const uint64_t data = local + 30 + U16(base_ + local + 26) + U16(base_ + local + 28);
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

// ---------------------------------------------------------------- pickle
namespace {

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

// A state dict nests ~5 deep; anything far deeper is hostile (destroying a
// deep shared_ptr chain recurses and would overflow the stack).
constexpr int kMaxPickleDepth = 64;

P Make(Obj::Kind k) {
  auto o = std::make_shared<Obj>();
  o->kind = k;
  return o;
}

const char* KindName(Obj::Kind k) {
  static const char* n[] = {"None", "bool", "int",    "float",   "str",   "tuple",
                            "list", "dict", "global", "storage", "tensor"};
  return n[k];
}

bool StorageDType(const std::string& g, DType* t) {
  static const std::pair<const char*, DType> kMap[] = {
      {"torch.FloatStorage", DType::kF32},
      {"torch.float32", DType::kF32},
      {"torch.float", DType::kF32},
      {"torch.HalfStorage", DType::kF16},
      {"torch.float16", DType::kF16},
      {"torch.half", DType::kF16},
      {"torch.BFloat16Storage", DType::kBF16},
      {"torch.bfloat16", DType::kBF16},
      {"torch.DoubleStorage", DType::kF64},
      {"torch.float64", DType::kF64},
      {"torch.CharStorage", DType::kI8},
      {"torch.int8", DType::kI8},
      {"torch.ByteStorage", DType::kU8},
      {"torch.uint8", DType::kU8},
      {"torch.UntypedStorage", DType::kU8},
      {"torch.ShortStorage", DType::kI16},
      {"torch.int16", DType::kI16},
      {"torch.IntStorage", DType::kI32},
      {"torch.int32", DType::kI32},
      {"torch.LongStorage", DType::kI64},
      {"torch.int64", DType::kI64},
      {"torch.BoolStorage", DType::kBool},
      {"torch.bool", DType::kBool},
  };
  for (const auto& [name, dt] : kMap) {
    if (g == name) {
      *t = dt;
      return true;
    }
  }
  return false;
}

bool IntList(const P& o, std::vector<int64_t>* out) {
  if (!o || (o->kind != Obj::kTuple && o->kind != Obj::kList)) return false;
  out->clear();
  for (const P& x : o->items) {
    if (!x || x->kind != Obj::kInt) return false;
    out->push_back(x->i);
  }
  return true;
}

// Memory per pickle object: the Obj and its shared_ptr control block, and
// its stack slot with vector growth slack; charged to MemBudget(pickle size)
// (loader/mem_budget.h) on every Make / MARK / string, so 10 million MARKs
// (or NONEs) of a 10 MB pickle are refused instead of taking 145 MB (or GBs).
// A state dict makes ~10 objects per tensor: far below.
constexpr uint64_t kObjCost = sizeof(Obj) + 32 + 3 * sizeof(P);
constexpr uint64_t kMarkCost = 3 * sizeof(size_t);

class Unpickler {
 public:
  Unpickler(const uint8_t* d, size_t n) : d_(d), n_(n), mem_(n) {}

  bool Run(P* result, std::string* err) {
    while (true) {
      if (pos_ >= n_) return Fail("pickle ends without STOP (truncated)", err);
      const size_t at = pos_;
      const uint8_t op = d_[pos_++];
      op_at_ = at;
      switch (op) {
        case 0x80: {  // PROTO
          uint8_t v;
          if (!Byte(&v, err)) return false;
          if (v < 2 || v > 5) return Fail("unsupported pickle protocol " + std::to_string(v), err);
          break;
        }
        case 0x95: {  // FRAME
          uint64_t len;
          if (!Raw(8, err)) return false;
          len = U64(d_ + pos_ - 8);
          (void)len;
          break;
        }
        case '.': {  // STOP
          if (stack_.size() != 1 || !marks_.empty())
            return Fail("STOP with " + std::to_string(stack_.size()) + " stack items", err);
          *result = stack_.back();
          return true;
        }
        case '(':
          if (!Charge(kMarkCost, err)) return false;
          marks_.push_back(stack_.size());
          break;
        case '}':
          Push(Make(Obj::kDict));
          break;
        case ')':
          Push(Make(Obj::kTuple));
          break;
        case ']':
          Push(Make(Obj::kList));
          break;
        case 'N':
          Push(Make(Obj::kNone));
          break;
        case 0x88:
        case 0x89: {
          P o = Make(Obj::kBool);
          o->i = op == 0x88;
          Push(o);
          break;
        }
        case 't': {
          std::vector<P> items;
          if (!PopMark(&items, err)) return false;
          P o = Make(Obj::kTuple);
          o->items = std::move(items);
          if (!Seal(o, err)) return false;
          Push(o);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {
          const size_t k = op - 0x84u;
          if (stack_.size() < Floor() + k) return Fail("stack underflow", err);
          P o = Make(Obj::kTuple);
          o->items.assign(stack_.end() - k, stack_.end());
          stack_.resize(stack_.size() - k);
          if (!Seal(o, err)) return false;
          Push(o);
          break;
        }
        case 'X':
        case 0x8c: {  // BINUNICODE, SHORT_BINUNICODE
          uint64_t len;
          if (op == 'X') {
            if (!Raw(4, err)) return false;
            len = U32(d_ + pos_ - 4);
          } else {
            uint8_t b;
            if (!Byte(&b, err)) return false;
            len = b;
          }
          if (!Raw(len, err) || !Charge(MemBudget::Str(len), err)) return false;
          P o = Make(Obj::kStr);
          o->s.assign(reinterpret_cast<const char*>(d_ + pos_ - len), len);
          Push(o);
          break;
        }
        case 'J': {
          if (!Raw(4, err)) return false;
          P o = Make(Obj::kInt);
          o->i = static_cast<int32_t>(U32(d_ + pos_ - 4));
          Push(o);
          break;
        }
        case 'K': {
          uint8_t b;
          if (!Byte(&b, err)) return false;
          P o = Make(Obj::kInt);
          o->i = b;
          Push(o);
          break;
        }
        case 'M': {
          if (!Raw(2, err)) return false;
          P o = Make(Obj::kInt);
          o->i = U16(d_ + pos_ - 2);
          Push(o);
          break;
        }
        case 0x8a: {  // LONG1
          uint8_t len;
          if (!Byte(&len, err)) return false;
          if (len > 8) return Fail("LONG1 integer wider than 64 bits", err);
          if (!Raw(len, err)) return false;
          uint64_t v = 0;
          for (int b = 0; b < len; ++b) v |= static_cast<uint64_t>(d_[pos_ - len + b]) << (8 * b);
          if (len > 0 && len < 8 && (d_[pos_ - 1] & 0x80)) v |= ~uint64_t{0} << (8 * len);
          P o = Make(Obj::kInt);
          o->i = static_cast<int64_t>(v);
          Push(o);
          break;
        }
        case 'G': {  // BINFLOAT, big-endian
          if (!Raw(8, err)) return false;
          uint64_t v = 0;
          for (int b = 0; b < 8; ++b) v = (v << 8) | d_[pos_ - 8 + b];
          P o = Make(Obj::kFloat);
          std::memcpy(&o->f, &v, 8);
          Push(o);
          break;
        }
        case 'c': {  // GLOBAL module\nname\n
          std::string mod, name;
          if (!Line(&mod, err) || !Line(&name, err)) return false;
          P o = Make(Obj::kGlobal);
          o->s = mod + "." + name;
          Push(o);
          break;
        }
        case 'R': {  // REDUCE
          P args, fn;
          if (!Pop(&args, err) || !Pop(&fn, err)) return false;
          P out;
          if (!Reduce(fn, args, &out, err)) return false;
          if (!Seal(out, err)) return false;
          Push(out);
          break;
        }
        case 'Q': {  // BINPERSID
          P pid;
          if (!Pop(&pid, err)) return false;
          P out;
          if (!PersistentLoad(pid, &out, err)) return false;
          if (!Seal(out, err)) return false;
          Push(out);
          break;
        }
        case 's': {
          P v, k;
          if (!Pop(&v, err) || !Pop(&k, err)) return false;
          P dict;
          if (!Top(&dict, err)) return false;
          if (dict->kind != Obj::kDict) return Fail("SETITEM on a non-dict", err);
          if (!Insert(dict, k, err) || !Insert(dict, v, err)) return false;
          dict->dict.emplace_back(k, v);
          break;
        }
        case 'u': {
          std::vector<P> items;
          if (!PopMark(&items, err)) return false;
          P dict;
          if (!Top(&dict, err)) return false;
          if (dict->kind != Obj::kDict) return Fail("SETITEMS on a non-dict", err);
          if (items.size() % 2) return Fail("SETITEMS with an odd item count", err);
          for (const P& x : items)
            if (!Insert(dict, x, err)) return false;
          for (size_t k = 0; k < items.size(); k += 2)
            dict->dict.emplace_back(items[k], items[k + 1]);
          break;
        }
        case 'a': {
          P v;
          if (!Pop(&v, err)) return false;
          P list;
          if (!Top(&list, err)) return false;
          if (list->kind != Obj::kList) return Fail("APPEND on a non-list", err);
          if (!Insert(list, v, err)) return false;
          list->items.push_back(v);
          break;
        }
        case 'e': {
          std::vector<P> items;
          if (!PopMark(&items, err)) return false;
          P list;
          if (!Top(&list, err)) return false;
          if (list->kind != Obj::kList) return Fail("APPENDS on a non-list", err);
          for (const P& x : items)
            if (!Insert(list, x, err)) return false;
          for (P& x : items) list->items.push_back(std::move(x));
          break;
        }
        case 'b': {  // BUILD: only the OrderedDict state (_metadata) torch writes
          P state, obj;
          if (!Pop(&state, err) || !Top(&obj, err)) return false;
          if (obj->kind != Obj::kDict)
            return Fail(std::string("BUILD on a ") + KindName(obj->kind) + " is not supported",
                        err);
          // The state is discarded; it was depth-checked when it was built.
          break;
        }
        case 'h':
        case 'j': {
          uint32_t idx;
          if (op == 'h') {
            uint8_t b;
            if (!Byte(&b, err)) return false;
            idx = b;
          } else {
            if (!Raw(4, err)) return false;
            idx = U32(d_ + pos_ - 4);
          }
          auto it = memo_.find(idx);
          if (it == memo_.end()) return Fail("memo key " + std::to_string(idx) + " not set", err);
          Push(it->second);
          break;
        }
        case 'q':
        case 'r':
        case 0x94: {
          uint32_t idx;
          if (op == 'q') {
            uint8_t b;
            if (!Byte(&b, err)) return false;
            idx = b;
          } else if (op == 'r') {
            if (!Raw(4, err)) return false;
            idx = U32(d_ + pos_ - 4);
          } else {
            idx = static_cast<uint32_t>(memo_.size());
          }
          P top;
          if (!Top(&top, err)) return false;
          if (memo_.size() > (1u << 24)) return Fail("memo too large", err);
          memo_[idx] = top;
          break;
        }
        default:
          return Fail("unsupported pickle opcode " + Hex2(op), err);
      }
      if (stack_.size() > (1u << 24)) return Fail("pickle stack too deep", err);
      if (stack_.size() > stack_seen_) {  // a new object (or memo reference) was pushed
        if (!Charge(kObjCost * (stack_.size() - stack_seen_), err)) return false;
      }
      stack_seen_ = stack_.size();
    }
  }

 private:
  bool Fail(const std::string& what, std::string* err) {
    *err = "data.pkl: " + what + " at offset " + std::to_string(op_at_);
    return false;
  }
  bool Raw(uint64_t n, std::string* err) {
    if (n > n_ - pos_) return Fail("pickle truncated", err);
    pos_ += n;
    return true;
  }
  bool Byte(uint8_t* b, std::string* err) {
    if (!Raw(1, err)) return false;
    *b = d_[pos_ - 1];
    return true;
  }
  bool Line(std::string* s, std::string* err) {
    const size_t start = pos_;
    while (pos_ < n_ && d_[pos_] != '\n') {
      if (pos_ - start > 256) return Fail("GLOBAL name too long", err);
      ++pos_;
    }
    if (pos_ >= n_) return Fail("pickle truncated in GLOBAL", err);
    s->assign(reinterpret_cast<const char*>(d_ + start), pos_ - start);
    ++pos_;
    return true;
  }
  size_t Floor() const { return marks_.empty() ? 0 : marks_.back(); }
  bool TooDeep(int depth, std::string* err) {
    return Fail("objects nested deeper than " + std::to_string(kMaxPickleDepth) + " levels (" +
                    std::to_string(depth) + "; a state dict needs ~5: malformed or hostile)",
                err);
  }
  // A freshly built immutable object (tuple, REDUCE/BINPERSID result): its
  // depth from its children, which become contained.
  bool Seal(const P& o, std::string* err) {
    int d = 0;
    auto child = [&](const P& c) {
      if (!c) return;
      d = std::max(d, c->depth);
      c->contained = true;
    };
    for (const P& c : o->items) child(c);
    for (const auto& kv : o->dict) {
      child(kv.first);
      child(kv.second);
    }
    child(o->storage);
    o->depth = std::max(o->depth, 1 + d);
    if (o->depth > kMaxPickleDepth) return TooDeep(o->depth, err);
    return true;
  }
  // Checks before `child` is put into the mutable container `c` (list/dict).
  bool Insert(const P& c, const P& child, std::string* err) {
    if (c->contained)
      return Fail(std::string("modifying a ") + KindName(c->kind) +
                      " already stored inside another object is not supported",
                  err);
    if (child.get() == c.get())
      return Fail(std::string("a ") + KindName(c->kind) + " inserted into itself", err);
    const int d = 1 + child->depth;
    if (d > kMaxPickleDepth) return TooDeep(d, err);
    c->depth = std::max(c->depth, d);
    child->contained = true;
    return true;
  }
  // Every object ends up pushed (or is a REDUCE/BINPERSID result that is), so
  // charging here covers each Make; memo GETs push an existing object (the
  // charge then covers its stack slot).
  void Push(P o) { stack_.push_back(std::move(o)); }
  bool Charge(uint64_t bytes, std::string* err) {
    std::string why;
    return mem_.Charge(bytes, &why) || Fail("pickle " + why, err);
  }
  bool Pop(P* o, std::string* err) {
    if (stack_.size() <= Floor()) return Fail("pickle stack underflow", err);
    *o = std::move(stack_.back());
    stack_.pop_back();
    return true;
  }
  bool Top(P* o, std::string* err) {
    if (stack_.size() <= Floor()) return Fail("pickle stack underflow", err);
    *o = stack_.back();
    return true;
  }
  bool PopMark(std::vector<P>* items, std::string* err) {
    if (marks_.empty()) return Fail("no MARK on the pickle stack", err);
    const size_t m = marks_.back();
    marks_.pop_back();
    items->assign(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return true;
  }

  bool PersistentLoad(const P& pid, P* out, std::string* err) {
    // ('storage', storage_type, key, location, numel)
    if (pid->kind != Obj::kTuple || pid->items.size() != 5 || pid->items[0]->kind != Obj::kStr ||
        pid->items[0]->s != "storage")
      return Fail("persistent id is not a ('storage', type, key, location, numel) tuple", err);
    const P& type = pid->items[1];
    const P& key = pid->items[2];
    const P& numel = pid->items[4];
    if (type->kind != Obj::kGlobal) return Fail("storage type is not a global", err);
    DType dt;
    if (!StorageDType(type->s, &dt)) return Fail("unsupported storage type " + type->s, err);
    if (key->kind != Obj::kStr || key->s.empty() || key->s.size() > 64)
      return Fail("storage key is not a short string", err);
    if (numel->kind != Obj::kInt || numel->i < 0) return Fail("bad storage size", err);
    P s = Make(Obj::kStorage);
    s->dtype = dt;
    s->s = key->s;
    s->numel = numel->i;
    *out = s;
    return true;
  }

  bool Reduce(const P& fn, const P& args, P* out, std::string* err) {
    if (fn->kind != Obj::kGlobal)
      return Fail(std::string("REDUCE of a ") + KindName(fn->kind) + " (not a global)", err);
    if (args->kind != Obj::kTuple) return Fail("REDUCE arguments are not a tuple", err);
    const auto& a = args->items;
    if (fn->s == "collections.OrderedDict") {
      if (!a.empty()) return Fail("collections.OrderedDict with arguments", err);
      *out = Make(Obj::kDict);
      return true;
    }
    if (fn->s == "torch._utils._rebuild_tensor_v2" || fn->s == "torch._utils._rebuild_tensor") {
      // (storage, storage_offset, size, stride[, requires_grad, backward_hooks[, metadata]])
      if (a.size() < 4 || a.size() > 7) return Fail(fn->s + ": wrong argument count", err);
      if (a[0]->kind != Obj::kStorage)
        return Fail(fn->s + ": first argument is not a storage", err);
      if (a[1]->kind != Obj::kInt) return Fail(fn->s + ": storage offset is not an int", err);
      P t = Make(Obj::kTensor);
      t->storage = a[0];
      t->offset = a[1]->i;
      if (!IntList(a[2], &t->shape) || !IntList(a[3], &t->stride) ||
          t->shape.size() != t->stride.size())
        return Fail(fn->s + ": bad size/stride", err);
      *out = t;
      return true;
    }
    if (fn->s == "torch._utils._rebuild_parameter" ||
        fn->s == "torch._utils._rebuild_parameter_with_state") {
      if (a.size() < 3 || a[0]->kind != Obj::kTensor)
        return Fail(fn->s + ": expected (tensor, requires_grad, hooks)", err);
      *out = a[0];
      return true;
    }
    return Fail("unsupported callable " + fn->s, err);
  }

  const uint8_t* d_;
  size_t n_;
  size_t pos_ = 0, op_at_ = 0;
  std::vector<P> stack_;
  std::vector<size_t> marks_;
  std::map<uint32_t, P> memo_;
  MemBudget mem_;
  size_t stack_seen_ = 0;  // stack size after the previous opcode
};

}  // namespace

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
  Unpickler up(zip_.base() + pkl->offset, pkl->size);
  P root;
  if (!up.Run(&root, err)) {
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
