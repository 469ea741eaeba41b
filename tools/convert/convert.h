// lamina-convert's entry points, one per input kind, and the shared helpers
// that turn float tensors into the file's types by the chosen weight scheme.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lamina/lamina.h"
#include "loader/format.h"
#include "loader/llama_schema.h"
#include "loader/model_writer.h"
#include "tools/convert/quantize.h"

namespace lamina::convert {

struct ConvertOptions {
  std::string weights = "q4";  // q4 | q8 | bf16 | f32 (ignored for pre-quantized inputs)
  int group_size = 32;         // q4 group size (only 32 is supported by the kernels)
  // Output layer / token embedding type: q8 | q4 | bf16 | f32, or "" = by
  // `weights` (q8 for q4/q8, else the weights' type). A tied model whose two
  // types differ gets two tensors (see OutputUntied).
  std::string output, embedding;
  // q4g group scales: "f16" (Q4G_R4K8_F16S, 4.5 bits/weight, the default) or
  // "f32" (Q4G_R4K8, format 1.0's layout, 5 bits/weight).
  std::string q4_scales = "f16";
  std::string tokenizer_path;  // override / supply a tokenizer file
  bool no_tokenizer = false;   // --tokenizer none: embed no tokenizer (driven by token ids)
  bool quiet = false;          // no progress output
  // q4 quality (tools/convert/quantize.h): the data-free group quantizer, and
  // quantizations computed ahead of time (GPTQ, --calib) by tensor name.
  Q4Method q4_method = Q4Method::kSearch;
  const Q4Plan* q4_plan = nullptr;
};

/// What a float tensor is (each schema row has one: loader/llama_schema.h),
/// which decides its type under the scheme:
/// q4: kLinear -> Q4G, kEmbedding/kOutput -> Q8C, kNorm -> F32;
/// q8: kLinear/kEmbedding/kOutput -> Q8C; bf16/f32: everything unquantized
/// (norms always F32). --output / --embedding override kOutput / kEmbedding.
using Role = schema::Role;

/// Quantizes/stores a float tensor (row-major, PyTorch shape [out, in] for
/// matrices) under `opts.weights` and appends it. K not a multiple of 32 is
/// zero-padded by the packed layouts (exact).
bool EmitFloatTensor(ModelWriter& w, const std::string& name, Role role, const float* data,
                     const std::vector<uint64_t>& shape, const ConvertOptions& opts,
                     std::string* err, uint32_t tensor_flags = 0);

/// Reorders the rows of a q/k projection [n_heads*head_dim, in] from Hugging
/// Face's rotate-half order to the engine's interleaved-pair order (inverse of
/// HF's convert_llama_weights_to_hf permute). elem_size bytes per element.
void PermuteRotateHalfToInterleaved(const void* src, void* dst, int n_heads, int head_dim,
                                    int64_t row_bytes);

/// Each converter writes `out` atomically; false + *err on failure.
bool ConvertHf(const std::string& dir, const std::string& out, const ConvertOptions& o,
               std::string* err);
bool ConvertLlama2c(const std::string& bin, const std::string& out, const ConvertOptions& o,
                    std::string* err);
/// Random-weight Llama 3.2-shaped models: "tiny", "1b", "3b".
bool ConvertSynthetic(const std::string& preset, uint64_t seed, const std::string& out,
                      const ConvertOptions& o, std::string* err);
bool ConvertMeta(const std::string& dir, const std::string& out, const ConvertOptions& o,
                 std::string* err);
bool ConvertGguf(const std::string& path, const std::string& out, const ConvertOptions& o,
                 std::string* err);

/// A Hugging Face PEFT LoRA adapter directory (adapter_config.json +
/// adapter_model.safetensors) -> a lamina adapter file `out` bound to the base
/// model file `base` (tools/convert/lora_convert.cpp says what is accepted).
bool ConvertLoraAdapter(const std::string& dir, const std::string& base, const std::string& out,
                        const ConvertOptions& o, std::string* err);

/// lamina_adapter_load of `path` for `model` (loaded from `model_path`); a PEFT
/// directory is converted first (to a temporary file, removed once mapped).
/// The status and *err (the message) on failure.
lamina_status LoadLoraAdapter(const lamina_model* model, const std::string& model_path,
                              const std::string& path, lamina_adapter** out, std::string* err);

/// llama-run's --lora: adapters loaded for one model (LoadLoraAdapter) with
/// their scales; freed together.
struct LoraSet {
  std::vector<lamina_adapter*> adapters;
  std::vector<float> scales;
  LoraSet() = default;
  LoraSet(const LoraSet&) = delete;
  LoraSet& operator=(const LoraSet&) = delete;
  ~LoraSet();
  /// Loads paths[i] (adapter file or PEFT directory) with scales[i]; logs one
  /// line per adapter on stderr. False + *err naming the path.
  bool Load(const lamina_model* model, const std::string& model_path,
            const std::vector<std::string>& paths, const std::vector<float>& scales,
            std::string* err);
  /// lamina_context_set_adapters with all of them.
  lamina_status Attach(lamina_context* ctx) const {
    return lamina_context_set_adapters(ctx, adapters.data(), scales.data(), adapters.size());
  }
};

}  // namespace lamina::convert
