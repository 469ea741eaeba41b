// The pickle part of the .pth reader (see pth_pickle.h).
#include "tools/convert/pth_pickle.h"

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "loader/mem_budget.h"
#include "tools/convert/le_bytes.h"

namespace lamina::pth::pickle {
namespace {

using convert::LoadLe16;
using convert::LoadLe32;
using convert::LoadLe64;

std::string Hex2(unsigned v) {
  char b[8];
  std::snprintf(b, sizeof b, "0x%02x", v & 0xFFu);
  return b;
}

// A state dict nests ~5 deep; anything far deeper is hostile (destroying a
// deep shared_ptr chain recurses and would overflow the stack).
constexpr int kMaxPickleDepth = 64;

P Make(Obj::Kind k) {
  auto o = std::make_shared<Obj>();
  o->kind = k;
  return o;
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
          len = LoadLe64(d_ + pos_ - 8);
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
            len = LoadLe32(d_ + pos_ - 4);
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
          o->i = static_cast<int32_t>(LoadLe32(d_ + pos_ - 4));
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
          o->i = LoadLe16(d_ + pos_ - 2);
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
            idx = LoadLe32(d_ + pos_ - 4);
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
            idx = LoadLe32(d_ + pos_ - 4);
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

const char* KindName(Obj::Kind k) {
  static const char* n[] = {"None", "bool", "int",    "float",   "str",   "tuple",
                            "list", "dict", "global", "storage", "tensor"};
  return n[k];
}

bool Unpickle(const uint8_t* d, size_t n, P* root, std::string* err) {
  Unpickler up(d, n);
  return up.Run(root, err);
}

}  // namespace lamina::pth::pickle
