// lamina-server: an OpenAI-compatible HTTP server over one lamina model.
//
//   lamina-server -m model.lamina [--host 127.0.0.1] [--port 8080] [--parallel N]
//
// Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models,
// GET /health, POST /tokenize, POST /detokenize. --parallel N contexts (slots)
// share one copy of the weights; requests queue when every slot is busy.
// The HTTP glue is tools/server/server.cpp, request parsing
// tools/server/request.cpp, slots and the prompt cache tools/server/slots.cpp.
// Exit status: 0 after SIGINT/SIGTERM, 1 runtime error, 2 bad usage.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "lamina/lamina.h"
#include "tools/common/cli.h"
#include "tools/server/server.h"

namespace {

using lamina::tools::ParseLong;

void Usage(FILE* f) {
  std::fprintf(
      f,
      "usage: lamina-server -m MODEL [options]\n"
      "\n"
      "An OpenAI-compatible HTTP server: POST /v1/chat/completions, POST /v1/completions,\n"
      "GET /v1/models, GET /health, POST /tokenize, POST /detokenize.\n"
      "\n"
      "model:\n"
      "  -m, --model FILE        model (.lamina; convert others with lamina-convert)\n"
      // -hf: the lead wires ResolveHfModel here (downloads/converts a Hugging Face
      // repository to a cached .lamina and sets -m); see ParseArgs below.
      "  -a, --alias NAME        model id reported by the API (default: the file name)\n"
      "  --kernels TIER          ref|neon|dotprod|i8mm|sve|auto (also $LAMINA_KERNELS)\n"
      "\n"
      "server:\n"
      "  --host ADDR             address to bind (default 127.0.0.1: this machine only;\n"
      "                          0.0.0.0 listens on every interface: set --api-key)\n"
      "  --port N                TCP port (default 8080; 0: any free port, printed)\n"
      "  --api-key KEY           require 'Authorization: Bearer KEY' (except GET /health)\n"
      "                          (also $LAMINA_API_KEY)\n"
      "  -np, --parallel N       slots: concurrent generations, each with its own KV cache,\n"
      "                          over one copy of the weights (default 1); more requests queue\n"
      "  -t, --threads N         total threads, split evenly over the slots (default: all\n"
      "                          hardware threads)\n"
      "  -c, --ctx-size N        context per slot, prompt + completion (default min(4096, model\n"
      "                          max))\n"
      "  -b, --batch N           prefill batch (default 64)\n"
      "  --kv f16|f32            KV cache type (default f16)\n"
      "\n"
      "limits:\n"
      "  --max-body BYTES        largest request body (default 1048576; larger: 413)\n"
      "  --max-tokens N          largest max_tokens a request may ask for, and the default\n"
      "                          when it asks for none (default 2048)\n"
      "  --timeout SEC           per request, waiting for a slot included (default 600); a\n"
      "                          generation that runs out of time ends with finish_reason\n"
      "                          \"length\"\n"
      "  --http-threads N        HTTP worker threads (default: parallel + 16)\n"
      "  --load-delay MS         (testing) wait MS ms before loading the model\n"
      "\n"
      "Each request logs one line on stderr: slot, prompt/completion tokens, tok/s.\n"
      "Request fields: messages | prompt, max_tokens | max_completion_tokens, temperature,\n"
      "top_p, top_k, min_p, repeat_penalty, seed, stop (string or array), stream,\n"
      "stream_options.include_usage, n (1 only), response_format (text only for now).\n");
}

int BadUsage(const std::string& msg) {
  std::fprintf(stderr, "lamina-server: %s\n(run lamina-server --help for the options)\n",
               msg.c_str());
  return 2;
}

int ParseArgs(int argc, char** argv, lamina::server::Options* o) {
  if (const char* k = std::getenv("LAMINA_API_KEY")) o->api_key = k;
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    if (f == "-h" || f == "--help") {
      Usage(stdout);
      std::exit(0);
    }
    if (i + 1 >= argc)
      return BadUsage(f.rfind("-", 0) == 0 ? "unknown option or missing value: " + f
                                           : "unexpected argument: " + f);
    const char* v = argv[++i];
    long l = 0;
    if (f == "-m" || f == "--model") {
      o->model_path = v;
      // ---- -hf REPO[:QUANT]: reserved for the lead. ResolveHfModel (written in
      // parallel) turns a Hugging Face repository into a local .lamina path;
      // wire it here as:  } else if (f == "-hf" || f == "--hf-repo") {
      //                       o->model_path = ResolveHfModel(v, ...);
    } else if (f == "-a" || f == "--alias") {
      o->alias = v;
    } else if (f == "--kernels") {
      o->kernels = v;
    } else if (f == "--host") {
      o->host = v;
    } else if (f == "--port") {
      if (!ParseLong(v, 0, 65535, &l)) return BadUsage("--port: expected 0..65535");
      o->port = static_cast<int>(l);
    } else if (f == "--api-key") {
      if (!*v) return BadUsage("--api-key: empty key");
      o->api_key = v;
    } else if (f == "-np" || f == "--parallel") {
      if (!ParseLong(v, 1, 256, &l)) return BadUsage("--parallel: expected 1..256");
      o->parallel = static_cast<int>(l);
    } else if (f == "-t" || f == "--threads") {
      if (!ParseLong(v, 1, 1024, &l)) return BadUsage("-t: expected 1..1024");
      o->threads = static_cast<int>(l);
    } else if (f == "-c" || f == "--ctx-size") {
      if (!ParseLong(v, 2, 1L << 24, &l)) return BadUsage("-c: expected a length >= 2");
      o->n_ctx = static_cast<int>(l);
    } else if (f == "-b" || f == "--batch") {
      if (!ParseLong(v, 1, 4096, &l)) return BadUsage("-b: expected 1..4096");
      o->n_batch = static_cast<int>(l);
    } else if (f == "--kv") {
      if (std::strcmp(v, "f16") && std::strcmp(v, "f32")) return BadUsage("--kv: f16 or f32");
      o->kv_f32 = std::strcmp(v, "f32") == 0;
    } else if (f == "--max-body") {
      if (!ParseLong(v, 1024, 1L << 30, &l)) return BadUsage("--max-body: expected 1024..2^30");
      o->max_body = static_cast<size_t>(l);
    } else if (f == "--max-tokens") {
      if (!ParseLong(v, 1, 1L << 24, &l)) return BadUsage("--max-tokens: expected >= 1");
      o->max_tokens = static_cast<size_t>(l);
    } else if (f == "--timeout") {
      if (!ParseLong(v, 1, 86400 * 7, &l)) return BadUsage("--timeout: expected seconds >= 1");
      o->timeout_s = static_cast<int>(l);
    } else if (f == "--http-threads") {
      if (!ParseLong(v, 1, 4096, &l)) return BadUsage("--http-threads: expected 1..4096");
      o->http_threads = static_cast<int>(l);
    } else if (f == "--load-delay") {
      if (!ParseLong(v, 0, 600000, &l)) return BadUsage("--load-delay: expected 0..600000 ms");
      o->load_delay_ms = static_cast<int>(l);
    } else {
      return BadUsage("unknown option: " + f);
    }
  }
  if (o->model_path.empty()) return BadUsage("no model (-m FILE)");
  if (o->http_threads && o->http_threads < o->parallel + 1)
    return BadUsage("--http-threads must exceed --parallel (health checks need a thread)");
  return 0;
}

int Main(int argc, char** argv) {
  lamina::server::Options o;
  if (const int rc = ParseArgs(argc, argv, &o)) return rc;
  return lamina::server::Serve(o);
}

}  // namespace

int main(int argc, char** argv) {
  return lamina::tools::RunMain("lamina-server", Main, argc, argv);
}
