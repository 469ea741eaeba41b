// lamina-convert --quant self: GPTQ calibrated on tokens sampled from the
// float model itself (data-free: no user text; LLM-QAT's data-free generation),
// and --quant auto, the default, which picks it for float inputs when it is
// cheap enough. docs/QUALITY.md has the measurements behind every default.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tools/convert/calibrate.h"
#include "tools/convert/quantize.h"

namespace lamina::convert {

struct SelfCalibOptions {
  int n_tokens = 2048;       // tokens to sample (rounded up to whole windows)
  float temperature = 1.0f;  // the model's own distribution
  float top_p = 1.0f;        // >= 1: off
  float min_p = 0.0f;        // <= 0: off
  uint64_t seed = 1;         // the sampler's PCG32 seed
};

/// Samples calibration windows from the float model `model` (a .lamina)
/// with lamina's engine: ceil(o.n_tokens / W) windows of W = min(window,
/// max_context) tokens, each starting with BOS (a model without BOS: a token
/// drawn uniformly from the vocabulary), continued by sampling (temperature,
/// top-p, min-p; no top-k, no penalty) from an empty KV cache; after a stop
/// token (EOS, stop ids) BOS is inserted and sampling continues, so every
/// window is full. Window w draws from a PCG32 seeded by (o.seed, w), so the
/// tokens depend on the model and o.seed only; `threads` windows (0: one per
/// core) are sampled at a time, each on a single-threaded engine context.
/// False + *err when the model cannot be loaded, its context is shorter than
/// 2 tokens, or the forward pass fails.
bool SampleCalibrationIds(const std::string& model, int window, const SelfCalibOptions& o,
                          int threads, bool quiet, std::vector<int32_t>* ids, std::string* err);

/// Shape of a model for the cost estimate (from its hparams).
struct ModelShape {
  int dim = 0, n_layers = 0, q_dim = 0, kv_dim = 0, ffn_dim = 0, vocab = 0, max_context = 0;
};
/// Reads the shape from a .lamina's hparams. False + *err if it cannot be opened.
bool ReadModelShape(const std::string& model, ModelShape* s, std::string* err);

/// Estimated seconds of CPU (this project's 2-core x86-64 reference host) that
/// sampling n_tokens from the f32 model and GPTQ on them take; a rule of thumb
/// fitted to measurements (docs/QUALITY.md), not a promise.
double EstimateSelfCalibSeconds(const ModelShape& s, int n_tokens, int window);

/// --quant auto picks self-calibrated GPTQ when its estimate is at most this.
inline constexpr double kAutoSelfMaxSeconds = 60.0;

/// Where a conversion's GPTQ calibration comes from: nothing, --calib FILE,
/// --quant self, or --quant auto (self when the input turns out to be a
/// plain float model whose estimate is within kAutoSelfMaxSeconds, else
/// nothing: the data-free method).
struct GptqSource {
  enum class Mode { kNone, kFile, kSelf, kAuto };
  Mode mode = Mode::kNone;
  std::string file;  // kFile
  SelfCalibOptions self;
  CalibOptions copts;

  bool wanted() const { return mode != Mode::kNone; }
  /// The weight_scheme method tag: "gptq" (file) or "self" (as --quant names
  /// it; "q4-self+r124" fits the header's 16 bytes, "q4-gptq-self+r124" would not).
  const char* method() const { return mode == Mode::kFile ? "gptq" : "self"; }
  /// kAuto, before any conversion: falls back to kNone for a GGUF input with
  /// quantized tensors (silently: pre-quantized inputs keep their values) or
  /// an input certainly too big (a note on stderr unless quiet): its float
  /// weights (a GGUF's, or at least bytes / 4 of a file or directory) would
  /// take over 2 x kAutoSelfMaxSeconds to sample from.
  void DecideByInput(const std::string& input);
  /// kAuto, on the float conversion `f32_model`: becomes kSelf, or kNone
  /// when the model is not plain f32 (pre-quantized tensors) or the estimate
  /// is over kAutoSelfMaxSeconds (a one-line note on stderr unless quiet).
  /// False + *err only when the file cannot be read.
  bool Decide(const std::string& f32_model, std::string* err);
  /// GPTQ of `f32_model` (modified in place, calibrate.h) on the file or on
  /// samples of the model; fills *plan. Needs mode kFile or kSelf.
  bool Run(const std::string& f32_model, Q4Plan* plan, std::string* err) const;
};

}  // namespace lamina::convert
