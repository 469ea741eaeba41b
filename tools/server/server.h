// lamina-server: the HTTP glue (cpp-httplib) over the request parser
// (request.h) and the slot pool (slots.h).
#pragma once

#include <string>

namespace lamina::server {

struct Options {
  std::string model_path;  // -m
  std::string alias;       // --alias: the model id in responses ("" = file name)
  std::string host = "127.0.0.1";
  int port = 8080;      // 0: any free port (printed)
  std::string api_key;  // "" = no authentication
  int parallel = 1;     // slots
  int threads = 0;      // total threads over all slots (0: hardware threads)
  int n_ctx = 0;        // per slot (0: min(4096, model max))
  int n_batch = 0;
  bool kv_f32 = false;
  std::string kernels;
  size_t max_body = 1 << 20;  // bytes
  size_t max_tokens = 2048;   // per request
  int timeout_s = 600;        // per request, queueing included
  int load_delay_ms = 0;      // testing: wait before loading the model
  int http_threads = 0;       // 0: parallel + 16
};

/// Starts listening, loads the model (GET /health answers 503 until it is
/// loaded), serves until SIGINT/SIGTERM. Returns the exit status.
int Serve(const Options& o);

}  // namespace lamina::server
