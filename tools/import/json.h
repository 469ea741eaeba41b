// A small strict JSON reader (RFC 8259) for config.json, params.json,
// safetensors headers, tokenizer.json and test vectors. DOM, object keys kept
// in file order; depth-limited so hostile input cannot exhaust the stack, and
// memory-bounded (MemBudget: the text's size + 56 MiB of DOM, tracked live) so
// it cannot exhaust memory either.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lamina::json {

class Value {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  bool as_bool() const { return b_; }
  double as_number() const;  // strtod of the number's text (0 if not a number)
  /// The number as an integer; false if not a number or not integral / out of range.
  bool as_int64(int64_t* out) const;
  const std::string& as_string() const { return str_; }  // string value (UTF-8 decoded)
  const std::vector<Value>& items() const;               // array elements
  const std::vector<std::pair<std::string, Value>>& members() const;

  /// Object member lookup; nullptr if absent or not an object.
  const Value* Find(std::string_view key) const;
  size_t size() const { return type_ == Type::kArray ? items().size() : members().size(); }

 private:
  friend class Parser;
  // Elements / members of a non-empty array / object.
  struct Compound {
    std::vector<Value> arr;
    std::vector<std::pair<std::string, Value>> obj;
    std::unique_ptr<std::map<std::string, size_t, std::less<>>> index;  // large objects
  };
  // Why this shape (48 bytes): a few bytes of JSON ("0," or "[],") become one
  // Value, so its size bounds the parser's memory (loader/mem_budget.h);
  // containers live behind one pointer, numbers as their text.
  Type type_ = Type::kNull;
  bool b_ = false;
  std::string str_;  // string value, or the number's source text
  std::unique_ptr<Compound> c_;
};

/// Parses `text`; on error returns false and sets *err to "line L col C: what".
bool Parse(std::string_view text, Value* out, std::string* err);
/// Reads and parses a file; errors are prefixed with the path.
bool ParseFile(const std::string& path, Value* out, std::string* err);
/// Appends `s` as a JSON string literal (quotes, escapes; bytes >= 0x80 copied).
void AppendQuoted(std::string* out, std::string_view s);

}  // namespace lamina::json
