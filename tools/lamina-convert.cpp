// lamina-convert: turns a Llama checkpoint into one packed, mmappable
// .lamina file (docs/FORMAT.md).
//
//   lamina-convert <input> -o <out.lamina> [--weights q4|q8|bf16|f32]
//                  [--output q8|q4|bf16|f32] [--embedding q8|q4|bf16|f32]
//                  [--q4-scales f16|f32] [--group-size 32] [--tokenizer PATH|none] [--quiet]
//                  [--quant auto|self|search|rtn] [--self-calib-tokens N]
//                  [--calib TEXT.txt [--calib-tokens N]
//                  [--no-act-order] [--calib-damp D]] [--rotate none|all|r1,r2,r4]
//   lamina-convert --synthetic tiny|tiny-tied|1b|3b [--seed N] -o <out.lamina>
//   lamina-convert --info <model.lamina>      (validate and describe a file)
//   lamina-convert --lora-adapter PEFT_DIR -m <base.lamina> -o <adapter.lamina>
//       a Hugging Face PEFT LoRA adapter -> a lamina adapter file for that base
//   lamina-convert -hf ORG/REPO[:FILE] [-o <out.lamina>] [--weights ...]
//       download from Hugging Face and convert into the cache (tools/hub) as
//       lamina-convert <download> would (tools/convert/pipeline.h); prints
//       the cached path, and copies it to <out> when -o is given
//
// <input> is detected: a directory with config.json (Hugging Face), a
// directory with params.json or consolidated.00.pth (Meta), a GGUF file, or a
// llama2.c .bin checkpoint.
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "loader/llama_schema.h"
#include "loader/model_file.h"
#include "tools/common/cli.h"
#include "tools/convert/convert.h"
#include "tools/convert/pipeline.h"
#ifdef LAMINA_WITH_HUB
#include "tools/hub/hf_hub.h"
#endif

namespace {

using lamina::format::DTypeName;
using lamina::format::LayoutName;
using lamina::schema::Spec;
using lamina::schema::TensorId;

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
  if (m->is_adapter())
    std::printf("LoRA adapter (rank %u, scale alpha/r %g) for base binding %016llx\n", p.lora_rank,
                static_cast<double>(p.lora_scale), static_cast<unsigned long long>(h.base_binding));
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
  // The q4 method and rotations lamina-convert recorded in the scheme
  // ("q4-search", "q4-gptq+r124", "f32+r1", ...).
  const std::string full(h.weight_scheme, strnlen(h.weight_scheme, sizeof(h.weight_scheme)));
  const size_t plus = full.find('+');
  const std::string scheme = full.substr(0, plus);
  const std::string rtag = plus == std::string::npos ? "" : full.substr(plus + 1);
  const std::string method = scheme == "q4-self" ? "self (GPTQ calibrated on the model's samples)"
                             : scheme.rfind("q4-", 0) == 0 ? scheme.substr(3)
                             : scheme == "q4"              ? "rtn (before method tags)"
                                                           : "n/a (" + scheme + ")";
  int n_online = 0;
  for (size_t i = 0; i < m->n_tensors(); ++i)
    if (m->tensor(i).flags & lamina::format::kTensorHadamardInput) ++n_online;
  std::string rots;
  if (rtag.size() > 1 && rtag[0] == 'r')
    for (size_t i = 1; i < rtag.size(); ++i) {
      const char c = rtag[i];
      rots += std::string(rots.empty() ? "" : ", ") + (c == '1'   ? "R1 (residual stream, fused)"
                                                       : c == '2' ? "R2 (per head on v/o, fused)"
                                                       : c == '4'
                                                           ? "R4 (online Hadamard before ffn_down)"
                                                           : "?");
    }
  else if (n_online)
    rots = "R4 (online Hadamard before ffn_down)";
  if (rots.empty()) rots = "none";
  std::printf("q4 method: %s; rotations: %s; online Hadamard on %d ffn_down\n", method.c_str(),
              rots.c_str(), n_online);
  // Bits per weight by type (stored bytes x 8 / logical elements).
  uint64_t bytes[5] = {}, elems[5] = {}, all_b = 0, all_e = 0;
  for (size_t i = 0; i < m->n_tensors(); ++i) {
    const auto& t = m->tensor(i);
    uint64_t e = 1;
    for (uint32_t d = 0; d < t.n_dims; ++d) e *= t.shape[d];
    if (t.dtype < 5) {
      bytes[t.dtype] += t.size;
      elems[t.dtype] += e;
    }
    all_b += t.size;
    all_e += e;
  }
  std::printf("bits per weight:");
  for (uint32_t d = 0; d < 5; ++d)
    if (elems[d])
      std::printf(" %s %.3f (%.2f MiB),", DTypeName(d),
                  8.0 * static_cast<double>(bytes[d]) / static_cast<double>(elems[d]),
                  static_cast<double>(bytes[d]) / (1 << 20));
  std::printf(" all tensors %.3f\n",
              all_e ? 8.0 * static_cast<double>(all_b) / static_cast<double>(all_e) : 0.0);
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
    const bool is_embd = name == Spec(TensorId::kTokEmbd).name;
    if (t.n_dims != 2 || (is_embd && !m->tied_embeddings())) continue;
    dec_bytes += t.size;
    dec_params += n;
    (is_embd || name == Spec(TensorId::kOutput).name ? out_bytes : lin_bytes) += t.size;
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
      "                      [--q4-scales f16|f32] [--group-size 32]\n"
      "                      [--tokenizer PATH|none] [--quiet]\n"
      "                      [--quant auto|self|search|rtn] [--self-calib-tokens N]\n"
      "                      [--calib TEXT.txt [--calib-tokens N]\n"
      "                      [--no-act-order] [--calib-damp D]]\n"
      "       lamina-convert --synthetic tiny|tiny-tied|1b|3b [--seed N] "
      "[--weights ...] -o <out.lamina>\n"
      "       lamina-convert --info <model.lamina>\n"
      "       lamina-convert -hf ORG/REPO[@REV][:FILE] [-o <out.lamina>] [--weights ...]\n"
      "       lamina-convert --lora-adapter DIR -m <base.lamina> -o <out.lamina>\n"
      "\n"
      "<input>: Hugging Face directory (config.json + *.safetensors), Meta checkpoint\n"
      "directory (params.json + consolidated.00.pth), a .gguf file, or a llama2.c .bin.\n"
      "-hf: a Hugging Face repo (HF layout, Meta's original/, or FILE = one .gguf),\n"
      "downloaded and converted once into $LAMINA_CACHE or ~/.cache/lamina (HF_ENDPOINT,\n"
      "HF_TOKEN for gated repos); prints the cached .lamina path, copied to -o if given.\n"
      "The conversion takes the options and defaults of <input> (the same file).\n"
      "--lora-adapter: a Hugging Face PEFT LoRA adapter directory (adapter_config.json +\n"
      "adapter_model.safetensors; q/k/v/o/gate/up/down_proj, f32/f16/bf16) -> a small\n"
      "adapter file bound to the base model -m (any of its q4/q8/bf16/f32 conversions)\n"
      "for llama-run --lora. Values are kept as stored (not quantized).\n"
      "--weights: q4 (default: q4g group 32 linears, q8c embedding/output), q8 (q8c\n"
      "everywhere), bf16 or f32 (unquantized). Pre-quantized inputs keep their values.\n"
      "--output, --embedding: the output layer's / token embedding's type (default: q8\n"
      "with --weights q4|q8, else the --weights type); q4 is q4g group 32 (a 1B decode\n"
      "then reads ~697 MB of weights instead of ~813 MB). A model with tied embeddings whose\n"
      "--output and --embedding types differ is written with two tensors (untied).\n"
      "Meta's int8 embedding/output are kept as they are.\n"
      "--q4-scales: q4g group scales as f16 (default, 4.5 bits/weight; every scale\n"
      "lamina chooses is an f16 value) or f32 (5 bits/weight, format 1.0).\n"
      "Imported int4 scales (Meta, GGUF Q4_0) are stored as f16 only when every scale\n"
      "of the tensor is exactly an f16 value, else f32: never rounded.\n"
      "--tokenizer: embed this tokenizer file (tokenizer.json, tokenizer.model,\n"
      "tokenizer.bin) instead of the one found beside the input; 'none' embeds no\n"
      "tokenizer (e.g. for an unsupported tokenizer.json): drive the model with\n"
      "llama-run --tokens.\n"
      "--quant: how q4 values are chosen without user data. self: GPTQ calibrated on\n"
      "tokens sampled from the float model itself (--self-calib-tokens N, default 2048;\n"
      "--seed); search: the f16 scale of least squared error among candidates; rtn:\n"
      "round-to-nearest (scale amax/7.5); auto (default): self for float inputs whose\n"
      "estimated sampling + GPTQ time is at most 1 min, else search (with a note).\n"
      "--calib TEXT.txt: GPTQ, calibrated on TEXT (UTF-8, tokenized with the model's\n"
      "tokenizer, windows of 512 tokens) through lamina's own forward pass, block by\n"
      "block. --calib-tokens N: use at most N tokens of it (default all).\n"
      "GPTQ runs in act-order (columns by decreasing input energy, static groups);\n"
      "--no-act-order: in column order.\n"
      "--calib-damp D: GPTQ dampening, D x mean diag(H) (default 0.01).\n"
      "--rotate none|all|r1,r2,r4: Hadamard rotations fused into the weights before\n"
      "quantizing (float inputs: Hugging Face, GGUF float, llama2.c): r1 on the residual\n"
      "stream (RMSNorm gains folded into the next linears; a tied model gets an untied\n"
      "output layer), r2 per head on v/o, r4 before ffn_down (the engine's online\n"
      "Hadamard; power-of-two ffn_dim). Default: " LAMINA_DEFAULT_ROTATE
      " with --weights q4 where ffn_dim\n"
      "is a power of two, else none (none for Meta and pre-quantized inputs and\n"
      "--synthetic). docs/QUALITY.md has what each is worth.\n");
}

// -hf: resolve into the cache (tools/hub), print the path, copy it to `out`.
int FromHub(const std::string& spec, const lamina::convert::PipelineOptions& o,
            const std::string& out) {
#ifdef LAMINA_WITH_HUB
  lamina::hub::HubOptions ho;
  ho.convert = o;
  ho.quiet = o.convert.quiet;
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
  PipelineOptions po;
  ConvertOptions& o = po.convert;
  std::string &input = po.input, &synthetic = po.synthetic;
  std::string out, hf, calib, lora_dir, lora_base;
  GptqSource& gs = po.gptq;
  bool quant_self = false;
  CalibOptions& copts = gs.copts;
  uint64_t& seed = po.seed;
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
      if (o.tokenizer_path == "none") {
        o.tokenizer_path.clear();
        o.no_tokenizer = true;
      }
    } else if (a == "--quant") {
      const std::string m = value("--quant");
      quant_self = m == "self";
      gs.mode = m == "auto" ? GptqSource::Mode::kAuto : GptqSource::Mode::kNone;
      if (m != "auto" && !quant_self && !ParseQ4Method(m, &o.q4_method)) {
        std::fprintf(stderr,
                     "lamina-convert: --quant: expected auto, self, search or rtn, got '%s'\n",
                     m.c_str());
        return 2;
      }
    } else if (a == "--self-calib-tokens") {
      const char* s = value("--self-calib-tokens");
      if (!lamina::tools::ParseInt(s, 1, 1 << 24, &gs.self.n_tokens)) {
        std::fprintf(stderr, "lamina-convert: bad --self-calib-tokens '%s' (1..16777216)\n", s);
        return 2;
      }
    } else if (a == "--calib") {
      calib = value("--calib");
    } else if (a == "--rotate") {
      Rotations rot;
      std::string rot_err;
      if (!ParseRotations(value("--rotate"), &rot, &rot_err)) {
        std::fprintf(stderr, "lamina-convert: %s\n", rot_err.c_str());
        return 2;
      }
      po.rotate = rot;
    } else if (a == "--no-act-order") {
      copts.act_order = false;
    } else if (a == "--calib-damp") {
      char* end = nullptr;
      const char* s = value("--calib-damp");
      copts.damp = std::strtod(s, &end);
      if (!end || *end || !(copts.damp > 0) || copts.damp > 10) {
        std::fprintf(stderr, "lamina-convert: bad --calib-damp '%s' (0 < damp <= 10)\n", s);
        return 2;
      }
    } else if (a == "--calib-tokens") {
      char* end = nullptr;
      const char* s = value("--calib-tokens");
      const long v = std::strtol(s, &end, 10);
      if (!end || *end || v <= 0 || v > (1L << 30)) {
        std::fprintf(stderr, "lamina-convert: bad --calib-tokens '%s'\n", s);
        return 2;
      }
      copts.max_tokens = static_cast<int>(v);
    } else if (a == "--quiet" || a == "-q") {
      o.quiet = true;
    } else if (a == "-hf" || a == "--hf-repo") {
      hf = value("-hf");
    } else if (a == "--lora-adapter") {
      lora_dir = value("--lora-adapter");
    } else if (a == "-m") {
      lora_base = value("-m");
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
  if (!lora_dir.empty() || !lora_base.empty()) {
    if (lora_dir.empty() || lora_base.empty() || out.empty() || !input.empty() ||
        !synthetic.empty() || !hf.empty()) {
      std::fprintf(stderr,
                   "lamina-convert: --lora-adapter PEFT_DIR needs -m BASE.lamina and -o OUT, and "
                   "no other input\n");
      return 2;
    }
    std::string err;
    if (!ConvertLoraAdapter(lora_dir, lora_base, out, o, &err)) {
      std::fprintf(stderr, "lamina-convert: %s\n", err.c_str());
      return 1;
    }
    return 0;
  }
  if (!hf.empty()) {
    if (!input.empty() || !synthetic.empty()) {
      std::fprintf(stderr, "lamina-convert: -hf takes no <input> or --synthetic\n");
      return 2;
    }
  } else if (out.empty() || (input.empty() == synthetic.empty())) {
    Usage(stderr);
    return 2;
  }
  if (!calib.empty() || quant_self) {  // --calib wins (then "give one")
    gs.mode = calib.empty() ? GptqSource::Mode::kSelf : GptqSource::Mode::kFile;
    gs.file = calib;
  }
  std::string err;
  if (!ValidatePipeline(po, &err)) {  // bad option values: before any file is touched
    std::fprintf(stderr, "lamina-convert: %s\n", err.c_str());
    return 2;
  }
  if (!calib.empty() && quant_self) {
    std::fprintf(stderr, "lamina-convert: --calib FILE and --quant self: give one\n");
    return 2;
  }
  if (!hf.empty()) return FromHub(hf, po, out);
  if (!ConvertPipeline(po, out, &err)) {
    std::fprintf(stderr, "lamina-convert: %s\n", err.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return lamina::tools::RunMain("lamina-convert", Main, argc, argv);
}
