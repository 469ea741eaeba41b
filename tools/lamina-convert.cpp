// lamina-convert: turns a Llama checkpoint into one packed, mmappable
// .lamina file (docs/FORMAT.md).
//
//   lamina-convert <input> -o <out.lamina> [--weights q4|q8|bf16|f32]
//                  [--group-size 32] [--tokenizer PATH] [--quiet]
//   lamina-convert --synthetic tiny|tiny-tied|1b|3b [--seed N] -o <out.lamina>
//   lamina-convert --info <model.lamina>      (validate and describe a file)
//   lamina-convert -hf ORG/REPO[:FILE] [-o <out.lamina>] [--weights ...]
//       download from Hugging Face and convert into the cache (tools/hub);
//       prints the cached path, and copies it to <out> when -o is given
//
// <input> is detected: a directory with config.json (Hugging Face), a
// directory with params.json or consolidated.00.pth (Meta), a GGUF file, or a
// llama2.c .bin checkpoint.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <string>

#include "loader/model_file.h"
#include "tools/convert/convert.h"
#include "tools/convert/convert_util.h"
#ifdef LAMINA_WITH_HUB
#include "tools/hub/hf_hub.h"
#endif

namespace {

const char* DTypeName(uint32_t d) {
  static const char* const kNames[] = {"f32", "f16", "bf16", "q8c", "q4g"};
  return d < 5 ? kNames[d] : "?";
}

// --info: validates the file (ModelFile::Open) and prints header, hparams and
// the tensor directory.
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
  for (size_t i = 0; i < m->n_tensors(); ++i) {
    const auto& t = m->tensor(i);
    std::string shape;
    for (uint32_t d = 0; d < t.n_dims; ++d) shape += (d ? " x " : "") + std::to_string(t.shape[d]);
    std::printf("  %-28s %-4s [%s] offset %llu size %llu%s\n", t.name, DTypeName(t.dtype),
                shape.c_str(), static_cast<unsigned long long>(t.offset),
                static_cast<unsigned long long>(t.size),
                (t.flags & lamina::format::kTensorHadamardInput) ? " hadamard-input" : "");
  }
  return 0;
}

void Usage(FILE* f) {
  std::fprintf(f,
               "usage: lamina-convert <input> -o <out.lamina> [--weights q4|q8|bf16|f32]\n"
               "                      [--group-size 32] [--tokenizer PATH] [--quiet]\n"
               "       lamina-convert --synthetic tiny|tiny-tied|1b|3b [--seed N] "
               "[--weights ...] -o <out.lamina>\n"
               "       lamina-convert --info <model.lamina>\n"
               "       lamina-convert -hf ORG/REPO[@REV][:FILE] [-o <out.lamina>] [--weights ...]\n"
               "\n"
               "<input>: Hugging Face directory (config.json + *.safetensors), Meta checkpoint\n"
               "directory (params.json + consolidated.00.pth), a .gguf file, or a llama2.c .bin.\n"
               "-hf: a Hugging Face repo (HF layout, Meta's original/, or FILE = one .gguf),\n"
               "downloaded and converted once into $LAMINA_CACHE or ~/.cache/lamina (HF_ENDPOINT,\n"
               "HF_TOKEN for gated repos); prints the cached .lamina path, copied to -o if given.\n"
               "--weights: q4 (default: q4g group 32 linears, q8c embedding/output), q8 (q8c\n"
               "everywhere), bf16 or f32 (unquantized). Pre-quantized inputs keep their values.\n");
}

bool HasMagic(const std::string& path, const char* magic, size_t n) {
  std::ifstream f(path, std::ios::binary);
  char buf[8] = {};
  f.read(buf, static_cast<std::streamsize>(n));
  return f.gcount() == static_cast<std::streamsize>(n) && std::memcmp(buf, magic, n) == 0;
}

// -hf: resolve into the cache (tools/hub), print the path, copy it to `out`.
int FromHub(const std::string& spec, const lamina::convert::ConvertOptions& o,
            const std::string& out) {
#ifdef LAMINA_WITH_HUB
  lamina::hub::HubOptions ho;
  ho.convert = o;
  ho.quiet = o.quiet;
  std::string path, err;
  if (!lamina::hub::ResolveHfModel(spec, ho, &path, &err)) {
    std::fprintf(stderr, "lamina-convert: -hf %s: %s\n", spec.c_str(), err.c_str());
    return 1;
  }
  if (!out.empty()) {
    // Through a temporary file + rename, like the converters.
    const std::string tmp = out + ".tmp";
    std::ifstream src(path, std::ios::binary);
    std::ofstream dst(tmp, std::ios::binary | std::ios::trunc);
    dst << src.rdbuf();
    dst.close();
    if (!src || !dst || std::rename(tmp.c_str(), out.c_str()) != 0) {
      std::fprintf(stderr, "lamina-convert: cannot write %s: %s\n", out.c_str(),
                   std::strerror(errno));
      std::remove(tmp.c_str());
      return 1;
    }
  }
  std::printf("%s\n", out.empty() ? path.c_str() : out.c_str());
  return 0;
#else
  (void)spec;
  (void)o;
  (void)out;
  std::fprintf(stderr,
               "lamina-convert: -hf: this build has no Hugging Face download (libcurl; "
               "LAMINA_WITH_HUB=OFF)\n");
  return 1;
#endif
}

int Main(int argc, char** argv) {
  using namespace lamina::convert;
  ConvertOptions o;
  std::string input, out, synthetic, hf;
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
    if (a == "-o" || a == "--output") {
      out = value("-o");
    } else if (a == "--weights") {
      o.weights = value("--weights");
    } else if (a == "--group-size") {
      o.group_size = std::atoi(value("--group-size"));
    } else if (a == "--tokenizer") {
      o.tokenizer_path = value("--tokenizer");
    } else if (a == "--quiet" || a == "-q") {
      o.quiet = true;
    } else if (a == "-hf" || a == "--hf-repo") {
      hf = value("-hf");
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
  if (!hf.empty()) {
    if (!input.empty() || !synthetic.empty()) {
      std::fprintf(stderr, "lamina-convert: -hf takes no <input> or --synthetic\n");
      return 2;
    }
    return FromHub(hf, o, out);
  }
  if (out.empty() || (input.empty() == synthetic.empty())) {
    Usage(stderr);
    return 2;
  }
  std::string err;
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
