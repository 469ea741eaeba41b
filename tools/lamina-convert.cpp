// lamina-convert: turns a Llama checkpoint into one packed, mmappable
// .lamina file (docs/FORMAT.md).
//
//   lamina-convert <input> -o <out.lamina> [--weights q4|q8|bf16|f32]
//                  [--output q8|q4|bf16|f32] [--embedding q8|q4|bf16|f32]
//                  [--q4-scales f16|f32] [--group-size 32] [--tokenizer PATH] [--quiet]
//   lamina-convert --synthetic tiny|tiny-tied|1b|3b [--seed N] -o <out.lamina>
//   lamina-convert --info <model.lamina>      (validate and describe a file)
//
// <input> is detected: a directory with config.json (Hugging Face), a
// directory with params.json or consolidated.00.pth (Meta), a GGUF file, or a
// llama2.c .bin checkpoint.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <string>

#include "loader/model_file.h"
#include "tools/convert/convert.h"
#include "tools/convert/convert_util.h"

namespace {

const char* DTypeName(uint32_t d) {
  static const char* const kNames[] = {"f32", "f16", "bf16", "q8c", "q4g"};
  return d < 5 ? kNames[d] : "?";
}

const char* LayoutName(uint32_t l) {
  static const char* const kNames[] = {"row_major", "q4g_r4k8", "q8c_r4k4", "q4g_r4k8_f16s"};
  return l < 4 ? kNames[l] : "?";
}

// --info: validates the file (ModelFile::Open) and prints header, hparams, the
// tensor directory (dtype, layout, bits per weight) and the weight bytes one
// decode token reads: every linear and the output layer (tok_embd when tied).
int Info(const std::string& path) {
  std::string err;
  auto m = lamina::ModelFile::Open(path, lamina::LoadOptions{}, &err);
  if (!m) {
    std::fprintf(stderr, "lamina-convert: %s\n", err.c_str());
    return 1;
  }
  const auto& h = m->header();
  const auto& p = m->hparams();
  std::printf("%s: lamina %u.%u, %.2f MiB, scheme '%s'%s\n", path.c_str(), h.version_major,
              h.version_minor, static_cast<double>(m->file_size()) / (1 << 20), h.weight_scheme,
              m->tied_embeddings() ? ", tied embeddings" : "");
  std::printf(
      "dim %u, layers %u, heads %u, kv heads %u, head_dim %u, ffn %u, vocab %u, "
      "max context %u\n",
      p.dim, p.n_layers, p.n_heads, p.n_kv_heads, p.head_dim, p.ffn_dim, p.vocab_size,
      p.max_context);
  std::printf("norm_eps %g, rope theta %g", static_cast<double>(p.norm_eps),
              static_cast<double>(p.rope_theta));
  if (p.rope_scaling == 1)
    std::printf(", llama3 scaling (factor %g, low %g, high %g, original %u)",
                static_cast<double>(p.rope_factor), static_cast<double>(p.rope_low_freq_factor),
                static_cast<double>(p.rope_high_freq_factor), p.rope_orig_max_pos);
  std::printf("\nbos %d, eos %d, stop ids:", static_cast<int32_t>(p.bos_id),
              static_cast<int32_t>(p.eos_id));
  for (uint32_t i = 0; i < p.n_stop_ids; ++i) std::printf(" %u", p.stop_ids[i]);
  if (p.lora_rank)
    std::printf(", LoRA rank %u scale %g", p.lora_rank, static_cast<double>(p.lora_scale));
  std::printf("\ntokenizer: %s\n", m->tokenizer_size()
                                       ? (std::to_string(m->tokenizer_size()) + " bytes").c_str()
                                       : "none (drive with token ids)");
  std::printf("%zu tensors:\n", m->n_tensors());
  // Per decode token the engine reads every 2-D tensor once except the
  // embedding (one row), unless the embedding is also the output layer.
  uint64_t dec_bytes = 0, dec_params = 0, lin_bytes = 0, out_bytes = 0;
  for (size_t i = 0; i < m->n_tensors(); ++i) {
    const auto& t = m->tensor(i);
    std::string shape;
    uint64_t n = 1;
    for (uint32_t d = 0; d < t.n_dims; ++d) {
      shape += (d ? " x " : "") + std::to_string(t.shape[d]);
      n *= t.shape[d];
    }
    std::printf("  %-28s %-4s %-13s [%s] offset %llu size %llu, %.2f bits/weight%s\n", t.name,
                DTypeName(t.dtype), LayoutName(t.layout), shape.c_str(),
                static_cast<unsigned long long>(t.offset), static_cast<unsigned long long>(t.size),
                n ? static_cast<double>(t.size) * 8.0 / static_cast<double>(n) : 0.0,
                (t.flags & lamina::format::kTensorHadamardInput) ? " hadamard-input" : "");
    const std::string name = t.name;
    const bool is_embd = name == "tok_embd";
    if (t.n_dims != 2 || (is_embd && !m->tied_embeddings())) continue;
    dec_bytes += t.size;
    dec_params += n;
    (is_embd || name == "output" ? out_bytes : lin_bytes) += t.size;
  }
  std::printf(
      "weights read per decode token: %.1f MB (%llu bytes: linears %.1f MB + output layer "
      "%.1f MB), %.3f bits/weight\n",
      static_cast<double>(dec_bytes) / 1e6, static_cast<unsigned long long>(dec_bytes),
      static_cast<double>(lin_bytes) / 1e6, static_cast<double>(out_bytes) / 1e6,
      dec_params ? static_cast<double>(dec_bytes) * 8.0 / static_cast<double>(dec_params) : 0.0);
  return 0;
}

void Usage(FILE* f) {
  std::fprintf(
      f,
      "usage: lamina-convert <input> -o <out.lamina> [--weights q4|q8|bf16|f32]\n"
      "                      [--output q8|q4|bf16|f32] [--embedding q8|q4|bf16|f32]\n"
      "                      [--q4-scales f16|f32] [--group-size 32] [--tokenizer PATH]\n"
      "                      [--quiet]\n"
      "       lamina-convert --synthetic tiny|tiny-tied|1b|3b [--seed N] "
      "[--weights ...] -o <out.lamina>\n"
      "       lamina-convert --info <model.lamina>\n"
      "\n"
      "<input>: Hugging Face directory (config.json + *.safetensors), Meta checkpoint\n"
      "directory (params.json + consolidated.00.pth), a .gguf file, or a llama2.c .bin.\n"
      "--weights: q4 (default: q4g group 32 linears, q8c embedding/output), q8 (q8c\n"
      "everywhere), bf16 or f32 (unquantized). Pre-quantized inputs keep their values.\n"
      "--output, --embedding: the output layer's / token embedding's type (default: q8\n"
      "with --weights q4|q8, else the --weights type); q4 is q4g group 32 (a 1B decode\n"
      "then reads ~697 MB of weights instead of ~813 MB). A model with tied embeddings whose\n"
      "--output and --embedding types differ is written with two tensors (untied).\n"
      "Meta's int8 embedding/output are kept as they are.\n"
      "--q4-scales: q4g group scales as f16 (default, 4.5 bits/weight; lamina rounds\n"
      "each scale to f16 before quantizing) or f32 (5 bits/weight, format 1.0).\n"
      "Imported int4 scales (Meta, GGUF Q4_0) are stored as f16 only when every scale\n"
      "of the tensor is exactly an f16 value, else f32: never rounded.\n");
}

bool HasMagic(const std::string& path, const char* magic, size_t n) {
  std::ifstream f(path, std::ios::binary);
  char buf[8] = {};
  f.read(buf, static_cast<std::streamsize>(n));
  return f.gcount() == static_cast<std::streamsize>(n) && std::memcmp(buf, magic, n) == 0;
}

int Main(int argc, char** argv) {
  using namespace lamina::convert;
  ConvertOptions o;
  std::string input, out, synthetic;
  uint64_t seed = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "lamina-convert: %s needs a value\n", flag);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "-o") {
      out = value("-o");
    } else if (a == "--weights") {
      o.weights = value("--weights");
    } else if (a == "--output") {
      o.output = value("--output");
    } else if (a == "--embedding") {
      o.embedding = value("--embedding");
    } else if (a == "--q4-scales") {
      o.q4_scales = value("--q4-scales");
    } else if (a == "--group-size") {
      o.group_size = std::atoi(value("--group-size"));
    } else if (a == "--tokenizer") {
      o.tokenizer_path = value("--tokenizer");
    } else if (a == "--quiet" || a == "-q") {
      o.quiet = true;
    } else if (a == "--synthetic") {
      synthetic = value("--synthetic");
    } else if (a == "--seed") {
      char* end = nullptr;
      const char* s = value("--seed");
      seed = std::strtoull(s, &end, 10);
      if (!end || *end) {
        std::fprintf(stderr, "lamina-convert: bad --seed '%s'\n", s);
        return 2;
      }
    } else if (a == "--info") {
      return Info(value("--info"));
    } else if (a == "-h" || a == "--help") {
      Usage(stdout);
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "lamina-convert: unknown option %s\n", a.c_str());
      Usage(stderr);
      return 2;
    } else if (input.empty()) {
      input = a;
    } else {
      std::fprintf(stderr, "lamina-convert: more than one input (%s, %s)\n", input.c_str(),
                   a.c_str());
      return 2;
    }
  }
  if (out.empty() || (input.empty() == synthetic.empty())) {
    Usage(stderr);
    return 2;
  }
  std::string err;
  for (Role r : {Role::kLinear, Role::kOutput, Role::kEmbedding}) {
    lamina::format::DType dt;
    if (!TypeFor(r, o, &dt, &err)) {  // bad option values: before any file is touched
      std::fprintf(stderr, "lamina-convert: %s\n", err.c_str());
      return 2;
    }
  }
  bool ok;
  if (!synthetic.empty()) {
    ok = ConvertSynthetic(synthetic, seed, out, o, &err);
  } else if (IsDir(input)) {
    if (IsFile(input + "/config.json")) {
      ok = ConvertHf(input, out, o, &err);
    } else if (IsFile(input + "/params.json") || IsFile(input + "/consolidated.00.pth")) {
      ok = ConvertMeta(input, out, o, &err);
    } else {
      err = input + ": not a Hugging Face (config.json) or Meta (params.json) checkpoint directory";
      ok = false;
    }
  } else if (IsFile(input)) {
    if (HasMagic(input, "GGUF", 4)) {
      ok = ConvertGguf(input, out, o, &err);
    } else if (HasMagic(input, "PK\x03\x04", 4)) {
      ok = ConvertMeta(DirName(input), out, o, &err);
    } else {
      ok = ConvertLlama2c(input, out, o, &err);
    }
  } else {
    err = input + ": no such file or directory";
    ok = false;
  }
  if (!ok) {
    std::fprintf(stderr, "lamina-convert: %s\n", err.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lamina-convert: error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "lamina-convert: error: unknown exception\n");
  }
  return 1;
}
