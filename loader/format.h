// lamina model file format, version 1.x — the on-disk structs.
//
// docs/FORMAT.md is the prose specification; this header is its machine-checked
// form. Everything is little-endian; every struct here is POD with explicit
// padding and its size pinned by static_assert, so the file can be read by
// pointing at the mmap (no parsing, no copy).
//
// File layout (the header's offsets are authoritative; lamina-convert writes
// this order so that tensors can be streamed to disk before the directory is
// known):
//   [FileHeader (512 B)][zero padding]           offset 0
//   [tensor data, each tensor kTensorAlign-aligned]  header.data_offset (= kDataAlign)
//   [TensorEntry x n_tensors (256 B each)]       header.tensor_dir_offset (8-aligned)
//   [tokenizer blob]                             header.tokenizer_offset
//   [zero padding to kFileAlign]                 header.file_size
#pragma once

#include <cstddef>
#include <cstdint>

namespace lamina::format {

// "LAMINA" + two bytes that catch text-mode / 7-bit transfer damage.
inline constexpr char kMagic[8] = {'L', 'A', 'M', 'I', 'N', 'A', '\x1a', '\x0a'};
// Major: readers refuse any other major. Minor: additive changes only (new
// enum values, use of reserved fields); readers accept any minor.
inline constexpr uint16_t kVersionMajor = 1;
inline constexpr uint16_t kVersionMinor = 2;  // 1: kQ4G_R4K8_F16S; 2: LoRA adapter files

// Why 256: one cache-line multiple on every Arm core (64 B) and a multiple of
// every SIMD load width (up to 2048-bit SVE), so kernels may use aligned loads.
inline constexpr uint64_t kTensorAlign = 256;
// Why 64 KiB: the largest Arm page size; data_offset and file_size are
// multiples of it so the data region maps page-aligned on 4K/16K/64K kernels.
inline constexpr uint64_t kDataAlign = 65536;
inline constexpr uint64_t kFileAlign = 65536;

enum class Arch : uint32_t { kLlama = 1 };

// Element type of a tensor (what the bytes mean).
enum class DType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kBF16 = 2,
  kQ8C = 3,  // int8 symmetric, one f32 scale per output row (channel)
  kQ4G = 4,  // int4 symmetric, groups of `group_size` along K, one scale per group
             // (f32 in kQ4G_R4K8, f16 in kQ4G_R4K8_F16S)
};

// How the bytes are arranged. A (dtype, layout) pair must be one of:
//   (F32|F16|BF16, kRowMajor), (Q8C, kQ8C_R4K4), (Q4G, kQ4G_R4K8 | kQ4G_R4K8_F16S).
enum class Layout : uint32_t {
  // Plain row-major [shape[0], shape[1], ...] (last dim contiguous).
  kRowMajor = 0,
  // ---- kQ4G_R4K8: q4g matrix W[N][K], group size 32 -----------------------
  // Why this layout: one 16-byte load carries 4 rows x 8 k as nibbles; with
  // (b << 4) and (b & 0xF0) it becomes two int8 vectors holding 16*w:
  //   lo = [r0 k0..3 | r1 k0..3 | r2 k0..3 | r3 k0..3]
  //   hi = [r0 k4..7 | r1 k4..7 | r2 k4..7 | r3 k4..7]
  // which is exactly the operand of SDOT-by-element (GEMV: lane r = row r)
  // and, after zip1/zip2 on 32-bit lanes, the 2x8 operands of SMMLA (GEMM).
  //   Np = round_up(N, 4), Kp = round_up(K, 32), G = Kp / 32.
  //   Row block b (rows 4b..4b+3), size kQ4BlockBytes(Kp) = G*80 + 16, holds:
  //     for g in 0..G-1:
  //       64 B: chunks c = 0..3 (k = 32g + 8c + ...), 16 B each; byte j = 4r + i
  //             (r = row 0..3, i = 0..3): low nibble  = w[4b+r][32g+8c+i],
  //                                       high nibble = w[4b+r][32g+8c+4+i],
  //             nibbles are 4-bit two's complement (-8..7).
  //       16 B: f32 scale[4] — the group scale of rows 4b+0..3 (true scale).
  //     16 B: f32 corr[4] — per row, corr = 0; for g: corr = fmaf(scale_g,
  //           (float)wsum_g, corr) where wsum_g = sum of the 32 int4 values of
  //           group g of that row (the zero-point correction, see kernels/ref).
  //   Padding rows / columns are zero values with zero scale.
  //   Tensor bytes = (Np / 4) * kQ4BlockBytes(Kp).
  kQ4G_R4K8 = 1,
  // ---- kQ8C_R4K4: q8c matrix W[N][K] ---------------------------------------
  // Why: 16 bytes = 4 rows x 4 k, the SDOT-by-element operand; two adjacent
  // chunks zip (32-bit lanes) into SMMLA's 2x8 operands.
  //   Np = round_up(N, 4), Kp = round_up(K, 32).
  //   Row block b, size kQ8BlockBytes(Kp) = Kp*4 + 32:
  //     for c in 0..Kp/4-1: 16 B, byte j = 4r + i = w[4b+r][4c+i] (int8)
  //     16 B: f32 scale[4] (per row)
  //     16 B: int32 wsum[4] (per row, sum of the row's int8 values)
  //   Tensor bytes = (Np / 4) * kQ8BlockBytes(Kp).
  kQ8C_R4K4 = 2,
  // ---- kQ4G_R4K8_F16S: q4g matrix W[N][K], group size 32, f16 scales ----------
  // Why: the f32 group scales of kQ4G_R4K8 are 1 of its 5 bits per weight; 16-bit
  // scales make it 4.5 (a 1B decode reads ~811 MB instead of ~873 MB, and decode
  // speed on a board is bandwidth / bytes). Why f16 and not bf16: 3 more mantissa
  // bits, and int4 group scales (amax / 7.5) lie well inside f16's range; a scale
  // that f16 cannot hold exactly (e.g. some of Meta's f32 scales) keeps kQ4G_R4K8.
  // Why the scales sit apart from the nibbles: a GEMV loads the 4 rows' scales of
  // 4 groups with one 32-byte load and widens them, instead of one load per group.
  //   Np, Kp, G as kQ4G_R4K8. Row block b, size kQ4F16SBlockBytes(Kp):
  //     G x 64 B   at 64g: the nibble chunks of group g, byte for byte as the
  //                64 B of group g in kQ4G_R4K8.
  //     G x 8 B    at 64G + 8g: f16 scale[4] of group g, rows 4b+0..3.
  //     zero padding to a multiple of 16 B (when G is odd).
  //     16 B: f32 corr[4], as kQ4G_R4K8 with scale_g = (float)f16 scale: corr = 0;
  //           for g ascending: corr = fmaf(scale_g, (float)wsum_g, corr).
  //   Padding rows / columns are zero values with zero scale.
  //   Tensor bytes = (Np / 4) * kQ4F16SBlockBytes(Kp).
  kQ4G_R4K8_F16S = 3,
};

inline constexpr uint64_t kQ4Group = 32;
constexpr uint64_t RoundUp(uint64_t x, uint64_t m) { return (x + m - 1) / m * m; }
constexpr uint64_t kQ4BlockBytes(uint64_t kp) { return kp / 32 * 80 + 16; }
constexpr uint64_t kQ8BlockBytes(uint64_t kp) { return kp * 4 + 32; }
/// Offset of the f16 scales inside a kQ4G_R4K8_F16S row block.
constexpr uint64_t kQ4F16SScaleOffset(uint64_t kp) { return kp / 32 * 64; }
/// Offset of the f32 corrections inside a kQ4G_R4K8_F16S row block.
constexpr uint64_t kQ4F16SCorrOffset(uint64_t kp) {
  return kp / 32 * 64 + RoundUp(kp / 32 * 8, 16);
}
constexpr uint64_t kQ4F16SBlockBytes(uint64_t kp) { return kQ4F16SCorrOffset(kp) + 16; }
static_assert(kQ4F16SBlockBytes(2048) == 64 * 72 + 16, "1B: 4.5 bits per weight + corr");
static_assert(kQ4F16SBlockBytes(32) == 64 + 16 + 16, "odd G pads the scales to 16 B");

/// "f32", "f16", "bf16", "q8c", "q4g", or "?" for an unknown value.
inline const char* DTypeName(DType d) {
  switch (d) {
    case DType::kF32:
      return "f32";
    case DType::kF16:
      return "f16";
    case DType::kBF16:
      return "bf16";
    case DType::kQ8C:
      return "q8c";
    case DType::kQ4G:
      return "q4g";
  }
  return "?";
}

/// "row_major", "q4g_r4k8", "q8c_r4k4", "q4g_r4k8_f16s", or "?".
inline const char* LayoutName(Layout l) {
  switch (l) {
    case Layout::kRowMajor:
      return "row_major";
    case Layout::kQ4G_R4K8:
      return "q4g_r4k8";
    case Layout::kQ8C_R4K4:
      return "q8c_r4k4";
    case Layout::kQ4G_R4K8_F16S:
      return "q4g_r4k8_f16s";
  }
  return "?";
}

/// F32, F16 or BF16 (row-major floats; read by the float matmul).
inline bool IsFloat(DType d) { return d == DType::kF32 || d == DType::kF16 || d == DType::kBF16; }
inline bool IsFloat(uint32_t d) { return IsFloat(static_cast<DType>(d)); }
inline const char* DTypeName(uint32_t d) { return DTypeName(static_cast<DType>(d)); }
inline const char* LayoutName(uint32_t l) { return LayoutName(static_cast<Layout>(l)); }

enum class RopeScaling : uint32_t { kNone = 0, kLlama3 = 1 };

// Bits of FileHeader.flags.
enum HeaderFlags : uint32_t {
  kFlagTiedEmbeddings = 1u << 0,  // output layer reuses tok_embd (no "output" tensor)
  // A LoRA adapter, not a model (since 1.2): hparams are the base model's
  // (lora_rank = the adapter's rank r, lora_scale = its alpha / r), the tensors
  // are "blk.<i>.<linear>.lora_a" [r, in] / ".lora_b" [out, r] pairs in F32,
  // F16 or BF16 (any subset of the linears), there is no tokenizer, and
  // FileHeader.base_binding names the base (AdapterBinding below).
  kFlagAdapter = 1u << 1,
};

// Bits of TensorEntry.flags.
enum TensorFlags : uint32_t {
  // SpinQuant R4: the engine applies the orthonormal fast Walsh–Hadamard
  // transform to this linear's input (natural order, x 1/sqrt(K)) before
  // quantizing it. Valid on blk.N.ffn_down only; K must be a power of two.
  kTensorHadamardInput = 1u << 0,
};

// Model hyperparameters. Units: counts unless said otherwise.
struct HParams {
  uint32_t arch;  // Arch
  uint32_t dim;   // model width
  uint32_t n_layers;
  uint32_t n_heads;
  uint32_t n_kv_heads;  // GQA: n_heads % n_kv_heads == 0
  uint32_t head_dim;    // dim == n_heads * head_dim
  uint32_t ffn_dim;     // SwiGLU hidden width
  uint32_t vocab_size;
  uint32_t max_context;  // the model's maximum positions
  float norm_eps;        // RMSNorm epsilon
  float rope_theta;
  uint32_t rope_scaling;        // RopeScaling
  float rope_factor;            // llama3: 32 for Llama 3.2
  float rope_low_freq_factor;   // llama3: 1
  float rope_high_freq_factor;  // llama3: 4
  uint32_t rope_orig_max_pos;   // llama3: 8192
  uint32_t bos_id;
  uint32_t eos_id;
  uint32_t n_stop_ids;  // <= 8
  uint32_t stop_ids[8];
  uint32_t lora_rank;     // 0 = no adaptors; else tensors "<linear>.lora_a/.lora_b"
  float lora_scale;       // y += lora_scale * B(A(x))
  uint32_t reserved[35];  // zero; future minors give them meaning
};
static_assert(sizeof(HParams) == 256, "HParams is 256 bytes on disk");

struct FileHeader {
  char magic[8];           // kMagic
  uint16_t version_major;  // kVersionMajor
  uint16_t version_minor;
  uint32_t header_size;        // sizeof(FileHeader)
  uint64_t file_size;          // whole file, multiple of kFileAlign
  uint32_t flags;              // HeaderFlags
  uint32_t tensor_entry_size;  // sizeof(TensorEntry)
  uint64_t n_tensors;
  uint64_t tensor_dir_offset;
  uint64_t tokenizer_offset;  // 0 with tokenizer_size 0: no tokenizer
  uint64_t tokenizer_size;
  uint64_t data_offset;  // multiple of kDataAlign
  uint64_t data_size;
  char weight_scheme[16];  // informational: "q4", "q8", "bf16", "f32", "meta-qat-lora", ...
  uint64_t base_binding;   // kFlagAdapter: the base model's binding hash; else 0
  uint8_t reserved0[152];
  HParams hparams;
};
static_assert(sizeof(FileHeader) == 512, "FileHeader is 512 bytes on disk");
static_assert(offsetof(FileHeader, hparams) == 256, "hparams at 256");
static_assert(offsetof(FileHeader, base_binding) == 96, "base_binding at 96");

struct TensorEntry {
  char name[96];        // NUL-terminated, NUL-padded
  uint32_t dtype;       // DType
  uint32_t layout;      // Layout
  uint32_t n_dims;      // 1..4
  uint32_t flags;       // TensorFlags
  uint64_t shape[4];    // logical shape, PyTorch order: a linear is [out N, in K]
  uint32_t group_size;  // kQ4G: 32; others 0
  uint32_t reserved0;
  uint64_t offset;  // from file start, multiple of kTensorAlign, inside data region
  uint64_t size;    // bytes, exactly as the layout formula says
  uint8_t reserved[88];
};
static_assert(sizeof(TensorEntry) == 256, "TensorEntry is 256 bytes on disk");

// Tensor names (GGUF-like). Per block i: "blk.<i>.<name>".
//   tok_embd [vocab, dim]          F32/F16/BF16 row-major, Q8C (R4K4) or Q4G (since 1.1)
//   output   [vocab, dim]          absent when kFlagTiedEmbeddings
//   output_norm [dim]              F32
//   blk.i.attn_norm [dim], blk.i.ffn_norm [dim]                 F32
//   blk.i.attn_q [n_heads*head_dim, dim]   rows in INTERLEAVED RoPE order
//   blk.i.attn_k [n_kv_heads*head_dim, dim] (Meta order: pairs (2j, 2j+1))
//   blk.i.attn_v [n_kv_heads*head_dim, dim]
//   blk.i.attn_output [dim, n_heads*head_dim]
//   blk.i.ffn_gate [ffn, dim] (w1), blk.i.ffn_up [ffn, dim] (w3),
//   blk.i.ffn_down [dim, ffn] (w2)
//   LoRA (hparams.lora_rank = r > 0): "<linear>.lora_a" [r, in] and
//   "<linear>.lora_b" [out, r], F32, F16 or BF16 row-major.
// The machine-readable form of this list (shapes, types, traits) is the table
// in loader/llama_schema.h.
inline constexpr const char* kLinearNames[7] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                                "ffn_gate", "ffn_up", "ffn_down"};

}  // namespace lamina::format
