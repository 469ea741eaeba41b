// Engine configuration (from the file's HParams) and the views of the weights
// into the mapped file. Plain structs, llama2.c style.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "loader/format.h"
#include "loader/model_file.h"

namespace lamina::engine {

/// The model's shape, validated: every field positive and consistent.
struct Config {
  int dim = 0;  // model width
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;  // GQA: n_heads % n_kv_heads == 0
  int head_dim = 0;    // dim == n_heads * head_dim, even
  int q_dim = 0;       // n_heads * head_dim
  int kv_dim = 0;      // n_kv_heads * head_dim
  int ffn_dim = 0;
  int vocab = 0;
  int max_context = 0;
  float norm_eps = 1e-5f;
  float rope_theta = 10000.f;
  bool rope_llama3 = false;
  float rope_factor = 1.f, rope_low = 1.f, rope_high = 4.f;
  int rope_orig_max_pos = 8192;
  int bos_id = -1, eos_id = -1;
  std::vector<int32_t> stop_ids;
  int lora_rank = 0;
  float lora_scale = 0.f;
};

/// Fills *c from hp; false + *err ("hparams.<field> = <v>: <why>",
/// schema::ValidateHParams) when invalid.
bool ConfigFromHParams(const format::HParams& hp, Config* c, std::string* err);

/// A linear layer W [N out, K in] in one of the file's encodings, plus its
/// optional LoRA adaptor (A [r, K], B [N, r], float row-major).
struct Matrix {
  const uint8_t* data = nullptr;
  format::DType dtype = format::DType::kF32;
  format::Layout layout = format::Layout::kRowMajor;  // kQ4G: R4K8 (f32 scales) or F16S
  int N = 0, K = 0;
  bool hadamard_input = false;  // SpinQuant R4 on the input (ffn_down only)
  const void* lora_a = nullptr;
  int lora_a_type = 0;  // format::DType value (F32/F16/BF16)
  const void* lora_b = nullptr;
  int lora_b_type = 0;
  bool quantized() const { return dtype == format::DType::kQ4G || dtype == format::DType::kQ8C; }
};

struct LayerWeights {
  const float* attn_norm = nullptr;  // [dim]
  const float* ffn_norm = nullptr;   // [dim]
  Matrix wq, wk, wv, wo;             // attn_q, attn_k, attn_v, attn_output
  Matrix w_gate, w_up, w_down;       // ffn_gate (w1), ffn_up (w3), ffn_down (w2)
};

struct Weights {
  Matrix tok_embd;  // [vocab, dim]: F32/F16/BF16 row-major, Q8C or Q4G
  const float* output_norm = nullptr;
  Matrix output;  // tied: a copy of tok_embd's view
  std::vector<LayerWeights> layers;
};

/// Binds every tensor of the schema (loader/llama_schema.h) to views into
/// `f`. Only binds: ModelFile::Open validated presence, shapes, types, flags
/// and LoRA pairs against the same table. `c` is ConfigFromHParams(f.hparams()).
bool BindWeights(const ModelFile& f, const Config& c, Weights* w, std::string* err);

}  // namespace lamina::engine
