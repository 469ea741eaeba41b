// The conversion pipeline (pipeline.h): input kind, default rotations,
// GPTQ source, temporary float files and the weight_scheme stamp.
#include "tools/convert/pipeline.h"

#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "loader/model_file.h"
#include "tools/convert/convert_util.h"

namespace lamina::convert {
namespace {

bool HasMagic(const std::string& path, const char* magic, size_t n) {
  std::ifstream f(path, std::ios::binary);
  char buf[8] = {};
  f.read(buf, static_cast<std::streamsize>(n));
  return f.gcount() == static_cast<std::streamsize>(n) && std::memcmp(buf, magic, n) == 0;
}

// A Meta checkpoint: a directory with params.json or consolidated.00.pth (and
// no config.json), or a consolidated .pth (a zip) itself.
bool IsMetaInput(const PipelineOptions& p) {
  const std::string& in = p.input;
  if (!p.synthetic.empty()) return false;
  if (IsDir(in))
    return !IsFile(in + "/config.json") &&
           (IsFile(in + "/params.json") || IsFile(in + "/consolidated.00.pth"));
  return IsFile(in) && HasMagic(in, "PK\x03\x04", 4);
}

// One conversion of the input under `co` to `dst`.
bool ConvertInput(const PipelineOptions& p, const ConvertOptions& co, const std::string& dst,
                  std::string* e) {
  const std::string& in = p.input;
  if (!p.synthetic.empty()) return ConvertSynthetic(p.synthetic, p.seed, dst, co, e);
  if (IsDir(in)) {
    if (IsFile(in + "/config.json")) return ConvertHf(in, dst, co, e);
    if (IsMetaInput(p)) return ConvertMeta(in, dst, co, e);
    *e = in + ": not a Hugging Face (config.json) or Meta (params.json) checkpoint directory";
    return false;
  }
  if (IsFile(in)) {
    if (HasMagic(in, "GGUF", 4)) return ConvertGguf(in, dst, co, e);
    if (IsMetaInput(p)) return ConvertMeta(DirName(in), dst, co, e);
    return ConvertLlama2c(in, dst, co, e);
  }
  *e = in + ": no such file or directory";
  return false;
}

// Records the q4 method in the header's informational weight_scheme
// ("q4" -> "q4-search" / "q4-rtn" / "q4-gptq" / "q4-self") of a file
// lamina-convert quantized itself (other schemes: pre-quantized inputs, left
// alone).
bool StampScheme(const std::string& path, const std::string& method, std::string* err) {
  // "q4" or "q4+<rotations>" -> "q4-<method>[+<rotations>]".
  format::FileHeader h;
  FILE* f = std::fopen(path.c_str(), "r+b");
  if (!f || std::fread(&h, sizeof(h), 1, f) != 1) {
    if (f) std::fclose(f);
    *err = "cannot reopen " + path;
    return false;
  }
  bool ok = true;
  const std::string cur(h.weight_scheme, strnlen(h.weight_scheme, sizeof(h.weight_scheme)));
  if (cur == "q4" || cur.rfind("q4+", 0) == 0) {
    char s[sizeof(h.weight_scheme)] = {};
    std::snprintf(s, sizeof(s), "q4-%s%s", method.c_str(), cur.c_str() + 2);
    ok = std::fseek(f, offsetof(format::FileHeader, weight_scheme), SEEK_SET) == 0 &&
         std::fwrite(s, sizeof(s), 1, f) == 1;
  }
  if (std::fclose(f) != 0 || !ok) {
    *err = "cannot write " + path;
    return false;
  }
  return true;
}

// Temporary files beside the output, removed however the conversion ends.
struct TempFiles {
  std::string a, b;
  ~TempFiles() {
    ::unlink(a.c_str());
    ::unlink(b.c_str());
  }
};

// Rotations: the input is converted to a temporary f32 .lamina beside the
// output, rotated into a second one (rotate.h) and that is quantized under
// p.convert; with GPTQ, it runs on the rotated float model (its activations
// are the rotated ones). *done = false (nothing written) when the default
// rotations do not apply: pre-quantized tensors, or R4 alone with a
// non-power-of-two ffn_dim; explicit rotations then are an error.
bool ConvertRotated(const PipelineOptions& p, Rotations rot, GptqSource& gs, const std::string& out,
                    bool* done, std::string* err) {
  const ConvertOptions& o = p.convert;
  *done = false;
  const TempFiles tmp{out + ".rot-f32.tmp", out + ".rot-calib.tmp"};
  ConvertOptions fo = o;
  fo.weights = "f32";
  fo.output.clear();
  fo.embedding.clear();
  fo.quiet = true;
  fo.q4_plan = nullptr;
  if (!ConvertInput(p, fo, tmp.a, err)) return false;
  std::string why;
  if (!IsPlainF32Model(tmp.a, &why)) {
    if (!p.rotate) return true;
    *err = "--rotate needs a float model: " + why;
    return false;
  }
  {
    auto m = ModelFile::Open(tmp.a, LoadOptions{}, err);
    if (!m) return false;
    if (!p.rotate && !SupportsR4(m->hparams().ffn_dim)) rot.r4 = false;
  }
  if (!rot.any()) return true;
  if (!gs.Decide(tmp.a, err)) return false;
  const std::string scheme = o.weights + "+" + RotationsTag(rot);
  *done = true;
  if (!gs.wanted())
    return RewriteF32Model(tmp.a, out, o, rot, p.seed, scheme, err) &&
           StampScheme(out, Q4MethodName(o.q4_method), err);
  if (!RewriteF32Model(tmp.a, tmp.b, fo, rot, p.seed, "f32+" + RotationsTag(rot), err))
    return false;
  ::unlink(tmp.a.c_str());
  Q4Plan plan;
  if (!gs.Run(tmp.b, &plan, err)) return false;
  ConvertOptions qo = o;
  qo.q4_plan = &plan;
  return RewriteF32Model(tmp.b, out, qo, Rotations{}, p.seed, scheme, err) &&
         StampScheme(out, gs.method(), err);
}

}  // namespace

bool ValidatePipeline(const PipelineOptions& p, std::string* err) {
  for (Role r : {Role::kLinear, Role::kOutput, Role::kEmbedding}) {
    format::DType dt;
    if (!TypeFor(r, p.convert, &dt, err)) return false;
  }
  const GptqSource::Mode m = p.gptq.mode;
  if ((m == GptqSource::Mode::kFile || m == GptqSource::Mode::kSelf) && p.convert.weights != "q4") {
    *err = std::string(m == GptqSource::Mode::kSelf ? "--quant self" : "--calib") +
           " needs --weights q4";
    return false;
  }
  if (p.rotate && p.rotate->any() && IsMetaInput(p)) {
    *err = "--rotate: Meta checkpoints are kept exact (not rotated)";
    return false;
  }
  return true;
}

bool ConvertPipeline(const PipelineOptions& p, const std::string& out, std::string* err) {
  if (!ValidatePipeline(p, err)) return false;
  const ConvertOptions& o = p.convert;
  const bool synthetic = !p.synthetic.empty();
  // The defaults need the float model: only for float inputs that lamina
  // quantizes to q4 itself (not Meta's QAT checkpoints, not the random
  // --synthetic models, whose large presets are generated packed).
  const bool own_q4 = o.weights == "q4" && !synthetic && !IsMetaInput(p);
  Rotations rot;
  if (p.rotate) {
    rot = *p.rotate;
  } else if (own_q4) {
    std::string e;
    ParseRotations(LAMINA_DEFAULT_ROTATE, &rot, &e);
    rot.r4 = rot.r4 && InputMayTakeR4(p.input);  // no f32 pass for it
  }
  // GPTQ's calibration: --calib / --quant self as given; --quant auto applies
  // to float inputs lamina quantizes itself (decided on the float model,
  // GptqSource::Decide).
  GptqSource gs = p.gptq;
  gs.self.seed = p.seed;
  gs.copts.quiet = o.quiet;
  if (gs.mode == GptqSource::Mode::kAuto) {
    if (!own_q4) gs.mode = GptqSource::Mode::kNone;
    gs.DecideByInput(p.input);
  }
  if (rot.any()) {
    bool done = false;
    if (!ConvertRotated(p, rot, gs, out, &done, err)) return false;
    if (done) return true;
  }
  if (!gs.wanted())
    return ConvertInput(p, o, out, err) &&
           (synthetic || StampScheme(out, Q4MethodName(o.q4_method), err));
  // GPTQ: the float model first (a temporary file beside the output), then
  // block by block through the engine, then the real conversion with the
  // GPTQ values (--quant auto may settle for the data-free search instead).
  ConvertOptions fo = o;
  fo.weights = "f32";
  fo.quiet = true;
  Q4Plan plan;
  {
    const TempFiles tmp{out + ".calib-f32.tmp", ""};
    if (!ConvertInput(p, fo, tmp.a, err) || !gs.Decide(tmp.a, err) ||
        (gs.wanted() && !gs.Run(tmp.a, &plan, err)))
      return false;
  }
  ConvertOptions qo = o;
  if (gs.wanted()) qo.q4_plan = &plan;
  return ConvertInput(p, qo, out, err) &&
         (synthetic ||
          StampScheme(out, gs.wanted() ? gs.method() : Q4MethodName(o.q4_method), err));
}

}  // namespace lamina::convert
