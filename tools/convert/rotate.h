// lamina-convert --rotate: Hadamard rotations fused into a float model's
// weights (QuaRot / SpinQuant without training), so the int4 quantizer sees
// weights (and the engine activations) with fewer outliers. Data-free.
//
// Conventions: a linear W is [out, in] and computes y = x W^T on row vectors.
//  - R1 (residual stream, dim x dim): the RMSNorm gains are first folded into
//    the linears that read the normalized stream (W <- W diag(g), the gain
//    becomes 1), then the stream is h' = h R1: tok_embd <- E R1; attn_q/k/v,
//    ffn_gate/up, output <- W R1 (inputs); attn_output, ffn_down <- R1^T W
//    (outputs). RMSNorm(h R1) = RMSNorm(h) R1 exactly (R1 orthogonal), so the
//    f32 graph computes the same logits. Nothing runs online. A tied model
//    gets an untied output layer (E diag(g_final) R1 differs from E R1).
//  - R2 (per head, head_dim x head_dim, on v/o): attn_v rows of each kv head
//    <- R2^T W, attn_output columns of each head <- W R2.
//  - R4 (ffn_down input, ffn_dim x ffn_dim): ffn_down <- W H with H the
//    engine's online Hadamard (format::kTensorHadamardInput: natural-order
//    Walsh-Hadamard x 1/sqrt(n), needs a power-of-two ffn_dim).
// R1 and R2 are random-sign block Hadamards D blockdiag(H_b, ..., H_b)
// (b = the largest power of two dividing the width), seeded deterministically:
// any orthogonal matrix is exact for them since nothing is applied online.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tools/convert/convert.h"

namespace lamina::convert {

struct Rotations {
  bool r1 = false, r2 = false, r4 = false;
  bool any() const { return r1 || r2 || r4; }
};

/// "none" | "all" | a comma list of r1, r2, r4 ("r1,r4"). False + *err else.
bool ParseRotations(const std::string& s, Rotations* r, std::string* err);
/// The informational tag recorded in the scheme: "r124", "r1", "" for none.
std::string RotationsTag(const Rotations& r);

/// x <- x R for row vectors of width n, R = D blockdiag(H_b, ...) / sqrt(b)
/// (D = random +-1 signs from `seed`, or none when seed == 0: then R is the
/// engine's natural-order Hadamard when b == n).
class BlockHadamard {
 public:
  BlockHadamard(int n, uint64_t seed);
  int n() const { return n_; }
  int block() const { return b_; }
  /// x: n values.
  void Apply(float* x) const;

 private:
  int n_, b_;
  std::vector<float> sign_;
};

/// Whether a model of these hparams supports R4 (power-of-two ffn_dim: the
/// engine's online Hadamard).
bool SupportsR4(uint32_t ffn_dim);

/// Whether lamina-convert's default R4 may apply to `input`, read from its
/// header without converting it: false when it declares a non-power-of-two
/// ffn_dim (llama2.c header, config.json intermediate_size, GGUF
/// llama.feed_forward_length) or is a GGUF with quantized tensors; true when
/// it may (or cannot be told here: the conversion then finds out).
bool InputMayTakeR4(const std::string& input);

/// Rewrites the f32 model `src` (a .lamina of F32 tensors, e.g. written with
/// --weights f32) into `dst` under `o` (types, q4 method / plan), applying
/// `rot` first. Header, hparams and tokenizer are copied; tensor flags are
/// kept (R4 adds kTensorHadamardInput on every ffn_down); `scheme` is the
/// header's informational weight_scheme. False + *err when a tensor is not
/// F32 (pre-quantized), the model has LoRA adaptors, or R4 is asked for with a
/// non-power-of-two ffn_dim.
bool RewriteF32Model(const std::string& src, const std::string& dst, const ConvertOptions& o,
                     const Rotations& rot, uint64_t seed, const std::string& scheme,
                     std::string* err);

/// Whether every matrix of `src` is F32 and it has no LoRA adaptors (what
/// RewriteF32Model needs); *why says which tensor is not when false.
bool IsPlainF32Model(const std::string& src, std::string* why);

}  // namespace lamina::convert
