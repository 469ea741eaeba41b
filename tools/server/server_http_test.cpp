// lamina-server over HTTP: each test starts the server binary as a child
// process (under $LAMINA_EMULATOR on a cross build) on a free loopback port
// (--port 0; the port is read from its log) with a small generated model, and
// talks to it with httplib's client and, for streams and disconnects, a raw
// socket. Every wait is bounded.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "lamina/lamina.h"
#include "tests/engine_test_models.h"
#include "tests/testutil.h"

namespace lamina::test {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string Emulator() {
  const char* e = std::getenv("LAMINA_EMULATOR");
  return e ? e : "";
}
std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}
std::string ReadFile(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Writes (per test case: each has its own $LAMINA_TESTDATA) a q4 test model.
std::string WriteModel(const std::string& name, TestModelSpec s) {
  const std::string path = TestDataDir("server") + "/" + name + ".lamina";
  s.scheme = "q4";
  std::string err;
  EXPECT_TRUE(WriteTestModel(s, path, &err)) << err;
  return path;
}
// The byte-tokenizer model (no chat template) and, when ../shared has it, a
// model with the Llama 3 tokenizer (chat template "llama3").
std::string ByteModel() {
  TestModelSpec s;
  s.vocab = 258;
  s.seed = 21;
  s.max_context = 2048;
  return WriteModel("byte", s);
}
std::string Llama3Model() {
  TestModelSpec s;
  s.seed = 22;
  s.tokenizer_path = SharedDir() + "/tokenizers/llama3/tokenizer.model";
  return WriteModel("llama3", s);
}
// A slower model (dim 512, 8 layers): a long generation takes seconds, so
// the per-request timeout can be observed.
std::string SlowModel() {
  TestModelSpec s;
  s.dim = 512;
  s.n_layers = 8;
  s.n_heads = 8;
  s.n_kv_heads = 2;
  s.ffn = 1536;
  s.vocab = 258;
  s.seed = 23;
  s.max_context = 4096;
  return WriteModel("slow", s);
}

class Server {
 public:
  // Starts lamina-server with `args`; waits for the listening line.
  bool Start(const std::string& model, const std::string& args, bool wait_ready = true) {
    // A log of its own per start (a stale log would name a dead server's port).
    static int n_started = 0;
    log_ = TestDataDir("server") + "/server" + std::to_string(getpid()) + "_" +
           std::to_string(n_started++) + ".log";
    std::remove(log_.c_str());
    const std::string cmd = "exec " + Emulator() + " " + LAMINA_BINARY_DIR "/lamina-server -m " +
                            Quote(model) + " --port 0 " + args + " 2>" + Quote(log_);
    pid_ = fork();
    if (pid_ == 0) {
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    const auto until = Clock::now() + std::chrono::seconds(120);
    while (Clock::now() < until) {
      const std::string l = ReadFile(log_);
      const size_t at = l.find("listening on http://127.0.0.1:");
      if (at != std::string::npos && l.find(" (", at) != std::string::npos) {
        port_ = std::atoi(l.c_str() + at + std::strlen("listening on http://127.0.0.1:"));
        break;
      }
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        ADD_FAILURE() << "lamina-server exited: " << l;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (port_ <= 0) {
      ADD_FAILURE() << "lamina-server did not start: " << ReadFile(log_);
      return false;
    }
    return !wait_ready || WaitReady();
  }
  bool WaitReady() {
    const auto until = Clock::now() + std::chrono::seconds(120);
    while (Clock::now() < until) {
      auto r = Client().Get("/health");
      if (r && r->status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "lamina-server never became ready: " << ReadFile(log_);
    return false;
  }
  httplib::Client Client(int timeout_s = 120) const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(timeout_s, 0);
    c.set_write_timeout(timeout_s, 0);
    return c;
  }
  int port() const { return port_; }
  std::string log() const { return ReadFile(log_); }
  // SIGTERM, then the exit status (SIGKILL after 60 s).
  int Stop() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    int status = 0;
    const auto until = Clock::now() + std::chrono::seconds(60);
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (Clock::now() > until) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  ~Server() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string log_;
};

// Raw HTTP/1.1 POST on a socket. Reads until EOF (Connection: close), or
// until `stop_after` bytes of body arrived (then closes the socket: a client
// that goes away mid-stream).
std::string RawPost(int port, const std::string& path, const std::string& body,
                    size_t stop_after = 0) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{120, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return "";
  }
  const std::string req = "POST " + path +
                          " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          "Connection: close\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body;
  if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return "";
  }
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    const size_t hdr = out.find("\r\n\r\n");
    if (stop_after && hdr != std::string::npos && out.size() - hdr >= stop_after) break;
  }
  close(fd);
  return out;
}

// The body of a chunked HTTP response.
std::string Dechunk(const std::string& raw) {
  const size_t hdr = raw.find("\r\n\r\n");
  if (hdr == std::string::npos) return "";
  std::string out;
  size_t i = hdr + 4;
  while (i < raw.size()) {
    const size_t eol = raw.find("\r\n", i);
    if (eol == std::string::npos) break;
    const size_t n = std::strtoul(raw.substr(i, eol - i).c_str(), nullptr, 16);
    if (n == 0) break;
    out += raw.substr(eol + 2, n);
    i = eol + 2 + n + 2;
  }
  return out;
}

struct Streamed {
  std::string text, finish;
  std::vector<json> events;
  bool done = false;  // data: [DONE] seen
  json usage;
};
Streamed ParseSse(const std::string& body, bool chat) {
  Streamed s;
  size_t i = 0;
  while ((i = body.find("data: ", i)) != std::string::npos) {
    const size_t end = body.find("\n\n", i);
    const std::string d = body.substr(i + 6, end - i - 6);
    i = end;
    if (d == "[DONE]") {
      s.done = true;
      break;
    }
    const json j = json::parse(d);
    s.events.push_back(j);
    if (j.contains("usage")) s.usage = j["usage"];
    if (j["choices"].empty()) continue;
    const json& c = j["choices"][0];
    if (chat && c["delta"].contains("content")) s.text += c["delta"]["content"].get<std::string>();
    if (!chat) s.text += c["text"].get<std::string>();
    if (!c["finish_reason"].is_null()) s.finish = c["finish_reason"];
  }
  return s;
}

// llama-run's output for a prompt (text on stdout; its trailing newline removed).
std::string LlamaRun(const std::string& model, const std::string& args) {
  const std::string cmd = Emulator() + " " + LAMINA_BINARY_DIR "/llama-run -m " + Quote(model) +
                          " " + args + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << cmd;
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

void ExpectApiError(const httplib::Result& r, int status, const std::string& says = "") {
  ASSERT_TRUE(r) << "no response";
  EXPECT_EQ(r->status, status) << r->body;
  const json j = json::parse(r->body, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("error")) << r->body;
  EXPECT_TRUE(j["error"]["message"].is_string());
  EXPECT_TRUE(j["error"]["type"].is_string());
  EXPECT_TRUE(j["error"].contains("param") && j["error"].contains("code"));
  if (!says.empty()) {
    EXPECT_NE(j["error"]["message"].get<std::string>().find(says), std::string::npos) << r->body;
  }
}

TEST(ServerHttp, HealthReadyOnlyAfterLoad) {
  Server s;
  ASSERT_TRUE(s.Start(ByteModel(), "--load-delay 1500", /*wait_ready=*/false));
  auto c = s.Client();
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 503) << h->body;
  EXPECT_NE(h->body.find("Loading model"), std::string::npos);
  ExpectApiError(c.Post("/v1/completions", R"({"prompt":"a"})", "application/json"), 503,
                 "loading");
  ASSERT_TRUE(s.WaitReady());
  EXPECT_NE(s.log().find("ready"), std::string::npos);
  h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(json::parse(h->body)["status"], "ok");
  auto m = c.Get("/v1/models");
  ASSERT_TRUE(m);
  EXPECT_EQ(json::parse(m->body)["data"][0]["id"], "byte.lamina");
  EXPECT_EQ(s.Stop(), 0);
}

TEST(ServerHttp, CompletionStreamEqualsNonStreamAndLlamaRun) {
  const std::string model = ByteModel();
  Server s;
  ASSERT_TRUE(s.Start(model, "-t 1 -c 256"));
  const std::string req = R"({"prompt":"Once upon","max_tokens":40,"seed":1234,"temperature":0.9)";
  auto r = s.Client().Post("/v1/completions", req + "}", "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  const std::string text = j["choices"][0]["text"];
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["usage"]["prompt_tokens"], 10);  // BOS + 9 bytes
  const int n_gen = j["usage"]["completion_tokens"];
  const std::string finish = j["choices"][0]["finish_reason"];
  EXPECT_TRUE(finish == "length" ? n_gen == 40 : finish == "stop") << finish;
  EXPECT_GT(n_gen, 0);

  const Streamed st =
      ParseSse(Dechunk(RawPost(s.port(), "/v1/completions",
                               req + R"(,"stream":true,"stream_options":{"include_usage":true}})")),
               false);
  EXPECT_TRUE(st.done);
  EXPECT_EQ(st.text, text);
  EXPECT_EQ(st.finish, finish);
  EXPECT_EQ(st.usage["completion_tokens"], n_gen);

  EXPECT_EQ(LlamaRun(model, "-p 'Once upon' -n 40 --seed 1234 --temp 0.9 -t 1"), text);

  // Stop strings end the text before the stop string, in both modes.
  ASSERT_GT(text.size(), 12u);
  {
    // Two whole UTF-8 characters from byte 6 on (a stop string is JSON text).
    auto boundary = [&](size_t i) {
      while (i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) ++i;
      return i;
    };
    const size_t b0 = boundary(6), b2 = boundary(boundary(b0 + 1) + 1);
    ASSERT_GT(b2, b0);
    const std::string stop = text.substr(b0, b2 - b0);
    const std::string want = text.substr(0, text.find(stop));
    json body = json::parse(req + "}");
    body["stop"] = json::array({stop});
    r = s.Client().Post("/v1/completions", body.dump(), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(json::parse(r->body)["choices"][0]["text"], want);
    EXPECT_EQ(json::parse(r->body)["choices"][0]["finish_reason"], "stop");
    json sb = body;
    sb["stream"] = true;
    const Streamed ss = ParseSse(Dechunk(RawPost(s.port(), "/v1/completions", sb.dump())), false);
    EXPECT_EQ(ss.text, want);
    const std::string stop_arg = "--stop " + Quote(stop);
    EXPECT_EQ(LlamaRun(model, "-p 'Once upon' -n 40 --seed 1234 --temp 0.9 -t 1 " + stop_arg),
              want);
  }
  // tokenize / detokenize round trip.
  auto t =
      s.Client().Post("/tokenize", R"({"content":"Hi!","add_special":true})", "application/json");
  ASSERT_TRUE(t);
  const json ids = json::parse(t->body)["tokens"];
  EXPECT_EQ(ids, json::parse("[256,72,105,33]"));
  t = s.Client().Post("/detokenize", json{{"tokens", ids}}.dump(), "application/json");
  ASSERT_TRUE(t);
  EXPECT_EQ(json::parse(t->body)["content"], "Hi!");
  EXPECT_EQ(s.Stop(), 0);
}

TEST(ServerHttp, ChatStreamEqualsNonStreamAndLlamaRun) {
  LAMINA_REQUIRE_SHARED("tokenizers/llama3/tokenizer.model");
  const std::string model = Llama3Model();
  Server s;
  ASSERT_TRUE(s.Start(model, "-t 1 -c 512"));
  const json msgs = json::parse(
      R"([{"role":"system","content":"You are terse."},{"role":"user","content":"Hello there"}])");
  json req = {{"messages", msgs}, {"max_tokens", 24}, {"seed", 77}, {"temperature", 1.0}};
  auto r = s.Client().Post("/v1/chat/completions", req.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  const std::string text = j["choices"][0]["message"]["content"];
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_GT(j["usage"]["completion_tokens"].get<int>(), 0);
  EXPECT_FALSE(text.empty());

  json sreq = req;
  sreq["stream"] = true;
  const Streamed st =
      ParseSse(Dechunk(RawPost(s.port(), "/v1/chat/completions", sreq.dump())), true);
  EXPECT_TRUE(st.done);
  ASSERT_FALSE(st.events.empty());
  EXPECT_EQ(st.events[0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(st.text, text);
  EXPECT_EQ(st.finish, j["choices"][0]["finish_reason"]);

  // llama-run with the same rendered template (no extra BOS), seed and sampling.
  lamina_model* m = nullptr;
  ASSERT_EQ(lamina_model_load(model.c_str(), nullptr, &m), LAMINA_OK);
  const lamina_chat_message cm[] = {{"system", "You are terse."}, {"user", "Hello there"}};
  std::string rendered(4096, '\0');
  size_t n = 0;
  ASSERT_EQ(lamina_chat_apply_template(m, cm, 2, 1, &rendered[0], rendered.size(), &n), LAMINA_OK);
  rendered.resize(n);
  lamina_model_free(m);
  EXPECT_EQ(LlamaRun(model, "-p " + Quote(rendered) + " --no-bos -n 24 --seed 77 --temp 1 -t 1"),
            text);

  // A second turn extending the conversation reuses the slot's KV prefix.
  json req2 = req;
  req2["messages"].push_back({{"role", "assistant"}, {"content", text}});
  req2["messages"].push_back({{"role", "user"}, {"content", "More"}});
  r = s.Client().Post("/v1/chat/completions", req2.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  const std::string log = s.log();
  const size_t last = log.rfind("/v1/chat/completions slot 0 | prompt ");
  ASSERT_NE(last, std::string::npos);
  const size_t reused = std::strtoul(log.c_str() + log.find('(', last) + 1, nullptr, 10);
  EXPECT_GT(reused, 20u) << log.substr(last);
  EXPECT_EQ(s.Stop(), 0);
}

TEST(ServerHttp, ChatWithoutTemplateIsAClear400) {
  Server s;
  ASSERT_TRUE(s.Start(ByteModel(), "-t 1"));
  ExpectApiError(
      s.Client().Post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"hi"}]})",
                      "application/json"),
      400, "no chat template");
  EXPECT_EQ(s.Stop(), 0);
}

TEST(ServerHttp, EightConcurrentRequestsOnTwoSlots) {
  Server s;
  ASSERT_TRUE(s.Start(ByteModel(), "--parallel 2 -t 2 -c 256"));
  auto body = [](int i) {
    return json{{"prompt", "Story " + std::to_string(i % 3)},
                {"max_tokens", 24 + i},
                {"seed", 100 + i},
                {"temperature", 0.8}}
        .dump();
  };
  std::vector<std::string> got(8);
  std::vector<int> status(8, 0);
  std::vector<std::thread> th;
  for (int i = 0; i < 8; ++i)
    th.emplace_back([&, i] {
      auto r = s.Client().Post("/v1/completions", body(i), "application/json");
      if (!r) return;
      status[i] = r->status;
      got[i] = r->body;
    });
  for (std::thread& t : th) t.join();
  // The same requests one by one (slots hold other prompts now: the prompt
  // cache must not change any result).
  for (int i = 0; i < 8; ++i) {
    ASSERT_EQ(status[i], 200) << got[i];
    auto r = s.Client().Post("/v1/completions", body(i), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(json::parse(r->body)["choices"][0]["text"], json::parse(got[i])["choices"][0]["text"])
        << i;
  }
  const std::string log = s.log();
  EXPECT_NE(log.find("/v1/completions slot 0"), std::string::npos);
  EXPECT_NE(log.find("/v1/completions slot 1"), std::string::npos);
  EXPECT_EQ(log.find("/v1/completions slot 2"), std::string::npos);
  EXPECT_EQ(s.Stop(), 0);
}

TEST(ServerHttp, MalformedRequestsAre400AndServerSurvives) {
  Server s;
  ASSERT_TRUE(s.Start(ByteModel(), "-t 1 -c 64 --max-tokens 100"));
  auto c = s.Client();
  const char* bad[] = {
      "{",
      "[]",
      "\xff\xfe",
      R"({"prompt":5})",
      R"({"prompt":"x","max_tokens":101})",
      R"({"prompt":"x","n":3})",
      R"({"prompt":"x","temperature":"warm"})",
      R"({"prompt":"x","stop":{"a":1}})",
      R"({"prompt":"x","response_format":{"type":"json_schema"}})",
      R"({"prompt":"x","response_format":{"type":"json_schema","json_schema":{"schema":{"type":"string","format":"date"}}}})",
  };
  for (const char* b : bad) ExpectApiError(c.Post("/v1/completions", b, "application/json"), 400);
  ExpectApiError(
      c.Post("/v1/completions", json{{"prompt", std::string(200, 'a')}}.dump(), "application/json"),
      400, "context");
  ExpectApiError(c.Post("/v1/chat/completions", R"({"messages":[{"role":"wizard","content":"x"}]})",
                        "application/json"),
                 400, "wizard");
  ExpectApiError(c.Post("/detokenize", R"({"tokens":[999999]})", "application/json"), 400);
  ExpectApiError(c.Post("/tokenize", R"({"content":7})", "application/json"), 400);
  ExpectApiError(c.Get("/v1/nothing"), 404);
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(s.Stop(), 0);
}

// response_format json_schema / json_object: the output of a random-weight
// model is forced to be valid (a schema whose output is bounded completes).
TEST(ServerHttp, ResponseFormatJsonSchemaForcesValidJson) {
  Server s;
  ASSERT_TRUE(s.Start(ByteModel(), "-t 1 -c 512 --max-tokens 400"));
  auto c = s.Client();
  const json schema = {
      {"type", "object"},
      {"properties",
       {{"answer", {{"enum", {"yes", "no"}}}},
        {"n", {{"type", "integer"}}},
        {"tags", {{"type", "array"}, {"items", {{"type", "boolean"}}}, {"maxItems", 2}}}}},
      {"required", {"answer", "n"}}};
  for (int seed = 1; seed <= 3; ++seed) {
    const json body = {
        {"prompt", "x"},
        {"seed", seed},
        {"temperature", 1.0},
        {"max_tokens", 400},
        {"response_format",
         {{"type", "json_schema"}, {"json_schema", {{"name", "t"}, {"schema", schema}}}}}};
    auto r = c.Post("/v1/completions", body.dump(), "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json out = json::parse(r->body);
    const std::string text = out["choices"][0]["text"];
    EXPECT_EQ(out["choices"][0]["finish_reason"], "stop") << text;
    const json v = json::parse(text);  // throws (fails the test) if not JSON
    ASSERT_TRUE(v.is_object()) << text;
    EXPECT_TRUE(v["answer"] == "yes" || v["answer"] == "no") << text;
    EXPECT_TRUE(v["n"].is_number_integer()) << text;
    if (v.contains("tags")) {
      EXPECT_LE(v["tags"].size(), 2u) << text;
    }
    for (const auto& [k, x] : v.items()) EXPECT_TRUE(k == "answer" || k == "n" || k == "tags") << k;
  }
  auto r = c.Post("/v1/completions",
                  R"({"prompt":"x","max_tokens":300,"response_format":{"type":"json_object"}})",
                  "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const std::string text = json::parse(r->body)["choices"][0]["text"];
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text[0], '{') << text;  // cut by max_tokens or complete: an object's prefix
  ExpectApiError(c.Post("/v1/chat/completions",
                        R"({"messages":[{"role":"user","content":"x"}],"response_format":)"
                        R"({"type":"json_schema","json_schema":{"schema":{"$ref":"http://x/s"}}}})",
                        "application/json"),
                 400, "$ref");
  EXPECT_EQ(s.Stop(), 0);
}

TEST(ServerHttp, ApiKeyRequired401) {
  Server s;
  ASSERT_TRUE(s.Start(ByteModel(), "-t 1 --api-key s3cret"));
  auto c = s.Client();
  const std::string b = R"({"prompt":"x","max_tokens":2})";
  ExpectApiError(c.Post("/v1/completions", b, "application/json"), 401, "API key");
  ExpectApiError(c.Get("/v1/models"), 401);
  ExpectApiError(
      c.Post("/v1/completions", {{"Authorization", "Bearer wrong"}}, b, "application/json"), 401);
  auto ok = c.Post("/v1/completions", {{"Authorization", "Bearer s3cret"}}, b, "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  auto h = c.Get("/health");  // health needs no key
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(s.Stop(), 0);
}

TEST(ServerHttp, OversizedBody413) {
  Server s;
  ASSERT_TRUE(s.Start(ByteModel(), "-t 1 --max-body 4096"));
  const std::string big = json{{"prompt", std::string(100000, 'a')}}.dump();
  auto r = s.Client().Post("/v1/completions", big, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  auto h = s.Client().Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(s.Stop(), 0);
}

TEST(ServerHttp, DisconnectMidStreamFreesTheSlot) {
  Server s;
  ASSERT_TRUE(s.Start(ByteModel(), "--parallel 1 -t 1 -c 2048 --max-tokens 2000"));
  // Greedy, 2000 tokens: far longer than the moment the client leaves.
  const std::string body = R"({"prompt":"Once","max_tokens":2000,"temperature":0,"stream":true})";
  const std::string part = RawPost(s.port(), "/v1/completions", body, /*stop_after=*/200);
  ASSERT_NE(part.find("data: "), std::string::npos) << part;
  // The slot is freed: the log says why, and the next request is served.
  const auto until = Clock::now() + std::chrono::seconds(120);
  while (s.log().find("client disconnected") == std::string::npos && Clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const std::string log = s.log();
  const size_t at = log.find("client disconnected");
  ASSERT_NE(at, std::string::npos) << log;
  const size_t line = log.rfind('\n', at);
  const size_t comp = log.find("completion ", line);
  EXPECT_LT(std::strtoul(log.c_str() + comp + 11, nullptr, 10), 2000u) << log.substr(line);
  auto h = s.Client().Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(json::parse(h->body)["slots_idle"], 1) << h->body;
  auto r =
      s.Client().Post("/v1/completions", R"({"prompt":"x","max_tokens":3})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(s.Stop(), 0);
}

TEST(ServerHttp, CorruptModelExitsWithError) {
  const std::string bad = TestDataDir("server") + "/corrupt.lamina";
  {
    std::ofstream f(bad, std::ios::binary);
    f << "not a lamina model at all";
  }
  for (const std::string& model : {bad, TestDataDir("server") + "/missing.lamina"}) {
    // Bounded: a server that failed to exit would be killed (status 124).
    const std::string cmd = "timeout 120 " + Emulator() + " " +
                            LAMINA_BINARY_DIR "/lamina-server -m " + Quote(model) +
                            " --port 0 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int st = pclose(p);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1) << out;
    EXPECT_NE(out.find("cannot load"), std::string::npos) << out;
  }
}

TEST(ServerHttp, TimeoutEndsGeneration) {
  Server s;
  ASSERT_TRUE(s.Start(SlowModel(), "--parallel 1 -t 1 -c 4096 --max-tokens 4000 --timeout 2"));
  // Far more tokens than 2 s allow: the generation ends with "length".
  const auto t0 = Clock::now();
  auto r =
      s.Client().Post("/v1/completions", R"({"prompt":"Once","max_tokens":4000,"temperature":0})",
                      "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_LT(j["usage"]["completion_tokens"].get<int>(), 4000);
  EXPECT_GE(Clock::now() - t0, std::chrono::seconds(2));
  EXPECT_NE(s.log().find("| timeout"), std::string::npos) << s.log();
  EXPECT_EQ(s.Stop(), 0);
}

}  // namespace
}  // namespace lamina::test
