#include "tools/server/server.h"

#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "tools/server/request.h"
#include "tools/server/slots.h"

namespace lamina::server {

namespace {

constexpr const char* kJson = "application/json";

struct State {
  Options o;
  lamina_model* model = nullptr;
  lamina_model_info mi{};
  int n_ctx = 0;
  std::string model_id;
  std::atomic<bool> ready{false};
  SlotPool pool;
  Limits lim;
  std::atomic<uint64_t> n_requests{0};
  std::mutex log_mu, rng_mu;
  std::mt19937_64 rng{std::random_device{}()};
};

void Log(State& st, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void Log(State& st, const char* fmt, ...) {
  std::lock_guard<std::mutex> lock(st.log_mu);
  char ts[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::fprintf(stderr, "[lamina-server %s] ", ts);
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fputc('\n', stderr);
  std::fflush(stderr);
}

void SendError(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(ErrorBody(e).dump(-1, ' ', false, json::error_handler_t::replace), kJson);
}

ApiError MakeError(int status, const std::string& type, const std::string& msg,
                   const std::string& code = "") {
  ApiError e;
  e.status = status;
  e.type = type;
  e.message = msg;
  e.code = code;
  return e;
}

void SendJson(httplib::Response& res, const json& j) {
  res.status = 200;
  res.set_content(j.dump(-1, ' ', false, json::error_handler_t::replace), kJson);
}

// Tokenizes with the C API's buffer convention.
lamina_status Tokenize(const lamina_model* m, const std::string& text, bool bos, bool special,
                       std::vector<int32_t>* out) {
  size_t n = 0;
  out->assign(text.size() + 8, 0);
  lamina_status s =
      lamina_tokenize(m, text.data(), text.size(), bos, special, out->data(), out->size(), &n);
  if (s == LAMINA_ERR_BUFFER_TOO_SMALL) {
    out->assign(n, 0);
    s = lamina_tokenize(m, text.data(), text.size(), bos, special, out->data(), out->size(), &n);
  }
  out->resize(s == LAMINA_OK ? n : 0);
  return s;
}

// The prompt tokens of a generation request, or an error.
bool PromptTokens(State& st, const GenRequest& r, std::vector<int32_t>* ids, ApiError* err) {
  if (!st.mi.has_tokenizer) {
    *err = MakeError(400, "invalid_request_error",
                     "the model has no tokenizer: text requests are not possible");
    return false;
  }
  std::string text;
  if (r.chat) {
    std::vector<lamina_chat_message> msgs;
    for (const Message& m : r.messages) msgs.push_back({m.role.c_str(), m.content.c_str()});
    size_t n = 0;
    text.resize(4096);
    lamina_status s = lamina_chat_apply_template(st.model, msgs.data(), msgs.size(), 1, &text[0],
                                                 text.size(), &n);
    if (s == LAMINA_ERR_BUFFER_TOO_SMALL) {
      text.resize(n);
      s = lamina_chat_apply_template(st.model, msgs.data(), msgs.size(), 1, &text[0], text.size(),
                                     &n);
    }
    if (s == LAMINA_ERR_NO_CHAT_TEMPLATE) {
      *err = MakeError(400, "invalid_request_error",
                       "the model has no chat template, so /v1/chat/completions cannot format "
                       "the messages; use /v1/completions with a prompt string");
      return false;
    }
    if (s != LAMINA_OK) {
      *err = MakeError(400, "invalid_request_error",
                       std::string("cannot apply the chat template: ") + lamina_last_error());
      return false;
    }
    text.resize(n);
  }
  const lamina_status s = r.chat ? Tokenize(st.model, text, false, true, ids)
                                 : Tokenize(st.model, r.prompt, true, true, ids);
  if (s != LAMINA_OK) {
    *err = MakeError(400, "invalid_request_error",
                     std::string("cannot tokenize the prompt: ") + lamina_last_error());
    return false;
  }
  if (ids->size() >= static_cast<size_t>(st.n_ctx)) {
    *err = MakeError(400, "invalid_request_error",
                     "the prompt has " + std::to_string(ids->size()) +
                         " tokens; the context of a slot holds " + std::to_string(st.n_ctx) +
                         " (prompt + completion must fit; server option -c)",
                     "context_length_exceeded");
    err->param = r.chat ? "messages" : "prompt";
    return false;
  }
  return true;
}

std::string NewId(State& st, bool chat) {
  uint64_t r;
  {
    std::lock_guard<std::mutex> lock(st.rng_mu);
    r = st.rng();
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s-%016llx", chat ? "chatcmpl" : "cmpl",
                static_cast<unsigned long long>(r));
  return buf;
}

struct Lease {
  SlotPool* pool;
  Slot* slot;
  Lease(SlotPool* p, Slot* s) : pool(p), slot(s) {}
  ~Lease() { Release(); }
  void Release() {
    if (slot) pool->Release(slot);
    slot = nullptr;
  }
};

void LogRequest(State& st, const char* path, int slot, const GenOutcome& g, double total_s) {
  const double tps = g.decode_ms > 0 ? 1000.0 * g.n_generated / g.decode_ms : 0.0;
  const char* why = g.client_gone                          ? "client disconnected"
                    : g.timed_out                          ? "timeout"
                    : g.status != LAMINA_OK                ? "error"
                    : g.reason == LAMINA_STOP_STRING       ? "stop string"
                    : g.reason == LAMINA_STOP_EOS          ? "eos"
                    : g.reason == LAMINA_STOP_CONTEXT_FULL ? "context full"
                                                           : "length";
  Log(st,
      "%s slot %d | prompt %zu tokens (%zu reused) | completion %zu tokens | %.1f tok/s | "
      "%.2f s | %s",
      path, slot, g.n_prompt, g.n_reused, g.n_generated, tps, total_s, why);
}

void HandleGenerate(State& st, bool chat, const httplib::Request& req, httplib::Response& res) {
  const auto t0 = Clock::now();
  GenRequest r;
  ApiError err;
  const bool ok = chat ? ParseChatRequest(req.body, st.lim, &r, &err)
                       : ParseCompletionRequest(req.body, st.lim, &r, &err);
  if (!ok) return SendError(res, err);
  auto prompt = std::make_shared<std::vector<int32_t>>();
  if (!PromptTokens(st, r, prompt.get(), &err)) return SendError(res, err);
  GenParams gp;
  gp.max_tokens =
      r.max_tokens ? r.max_tokens : std::min(st.o.max_tokens, st.n_ctx - prompt->size());
  gp.sampling = r.sampling;
  if (!r.have_seed) {
    std::lock_guard<std::mutex> lock(st.rng_mu);
    gp.sampling.seed = st.rng();
  }
  gp.stop = r.stop;
  gp.grammar = r.grammar;
  gp.deadline = t0 + std::chrono::seconds(st.o.timeout_s);
  Slot* slot = st.pool.Acquire(*prompt, gp.deadline);
  if (!slot) {
    return SendError(res, MakeError(503, "server_error",
                                    "server busy: no slot became free within " +
                                        std::to_string(st.o.timeout_s) + " s (--timeout)",
                                    "server_busy"));
  }
  auto lease = std::make_shared<Lease>(&st.pool, slot);
  const std::string id = NewId(st, chat);
  const int64_t created = static_cast<int64_t>(std::time(nullptr));
  const char* path = chat ? "/v1/chat/completions" : "/v1/completions";
  if (!r.stream) {
    const GenOutcome g = Generate(st.model, slot, *prompt, gp);
    const int slot_id = slot->id;
    lease->Release();
    LogRequest(st, path, slot_id, g, std::chrono::duration<double>(Clock::now() - t0).count());
    if (g.status != LAMINA_OK)
      return SendError(res, MakeError(500, "server_error", "generation failed: " + g.error));
    const Usage u{g.n_prompt, g.n_generated};
    const char* finish = g.timed_out ? "length" : FinishReason(g.reason);
    return SendJson(res, chat ? ChatResponse(id, created, st.model_id, g.text, finish, u)
                              : CompletionResponse(id, created, st.model_id, g.text, finish, u));
  }
  // Streaming: the generation runs inside the content provider, writing one
  // server-sent event per piece; a failed write (client gone) stops it.
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  const bool include_usage = r.include_usage;
  State* sp = &st;
  res.set_chunked_content_provider(
      "text/event-stream",
      [sp, lease, prompt, gp, id, created, chat, include_usage, path, t0](
          size_t, httplib::DataSink& sink) mutable {
        State& st = *sp;
        // Nothing may escape into httplib's writer thread.
        try {
          bool alive = true;
          auto send = [&](const std::string& ev) {
            if (alive && !sink.write(ev.data(), ev.size())) alive = false;
            return alive;
          };
          if (chat) send(SseEvent(ChatChunk(id, created, st.model_id, "", true, nullptr)));
          gp.on_text = [&](const std::string& text) {
            return send(SseEvent(chat ? ChatChunk(id, created, st.model_id, text, false, nullptr)
                                      : CompletionChunk(id, created, st.model_id, text, nullptr)));
          };
          GenOutcome g;
          if (alive) {
            g = Generate(st.model, lease->slot, *prompt, gp);
          } else {
            g.client_gone = true;
            g.n_prompt = prompt->size();
          }
          const int slot_id = lease->slot ? lease->slot->id : -1;
          lease->Release();
          LogRequest(st, path, slot_id, g,
                     std::chrono::duration<double>(Clock::now() - t0).count());
          if (g.client_gone) return false;
          if (g.status != LAMINA_OK) {
            send(SseEvent(
                ErrorBody(MakeError(500, "server_error", "generation failed: " + g.error))));
          } else {
            const char* finish = g.timed_out ? "length" : FinishReason(g.reason);
            send(SseEvent(chat ? ChatChunk(id, created, st.model_id, "", false, finish)
                               : CompletionChunk(id, created, st.model_id, "", finish)));
            if (include_usage)
              send(SseEvent(
                  UsageChunk(chat, id, created, st.model_id, Usage{g.n_prompt, g.n_generated})));
          }
          send("data: [DONE]\n\n");
          if (alive) sink.done();
          return alive;
        } catch (const std::exception& e) {
          lease->Release();
          Log(st, "%s: internal error while streaming: %s", path, e.what());
          return false;
        }
      },
      [lease](bool) { lease->Release(); });
}

void Route(State& st, httplib::Server& svr) {
  svr.set_pre_routing_handler([&st](const httplib::Request& req, httplib::Response& res) {
    if (req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
    if (!st.o.api_key.empty()) {
      const std::string want = "Bearer " + st.o.api_key;
      const std::string got = req.get_header_value("Authorization");
      // Constant-time comparison (length leaks, the content does not).
      unsigned diff = got.size() != want.size();
      for (size_t i = 0; i < want.size() && i < got.size(); ++i) diff |= got[i] ^ want[i];
      if (diff) {
        SendError(res, MakeError(401, "authentication_error",
                                 "missing or invalid API key (send 'Authorization: Bearer KEY')",
                                 "invalid_api_key"));
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    if (!st.ready) {
      SendError(res, MakeError(503, "unavailable_error", "the model is loading"));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string msg;
    switch (res.status) {
      case 404:
        msg = "no such endpoint: " + req.method + " " + req.path;
        break;
      case 413:
        msg = "the request body is too large (server option --max-body)";
        break;
      case 400:
        msg = "malformed HTTP request";
        break;
      default:
        msg = "HTTP error " + std::to_string(res.status);
        break;
    }
    const int status = res.status;
    SendError(res,
              MakeError(status, status == 404 ? "not_found_error" : "invalid_request_error", msg));
  });
  svr.set_exception_handler(
      [&st](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        Log(st, "%s %s: internal error: %s", req.method.c_str(), req.path.c_str(), what.c_str());
        SendError(res, MakeError(500, "server_error", "internal error: " + what));
      });

  // Generations log their own line; other requests are logged when refused.
  svr.set_logger([&st](const httplib::Request& req, const httplib::Response& res) {
    if (res.status < 400 || req.path == "/health") return;
    const json j = json::parse(res.body, nullptr, false);
    std::string msg;
    if (j.is_object() && j.contains("error") && j["error"].is_object() &&
        j["error"].contains("message") && j["error"]["message"].is_string())
      msg = j["error"]["message"].get<std::string>().substr(0, 300);
    for (char& c : msg)  // it may quote the request: one line, no control bytes
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    Log(st, "%s %s -> %d %s", req.method.c_str(), req.path.c_str(), res.status, msg.c_str());
  });
  svr.Get("/health", [&st](const httplib::Request&, httplib::Response& res) {
    if (!st.ready) {
      res.status = 503;
      res.set_content(
          json{{"error",
                {{"code", 503}, {"message", "Loading model"}, {"type", "unavailable_error"}}}}
              .dump(),
          kJson);
      return;
    }
    const int busy = st.pool.n_busy();
    SendJson(res, json{{"status", "ok"},
                       {"slots_idle", st.pool.size() - busy},
                       {"slots_processing", busy},
                       {"requests_queued", st.pool.n_queued()}});
  });
  auto models = [&st](const httplib::Request&, httplib::Response& res) {
    json m = {{"id", st.model_id},
              {"object", "model"},
              {"created", 0},
              {"owned_by", "lamina"},
              {"meta",
               {{"n_ctx_slot", st.n_ctx},
                {"slots", st.pool.size()},
                {"n_vocab", st.mi.vocab_size},
                {"weights", st.mi.weight_scheme},
                {"kernels", st.mi.kernel_tier}}}};
    SendJson(res, json{{"object", "list"}, {"data", json::array({m})}});
  };
  svr.Get("/v1/models", models);
  svr.Get("/models", models);
  svr.Post("/v1/chat/completions", [&st](const httplib::Request& q, httplib::Response& r) {
    HandleGenerate(st, true, q, r);
  });
  svr.Post("/v1/completions", [&st](const httplib::Request& q, httplib::Response& r) {
    HandleGenerate(st, false, q, r);
  });
  svr.Post("/tokenize", [&st](const httplib::Request& req, httplib::Response& res) {
    TokenizeRequest t;
    ApiError err;
    if (!ParseTokenizeRequest(req.body, &t, &err)) return SendError(res, err);
    std::vector<int32_t> ids;
    if (Tokenize(st.model, t.content, t.add_special, t.parse_special, &ids) != LAMINA_OK)
      return SendError(res, MakeError(400, "invalid_request_error",
                                      std::string("cannot tokenize: ") + lamina_last_error()));
    SendJson(res, json{{"tokens", ids}});
  });
  svr.Post("/detokenize", [&st](const httplib::Request& req, httplib::Response& res) {
    std::vector<int32_t> ids;
    ApiError err;
    if (!ParseDetokenizeRequest(req.body, st.mi.vocab_size, &ids, &err)) return SendError(res, err);
    std::string text(ids.size() * 8 + 16, '\0');
    size_t n = 0;
    lamina_status s =
        lamina_detokenize(st.model, ids.data(), ids.size(), &text[0], text.size(), &n);
    if (s == LAMINA_ERR_BUFFER_TOO_SMALL) {
      text.resize(n);
      s = lamina_detokenize(st.model, ids.data(), ids.size(), &text[0], text.size(), &n);
    }
    if (s != LAMINA_OK)
      return SendError(res, MakeError(400, "invalid_request_error",
                                      std::string("cannot detokenize: ") + lamina_last_error()));
    text.resize(n);
    SendJson(res, json{{"content", text}});
  });
}

bool LoadModel(State& st, std::string* err) {
  const Options& o = st.o;
  lamina_model_params mp = lamina_model_default_params();
  if (!o.kernels.empty()) mp.kernels = o.kernels.c_str();
  if (lamina_model_load(o.model_path.c_str(), &mp, &st.model) != LAMINA_OK) {
    *err = lamina_last_error();
    return false;
  }
  lamina_model_get_info(st.model, &st.mi);
  if (o.n_ctx > st.mi.max_context) {
    *err = "-c " + std::to_string(o.n_ctx) + " exceeds the model's maximum context " +
           std::to_string(st.mi.max_context);
    return false;
  }
  st.n_ctx = o.n_ctx ? o.n_ctx : std::min(4096, st.mi.max_context);
  const int total =
      o.threads ? o.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  lamina_context_params cp = lamina_context_default_params();
  cp.n_ctx = st.n_ctx;
  cp.n_threads = std::max(1, total / o.parallel);
  cp.n_batch = o.n_batch;
  cp.kv_type = o.kv_f32 ? LAMINA_KV_F32 : LAMINA_KV_F16;
  if (!st.pool.Init(st.model, o.parallel, cp, err)) return false;
  // The chat template: probe with one message.
  const lamina_chat_message probe = {"user", "x"};
  size_t n = 0;
  char buf[256];
  const lamina_status ts = lamina_chat_apply_template(st.model, &probe, 1, 1, buf, sizeof buf, &n);
  lamina_context_info ci{};
  lamina_context_get_info(st.pool.context(0), &ci);
  Log(st,
      "model %s: dim %d, %d layers, vocab %d, weights %s (%.1f MiB, mapped once), kernels %s, "
      "chat template %s | %d slots x context %d, each KV %s %.1f MiB + buffers %.1f MiB, %d "
      "threads | load %.1f ms",
      o.model_path.c_str(), st.mi.dim, st.mi.n_layers, st.mi.vocab_size, st.mi.weight_scheme,
      st.mi.file_bytes / 1048576.0, st.mi.kernel_tier,
      ts == LAMINA_OK || ts == LAMINA_ERR_BUFFER_TOO_SMALL ? "yes" : "none (chat endpoint off)",
      o.parallel, st.n_ctx, o.kv_f32 ? "f32" : "f16", ci.kv_bytes / 1048576.0,
      ci.state_bytes / 1048576.0, cp.n_threads, st.mi.load_ms);
  return true;
}

// httplib's stop() acts only on a server that is already listening; a stop
// requested earlier (a failed load, an early SIGTERM) waits for that first.
std::atomic<bool> g_listen_returned{false};
void StopServer(httplib::Server& svr) {
  while (!svr.is_running() && !g_listen_returned)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  svr.stop();
}

std::string BaseName(const std::string& p) {
  const size_t s = p.find_last_of('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

}  // namespace

int Serve(const Options& o) {
  State st;
  st.o = o;
  st.lim.max_tokens = o.max_tokens;
  st.model_id = o.alias.empty() ? BaseName(o.model_path) : o.alias;

  // SIGINT/SIGTERM are handled by a thread (sigwait), which stops the server;
  // every other thread blocks them. SIGPIPE (a client gone) is ignored.
  signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  httplib::Server svr;
  const int pool_threads = o.http_threads ? o.http_threads : o.parallel + 16;
  svr.new_task_queue = [pool_threads] { return new httplib::ThreadPool(pool_threads); };
  svr.set_payload_max_length(o.max_body);
  svr.set_read_timeout(30, 0);
  svr.set_write_timeout(30, 0);
  Route(st, svr);
  int port = o.port;
  if (port == 0) {
    port = svr.bind_to_any_port(o.host);
    if (port < 0) port = 0;
  } else if (!svr.bind_to_port(o.host, port)) {
    port = 0;
  }
  if (port <= 0) {
    std::fprintf(stderr, "lamina-server: cannot listen on %s:%d\n", o.host.c_str(), o.port);
    return 1;
  }
  Log(st, "listening on http://%s:%d (%s)", o.host.c_str(), port,
      o.api_key.empty() ? "no API key" : "API key required");

  std::thread sig([&svr, set] {
    int s = 0;
    sigwait(&set, &s);
    StopServer(svr);
  });
  sig.detach();
  std::thread http([&svr] {
    svr.listen_after_bind();
    g_listen_returned = true;
  });

  if (o.load_delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(o.load_delay_ms));
  std::string err;
  int rc = 0;
  if (!LoadModel(st, &err)) {
    Log(st, "error: cannot load %s: %s", o.model_path.c_str(), err.c_str());
    // stop() only acts on a running server: wait until the listener runs.
    StopServer(svr);
    rc = 1;
  } else {
    st.ready = true;
    Log(st, "ready");
  }
  http.join();
  Log(st, "stopped");
  st.pool.Clear();  // contexts before the model
  lamina_model_free(st.model);
  return rc;
}

}  // namespace lamina::server
