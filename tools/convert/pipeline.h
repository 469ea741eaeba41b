// The conversion pipeline of lamina-convert and of the hub (-hf): one input
// (detected by kind) -> one .lamina, with the defaults lamina-convert applies
// to float inputs it quantizes to q4 itself: the R4 rotation where ffn_dim is
// a power of two (rotate.h) and --quant auto (self-calibrated GPTQ when cheap
// enough, else the f16 scale search: self_calib.h). docs/QUALITY.md has the
// measurements behind every default.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "tools/convert/convert.h"
#include "tools/convert/rotate.h"
#include "tools/convert/self_calib.h"

// The rotations applied when none are asked for: to float inputs lamina
// quantizes to q4 itself, and R4 only where ffn_dim is a power of two (else
// silently none). A macro: lamina-convert's usage text is built from it.
#define LAMINA_DEFAULT_ROTATE "r4"

namespace lamina::convert {

struct PipelineOptions {
  /// The input: a Hugging Face directory (config.json), a Meta directory
  /// (params.json or consolidated.00.pth) or a consolidated .pth file, a GGUF
  /// file, or a llama2.c .bin; or, when `synthetic` names a preset, none.
  std::string input;
  std::string synthetic;
  ConvertOptions convert;
  /// --synthetic weights, R1/R2 signs and the self-calibration sampler.
  uint64_t seed = 1;
  /// --rotate; nullopt: LAMINA_DEFAULT_ROTATE where it applies.
  std::optional<Rotations> rotate;
  /// q4 calibration: kAuto (the default), kSelf, kFile (gptq.file, --calib) or
  /// kNone (convert.q4_method alone). gptq.self.seed and gptq.copts.quiet are
  /// taken from `seed` and convert.quiet.
  GptqSource gptq;

  PipelineOptions() { gptq.mode = GptqSource::Mode::kAuto; }
};

/// Checks the options before any file is touched: types of --weights /
/// --output / --embedding, GPTQ needing --weights q4, explicit rotations on a
/// Meta input. False + *err (the message, without the tool's name).
bool ValidatePipeline(const PipelineOptions& p, std::string* err);

/// Converts p.input (or the synthetic preset) into `out`: the default or
/// explicit rotations through a temporary f32 file beside `out`, GPTQ (file,
/// self or auto, with auto's one-line note on stderr unless quiet), and the
/// q4 method recorded in the header's weight_scheme ("q4-self+r4", ...).
/// Temporary files are removed. False + *err on failure.
bool ConvertPipeline(const PipelineOptions& p, const std::string& out, std::string* err);

}  // namespace lamina::convert
