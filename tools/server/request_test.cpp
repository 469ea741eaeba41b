// lamina-server request parsing and validation (no HTTP, no model).
#include "tools/server/request.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/grammar.h"
#include "tools/server/slots.h"

namespace lamina::server {
namespace {

GenRequest Chat(const std::string& body, ApiError* err, bool* ok) {
  GenRequest r;
  *ok = ParseChatRequest(body, Limits(), &r, err);
  return r;
}

TEST(ServerRequest, ResponseFormatJsonBecomesAGrammar) {
  ApiError e;
  bool ok;
  GenRequest r = Chat(
      R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"text"}})", &e, &ok);
  ASSERT_TRUE(ok) << e.message;
  EXPECT_TRUE(r.grammar.empty());
  for (const char* rf : {R"({"type":"json_object"})",
                         R"({"type":"json_schema","json_schema":{"name":"n","strict":true,
                             "schema":{"type":"object","properties":{"a":{"type":"integer"}},
                             "required":["a"],"additionalProperties":false}}})"}) {
    r = Chat(
        std::string(R"({"messages":[{"role":"user","content":"x"}],"response_format":)") + rf + "}",
        &e, &ok);
    ASSERT_TRUE(ok) << rf << ": " << e.message;
    std::string err;
    EXPECT_TRUE(engine::Grammar::Parse(r.grammar, "root", &err)) << rf << ": " << err;
  }
  EXPECT_NE(r.grammar.find("\"\\\"a\\\"\""), std::string::npos) << r.grammar;
}

TEST(ServerRequest, ChatFieldsAreRead) {
  ApiError e;
  bool ok;
  GenRequest r = Chat(R"({"model":"m","messages":[{"role":"system","content":"be brief"},
      {"role":"user","content":[{"type":"text","text":"hi "},{"type":"text","text":"there"}]},
      {"role":"assistant","content":null},{"role":"developer","content":"d"},
      {"role":"tool","content":"t"}],
      "max_completion_tokens":7,"temperature":0,"top_p":0.5,"top_k":3,"min_p":0.1,"seed":9,
      "stop":"END","stream":true,"stream_options":{"include_usage":true},"n":1,
      "response_format":{"type":"text"},"frequency_penalty":0,"user":"x"})",
                      &e, &ok);
  ASSERT_TRUE(ok) << e.message;
  ASSERT_EQ(r.messages.size(), 5u);
  EXPECT_EQ(r.messages[1].content, "hi there");
  EXPECT_EQ(r.messages[2].content, "");
  EXPECT_EQ(r.messages[3].role, "system");
  EXPECT_EQ(r.messages[4].role, "ipython");
  EXPECT_EQ(r.max_tokens, 7u);
  EXPECT_EQ(r.sampling.temperature, 0.f);
  EXPECT_EQ(r.sampling.top_k, 3);
  EXPECT_EQ(r.sampling.seed, 9u);
  EXPECT_TRUE(r.have_seed);
  EXPECT_EQ(r.stop, std::vector<std::string>{"END"});
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  // Omitted fields keep lamina's sampler defaults.
  r = Chat(R"({"messages":[{"role":"user","content":"x"}],"stop":["a","b"],"max_tokens":null})", &e,
           &ok);
  ASSERT_TRUE(ok) << e.message;
  EXPECT_EQ(r.sampling.temperature, lamina_sampler_default_params().temperature);
  EXPECT_EQ(r.max_tokens, 0u);
  EXPECT_FALSE(r.have_seed);
  EXPECT_EQ(r.stop.size(), 2u);
}

TEST(ServerRequest, MalformedRequestsAre400WithParam) {
  struct Case {
    const char* body;
    const char* param;
    const char* says;
  };
  const Case cases[] = {
      {"{", "", "not valid JSON"},
      {"[1]", "", "JSON object"},
      {"\"s\"", "", "JSON object"},
      {R"({"messages":"hi"})", "messages", "non-empty array"},
      {R"({"messages":[]})", "messages", "non-empty array"},
      {R"({"messages":[5]})", "messages[0]", "object"},
      {R"({"messages":[{"content":"x"}]})", "messages[0].role", "string"},
      {R"({"messages":[{"role":"wizard","content":"x"}]})", "messages[0].role", "wizard"},
      {R"({"messages":[{"role":"user"}]})", "messages[0].content", "missing"},
      {R"({"messages":[{"role":"user","content":5}]})", "messages[0].content", "string"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})", "messages[0].content",
       "not supported"},
      {R"({"messages":[{"role":"user","content":"x"}],"temperature":"hot"})", "temperature",
       "number"},
      {R"({"messages":[{"role":"user","content":"x"}],"temperature":3})", "temperature", "[0, 2]"},
      {R"({"messages":[{"role":"user","content":"x"}],"top_p":-1})", "top_p", "[0, 1]"},
      {R"({"messages":[{"role":"user","content":"x"}],"top_k":1.5})", "top_k", "integer"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":0})", "max_tokens", "got 0"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":-3})", "max_tokens", ""},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":99999999})", "max_tokens",
       "at most 2048"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":18446744073709551615})",
       "max_tokens", "out of range"},
      {R"({"messages":[{"role":"user","content":"x"}],"n":2})", "n", "must be 1"},
      {R"({"messages":[{"role":"user","content":"x"}],"stream":"yes"})", "stream", "boolean"},
      {R"({"messages":[{"role":"user","content":"x"}],"stop":5})", "stop", "string"},
      {R"({"messages":[{"role":"user","content":"x"}],"stop":[""]})", "stop", "empty"},
      {R"({"messages":[{"role":"user","content":"x"}],"stop":[1]})", "stop", "string"},
      {R"({"messages":[{"role":"user","content":"x"}],"seed":"1"})", "seed", "integer"},
      {R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema",
          "json_schema":{}}})",
       "response_format", "needs 'json_schema'"},
      {R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema",
          "json_schema":{"schema":{"type":"string","pattern":"a+"}}}})",
       "response_format", "'pattern' is not supported"},
      {R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"grammar"}})",
       "response_format", "unknown response_format type 'grammar'"},
      {R"({"messages":[{"role":"user","content":"x"}],"response_format":"json"})",
       "response_format", "object"},
      {"{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}", "", "not valid JSON"},
  };
  for (const Case& c : cases) {
    ApiError e;
    bool ok;
    Chat(c.body, &e, &ok);
    EXPECT_FALSE(ok) << c.body;
    EXPECT_EQ(e.status, 400) << c.body;
    EXPECT_EQ(e.param, c.param) << c.body;
    EXPECT_NE(e.message.find(c.says), std::string::npos) << c.body << " -> " << e.message;
    const json j = ErrorBody(e);
    EXPECT_TRUE(j["error"]["message"].is_string());
    EXPECT_EQ(j["error"]["type"], "invalid_request_error");
    EXPECT_TRUE(j["error"].contains("param") && j["error"].contains("code"));
  }
  // Too many stop strings.
  std::string many = R"({"messages":[{"role":"user","content":"x"}],"stop":[)";
  for (int i = 0; i < 17; ++i) many += std::string(i ? "," : "") + "\"s\"";
  ApiError e;
  bool ok;
  Chat(many + "]}", &e, &ok);
  EXPECT_FALSE(ok);
  EXPECT_EQ(e.param, "stop");
}

TEST(ServerRequest, MalformedCompletionTokenizeDetokenize) {
  GenRequest r;
  ApiError e;
  EXPECT_TRUE(ParseCompletionRequest(R"({"prompt":"Once","max_tokens":3})", Limits(), &r, &e));
  EXPECT_EQ(r.prompt, "Once");
  EXPECT_FALSE(r.chat);
  EXPECT_TRUE(ParseCompletionRequest(R"({"prompt":["Once"]})", Limits(), &r, &e));
  EXPECT_FALSE(ParseCompletionRequest(R"({"prompt":["a","b"]})", Limits(), &r, &e));
  EXPECT_FALSE(ParseCompletionRequest(R"({"prompt":""})", Limits(), &r, &e));
  EXPECT_FALSE(ParseCompletionRequest(R"({"max_tokens":3})", Limits(), &r, &e));
  EXPECT_EQ(e.param, "prompt");
  EXPECT_FALSE(ParseCompletionRequest(R"({"prompt":"x","echo":true})", Limits(), &r, &e));

  TokenizeRequest t;
  EXPECT_TRUE(ParseTokenizeRequest(R"({"content":"hi","add_special":true})", &t, &e));
  EXPECT_TRUE(t.add_special);
  EXPECT_FALSE(ParseTokenizeRequest(R"({"content":1})", &t, &e));
  EXPECT_FALSE(ParseTokenizeRequest("nope", &t, &e));
  std::vector<int32_t> ids;
  EXPECT_TRUE(ParseDetokenizeRequest(R"({"tokens":[1,2,257]})", 258, &ids, &e));
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 2, 257}));
  EXPECT_FALSE(ParseDetokenizeRequest(R"({"tokens":[258]})", 258, &ids, &e));
  EXPECT_FALSE(ParseDetokenizeRequest(R"({"tokens":[-1]})", 258, &ids, &e));
  EXPECT_FALSE(ParseDetokenizeRequest(R"({"tokens":[1.5]})", 258, &ids, &e));
  EXPECT_FALSE(ParseDetokenizeRequest(R"({"tokens":[18446744073709551615]})", 258, &ids, &e));
  EXPECT_FALSE(ParseDetokenizeRequest(R"({"tokens":"1"})", 258, &ids, &e));
}

TEST(ServerRequest, ResponseShapes) {
  const Usage u{5, 3};
  json c = ChatResponse("id1", 7, "m", "hi", "stop", u);
  EXPECT_EQ(c["object"], "chat.completion");
  EXPECT_EQ(c["choices"][0]["message"]["content"], "hi");
  EXPECT_EQ(c["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(c["usage"]["total_tokens"], 8);
  json k = ChatChunk("id1", 7, "m", "x", false, nullptr);
  EXPECT_EQ(k["choices"][0]["delta"]["content"], "x");
  EXPECT_TRUE(k["choices"][0]["finish_reason"].is_null());
  k = ChatChunk("id1", 7, "m", "", false, "length");
  EXPECT_TRUE(k["choices"][0]["delta"].empty());
  EXPECT_EQ(k["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(CompletionResponse("i", 1, "m", "t", "length", u)["choices"][0]["text"], "t");
  EXPECT_EQ(SseEvent(json{{"a", 1}}), "data: {\"a\":1}\n\n");
  // Invalid UTF-8 never throws; it is replaced.
  EXPECT_NE(SseEvent(json{{"a", std::string("\xff")}}).find("\xef\xbf\xbd"), std::string::npos);
  EXPECT_STREQ(FinishReason(LAMINA_STOP_EOS), "stop");
  EXPECT_STREQ(FinishReason(LAMINA_STOP_STRING), "stop");
  EXPECT_STREQ(FinishReason(LAMINA_STOP_LENGTH), "length");
  EXPECT_STREQ(FinishReason(LAMINA_STOP_CONTEXT_FULL), "length");
}

TEST(ServerSlots, CommonPrefix) {
  EXPECT_EQ(CommonPrefix({1, 2, 3}, {1, 2, 4}), 2u);
  EXPECT_EQ(CommonPrefix({}, {1}), 0u);
  EXPECT_EQ(CommonPrefix({1, 2}, {1, 2, 3}), 2u);
}

}  // namespace
}  // namespace lamina::server
