#include "tools/import/json.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "loader/mem_budget.h"
#include "tokenizer/unicode.h"

namespace lamina::json {

namespace {
const std::vector<Value> kNoItems;
const std::vector<std::pair<std::string, Value>> kNoMembers;
}  // namespace

double Value::as_number() const {
  return type_ == Type::kNumber ? std::strtod(str_.c_str(), nullptr) : 0.0;
}

const std::vector<Value>& Value::items() const {
  return type_ == Type::kArray && c_ ? c_->arr : kNoItems;
}

const std::vector<std::pair<std::string, Value>>& Value::members() const {
  return type_ == Type::kObject && c_ ? c_->obj : kNoMembers;
}

bool Value::as_int64(int64_t* out) const {
  if (type_ != Type::kNumber) return false;
  const double num_ = as_number();
  if (!(num_ >= -9.2e18 && num_ <= 9.2e18) || std::floor(num_) != num_) return false;
  // Exact for integers written without fraction/exponent beyond 2^53.
  if (str_.find_first_of(".eE") == std::string::npos) {
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(str_.c_str(), &end, 10);
    if (errno == 0 && end && *end == 0) {
      *out = v;
      return true;
    }
  }
  *out = static_cast<int64_t>(num_);
  return true;
}

const Value* Value::Find(std::string_view key) const {
  if (type_ != Type::kObject || !c_) return nullptr;
  if (c_->index) {
    auto it = c_->index->find(key);
    return it == c_->index->end() ? nullptr : &c_->obj[it->second].second;
  }
  for (const auto& kv : c_->obj)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s), mem_(s.size()) {}

  bool Run(Value* out, std::string* err) {
    Ws();
    if (!ParseValue(out, 0)) return Fail(err);
    Ws();
    if (p_ != s_.size()) {
      msg_ = "trailing characters after the JSON value";
      return Fail(err);
    }
    return true;
  }

 private:
  static constexpr int kMaxDepth = 256;

  bool Fail(std::string* err) {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < p_ && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    if (err) *err = "line " + std::to_string(line) + " col " + std::to_string(col) + ": " + msg_;
    return false;
  }
  bool Error(const char* m) {
    if (msg_.empty()) msg_ = m;
    return false;
  }
  // Live DOM bytes: charged before an allocation, released when a block is
  // freed (vector growth), so they bound the peak (MemBudget's limit).
  bool Charge(uint64_t bytes) {
    std::string why;
    if (mem_.Charge(bytes, &why)) return true;
    if (msg_.empty()) msg_ = "the JSON " + why;
    return false;
  }
  // Grows v by 1.5x when full (charging the new block, then releasing the
  // old one): the peak of a growth is 2.5x the elements, not doubling's 3x.
  template <typename T>
  bool Reserve1(std::vector<T>* v) {
    if (v->size() < v->capacity()) return true;
    const size_t old = v->capacity(), nc = old < 4 ? 4 : old + old / 2;
    if (!Charge(nc * sizeof(T))) return false;
    v->reserve(nc);
    mem_.Release(old * sizeof(T));
    return true;
  }
  void Ws() {
    while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\t' || s_[p_] == '\n' || s_[p_] == '\r'))
      ++p_;
  }
  bool Lit(const char* lit) {
    const size_t n = std::strlen(lit);
    if (s_.substr(p_, n) != lit) return Error("invalid literal");
    p_ += n;
    return true;
  }

  bool ParseValue(Value* v, int depth) {
    if (depth > kMaxDepth) return Error("nesting too deep");
    if (p_ >= s_.size()) return Error("unexpected end of input");
    const char c = s_[p_];
    if (c == '{') return ParseObject(v, depth);
    if (c == '[') return ParseArray(v, depth);
    if (c == '"') {
      v->type_ = Value::Type::kString;
      return ParseString(&v->str_);
    }
    if (c == 't') {
      v->type_ = Value::Type::kBool;
      v->b_ = true;
      return Lit("true");
    }
    if (c == 'f') {
      v->type_ = Value::Type::kBool;
      v->b_ = false;
      return Lit("false");
    }
    if (c == 'n') {
      v->type_ = Value::Type::kNull;
      return Lit("null");
    }
    if (c == '-' || (c >= '0' && c <= '9')) return ParseNumber(v);
    return Error("unexpected character");
  }

  bool ParseNumber(Value* v) {
    const size_t start = p_;
    auto digit = [&] { return p_ < s_.size() && s_[p_] >= '0' && s_[p_] <= '9'; };
    if (s_[p_] == '-') ++p_;
    if (!digit()) return Error("invalid number");
    if (s_[p_] == '0') {
      ++p_;
    } else {
      while (digit()) ++p_;
    }
    if (p_ < s_.size() && s_[p_] == '.') {
      ++p_;
      if (!digit()) return Error("invalid number");
      while (digit()) ++p_;
    }
    if (p_ < s_.size() && (s_[p_] == 'e' || s_[p_] == 'E')) {
      ++p_;
      if (p_ < s_.size() && (s_[p_] == '+' || s_[p_] == '-')) ++p_;
      if (!digit()) return Error("invalid number");
      while (digit()) ++p_;
    }
    v->type_ = Value::Type::kNumber;
    if (!Charge(MemBudget::Str(p_ - start))) return false;
    v->str_.assign(s_.data() + start, p_ - start);
    return true;
  }

  bool Hex4(uint32_t* out) {
    if (p_ + 4 > s_.size()) return Error("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[p_++];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return Error("invalid \\u escape");
      }
    }
    *out = v;
    return true;
  }

  bool ParseString(std::string* out) {
    ++p_;  // opening quote
    out->clear();
    // The decoded string is at most as long as its source: reserve (and
    // charge) that once instead of growing by doubling.
    size_t end = p_;
    while (end < s_.size() && s_[end] != '"') end += s_[end] == '\\' ? 2 : 1;
    const size_t span = std::min(end, s_.size()) - p_;
    if (!Charge(MemBudget::Str(span))) return false;
    out->reserve(span);
    while (true) {
      // Fast path: copy a run of plain bytes.
      const size_t run = p_;
      while (p_ < s_.size() && s_[p_] != '"' && s_[p_] != '\\' &&
             static_cast<unsigned char>(s_[p_]) >= 0x20)
        ++p_;
      out->append(s_.data() + run, p_ - run);
      if (p_ >= s_.size()) return Error("unterminated string");
      const char c = s_[p_];
      if (c == '"') {
        ++p_;
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) return Error("control character in string");
      ++p_;  // backslash
      if (p_ >= s_.size()) return Error("unterminated string");
      const char e = s_[p_++];
      switch (e) {
        case '"':
          out->push_back('"');
          break;
        case '\\':
          out->push_back('\\');
          break;
        case '/':
          out->push_back('/');
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          uint32_t cp;
          if (!Hex4(&cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00) {  // high surrogate: expect a low one
            uint32_t lo;
            if (p_ + 2 <= s_.size() && s_[p_] == '\\' && s_[p_ + 1] == 'u') {
              p_ += 2;
              if (!Hex4(&lo)) return false;
              if (lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
              } else {
                uni::Append(out, 0xFFFD);
                cp = lo;
              }
            } else {
              cp = 0xFFFD;  // lone surrogate
            }
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            cp = 0xFFFD;
          }
          uni::Append(out, cp);
          break;
        }
        default:
          return Error("invalid escape");
      }
    }
  }

  bool ParseArray(Value* v, int depth) {
    ++p_;
    v->type_ = Value::Type::kArray;
    Ws();
    if (p_ < s_.size() && s_[p_] == ']') {
      ++p_;
      return true;
    }
    if (!Charge(sizeof(Value::Compound))) return false;
    v->c_ = std::make_unique<Value::Compound>();
    std::vector<Value>& arr = v->c_->arr;
    while (true) {
      if (!Reserve1(&arr)) return false;
      arr.emplace_back();
      Ws();
      if (!ParseValue(&arr.back(), depth + 1)) return false;
      Ws();
      if (p_ >= s_.size()) return Error("unterminated array");
      if (s_[p_] == ',') {
        ++p_;
        continue;
      }
      if (s_[p_] == ']') {
        ++p_;
        return true;
      }
      return Error("expected ',' or ']'");
    }
  }

  bool ParseObject(Value* v, int depth) {
    ++p_;
    v->type_ = Value::Type::kObject;
    Ws();
    if (p_ < s_.size() && s_[p_] == '}') {
      ++p_;
      return true;
    }
    if (!Charge(sizeof(Value::Compound))) return false;
    v->c_ = std::make_unique<Value::Compound>();
    auto& obj = v->c_->obj;
    while (true) {
      Ws();
      if (p_ >= s_.size() || s_[p_] != '"') return Error("expected a string key");
      std::string key;
      if (!ParseString(&key)) return false;
      Ws();
      if (p_ >= s_.size() || s_[p_] != ':') return Error("expected ':'");
      ++p_;
      Ws();
      if (!Reserve1(&obj)) return false;
      obj.emplace_back(std::move(key), Value());
      if (!ParseValue(&obj.back().second, depth + 1)) return false;
      Ws();
      if (p_ >= s_.size()) return Error("unterminated object");
      if (s_[p_] == ',') {
        ++p_;
        continue;
      }
      if (s_[p_] == '}') {
        ++p_;
        break;
      }
      return Error("expected ',' or '}'");
    }
    if (obj.size() > 16) {
      // A map node (~80 bytes) and a key copy per member.
      uint64_t keys = 0;
      for (const auto& kv : obj) keys += MemBudget::Str(kv.first.size());
      if (!Charge(obj.size() * 80 + keys + sizeof(*v->c_->index))) return false;
      v->c_->index = std::make_unique<std::map<std::string, size_t, std::less<>>>();
      for (size_t i = 0; i < obj.size(); ++i) v->c_->index->emplace(obj[i].first, i);
    }
    return true;
  }

  std::string_view s_;
  size_t p_ = 0;
  std::string msg_;
  MemBudget mem_;
};

bool Parse(std::string_view text, Value* out, std::string* err) {
  *out = Value();
  return Parser(text).Run(out, err);
}

bool ParseFile(const std::string& path, Value* out, std::string* err) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    if (err) *err = path + ": cannot open: " + std::strerror(errno);
    return false;
  }
  std::string data;
  // Read at the file's size (no doubling growth: the text is 1x of the
  // 2x + 64 MiB a hostile file may cost).
  if (std::fseek(f, 0, SEEK_END) == 0) {
    const long sz = std::ftell(f);
    if (sz > 0) data.reserve(static_cast<size_t>(sz));
    std::rewind(f);
  }
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.append(buf, n);
  const bool read_error = std::ferror(f);
  std::fclose(f);
  if (read_error) {
    if (err) *err = path + ": read error";
    return false;
  }
  std::string e;
  if (!Parse(data, out, &e)) {
    if (err) *err = path + ": invalid JSON: " + e;
    return false;
  }
  return true;
}

void AppendQuoted(std::string* out, std::string_view s) {
  static const char* hex = "0123456789abcdef";
  out->push_back('"');
  for (const char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(hex[c >> 4]);
          out->push_back(hex[c & 15]);
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
}

}  // namespace lamina::json
