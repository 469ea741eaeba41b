// JSON Schema -> GBNF: each supported feature (the grammar accepts what the
// schema allows and refuses what it does not), errors for the rest, and the
// end-to-end check on stories260K: sampled output is valid for the schema.
#include "tools/convert/json_schema.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "engine/grammar.h"
#include "lamina/lamina.h"
#include "tests/testutil.h"
#include "tools/convert/convert.h"
#include "tools/import/json.h"

namespace lamina::convert {
namespace {

using engine::Grammar;
using engine::GrammarMatcher;
using engine::GrammarVocab;

std::shared_ptr<const Grammar> FromSchema(const std::string& schema) {
  std::string gbnf, err;
  EXPECT_TRUE(JsonSchemaToGbnf(schema, &gbnf, &err)) << err;
  auto g = Grammar::Parse(gbnf, "root", &err);
  EXPECT_TRUE(g) << err << "\n" << gbnf;
  return g;
}

bool Matches(const std::shared_ptr<const Grammar>& g, const std::string& s) {
  auto v = std::make_shared<GrammarVocab>(std::vector<std::string>{"x"}, std::vector<int32_t>{});
  GrammarMatcher m(g, v);
  std::string err;
  return m.AcceptBytes(s, &err) && m.CanEnd();
}

std::string SchemaError(const std::string& schema) {
  std::string gbnf, err;
  EXPECT_FALSE(JsonSchemaToGbnf(schema, &gbnf, &err)) << schema;
  return err;
}

TEST(JsonSchema, Primitives) {
  auto s = FromSchema(R"({"type":"string"})");
  EXPECT_TRUE(Matches(s, R"("a\"b\u00e9 c")"));
  EXPECT_FALSE(Matches(s, "12"));
  EXPECT_FALSE(Matches(s, R"("\ud800")"));  // a lone surrogate escape is not JSON text
  auto i = FromSchema(R"({"type":"integer"})");
  EXPECT_TRUE(Matches(i, "-12"));
  EXPECT_FALSE(Matches(i, "1.5"));
  EXPECT_FALSE(Matches(i, "012"));
  auto n = FromSchema(R"({"type":"number"})");
  EXPECT_TRUE(Matches(n, "-1.5e+10"));
  EXPECT_TRUE(Matches(n, "0"));
  EXPECT_FALSE(Matches(n, "1."));
  auto b = FromSchema(R"({"type":"boolean"})");
  EXPECT_TRUE(Matches(b, "false"));
  EXPECT_FALSE(Matches(b, "null"));
  auto z = FromSchema(R"({"type":"null"})");
  EXPECT_TRUE(Matches(z, "null"));
  auto multi = FromSchema(R"({"type":["integer","null"]})");
  EXPECT_TRUE(Matches(multi, "7"));
  EXPECT_TRUE(Matches(multi, "null"));
  EXPECT_FALSE(Matches(multi, "\"7\""));
}

TEST(JsonSchema, StringLengthEnumConst) {
  auto s = FromSchema(R"({"type":"string","minLength":2,"maxLength":3})");
  EXPECT_FALSE(Matches(s, R"("a")"));
  EXPECT_TRUE(Matches(s, R"("ab")"));
  EXPECT_TRUE(Matches(s, R"("a\né")"));
  EXPECT_FALSE(Matches(s, R"("abcd")"));
  auto e = FromSchema(R"({"type":"string","enum":["red","green","say \"hi\""]})");
  EXPECT_TRUE(Matches(e, R"("green")"));
  EXPECT_TRUE(Matches(e, R"("say \"hi\"")"));
  EXPECT_FALSE(Matches(e, R"("blue")"));
  auto mixed = FromSchema(R"({"enum":[1, "one", null, true, {"a":[2]}]})");
  for (const char* ok : {"1", "\"one\"", "null", "true", "{\"a\":[2]}"})
    EXPECT_TRUE(Matches(mixed, ok)) << ok;
  EXPECT_FALSE(Matches(mixed, "false"));
  auto c = FromSchema(R"({"const":"fixed"})");
  EXPECT_TRUE(Matches(c, R"("fixed")"));
  EXPECT_FALSE(Matches(c, R"("other")"));
}

TEST(JsonSchema, ObjectPropertiesInOrderRequiredAndOptional) {
  auto o = FromSchema(R"({"type":"object","properties":{
      "a":{"type":"integer"},"b":{"type":"string"},"c":{"type":"boolean"}},
      "required":["b"],"additionalProperties":false})");
  EXPECT_TRUE(Matches(o, R"({"b":"x"})"));
  EXPECT_TRUE(Matches(o, R"({"a":1,"b":"x"})"));
  EXPECT_TRUE(Matches(o, R"({"a": 1, "b": "x", "c": true})"));
  EXPECT_TRUE(Matches(o, R"({"b":"x","c":false})"));
  EXPECT_TRUE(Matches(o, "{\n  \"b\": \"x\"\n}"));
  EXPECT_FALSE(Matches(o, R"({})"));               // b is required
  EXPECT_FALSE(Matches(o, R"({"b":"x","a":1})"));  // declared order
  EXPECT_FALSE(Matches(o, R"({"b":"x","d":1})"));  // no other members
  EXPECT_FALSE(Matches(o, R"({"a":1,,"b":"x"})"));
  EXPECT_FALSE(Matches(o, R"({"a":1,"b":"x",})"));
  auto all_opt = FromSchema(R"({"properties":{"a":{"type":"integer"},"b":{"type":"integer"}}})");
  for (const char* ok : {"{}", R"({"a":1})", R"({"b":2})", R"({"a":1,"b":2})"})
    EXPECT_TRUE(Matches(all_opt, ok)) << ok;
  EXPECT_FALSE(Matches(all_opt, R"({,"b":2})"));
  auto empty = FromSchema(R"({"type":"object","additionalProperties":false})");
  EXPECT_TRUE(Matches(empty, "{}"));
  EXPECT_FALSE(Matches(empty, R"({"a":1})"));
  auto any = FromSchema(R"({"type":"object"})");
  EXPECT_TRUE(Matches(any, R"({"x":[1,{"y":null}]})"));
  auto map = FromSchema(R"({"type":"object","additionalProperties":{"type":"integer"}})");
  EXPECT_TRUE(Matches(map, R"({"x":1,"y":2})"));
  EXPECT_FALSE(Matches(map, R"({"x":"1"})"));
}

TEST(JsonSchema, ArraysNestedAnyOfAndRefs) {
  auto a = FromSchema(R"({"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3})");
  EXPECT_FALSE(Matches(a, "[]"));
  EXPECT_TRUE(Matches(a, "[1]"));
  EXPECT_TRUE(Matches(a, "[1, 2, 3]"));
  EXPECT_FALSE(Matches(a, "[1,2,3,4]"));
  EXPECT_FALSE(Matches(a, "[\"1\"]"));
  auto nested = FromSchema(R"({"type":"object","properties":{"list":{"type":"array","items":{
      "type":"object","properties":{"id":{"type":"integer"}},"required":["id"]}}},
      "required":["list"]})");
  EXPECT_TRUE(Matches(nested, R"({"list":[{"id":1},{"id":2}]})"));
  EXPECT_FALSE(Matches(nested, R"({"list":[{}]})"));
  auto any_of = FromSchema(R"({"anyOf":[{"type":"integer"},{"type":"string","maxLength":1}]})");
  EXPECT_TRUE(Matches(any_of, "5"));
  EXPECT_TRUE(Matches(any_of, "\"a\""));
  EXPECT_FALSE(Matches(any_of, "\"ab\""));
  auto one_of = FromSchema(R"({"oneOf":[{"const":1},{"const":2}]})");
  EXPECT_TRUE(Matches(one_of, "2"));
  auto ref = FromSchema(R"({"$defs":{"node":{"type":"object","properties":{
      "v":{"type":"integer"},"next":{"anyOf":[{"$ref":"#/$defs/node"},{"type":"null"}]}},
      "required":["v","next"]}},"$ref":"#/$defs/node"})");
  EXPECT_TRUE(Matches(ref, R"({"v":1,"next":{"v":2,"next":null}})"));
  EXPECT_FALSE(Matches(ref, R"({"v":1,"next":{"v":2}})"));
  auto any = FromSchema("{}");
  EXPECT_TRUE(Matches(any, "[1,\"a\",{}]"));
  auto t = FromSchema("true");
  EXPECT_TRUE(Matches(t, "null"));
}

TEST(JsonSchema, AnyJsonGrammars) {
  std::string err;
  auto obj = Grammar::Parse(JsonAnyGbnf(true), "root", &err);
  ASSERT_TRUE(obj) << err;
  EXPECT_TRUE(Matches(obj, R"({"a":[1,2,{"b":null}],"c":"d"})"));
  EXPECT_FALSE(Matches(obj, "[1]"));
  auto val = Grammar::Parse(JsonAnyGbnf(false), "root", &err);
  ASSERT_TRUE(val) << err;
  EXPECT_TRUE(Matches(val, "[1]"));
  EXPECT_TRUE(Matches(val, "\"s\""));
}

TEST(JsonSchema, MalformedSchemasNameKeywordAndPath) {
  struct Case {
    const char* schema;
    const char* want;
  };
  const Case cases[] = {
      {R"({"type":"string","pattern":"^a"})", "json-schema #: 'pattern' is not supported"},
      {R"({"properties":{"d":{"type":"string","format":"date"}}})",
       "#/properties/d: 'format' is not supported"},
      {R"({"type":"integer","minimum":0})", "'minimum' is not supported"},
      {R"({"allOf":[{"type":"string"}]})", "'allOf' is not supported"},
      {R"({"$ref":"https://example.com/s.json"})", "#/$ref: '$ref' \"https://example.com/s.json\""},
      {R"({"$ref":"#/$defs/missing"})", "not supported or not found"},
      {R"({"type":"tuple"})", "#/type: unknown type 'tuple'"},
      {R"({"type":"array","items":[{"type":"integer"}]})", "#/items: tuple 'items'"},
      {R"({"properties":{"a":{}},"required":["b"]})", "required property 'b' is not in"},
      {R"({"properties":{"a":{}},"additionalProperties":true})", "'additionalProperties' other"},
      {R"({"type":"array","maxItems":-1})", "'maxItems' must be an integer"},
      {R"({"type":"string","minLength":3,"maxLength":2})", "maxLength below minLength"},
      {R"({"enum":[]})", "#/enum: 'enum' must be a non-empty array"},
      {R"({"anyOf":{}})", "'anyOf' must be a non-empty array"},
      {"false", "matches nothing"},
      {"{\"const\":\"\xC3\"}", "#/const: a string in the schema is not valid UTF-8"},
      {"[1]", "a schema must be an object or a boolean"},
      {R"({"type":"object",)", "not valid JSON"},
      {R"({"properties":{"a":{"properties":{"b":{"not":{}}}}}})",
       "#/properties/a/properties/b: 'not' is not supported"},
  };
  for (const Case& c : cases) {
    const std::string err = SchemaError(c.schema);
    EXPECT_NE(err.find(c.want), std::string::npos) << c.schema << " -> " << err;
  }
}

// --------------------------------------------------- end to end (stories260K)

// A validator for the subset (independent of the converter): true if v is
// valid for schema s; *why says where not.
bool Valid(const json::Value& v, const json::Value& s, const json::Value& root, std::string* why) {
  if (s.is_bool()) return s.as_bool();
  if (const json::Value* r = s.Find("$ref")) {
    const std::string name = r->as_string().substr(std::strlen("#/$defs/"));
    return Valid(v, *root.Find("$defs")->Find(name), root, why);
  }
  auto same = [](const json::Value& a, const json::Value& b) {
    std::string x, y;
    // Compare compact texts (good enough for the literals the tests use).
    json::AppendQuoted(&x, a.is_string() ? a.as_string() : "");
    json::AppendQuoted(&y, b.is_string() ? b.as_string() : "");
    return a.type() == b.type() && x == y && (!a.is_number() || a.as_number() == b.as_number()) &&
           (!a.is_bool() || a.as_bool() == b.as_bool());
  };
  if (const json::Value* e = s.Find("enum")) {
    for (const json::Value& x : e->items())
      if (same(v, x)) return true;
    *why = "not in enum";
    return false;
  }
  if (const json::Value* t = s.Find("type")) {
    const std::string& ty = t->as_string();
    bool ok = (ty == "object" && v.is_object()) || (ty == "array" && v.is_array()) ||
              (ty == "string" && v.is_string()) || (ty == "number" && v.is_number()) ||
              (ty == "boolean" && v.is_bool()) || (ty == "null" && v.is_null());
    int64_t i;
    if (ty == "integer") ok = v.is_number() && v.as_int64(&i);
    if (!ok) {
      *why = "not of type " + ty;
      return false;
    }
  }
  if (v.is_string()) {
    size_t cps = 0;
    for (unsigned char c : v.as_string()) cps += (c & 0xC0) != 0x80;
    int64_t n;
    if (const json::Value* m = s.Find("maxLength"); m && m->as_int64(&n) && cps > size_t(n)) {
      *why = "longer than maxLength";
      return false;
    }
  }
  if (v.is_array()) {
    int64_t n;
    if (const json::Value* m = s.Find("maxItems"); m && m->as_int64(&n) && v.size() > size_t(n)) {
      *why = "more than maxItems";
      return false;
    }
    if (const json::Value* m = s.Find("minItems"); m && m->as_int64(&n) && v.size() < size_t(n)) {
      *why = "fewer than minItems";
      return false;
    }
    if (const json::Value* it = s.Find("items"))
      for (const json::Value& x : v.items())
        if (!Valid(x, *it, root, why)) return false;
  }
  if (v.is_object()) {
    const json::Value* props = s.Find("properties");
    for (const auto& [k, x] : v.members()) {
      const json::Value* ps = props ? props->Find(k) : nullptr;
      if (!ps) {
        *why = "unexpected member " + k;
        return false;
      }
      if (!Valid(x, *ps, root, why)) {
        *why = k + ": " + *why;
        return false;
      }
    }
    if (const json::Value* req = s.Find("required"))
      for (const json::Value& r : req->items())
        if (!v.Find(r.as_string())) {
          *why = "missing " + r.as_string();
          return false;
        }
  }
  return true;
}

constexpr const char* kStoriesSchema = R"({
  "type": "object",
  "properties": {
    "name": {"type": "string", "maxLength": 12},
    "age": {"type": "integer"},
    "mood": {"enum": ["happy", "sad", 3, null]},
    "friends": {"type": "array", "items": {"$ref": "#/$defs/friend"}, "maxItems": 2},
    "tall": {"type": "boolean"}
  },
  "required": ["name", "age", "mood"],
  "additionalProperties": false,
  "$defs": {
    "friend": {"type": "object",
               "properties": {"who": {"type": "string", "maxLength": 6}, "x": {"type": "number"}},
               "required": ["who"]}
  }
})";

// stories260K converted (f32) and loaded.
struct Stories {
  lamina_model* m = nullptr;
  ~Stories() { lamina_model_free(m); }
  void Load() {
    const std::string dir = test::SharedDir() + "/models/stories260K";
    const std::string path = test::TestDataDir("json-schema") + "/stories.lamina";
    ConvertOptions o;
    o.weights = "f32";
    o.quiet = true;
    o.tokenizer_path = dir + "/tok512.bin";
    std::string err;
    ASSERT_TRUE(ConvertLlama2c(dir + "/stories260K.bin", path, o, &err)) << err;
    ASSERT_EQ(lamina_model_load(path.c_str(), nullptr, &m), LAMINA_OK) << lamina_last_error();
  }
};

int Collect(int32_t, const char* piece, size_t n, void* user) {
  if (piece) static_cast<std::string*>(user)->append(piece, n);
  return 0;
}

TEST(JsonSchemaStories260K, SampledOutputIsValidForTwentySeeds) {
  LAMINA_REQUIRE_SHARED("models/stories260K/stories260K.bin");
  std::string err;
  Stories st;
  ASSERT_NO_FATAL_FAILURE(st.Load());
  std::string gbnf;
  ASSERT_TRUE(JsonSchemaToGbnf(kStoriesSchema, &gbnf, &err)) << err;
  json::Value schema;
  ASSERT_TRUE(json::Parse(kStoriesSchema, &schema, &err)) << err;
  const char* prompt = "Once upon a time, the data was";
  int32_t ids[64];
  size_t n = 0;
  ASSERT_EQ(lamina_tokenize(st.m, prompt, std::strlen(prompt), 1, 0, ids, 64, &n), LAMINA_OK);
  lamina_context_params cp = lamina_context_default_params();
  cp.n_ctx = 512;
  cp.n_threads = 1;
  lamina_context* ctx = nullptr;
  ASSERT_EQ(lamina_context_create(st.m, &cp, &ctx), LAMINA_OK) << lamina_last_error();
  int cut = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    lamina_sampler_params sp = lamina_sampler_default_params();
    sp.temperature = 1.0f;
    sp.seed = seed;
    lamina_sampler* s = nullptr;
    ASSERT_EQ(lamina_sampler_create(st.m, &sp, &s), LAMINA_OK);
    ASSERT_EQ(lamina_sampler_set_grammar(s, gbnf.c_str(), nullptr), LAMINA_OK)
        << lamina_last_error();
    lamina_kv_clear(ctx);
    std::string text;
    lamina_generate_result r;
    ASSERT_EQ(lamina_generate(ctx, s, ids, n, 512 - n, Collect, &text, &r), LAMINA_OK)
        << lamina_last_error();
    const lamina_grammar_state gs = lamina_sampler_grammar_state(s);
    lamina_sampler_free(s);
    if (r.reason != LAMINA_STOP_EOS) {
      // Cut by the context before the grammar could end: reported, not valid.
      EXPECT_EQ(gs, LAMINA_GRAMMAR_INCOMPLETE);
      ++cut;
      continue;
    }
    EXPECT_EQ(gs, LAMINA_GRAMMAR_COMPLETE);
    json::Value v;
    ASSERT_TRUE(json::Parse(text, &v, &err)) << "seed " << seed << ": " << err << "\n" << text;
    std::string why;
    EXPECT_TRUE(Valid(v, schema, schema, &why)) << "seed " << seed << ": " << why << "\n" << text;
    if (seed <= 3)
      std::printf("[json-schema] seed %llu: %s\n", (unsigned long long)seed, text.c_str());
  }
  EXPECT_EQ(cut, 0) << "generations cut by the context";
  lamina_context_free(ctx);
}

// A max-token limit that runs out: the output is an incomplete prefix, and the
// sampler says so (the grammar cannot finish without more tokens).
TEST(JsonSchemaStories260K, CutGenerationIsReportedIncomplete) {
  LAMINA_REQUIRE_SHARED("models/stories260K/stories260K.bin");
  std::string err;
  Stories st;
  ASSERT_NO_FATAL_FAILURE(st.Load());
  std::string gbnf;
  ASSERT_TRUE(JsonSchemaToGbnf(kStoriesSchema, &gbnf, &err)) << err;
  lamina_context_params cp = lamina_context_default_params();
  cp.n_ctx = 256;
  cp.n_threads = 1;
  lamina_context* ctx = nullptr;
  ASSERT_EQ(lamina_context_create(st.m, &cp, &ctx), LAMINA_OK);
  lamina_sampler* s = nullptr;
  ASSERT_EQ(lamina_sampler_create(st.m, nullptr, &s), LAMINA_OK);
  EXPECT_EQ(lamina_sampler_grammar_state(s), LAMINA_GRAMMAR_NONE);
  ASSERT_EQ(lamina_sampler_set_grammar(s, gbnf.c_str(), nullptr), LAMINA_OK);
  int32_t ids[64];
  size_t n = 0;
  ASSERT_EQ(lamina_tokenize(st.m, "Hi there", 8, 1, 0, ids, 64, &n), LAMINA_OK);
  std::string text;
  lamina_generate_result r;
  ASSERT_EQ(lamina_generate(ctx, s, ids, n, 3, Collect, &text, &r), LAMINA_OK);
  EXPECT_EQ(r.reason, LAMINA_STOP_LENGTH);
  EXPECT_EQ(lamina_sampler_grammar_state(s), LAMINA_GRAMMAR_INCOMPLETE);
  EXPECT_EQ(text.substr(0, 1), "{") << text;
  // Syntax errors come back through the C API with line:col; the old grammar stays.
  EXPECT_EQ(lamina_sampler_set_grammar(s, "root ::= (\"a\"\n", nullptr), LAMINA_ERR_INVALID_ARG);
  EXPECT_NE(std::string(lamina_last_error()).find("line 1 col 10"), std::string::npos)
      << lamina_last_error();
  EXPECT_EQ(lamina_sampler_grammar_state(s), LAMINA_GRAMMAR_INCOMPLETE);
  // Speculative decoding refuses a grammar.
  lamina_speculative_params spp = lamina_speculative_default_params();
  spp.lookup = 1;
  EXPECT_EQ(
      lamina_generate_speculative(ctx, s, ids, n, 4, &spp, nullptr, nullptr, nullptr, nullptr),
      LAMINA_ERR_INVALID_ARG);
  // Greedy with a tiny grammar: exactly the literal, then the stop token.
  ASSERT_EQ(lamina_sampler_set_grammar(s, "root ::= \" yes\" | \" no\"\n", nullptr), LAMINA_OK);
  lamina_sampler_params gp = lamina_sampler_default_params();
  gp.temperature = 0.f;
  lamina_sampler* g = nullptr;
  ASSERT_EQ(lamina_sampler_create(st.m, &gp, &g), LAMINA_OK);
  ASSERT_EQ(lamina_sampler_set_grammar(g, "root ::= \" yes\" | \" no\"\n", nullptr), LAMINA_OK);
  lamina_kv_clear(ctx);
  text.clear();
  ASSERT_EQ(lamina_generate(ctx, g, ids, n, 50, Collect, &text, &r), LAMINA_OK)
      << lamina_last_error();
  EXPECT_TRUE(text == " yes" || text == " no") << text;
  EXPECT_EQ(r.reason, LAMINA_STOP_EOS);
  EXPECT_EQ(lamina_sampler_grammar_state(g), LAMINA_GRAMMAR_COMPLETE);
  lamina_sampler_free(g);
  lamina_sampler_free(s);
  lamina_context_free(ctx);
}

}  // namespace
}  // namespace lamina::convert
