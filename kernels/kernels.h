// lamina kernel interfaces: one struct per op, one instance per tier.
//
// Contract shared by every kernel:
//   - never allocates, never starts threads, never throws;
//   - the caller splits work (output rows [n0, n1) or heads [h0, h1)) across
//     threads, so a kernel must produce identical bits for any split;
//   - kernels/ref defines the exact result of every op marked EXACT below:
//     a SIMD tier must reproduce it bit for bit (tests enforce this).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

namespace lamina::kern {

// Arm tiers 1-4 (aarch64 builds), x86-64 tiers 5-7 (x86-64 builds).
enum class Tier : int {
  kRef = 0,
  kNeon = 1,
  kDotprod = 2,
  kI8mm = 3,
  kSve = 4,
  kAvx2 = 5,        // AVX2 + FMA + F16C
  kAvxVnni = 6,     // + AVX-VNNI (VPDPBUSD on 256-bit registers)
  kAvx512Vnni = 7,  // + AVX-512 F/BW/VL + AVX512-VNNI
};
/// "ref", "neon", "dotprod", "i8mm", "sve", "avx2", "avxvnni", "avx512vnni".
const char* TierName(Tier t);

// Per-token dynamically quantized activations (asymmetric int8).
// `data` is tier-defined (a tier's quantizer and its matmuls agree on it);
// `scale[m]` and `zp[m]` are EXACT (equal to kernels/ref for every tier).
struct QActs {
  void* data;    // >= QuantizeActsKernel::data_bytes(M, K) bytes, 64-byte aligned
  float* scale;  // [M]; kNonFiniteActScale for a row holding NaN or +-Inf
  float* zp;     // [M], integer-valued, in [-128, 127]
  int M;         // tokens
  int K;         // logical row length (unpadded)
};

/// QActs::scale of a non-finite token row (any NaN, +Inf or -Inf among its K
/// values): that row gets zp = 0 and every q = 0, so no non-finite value is
/// ever converted to an integer, and every matmul output of the row is this
/// NaN (q4g: acc * scale, q8c: (idot * ws) * scale) — the engine detects it.
/// The positive quiet NaN (bits 0x7fc00000, also Arm's default NaN).
inline constexpr float kNonFiniteActScale = std::numeric_limits<float>::quiet_NaN();

/// Per-token asymmetric int8 quantization (torchao choose_qparams_per_token_asymmetric
/// + quantize_per_token). EXACT. See kernels/ref/quant_acts_ref.cpp for the formula.
struct QuantizeActsKernel {
  /// Bytes of QActs::data for M rows of K values (K >= 1).
  size_t (*data_bytes)(int M, int K);
  /// x: row m at x + m*ldx, K floats (any values: a row holding NaN or +-Inf
  /// gets kNonFiniteActScale, zp 0, q 0). Quantizes rows [m0, m1) into qa
  /// (qa->M and qa->K set by the caller). 0 <= m0 <= m1 <= qa->M.
  void (*run)(const float* x, size_t ldx, int m0, int m1, QActs* qa);
};

/// y[m*ldy + n] = W(n,:) . x(m,:) for m in [0, a.M), n in [n0, n1). EXACT.
/// w: a Q4G_R4K8 (KernelSet::matmul_q4g), Q4G_R4K8_F16S (matmul_q4g_f16s) or
/// Q8C_R4K4 (matmul_q8c) packed matrix [N, K] with
/// K == a.K. Constraints: 0 <= n0 < n1 <= N, n0 % 4 == 0, (n1 % 4 == 0 || n1 == N).
struct MatmulQ4GKernel {
  void (*run)(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y, size_t ldy);
};
struct MatmulQ8CKernel {
  void (*run)(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y, size_t ldy);
};

/// Float matmul, W row-major [N, K] in f32 / bf16 / f16 (`wtype` = format::DType
/// value 0, 1 or 2). y[m*ldy + n] = W(n,:) . x(m,:). EXACT, summation order in
/// kernels/ref/matmul_float_ref.cpp. Same n0/n1 constraints as above (any n0 allowed).
struct MatmulFloatKernel {
  void (*run)(const float* x, size_t ldx, int M, const void* w, int wtype, int N, int K, int n0,
              int n1, float* y, size_t ldy);
};

/// out[i] = x[i] * (1 / sqrt(mean(x^2) + eps)) * w[i], n >= 1. out may alias x.
struct RmsNormKernel {
  void (*run)(float* out, const float* x, const float* w, int n, float eps);
};

/// RoPE on interleaved pairs (x[2j], x[2j+1]) of each of n_heads heads of
/// head_dim, in place: (a, b) -> (a*cos[j] - b*sin[j], a*sin[j] + b*cos[j]),
/// j in [0, head_dim/2). cos/sin: the position's precomputed table row.
struct RopeKernel {
  void (*run)(float* x, int n_heads, int head_dim, const float* cos, const float* sin);
};

/// gate[i] = silu(gate[i]) * up[i], silu(v) = v / (1 + exp(-v)).
struct SiluMulKernel {
  void (*run)(float* gate, const float* up, int n);
};

/// In-place softmax over n >= 1 values (max-subtracted).
struct SoftmaxKernel {
  void (*run)(float* x, int n);
};

/// Orthonormal fast Walsh–Hadamard transform in place: butterflies in natural
/// order (h = 1, 2, 4, ...: (a, b) -> (a + b, a - b)), then x *= 1/sqrt(n).
/// n a power of two.
struct HadamardKernel {
  void (*run)(float* x, int n);
};

/// kQ8: int8 with an f16 scale per (position, kv head); layout and math in
/// kernels/ref/kv_q8.h and ref::Attention (kv_stride counts bytes).
enum class KvType : int { kF32 = 0, kF16 = 1, kQ8 = 2 };

/// Score rows an attention kernel may keep at once (AttentionKernel scratch is
/// this many rows of n_pos floats). Why 8: the NEON kernel shares each K / V
/// row across up to 4 query heads of a GQA group (Llama 3.2 1B: 4 per kv head,
/// 3B: 3), and in a batch across up to 8 (token, head) rows of 8-wide heads.
inline constexpr int kAttentionScratchRows = 8;

/// Causal GQA attention of one query token over cached positions [0, n_pos).
/// q: [n_heads, head_dim] (RoPE applied). k_cache / v_cache: position p, kv head
/// h at element offset p*kv_stride + h*head_dim, of type kv_type. Computes heads
/// [h0, h1): out[h*head_dim ...] = softmax(q_h . K_{h/group} / sqrt(head_dim)) V.
/// scratch: >= kAttentionScratchRows * n_pos floats owned by the calling thread.
struct AttentionKernel {
  void (*run)(const float* q, const void* k_cache, const void* v_cache, KvType kv_type,
              size_t kv_stride, int n_pos, int n_heads, int n_kv_heads, int head_dim, int h0,
              int h1, float* scratch, float* out);
  /// The M consecutive query tokens of one pass (prefill, speculative
  /// verification): token m (q + m * ldq, out + m * ldo) attends positions
  /// [0, n_pos + m). Bit-identical to M calls of run (ref::AttentionBatch);
  /// a tier may load each K / V row once for several tokens. scratch: >=
  /// kAttentionScratchRows * (n_pos + M - 1) floats. nullptr: the caller
  /// loops over run.
  void (*run_batch)(const float* q, size_t ldq, int M, const void* k_cache, const void* v_cache,
                    KvType kv_type, size_t kv_stride, int n_pos, int n_heads, int n_kv_heads,
                    int head_dim, int h0, int h1, float* scratch, float* out, size_t ldo);
};

/// Everything the engine calls, for one tier. Members a tier does not
/// specialise point at the ref implementation.
struct KernelSet {
  Tier tier;
  QuantizeActsKernel quantize_acts;
  MatmulQ4GKernel matmul_q4g;       // Q4G_R4K8: f32 group scales
  MatmulQ4GKernel matmul_q4g_f16s;  // Q4G_R4K8_F16S: f16 group scales
  MatmulQ8CKernel matmul_q8c;
  MatmulFloatKernel matmul_float;
  RmsNormKernel rmsnorm;
  RopeKernel rope;
  SiluMulKernel silu_mul;
  SoftmaxKernel softmax;
  HadamardKernel hadamard;
  AttentionKernel attention;
};

/// The reference tier (always available, every architecture).
const KernelSet& RefKernels();

/// CPU features, read once (getauxval on Linux/aarch64; CPUID + XGETBV on
/// x86-64, where a feature counts only when the OS also saves its registers).
struct CpuFeatures {
  // aarch64
  bool neon = false, dotprod = false, i8mm = false, sve = false, sve2 = false;
  int sve_vector_bytes = 0;
  // x86-64
  bool avx2 = false, fma = false, f16c = false;
  bool avxvnni = false;  // AVX-VNNI (VEX-encoded VPDPBUSD)
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512vnni = false;
};
const CpuFeatures& DetectCpu();

/// Whether `t` can run on this CPU (and was compiled in).
bool TierAvailable(Tier t);
/// The tier "auto" picks for CPU features `f` (policy only; SelectTier also
/// checks that it was compiled in): sve if SVE + I8MM with vectors >= 256 bits,
/// else i8mm > dotprod > neon; on x86-64 (AVX2 + FMA + F16C) avx512vnni (F, BW,
/// VL, VNNI) > avxvnni > avx2; ref otherwise.
Tier AutoTier(const CpuFeatures& f);
/// Best available tier (AutoTier), or the one named by $LAMINA_KERNELS when set.
/// On an unknown or unavailable name: returns false and fills `err`.
bool SelectTier(const char* name_or_null, Tier* out, char* err, size_t err_len);
/// The KernelSet of an available tier (undefined for unavailable tiers).
const KernelSet& Kernels(Tier t);

}  // namespace lamina::kern
