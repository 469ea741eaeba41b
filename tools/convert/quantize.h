// lamina-convert's q4 weight quantizers: the choice of each group's scale
// (round-to-nearest or a search over candidate scales) and GPTQ.
//
// Every scale chosen here is exactly representable in IEEE f16 (the q4g
// layout with 16-bit scales stores them losslessly): a scale is chosen, rounded
// to f16, and the group is quantized with the ROUNDED scale. Values are
// symmetric int4 in [-8, 7] (the format's nibbles): w ~= scale * q.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lamina::convert {

/// How q4 groups are quantized without data.
enum class Q4Method {
  kRtn,     // scale = f16(amax / 7.5), q = round(w / scale): round-to-nearest
  kSearch,  // scale minimizing the group's (weighted) squared error (default)
};

/// Parses "rtn" | "search". False for anything else.
bool ParseQ4Method(const std::string& s, Q4Method* m);
const char* Q4MethodName(Q4Method m);

/// f16's largest finite value and smallest subnormal: the range of scales.
inline constexpr float kF16MaxScale = 65504.f;
inline constexpr float kF16MinScale = 5.9604644775390625e-8f;
/// s rounded to the nearest f16 (ties to even), its magnitude kept in
/// [kF16MinScale, kF16MaxScale] (NaN and 0 -> kF16MinScale): never 0.
float F16Scale(float s);
/// The smallest f16 >= s (s > 0; same range).
float F16ScaleUp(float s);

/// Round-to-nearest: scale = F16ScaleUp(max(amax / 7.5, FLT_EPSILON)) (rounded
/// up, so amax / scale <= 7.5 and every value is within scale / 2),
/// q = clamp(round_half_even(w / scale), -8, 7). Returns the scale.
float QuantizeGroupQ4Rtn(const float* w, int n, int8_t* q);

/// Scale search (llama.cpp make_qx_quants, with f16 scales): candidate
/// inverse scales -(8 + 0.1 i) / max, i = -9..9 (max = the value of largest
/// magnitude, which maps to about -8: the scale is negative when max > 0), each giving an integer
/// assignment whose least-squares scale is rounded to f16; plus the RTN scale. The candidate of
/// least weighted error sum_i imp_i (w_i - s q_i)^2 wins and the group is
/// requantized with its f16 scale (nearest value in [-8, 7]: never worse).
/// imp: per-element importance (nullptr: w_i^2, llama.cpp's data-free
/// choice). 1 <= n <= 32.
float QuantizeGroupQ4Search(const float* w, const float* imp, int n, int8_t* q);

/// A q4 matrix quantized ahead of time (GPTQ): values [N][K] in [-8, 7] and
/// f16-representable scales [N][ceil(K/32)].
struct Q4Matrix {
  uint64_t N = 0, K = 0;
  std::vector<int8_t> q;
  std::vector<float> scales;
};
/// Precomputed quantizations by tensor name ("blk.0.attn_q", ...).
using Q4Plan = std::map<std::string, Q4Matrix>;

/// The q4 quantization of rows [r0, r0 + n) of matrix `name` [N, K] (float
/// rows f [n][K]): from `plan` when it holds `name` (shape checked by the
/// caller that built it), else group by group with `method`.
/// q: [n][K]; sc: [n][ceil(K/32)].
void QuantizeRowsQ4(Q4Method method, const Q4Plan* plan, const std::string& name, uint64_t r0,
                    uint64_t n, uint64_t K, const float* f, int8_t* q, float* sc);

/// GPTQ (Frantar et al. 2022) of W [N][K] (row-major, replaced in place by
/// its dequantized value) given the Hessian H = sum_t x_t x_t^T [K][K]
/// (row-major, double; modified: damped, permuted). Columns are processed in
/// blocks of 128 with lazy batch updates; dampening `damp` x the mean
/// diagonal; dead inputs (H_ii = 0) get weight 0. Group scales come from
/// QuantizeGroupQ4Search with importance diag(H): in natural order from the
/// updated weights when the group starts; with act_order (columns by
/// decreasing H_ii) fixed beforehand from the unquantized weights ("static
/// groups": the file's groups are contiguous columns). Fills out (N, K, q,
/// scales). False + *err when H is not positive definite after dampening.
bool GptqQuantize(float* W, uint64_t N, uint64_t K, double* H, double damp, bool act_order,
                  Q4Matrix* out, std::string* err);

}  // namespace lamina::convert
