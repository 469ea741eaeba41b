// q4 group quantizers (RTN, scale search) and GPTQ (quantize.h).
#include "tools/convert/quantize.h"

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "kernels/ref/fp16.h"

namespace lamina::convert {

bool ParseQ4Method(const std::string& s, Q4Method* m) {
  if (s == "rtn") {
    *m = Q4Method::kRtn;
  } else if (s == "search") {
    *m = Q4Method::kSearch;
  } else {
    return false;
  }
  return true;
}

const char* Q4MethodName(Q4Method m) { return m == Q4Method::kRtn ? "rtn" : "search"; }

float F16Scale(float s) {
  const float a = std::fabs(s);
  if (!(a >= kF16MinScale)) return s < 0 ? -kF16MinScale : kF16MinScale;  // also NaN
  const float r = F16ToF32(F32ToF16(a < kF16MaxScale ? a : kF16MaxScale));
  return s < 0 ? -r : r;
}

float F16ScaleUp(float s) {
  float r = F16Scale(s);
  if (r < s && r < kF16MaxScale) r = F16ToF32(static_cast<uint16_t>(F32ToF16(r) + 1));
  return r;
}

namespace {

// Clamped to [-8, 7]; NaN (a NaN weight) -> 0 rather than UB.
inline int8_t Clamp4(float v) {
  return v >= 7.f ? 7 : v >= -8.f ? static_cast<int8_t>(v) : v < -8.f ? -8 : 0;
}
// Candidate assignment (search only): round(w * inverse scale).
inline int8_t Q4Nearest(float w, float inv) { return Clamp4(std::nearbyint(w * inv)); }
// The stored value for scale s: round_half_even(w / s) clamped to [-8, 7].
inline int8_t Q4Value(float w, float s) { return Clamp4(std::nearbyint(w / s)); }

// Quantizes with scale s (nearest value in [-8, 7]); returns the weighted
// squared error.
double QuantizeWithScale(const float* w, const float* imp, int n, float s, int8_t* q) {
  double e = 0;
  for (int i = 0; i < n; ++i) {
    q[i] = Q4Value(w[i], s);
    const double d = static_cast<double>(w[i]) - static_cast<double>(s) * q[i];
    e += (imp ? imp[i] : 1.0) * d * d;
  }
  return e;
}

}  // namespace

float QuantizeGroupQ4Rtn(const float* w, int n, int8_t* q) {
  float amax = 0;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(w[i]));
  const float s = F16ScaleUp(std::max(amax / 7.5f, FLT_EPSILON));
  QuantizeWithScale(w, nullptr, n, s, q);
  return s;
}

float QuantizeGroupQ4Search(const float* w, const float* imp, int n, int8_t* q) {
  float amax = 0, mx = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(w[i]) > amax) {
      amax = std::fabs(w[i]);
      mx = w[i];
    }
  int8_t cand[32];
  float best_s = QuantizeGroupQ4Rtn(w, n, cand);
  if (amax < FLT_EPSILON) {
    std::memcpy(q, cand, static_cast<size_t>(n));
    return best_s;
  }
  // Data-free importance: w^2 (llama.cpp's rmse_type 1): the error on large
  // weights counts more (measured on stories260K: KL 0.0785 vs 0.0812 with
  // uniform importance; docs/QUALITY.md).
  float sq[32];
  if (!imp) {
    for (int i = 0; i < n; ++i) sq[i] = w[i] * w[i];
    imp = sq;
  }
  // Each candidate is scored by the error of its own assignment l with its
  // f16 scale s, sum imp (w - s l)^2 = sum imp w^2 - 2 s sum imp w l +
  // s^2 sum imp l^2 (one pass); the final requantization with the winning
  // scale (nearest values) can only lower it.
  float sw2 = 0;
  for (int i = 0; i < n; ++i) sw2 += imp[i] * w[i] * w[i];
  double best_e = QuantizeWithScale(w, imp, n, best_s, cand);
  for (int is = -9; is <= 9; ++is) {
    const float iscale = -(8.0f + 0.1f * static_cast<float>(is)) / mx;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const float l = Q4Nearest(w[i], iscale);
      sumlx += imp[i] * w[i] * l;
      suml2 += imp[i] * l * l;
    }
    if (!(suml2 > 0)) continue;
    const float s = F16Scale(sumlx / suml2);
    const double e =
        static_cast<double>(sw2) - 2.0 * s * sumlx + static_cast<double>(s) * s * suml2;
    if (e < best_e) {
      best_e = e;
      best_s = s;
    }
  }
  QuantizeWithScale(w, nullptr, n, best_s, q);
  return best_s;
}

void QuantizeRowsQ4(Q4Method method, const Q4Plan* plan, const std::string& name, uint64_t r0,
                    uint64_t n, uint64_t K, const float* f, int8_t* q, float* sc) {
  const uint64_t G = (K + 31) / 32;
  if (plan) {
    const auto it = plan->find(name);
    if (it != plan->end()) {
      const Q4Matrix& m = it->second;
      std::memcpy(q, m.q.data() + r0 * K, n * K);
      std::memcpy(sc, m.scales.data() + r0 * G, n * G * sizeof(float));
      return;
    }
  }
  for (uint64_t i = 0; i < n; ++i)
    for (uint64_t g = 0; g < G; ++g) {
      // The last group of a K that is not a multiple of 32 is quantized over
      // its real values (= zero padding: padded zeros change no scale).
      const int len = static_cast<int>(std::min<uint64_t>(32, K - g * 32));
      const float* w = f + i * K + g * 32;
      int8_t* qq = q + i * K + g * 32;
      sc[i * G + g] = method == Q4Method::kRtn ? QuantizeGroupQ4Rtn(w, len, qq)
                                               : QuantizeGroupQ4Search(w, nullptr, len, qq);
    }
}

namespace {

using MatDR = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// L <- L^-1 for L lower triangular with a zero strict upper triangle, by
// halves: inv([A 0; B C]) = [A^-1 0; -C^-1 B A^-1  C^-1] (~n^3/3 flops, in
// matrix products; a triangular solve against the identity takes n^3).
void InvertLowerInPlace(Eigen::Ref<MatDR, 0, Eigen::OuterStride<>> L) {
  const Eigen::Index n = L.rows();
  if (n <= 64) {
    MatDR I = MatDR::Identity(n, n);
    L.triangularView<Eigen::Lower>().solveInPlace(I);
    L = I;
    return;
  }
  const Eigen::Index h = n / 2;
  InvertLowerInPlace(L.topLeftCorner(h, h));
  InvertLowerInPlace(L.bottomRightCorner(n - h, n - h));
  const MatDR Y =
      L.bottomLeftCorner(n - h, h) * L.topLeftCorner(h, h).triangularView<Eigen::Lower>();
  L.bottomLeftCorner(n - h, h).noalias() =
      -(L.bottomRightCorner(n - h, n - h).triangularView<Eigen::Lower>() * Y);
}

}  // namespace

bool GptqQuantize(float* W, uint64_t N, uint64_t K, double* Hp, double damp, bool act_order,
                  Q4Matrix* out, std::string* err) {
  using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using MatF = Eigen::MatrixXf;  // column-major: GPTQ walks columns
  const Eigen::Index n = static_cast<Eigen::Index>(N), k = static_cast<Eigen::Index>(K);
  Eigen::Map<MatD> H(Hp, k, k);
  Eigen::Map<Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> Wr(W, n, k);
  MatF Wc = Wr;
  // Dead inputs (never nonzero): their weights cannot matter; quantize them
  // to zero and keep H invertible.
  double mean = 0;
  for (Eigen::Index i = 0; i < k; ++i) {
    if (H(i, i) == 0) {
      H(i, i) = 1;
      Wc.col(i).setZero();
    }
    mean += H(i, i);
  }
  mean /= static_cast<double>(k);
  std::vector<float> imp(K);
  for (Eigen::Index i = 0; i < k; ++i) {
    H(i, i) += damp * mean;
    imp[static_cast<size_t>(i)] = static_cast<float>(H(i, i));
  }
  const uint64_t G = (K + 31) / 32;
  out->N = N;
  out->K = K;
  out->q.assign(N * K, 0);
  out->scales.assign(N * G, 0.f);
  std::vector<float> gw(32);
  int8_t gq[32];
  // Scales of group g of every row, from the weights Wm(:, c0 .. c0 + 31).
  auto group_scales = [&](const MatF& Wm, Eigen::Index c0, uint64_t g) {
    const int len = static_cast<int>(std::min<uint64_t>(32, K - 32 * g));
    for (Eigen::Index r = 0; r < n; ++r) {
      for (int j = 0; j < len; ++j) gw[static_cast<size_t>(j)] = Wm(r, c0 + j);
      out->scales[static_cast<uint64_t>(r) * G + g] =
          QuantizeGroupQ4Search(gw.data(), imp.data() + 32 * g, len, gq);
    }
  };
  // perm[j]: the original column processed j-th. Act-order (static groups):
  // columns by decreasing H_ii, with every group's scales fixed beforehand
  // from the unquantized weights (the file's groups are contiguous columns).
  std::vector<Eigen::Index> perm(K);
  for (Eigen::Index i = 0; i < k; ++i) perm[static_cast<size_t>(i)] = i;
  if (act_order) {
    for (uint64_t g = 0; g < G; ++g) group_scales(Wc, static_cast<Eigen::Index>(32 * g), g);
    std::stable_sort(perm.begin(), perm.end(),
                     [&](Eigen::Index a, Eigen::Index b) { return H(a, a) > H(b, b); });
    MatD Hp2(k, k);
    for (Eigen::Index i = 0; i < k; ++i)
      for (Eigen::Index j = 0; j < k; ++j) Hp2(i, j) = H(perm[i], perm[j]);
    H = Hp2;
    MatF Wp(n, k);
    for (Eigen::Index j = 0; j < k; ++j) Wp.col(j) = Wc.col(perm[j]);
    Wc = Wp;
  }
  // U: upper Cholesky factor of H^-1 (H^-1 = U^T U), GPTQ's Hinv. With J the
  // reversal permutation and J H J = L L^T: H^-1 = J L^-T L^-1 J = U^T U for
  // U = J L^-1 J (upper, positive diagonal: the factor). One Cholesky and one
  // triangular inverse, in place in H: ~2/3 k^3 flops, where inverting H and
  // factoring the inverse took ~8/3 k^3 (2.5 min of a 1B ffn_down's solve).
  H.reverseInPlace();
  Eigen::LLT<Eigen::Ref<MatD>> llt(H);
  if (llt.info() != Eigen::Success) {
    *err = "GPTQ: the Hessian is not positive definite (Cholesky failed)";
    return false;
  }
  H.triangularView<Eigen::StrictlyUpper>().setZero();
  InvertLowerInPlace(H);
  const MatF U = H.reverse().cast<float>();

  constexpr Eigen::Index kBlock = 128;  // a multiple of the group size
  for (Eigen::Index i1 = 0; i1 < k; i1 += kBlock) {
    const Eigen::Index cnt = std::min(kBlock, k - i1);
    MatF W1 = Wc.middleCols(i1, cnt);
    MatF Err1(n, cnt);
    for (Eigen::Index i = 0; i < cnt; ++i) {
      const Eigen::Index col = i1 + i;  // in processing order
      const Eigen::Index oc = perm[static_cast<size_t>(col)];
      const uint64_t g = static_cast<uint64_t>(oc) / 32;
      // In natural order a group's scales come from its updated weights when
      // the group starts (it lies inside this block: 128 % 32 == 0).
      if (!act_order && col % 32 == 0) group_scales(W1, i, g);
      const float d = U(col, col);
      for (Eigen::Index r = 0; r < n; ++r) {
        const float s = out->scales[static_cast<uint64_t>(r) * G + g];
        const float w = W1(r, i);
        const int8_t qv = Q4Value(w, s);
        out->q[static_cast<uint64_t>(r) * K + static_cast<uint64_t>(oc)] = qv;
        const float deq = s * static_cast<float>(qv);
        Err1(r, i) = (w - deq) / d;
        W1(r, i) = deq;
      }
      const Eigen::Index rest = cnt - i - 1;
      if (rest > 0) W1.rightCols(rest).noalias() -= Err1.col(i) * U.row(col).segment(col + 1, rest);
    }
    Wc.middleCols(i1, cnt) = W1;
    if (i1 + cnt < k)
      Wc.rightCols(k - i1 - cnt).noalias() -= Err1 * U.block(i1, i1 + cnt, cnt, k - i1 - cnt);
  }
  for (Eigen::Index j = 0; j < k; ++j) Wr.col(perm[j]) = Wc.col(j);  // the dequantized weights
  return true;
}

}  // namespace lamina::convert
