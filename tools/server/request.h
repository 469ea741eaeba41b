// lamina-server: OpenAI-style request parsing and validation, and response
// bodies. No HTTP and no model here (unit-tested in request_test.cpp): the
// HTTP glue in server.cpp calls these with the request body.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lamina/lamina.h"

namespace lamina::server {

using json = nlohmann::json;

/// An OpenAI-style error: HTTP status + {"error":{"message","type","param","code"}}.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // "" -> null
  std::string code;   // "" -> null
};
json ErrorBody(const ApiError& e);

/// Server-side limits applied while parsing.
struct Limits {
  size_t max_tokens = 2048;     // largest max_tokens a request may ask for
  size_t max_stop = 16;         // stop strings per request
  size_t max_stop_bytes = 256;  // bytes per stop string
  size_t max_messages = 4096;   // messages per chat request
};

struct Message {
  std::string role;  // system|user|assistant|ipython (developer -> system, tool -> ipython)
  std::string content;
};

/// A parsed /v1/chat/completions or /v1/completions request.
struct GenRequest {
  bool chat = false;
  std::vector<Message> messages;  // chat
  std::string prompt;             // completions
  size_t max_tokens = 0;          // 0: not given (the server picks its limit)
  lamina_sampler_params sampling = lamina_sampler_default_params();
  bool have_seed = false;
  std::vector<std::string> stop;
  std::string grammar;  // GBNF from response_format json_object / json_schema ("" = none)
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::string model;
};

/// Parses and validates a request body. Unknown fields are ignored (clients
/// send many); known fields of the wrong type or out of range, n != 1,
/// a response_format that is not text / json_object / a json_schema in the
/// supported subset (tools/convert/json_schema.h), unknown roles -> false + *err.
bool ParseChatRequest(const std::string& body, const Limits& lim, GenRequest* out, ApiError* err);
bool ParseCompletionRequest(const std::string& body, const Limits& lim, GenRequest* out,
                            ApiError* err);

/// POST /tokenize {"content": str, "add_special": bool=false, "parse_special": bool=true}.
struct TokenizeRequest {
  std::string content;
  bool add_special = false;
  bool parse_special = true;
};
bool ParseTokenizeRequest(const std::string& body, TokenizeRequest* out, ApiError* err);
/// POST /detokenize {"tokens": [int, ...]}; ids checked against vocab.
bool ParseDetokenizeRequest(const std::string& body, int32_t vocab, std::vector<int32_t>* out,
                            ApiError* err);

/// "stop" | "length" for a lamina stop reason.
const char* FinishReason(lamina_stop_reason r);

struct Usage {
  size_t prompt_tokens = 0, completion_tokens = 0;
};
json UsageJson(const Usage& u);

/// Full (non-streaming) response bodies.
json ChatResponse(const std::string& id, int64_t created, const std::string& model,
                  const std::string& text, const char* finish, const Usage& u);
json CompletionResponse(const std::string& id, int64_t created, const std::string& model,
                        const std::string& text, const char* finish, const Usage& u);
/// One streaming chunk. chat: delta {"role"} when role_only, else {"content":
/// text} (finish != nullptr: empty delta + finish_reason).
json ChatChunk(const std::string& id, int64_t created, const std::string& model,
               const std::string& text, bool role_only, const char* finish);
json CompletionChunk(const std::string& id, int64_t created, const std::string& model,
                     const std::string& text, const char* finish);
/// The usage chunk that ends a stream when stream_options.include_usage.
json UsageChunk(bool chat, const std::string& id, int64_t created, const std::string& model,
                const Usage& u);
/// "data: <json>\n\n"
std::string SseEvent(const json& j);

}  // namespace lamina::server
