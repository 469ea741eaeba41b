#include "tools/server/request.h"

#include "tools/convert/json_schema.h"

#include <cmath>
#include <sstream>

namespace lamina::server {

namespace {

bool Bad(ApiError* err, const std::string& param, const std::string& msg) {
  err->status = 400;
  err->type = "invalid_request_error";
  err->param = param;
  err->code = "";
  err->message = msg;
  return false;
}

// The body as a JSON object, or a 400.
bool ParseObject(const std::string& body, json* j, ApiError* err) {
  *j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j->is_discarded())
    return Bad(err, "", "the request body is not valid JSON (expected a JSON object, UTF-8)");
  if (!j->is_object()) return Bad(err, "", "the request body must be a JSON object");
  return true;
}

// The field, or nullptr when absent or null (OpenAI clients send null for
// "not set").
const json* Field(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string Num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

bool GetNumber(const json& j, const char* name, double lo, double hi, float* out, ApiError* err) {
  const json* f = Field(j, name);
  if (!f) return true;
  if (!f->is_number()) return Bad(err, name, std::string("'") + name + "' must be a number");
  const double v = f->get<double>();
  if (!(v >= lo && v <= hi))
    return Bad(err, name,
               std::string("'") + name + "' must be in [" + Num(lo) + ", " + Num(hi) + "], got " +
                   f->dump());
  *out = static_cast<float>(v);
  return true;
}

// Integer in [lo, hi]; *present tells whether it was given.
bool GetInt(const json& j, const char* name, int64_t lo, int64_t hi, int64_t* out, bool* present,
            ApiError* err) {
  *present = false;
  const json* f = Field(j, name);
  if (!f) return true;
  if (!f->is_number_integer())
    return Bad(err, name, std::string("'") + name + "' must be an integer");
  if (f->is_number_unsigned() && f->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    return Bad(err, name, std::string("'") + name + "' is out of range");
  const int64_t v = f->get<int64_t>();
  if (v < lo || v > hi)
    return Bad(err, name,
               std::string("'") + name + "' must be in [" + std::to_string(lo) + ", " +
                   std::to_string(hi) + "], got " + std::to_string(v));
  *out = v;
  *present = true;
  return true;
}

bool GetBool(const json& j, const char* name, bool* out, ApiError* err) {
  const json* f = Field(j, name);
  if (!f) return true;
  if (!f->is_boolean()) return Bad(err, name, std::string("'") + name + "' must be a boolean");
  *out = f->get<bool>();
  return true;
}

// Fields shared by both endpoints.
bool ParseCommon(const json& j, const Limits& lim, GenRequest* r, ApiError* err) {
  if (const json* m = Field(j, "model")) {
    if (!m->is_string()) return Bad(err, "model", "'model' must be a string");
    r->model = m->get<std::string>();
  }
  // max_completion_tokens (the newer name) wins over max_tokens.
  for (const char* name : {"max_tokens", "max_completion_tokens"}) {
    int64_t v = 0;
    bool present = false;
    if (!GetInt(j, name, 1, INT64_MAX, &v, &present, err)) return false;
    if (!present) continue;
    if (static_cast<uint64_t>(v) > lim.max_tokens)
      return Bad(err, name,
                 std::string("'") + name + "' is " + std::to_string(v) +
                     "; this server allows at most " + std::to_string(lim.max_tokens) +
                     " (--max-tokens)");
    r->max_tokens = static_cast<size_t>(v);
  }
  lamina_sampler_params& sp = r->sampling;
  if (!GetNumber(j, "temperature", 0, 2, &sp.temperature, err)) return false;
  if (!GetNumber(j, "top_p", 0, 1, &sp.top_p, err)) return false;
  if (!GetNumber(j, "min_p", 0, 1, &sp.min_p, err)) return false;
  if (!GetNumber(j, "repeat_penalty", 0.01, 100, &sp.repeat_penalty, err)) return false;
  int64_t v = 0;
  bool present = false;
  if (!GetInt(j, "top_k", 0, 1 << 24, &v, &present, err)) return false;
  if (present) sp.top_k = static_cast<int32_t>(v);
  if (const json* s = Field(j, "seed")) {
    if (!s->is_number_integer()) return Bad(err, "seed", "'seed' must be an integer");
    sp.seed =
        s->is_number_unsigned() ? s->get<uint64_t>() : static_cast<uint64_t>(s->get<int64_t>());
    r->have_seed = true;
  }
  if (!GetInt(j, "n", 1, INT64_MAX, &v, &present, err)) return false;
  if (present && v != 1)
    return Bad(err, "n", "'n' must be 1: this server returns one choice per request");
  if (!GetBool(j, "stream", &r->stream, err)) return false;
  if (const json* so = Field(j, "stream_options")) {
    if (!so->is_object()) return Bad(err, "stream_options", "'stream_options' must be an object");
    if (!GetBool(*so, "include_usage", &r->include_usage, err)) return false;
  }
  if (const json* st = Field(j, "stop")) {
    std::vector<std::string> stops;
    if (st->is_string()) {
      stops.push_back(st->get<std::string>());
    } else if (st->is_array()) {
      for (const json& s : *st) {
        if (!s.is_string())
          return Bad(err, "stop", "'stop' must be a string or an array of strings");
        stops.push_back(s.get<std::string>());
      }
    } else {
      return Bad(err, "stop", "'stop' must be a string or an array of strings");
    }
    if (stops.size() > lim.max_stop)
      return Bad(err, "stop",
                 "'stop' has " + std::to_string(stops.size()) + " strings; at most " +
                     std::to_string(lim.max_stop));
    for (const std::string& s : stops) {
      if (s.empty()) return Bad(err, "stop", "'stop' strings must not be empty");
      if (s.size() > lim.max_stop_bytes)
        return Bad(
            err, "stop",
            "a 'stop' string is longer than " + std::to_string(lim.max_stop_bytes) + " bytes");
    }
    r->stop = std::move(stops);
  }
  if (const json* rf = Field(j, "response_format")) {
    const json* t = rf->is_object() ? Field(*rf, "type") : nullptr;
    if (!t || !t->is_string())
      return Bad(err, "response_format",
                 "'response_format' must be an object with a string 'type'");
    const std::string type = t->get<std::string>();
    if (type == "json_object") {
      r->grammar = convert::JsonAnyGbnf(true);
    } else if (type == "json_schema") {
      const json* js = Field(*rf, "json_schema");
      const json* schema = js && js->is_object() ? Field(*js, "schema") : nullptr;
      if (!schema || !(schema->is_object() || schema->is_boolean()))
        return Bad(err, "response_format",
                   "response_format json_schema needs 'json_schema': {'schema': {...}}");
      std::string msg;
      if (!convert::JsonSchemaToGbnf(schema->dump(), &r->grammar, &msg))
        return Bad(err, "response_format", "response_format.json_schema.schema: " + msg);
    } else if (type != "text") {
      return Bad(err, "response_format",
                 "unknown response_format type '" + type +
                     "' (expected text, json_object or json_schema)");
    }
  }
  return true;
}

bool ContentText(const json& c, size_t i, std::string* out, ApiError* err) {
  const std::string param = "messages[" + std::to_string(i) + "].content";
  if (c.is_null()) {
    out->clear();
    return true;
  }
  if (c.is_string()) {
    *out = c.get<std::string>();
    return true;
  }
  if (!c.is_array())
    return Bad(err, param, "'" + param + "' must be a string or an array of text parts");
  out->clear();
  for (const json& part : c) {
    const json* type = part.is_object() ? Field(part, "type") : nullptr;
    if (!type || !type->is_string())
      return Bad(err, param, "'" + param + "' parts must be objects with a string 'type'");
    if (type->get<std::string>() != "text")
      return Bad(err, param,
                 "'" + param + "': content part type '" + type->get<std::string>() +
                     "' is not supported (text only)");
    const json* text = Field(part, "text");
    if (!text || !text->is_string())
      return Bad(err, param, "'" + param + "': a text part needs a string 'text'");
    *out += text->get<std::string>();
  }
  return true;
}

}  // namespace

json ErrorBody(const ApiError& e) {
  json err = {{"message", e.message},
              {"type", e.type},
              {"param", e.param.empty() ? json(nullptr) : json(e.param)},
              {"code", e.code.empty() ? json(nullptr) : json(e.code)}};
  return json{{"error", err}};
}

bool ParseChatRequest(const std::string& body, const Limits& lim, GenRequest* out, ApiError* err) {
  *out = GenRequest();
  out->chat = true;
  json j;
  if (!ParseObject(body, &j, err)) return false;
  const json* msgs = Field(j, "messages");
  if (!msgs || !msgs->is_array() || msgs->empty())
    return Bad(err, "messages", "'messages' must be a non-empty array of messages");
  if (msgs->size() > lim.max_messages)
    return Bad(err, "messages",
               "'messages' has more than " + std::to_string(lim.max_messages) + " messages");
  for (size_t i = 0; i < msgs->size(); ++i) {
    const json& m = (*msgs)[i];
    const std::string p = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return Bad(err, p, "'" + p + "' must be an object");
    const json* role = Field(m, "role");
    if (!role || !role->is_string())
      return Bad(err, p + ".role", "'" + p + ".role' must be a string");
    std::string r = role->get<std::string>();
    if (r == "developer") r = "system";
    if (r == "tool") r = "ipython";
    if (r != "system" && r != "user" && r != "assistant" && r != "ipython")
      return Bad(err, p + ".role",
                 "'" + p + ".role' is '" + role->get<std::string>() +
                     "'; expected system, developer, user, assistant, tool or ipython");
    Message msg;
    msg.role = r;
    auto c = m.find("content");
    if (c == m.end()) return Bad(err, p + ".content", "'" + p + ".content' is missing");
    if (!ContentText(*c, i, &msg.content, err)) return false;
    out->messages.push_back(std::move(msg));
  }
  return ParseCommon(j, lim, out, err);
}

bool ParseCompletionRequest(const std::string& body, const Limits& lim, GenRequest* out,
                            ApiError* err) {
  *out = GenRequest();
  json j;
  if (!ParseObject(body, &j, err)) return false;
  const json* p = Field(j, "prompt");
  if (!p) return Bad(err, "prompt", "'prompt' is missing");
  if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) p = &(*p)[0];
  if (!p->is_string())
    return Bad(err, "prompt", "'prompt' must be a string (one prompt per request)");
  out->prompt = p->get<std::string>();
  if (out->prompt.empty()) return Bad(err, "prompt", "'prompt' is empty");
  if (const json* e = Field(j, "echo"); e && (!e->is_boolean() || e->get<bool>()))
    return Bad(err, "echo", "'echo' is not supported");
  return ParseCommon(j, lim, out, err);
}

bool ParseTokenizeRequest(const std::string& body, TokenizeRequest* out, ApiError* err) {
  *out = TokenizeRequest();
  json j;
  if (!ParseObject(body, &j, err)) return false;
  const json* c = Field(j, "content");
  if (!c || !c->is_string()) return Bad(err, "content", "'content' must be a string");
  out->content = c->get<std::string>();
  if (!GetBool(j, "add_special", &out->add_special, err)) return false;
  return GetBool(j, "parse_special", &out->parse_special, err);
}

bool ParseDetokenizeRequest(const std::string& body, int32_t vocab, std::vector<int32_t>* out,
                            ApiError* err) {
  out->clear();
  json j;
  if (!ParseObject(body, &j, err)) return false;
  const json* t = Field(j, "tokens");
  if (!t || !t->is_array()) return Bad(err, "tokens", "'tokens' must be an array of token ids");
  for (const json& id : *t) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= vocab ||
        (id.is_number_unsigned() && id.get<uint64_t>() >= static_cast<uint64_t>(vocab)))
      return Bad(
          err, "tokens",
          "'tokens' must hold integer ids in [0, " + std::to_string(vocab) + "), got " + id.dump());
    out->push_back(static_cast<int32_t>(id.get<int64_t>()));
  }
  return true;
}

const char* FinishReason(lamina_stop_reason r) {
  switch (r) {
    case LAMINA_STOP_LENGTH:
    case LAMINA_STOP_CONTEXT_FULL:
      return "length";
    default:
      return "stop";
  }
}

json UsageJson(const Usage& u) {
  return json{{"prompt_tokens", u.prompt_tokens},
              {"completion_tokens", u.completion_tokens},
              {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

json ChatResponse(const std::string& id, int64_t created, const std::string& model,
                  const std::string& text, const char* finish, const Usage& u) {
  json choice = {{"index", 0},
                 {"message", {{"role", "assistant"}, {"content", text}}},
                 {"logprobs", nullptr},
                 {"finish_reason", finish}};
  return json{{"id", id},       {"object", "chat.completion"},      {"created", created},
              {"model", model}, {"choices", json::array({choice})}, {"usage", UsageJson(u)}};
}

json CompletionResponse(const std::string& id, int64_t created, const std::string& model,
                        const std::string& text, const char* finish, const Usage& u) {
  json choice = {{"index", 0}, {"text", text}, {"logprobs", nullptr}, {"finish_reason", finish}};
  return json{{"id", id},       {"object", "text_completion"},      {"created", created},
              {"model", model}, {"choices", json::array({choice})}, {"usage", UsageJson(u)}};
}

json ChatChunk(const std::string& id, int64_t created, const std::string& model,
               const std::string& text, bool role_only, const char* finish) {
  json delta = json::object();
  if (role_only) {
    delta["role"] = "assistant";
    delta["content"] = "";
  } else if (!finish) {
    delta["content"] = text;
  }
  json choice = {{"index", 0},
                 {"delta", delta},
                 {"logprobs", nullptr},
                 {"finish_reason", finish ? json(finish) : json(nullptr)}};
  return json{{"id", id},
              {"object", "chat.completion.chunk"},
              {"created", created},
              {"model", model},
              {"choices", json::array({choice})}};
}

json CompletionChunk(const std::string& id, int64_t created, const std::string& model,
                     const std::string& text, const char* finish) {
  json choice = {{"index", 0},
                 {"text", text},
                 {"logprobs", nullptr},
                 {"finish_reason", finish ? json(finish) : json(nullptr)}};
  return json{{"id", id},
              {"object", "text_completion"},
              {"created", created},
              {"model", model},
              {"choices", json::array({choice})}};
}

json UsageChunk(bool chat, const std::string& id, int64_t created, const std::string& model,
                const Usage& u) {
  return json{{"id", id},
              {"object", chat ? "chat.completion.chunk" : "text_completion"},
              {"created", created},
              {"model", model},
              {"choices", json::array()},
              {"usage", UsageJson(u)}};
}

std::string SseEvent(const json& j) {
  return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

}  // namespace lamina::server
