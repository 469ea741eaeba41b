#include "tools/convert/json_schema.h"

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tokenizer/unicode.h"
#include "tools/import/json.h"

namespace lamina::convert {

namespace {

// The primitives every converted grammar shares (llama.cpp's json.gbnf shape,
// with bounded whitespace and digit runs).
constexpr const char* kPrimitives =
    R"(ws ::= | " " | "\n" [ \t]{0,20}
char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" ([0-9a-cA-CeEfF] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2}))
string ::= "\"" char* "\"" ws
integer ::= "-"? ("0" | [1-9] [0-9]{0,15}) ws
number ::= "-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})? ws
boolean ::= ("true" | "false") ws
null ::= "null" ws
value ::= object | array | string | number | boolean | null
object ::= "{" ws ( string ":" ws value ("," ws string ":" ws value)* )? "}" ws
array ::= "[" ws ( value ("," ws value)* )? "]" ws
)";

struct SchemaError {
  std::string msg;
};

// Compact JSON text of a value (numbers as written).
void Dump(const json::Value& v, std::string* out) {
  switch (v.type()) {
    case json::Value::Type::kNull:
      *out += "null";
      break;
    case json::Value::Type::kBool:
      *out += v.as_bool() ? "true" : "false";
      break;
    case json::Value::Type::kNumber:
      *out += v.as_string();
      break;
    case json::Value::Type::kString:
      json::AppendQuoted(out, v.as_string());
      break;
    case json::Value::Type::kArray: {
      *out += '[';
      bool first = true;
      for (const json::Value& x : v.items()) {
        if (!first) *out += ',';
        first = false;
        Dump(x, out);
      }
      *out += ']';
      break;
    }
    case json::Value::Type::kObject: {
      *out += '{';
      bool first = true;
      for (const auto& [k, x] : v.members()) {
        if (!first) *out += ',';
        first = false;
        json::AppendQuoted(out, k);
        *out += ':';
        Dump(x, out);
      }
      *out += '}';
      break;
    }
  }
}

std::string PointerEscape(const std::string& k) {
  std::string o;
  for (char c : k) {
    if (c == '~') {
      o += "~0";
    } else if (c == '/') {
      o += "~1";
    } else {
      o += c;
    }
  }
  return o;
}

class Converter {
 public:
  explicit Converter(const json::Value& root) : root_(root) {}

  std::string Run() {
    names_.insert("root");
    const std::string expr = Expr(root_, "#", "root");
    std::string out = "root ::= " + expr + "\n" + rules_ + kPrimitives;
    return out;
  }

 private:
  [[noreturn]] static void Fail(const std::string& ptr, const std::string& msg) {
    throw SchemaError{ptr + ": " + msg};
  }

  std::string NewName(const std::string& hint) {
    std::string base;
    for (char c : hint)
      base +=
          ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) ? c : '-';
    if (base.size() > 40) base.resize(40);
    static const std::set<std::string> kReserved = {
        "ws", "char", "string", "integer", "number", "boolean", "null", "value", "object", "array"};
    std::string name = base;
    for (int i = 2; names_.count(name) || kReserved.count(name); ++i)
      name = base + "-" + std::to_string(i);
    names_.insert(name);
    return name;
  }

  // A named rule for schema s; returns its name.
  std::string Rule(const json::Value& s, const std::string& ptr, const std::string& hint) {
    const std::string name = NewName(hint);
    const std::string expr = Expr(s, ptr, name);
    rules_ += name + " ::= " + expr + "\n";
    return name;
  }

  // GBNF matches code points: a literal must be valid UTF-8.
  static std::string Gbnf(const std::string& text, const std::string& ptr) {
    if (!uni::IsValid(text)) Fail(ptr, "a string in the schema is not valid UTF-8");
    std::string lit;
    AppendGbnfLiteral(&lit, text);
    return lit;
  }

  static std::string Literal(const json::Value& v, const std::string& ptr) {
    std::string text;
    Dump(v, &text);
    return Gbnf(text, ptr) + " ws";
  }

  static uint32_t Count(const json::Value* v, const std::string& ptr, const char* kw) {
    int64_t n = 0;
    if (!v->as_int64(&n) || n < 0 || n > 10000)
      Fail(ptr, std::string("'") + kw + "' must be an integer in 0..10000");
    return static_cast<uint32_t>(n);
  }

  // Repetition suffix {lo,hi} (hi < 0: unbounded).
  static std::string Braces(uint32_t lo, int64_t hi) {
    if (hi < 0) return "{" + std::to_string(lo) + ",}";
    return "{" + std::to_string(lo) + "," + std::to_string(hi) + "}";
  }

  std::string Expr(const json::Value& s, const std::string& ptr, const std::string& name) {
    if (++depth_ > 64) Fail(ptr, "schema nested deeper than 64 levels");
    struct Leave {
      int* d;
      ~Leave() { --*d; }
    } leave{&depth_};
    if (s.is_bool()) {
      if (!s.as_bool()) Fail(ptr, "the schema 'false' matches nothing");
      return "value";
    }
    if (!s.is_object()) Fail(ptr, "a schema must be an object or a boolean");
    static const std::set<std::string> kIgnored = {"title",    "description", "default",
                                                   "examples", "$schema",     "$id",
                                                   "$comment", "$defs",       "definitions"};
    static const std::set<std::string> kKnown = {
        "type",      "properties", "required", "additionalProperties",
        "items",     "minItems",   "maxItems", "minLength",
        "maxLength", "enum",       "const",    "anyOf",
        "oneOf",     "$ref"};
    for (const auto& [k, v] : s.members()) {
      (void)v;
      if (!kIgnored.count(k) && !kKnown.count(k))
        Fail(ptr,
             "'" + k +
                 "' is not supported (supported: type, properties, required, "
                 "additionalProperties, items, minItems, maxItems, minLength, maxLength, enum, "
                 "const, anyOf, oneOf, local $ref)");
    }
    if (const json::Value* ref = s.Find("$ref")) return Ref(*ref, ptr);
    if (const json::Value* c = s.Find("const")) return Literal(*c, ptr + "/const");
    if (const json::Value* e = s.Find("enum")) {
      if (!e->is_array() || e->items().empty())
        Fail(ptr + "/enum", "'enum' must be a non-empty array");
      std::string alts;
      for (const json::Value& v : e->items())
        alts += (alts.empty() ? "" : " | ") + Literal(v, ptr + "/enum");
      return "(" + alts + ")";
    }
    for (const char* kw : {"anyOf", "oneOf"})
      if (const json::Value* a = s.Find(kw)) {
        if (!a->is_array() || a->items().empty())
          Fail(ptr + "/" + kw, std::string("'") + kw + "' must be a non-empty array");
        std::string alts;
        for (size_t i = 0; i < a->items().size(); ++i)
          alts += (alts.empty() ? "" : " | ") + Rule(a->items()[i],
                                                     ptr + "/" + kw + "/" + std::to_string(i),
                                                     name + "-" + std::to_string(i));
        return "(" + alts + ")";
      }
    std::vector<std::string> types;
    if (const json::Value* t = s.Find("type")) {
      if (t->is_string()) {
        types.push_back(t->as_string());
      } else if (t->is_array() && !t->items().empty()) {
        for (const json::Value& x : t->items()) {
          if (!x.is_string()) Fail(ptr + "/type", "'type' entries must be strings");
          types.push_back(x.as_string());
        }
      } else {
        Fail(ptr + "/type", "'type' must be a string or a non-empty array of strings");
      }
    } else if (s.Find("properties") || s.Find("additionalProperties") || s.Find("required")) {
      types.push_back("object");
    } else if (s.Find("items") || s.Find("minItems") || s.Find("maxItems")) {
      types.push_back("array");
    } else if (s.Find("minLength") || s.Find("maxLength")) {
      types.push_back("string");
    } else {
      return "value";
    }
    std::string alts;
    for (const std::string& t : types) alts += (alts.empty() ? "" : " | ") + Typed(s, t, ptr, name);
    return types.size() == 1 ? alts : "(" + alts + ")";
  }

  std::string Typed(const json::Value& s, const std::string& t, const std::string& ptr,
                    const std::string& name) {
    if (t == "number" || t == "integer" || t == "boolean" || t == "null") return t;
    if (t == "string") {
      const json::Value* lo = s.Find("minLength");
      const json::Value* hi = s.Find("maxLength");
      if (!lo && !hi) return "string";
      const uint32_t l = lo ? Count(lo, ptr + "/minLength", "minLength") : 0;
      const int64_t h = hi ? int64_t{Count(hi, ptr + "/maxLength", "maxLength")} : -1;
      if (h >= 0 && h < l) Fail(ptr, "maxLength below minLength");
      return "\"\\\"\" char" + Braces(l, h) + " \"\\\"\" ws";
    }
    if (t == "array") return Array(s, ptr, name);
    if (t == "object") return Object(s, ptr, name);
    Fail(ptr + "/type", "unknown type '" + t + "'");
  }

  std::string Array(const json::Value& s, const std::string& ptr, const std::string& name) {
    std::string item = "value";
    if (const json::Value* it = s.Find("items")) {
      if (it->is_array()) Fail(ptr + "/items", "tuple 'items' (an array) is not supported");
      item = Rule(*it, ptr + "/items", name + "-item");
    }
    const json::Value* lo = s.Find("minItems");
    const json::Value* hi = s.Find("maxItems");
    const uint32_t l = lo ? Count(lo, ptr + "/minItems", "minItems") : 0;
    const int64_t h = hi ? int64_t{Count(hi, ptr + "/maxItems", "maxItems")} : -1;
    if (h >= 0 && h < l) Fail(ptr, "maxItems below minItems");
    if (h == 0) return "\"[\" ws \"]\" ws";
    // item ("," item){l-1, h-1}, optional when l == 0.
    const std::string more =
        "(\",\" ws " + item + ")" + Braces(l > 0 ? l - 1 : 0, h < 0 ? -1 : h - 1);
    std::string list = item + " " + more;
    if (l == 0) list = "(" + list + ")?";
    return "\"[\" ws " + list + " \"]\" ws";
  }

  std::string Object(const json::Value& s, const std::string& ptr, const std::string& name) {
    const json::Value* props = s.Find("properties");
    const json::Value* add = s.Find("additionalProperties");
    const json::Value* req = s.Find("required");
    if (props && !props->is_object()) Fail(ptr + "/properties", "'properties' must be an object");
    std::set<std::string> required;
    if (req) {
      if (!req->is_array()) Fail(ptr + "/required", "'required' must be an array of strings");
      for (const json::Value& r : req->items()) {
        if (!r.is_string()) Fail(ptr + "/required", "'required' must be an array of strings");
        if (!props || !props->Find(r.as_string()))
          Fail(ptr + "/required",
               "required property '" + r.as_string() +
                   "' is not in 'properties' (only declared properties are generated)");
        required.insert(r.as_string());
      }
    }
    if (!props || props->members().empty()) {
      if (add && add->is_bool() && !add->as_bool()) return "\"{\" ws \"}\" ws";
      if (!add || (add->is_bool() && add->as_bool())) return "object";
      const std::string v = Rule(*add, ptr + "/additionalProperties", name + "-value");
      const std::string kv = "string \":\" ws " + v;
      return "\"{\" ws (" + kv + " (\",\" ws " + kv + ")*)? \"}\" ws";
    }
    if (add && !(add->is_bool() && !add->as_bool()))
      Fail(ptr + "/additionalProperties",
           "'additionalProperties' other than false together with 'properties' is not supported "
           "(only the declared properties are generated)");
    // Members in declared order. rest_first(i): members i.. when none was
    // emitted yet; rest(i): after one was (each then starts with a comma).
    const auto& m = props->members();
    const size_t n = m.size();
    std::vector<std::string> kv(n);
    for (size_t i = 0; i < n; ++i) {
      std::string key;
      json::AppendQuoted(&key, m[i].first);
      kv[i] = Gbnf(key, ptr + "/properties") + " ws \":\" ws " +
              Rule(m[i].second, ptr + "/properties/" + PointerEscape(m[i].first),
                   name + "-" + m[i].first);
    }
    std::vector<std::string> rest(n + 1), first(n + 1);
    rest[n] = first[n] = "";
    for (size_t i = n; i-- > 0;) {
      const bool r = required.count(m[i].first) > 0;
      const std::string after = rest[i + 1];
      std::string re = r ? "\",\" ws " + kv[i] + (after.empty() ? "" : " " + after)
                         : "(\",\" ws " + kv[i] + ")?" + (after.empty() ? "" : " " + after);
      std::string fi = r ? kv[i] + (after.empty() ? "" : " " + after)
                         : "(" + kv[i] + (after.empty() ? "" : " " + after) + ")" +
                               (first[i + 1].empty() ? "?" : " | " + first[i + 1]);
      // Name the tails so the text stays linear in the number of properties.
      rest[i] = NamedTail(name + "-rest", re);
      first[i] = (r || first[i + 1].empty()) ? NamedTail(name + "-first", fi)
                                             : NamedTail(name + "-first", "(" + fi + ")");
    }
    return "\"{\" ws " + first[0] + " \"}\" ws";
  }

  std::string NamedTail(const std::string& hint, const std::string& expr) {
    const std::string nm = NewName(hint);
    rules_ += nm + " ::= " + expr + "\n";
    return nm;
  }

  std::string Ref(const json::Value& ref, const std::string& ptr) {
    if (!ref.is_string()) Fail(ptr + "/$ref", "'$ref' must be a string");
    const std::string& r = ref.as_string();
    auto it = refs_.find(r);
    if (it != refs_.end()) return it->second;
    const json::Value* target = nullptr;
    std::string hint;
    if (r == "#") {
      target = &root_;
      hint = "root-ref";
    } else {
      for (const char* pre : {"#/$defs/", "#/definitions/"}) {
        const std::string p = pre;
        if (r.compare(0, p.size(), p) == 0 && r.find('/', p.size()) == std::string::npos) {
          const json::Value* defs = root_.Find(p.substr(2, p.size() - 3));
          if (defs) target = defs->Find(r.substr(p.size()));
          hint = r.substr(p.size());
        }
      }
    }
    if (!target)
      Fail(ptr + "/$ref", "'$ref' \"" + r +
                              "\" is not supported or not found (only local #/$defs/NAME, "
                              "#/definitions/NAME and #)");
    const std::string name = NewName(hint);
    refs_[r] = name;  // before visiting: recursive schemas refer to it
    const std::string expr = Expr(*target, r, name);
    rules_ += name + " ::= " + expr + "\n";
    return name;
  }

  const json::Value& root_;
  std::string rules_;
  std::set<std::string> names_;
  std::map<std::string, std::string> refs_;
  int depth_ = 0;
};

}  // namespace

void AppendGbnfLiteral(std::string* out, std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  *out += '"';
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      *out += '\\';
      *out += ch;
    } else if (c == '\n') {
      *out += "\\n";
    } else if (c == '\t') {
      *out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      *out += "\\x";
      *out += hex[c >> 4];
      *out += hex[c & 15];
    } else {
      *out += ch;  // UTF-8 passes through
    }
  }
  *out += '"';
}

std::string JsonAnyGbnf(bool object_only) {
  return std::string(object_only ? "root ::= object\n" : "root ::= value\n") + kPrimitives;
}

bool JsonSchemaToGbnf(const json::Value& schema, std::string* gbnf, std::string* err) {
  try {
    *gbnf = Converter(schema).Run();
    return true;
  } catch (const SchemaError& e) {
    *err = "json-schema " + e.msg;
    return false;
  }
}

bool JsonSchemaToGbnf(std::string_view schema_text, std::string* gbnf, std::string* err) {
  json::Value v;
  std::string e;
  if (!json::Parse(schema_text, &v, &e)) {
    *err = "json-schema: not valid JSON: " + e;
    return false;
  }
  return JsonSchemaToGbnf(v, gbnf, err);
}

bool GrammarForRun(const std::string& gbnf_file, const std::string& schema_file, bool json,
                   std::string* gbnf, std::string* err) {
  gbnf->clear();
  if (json) {
    *gbnf = JsonAnyGbnf(true);
    return true;
  }
  const std::string& path = gbnf_file.empty() ? schema_file : gbnf_file;
  if (path.empty()) return true;
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  if (f) ss << f.rdbuf();  // an empty file sets failbit here: not an error
  if (!f.is_open() || f.bad()) {
    *err = path + ": cannot read";
    return false;
  }
  if (!gbnf_file.empty()) {
    *gbnf = ss.str();
    return true;
  }
  if (!JsonSchemaToGbnf(ss.str(), gbnf, err)) {
    *err = path + ": " + *err;
    return false;
  }
  return true;
}

}  // namespace lamina::convert
