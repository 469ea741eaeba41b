// A small strict JSON reader (RFC 8259) for config.json, params.json,
// safetensors headers, tokenizer.json and test vectors. DOM, object keys kept
// in file order; depth-limited so hostile input cannot exhaust the stack.
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
  double as_number() const { return num_; }
  /// The number as an integer; false if not a number or not integral / out of range.
  bool as_int64(int64_t* out) const;
  const std::string& as_string() const { return str_; }  // string value (UTF-8 decoded)
  const std::vector<Value>& items() const { return arr_; }  // array elements
  const std::vector<std::pair<std::string, Value>>& members() const { return obj_; }

  /// Object member lookup; nullptr if absent or not an object.
  const Value* Find(std::string_view key) const;
  size_t size() const { return type_ == Type::kArray ? arr_.size() : obj_.size(); }

 private:
  friend class Parser;
  Type type_ = Type::kNull;
  bool b_ = false;
  double num_ = 0;
  std::string str_;  // string value, or the number's source text
  std::vector<Value> arr_;
  std::vector<std::pair<std::string, Value>> obj_;
  std::unique_ptr<std::map<std::string, size_t, std::less<>>> index_;  // large objects
};

/// Parses `text`; on error returns false and sets *err to "line L col C: what".
bool Parse(std::string_view text, Value* out, std::string* err);
/// Reads and parses a file; errors are prefixed with the path.
bool ParseFile(const std::string& path, Value* out, std::string* err);
/// Appends `s` as a JSON string literal (quotes, escapes; bytes >= 0x80 copied).
void AppendQuoted(std::string* out, std::string_view s);

}  // namespace lamina::json
