// Reference elementwise / attention ops (the spec).
#include <cmath>

#include "kernels/ref/expf_ref.h"
#include "kernels/ref/fp16.h"
#include "kernels/ref/kv_q8.h"
#include "kernels/ref/ref.h"

namespace lamina::ref {

float Dot(const float* a, const float* b, int n) {
  const int n8 = n / 8 * 8;
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int k = 0; k < n8; k += 8)
    for (int j = 0; j < 8; ++j) acc[j] = std::fma(a[k + j], b[k + j], acc[j]);
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (int k = n8; k < n; ++k) s = std::fma(a[k], b[k], s);
  return s;
}

void RmsNorm(float* out, const float* x, const float* w, int n, float eps) {
  const float ss = Dot(x, x, n);
  const float inv = 1.f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (int i = 0; i < n; ++i) out[i] = (x[i] * inv) * w[i];
}

void Rope(float* x, int n_heads, int head_dim, const float* cos, const float* sin) {
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<size_t>(h) * head_dim;
    for (int j = 0; j < head_dim / 2; ++j) {
      const float a = v[2 * j], b = v[2 * j + 1];
      v[2 * j] = a * cos[j] - b * sin[j];
      v[2 * j + 1] = a * sin[j] + b * cos[j];
    }
  }
}

void SiluMul(float* gate, const float* up, int n) {
  for (int i = 0; i < n; ++i) gate[i] = SiluMulRef1(gate[i], up[i]);
}

void Softmax(float* x, int n) {
  float m = x[0];
  for (int i = 1; i < n; ++i) m = x[i] > m ? x[i] : m;
  float s[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  for (int i = 0; i < n; ++i) {
    x[i] = ExpfRef(x[i] - m);
    s[i % 8] += x[i];
  }
  const float sum = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
  const float inv = 1.f / sum;
  for (int i = 0; i < n; ++i) x[i] *= inv;
}

void Hadamard(float* x, int n) {
  for (int h = 1; h < n; h *= 2)
    for (int i = 0; i < n; i += 2 * h)
      for (int j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
  const float s = 1.f / std::sqrt(static_cast<float>(n));
  for (int i = 0; i < n; ++i) x[i] *= s;
}

namespace {

void AttentionQ8(const float* q, const void* k_cache, const void* v_cache, size_t kv_stride,
                 int n_pos, int n_heads, int n_kv_heads, int head_dim, int h0, int h1,
                 float* scratch, float* out) {
  const int group = n_heads / n_kv_heads;
  const float scale = 1.f / std::sqrt(static_cast<float>(head_dim));
  const uint8_t* kb = static_cast<const uint8_t*>(k_cache);
  const uint8_t* vb = static_cast<const uint8_t*>(v_cache);
  int8_t qq[1024];  // head_dim <= 1024 (validated by the loader)
  for (int h = h0; h < h1; ++h) {
    const int kvh = h / group;
    const size_t base = static_cast<size_t>(kvh) * head_dim;
    const float c =
        QuantizeSym8(q + static_cast<size_t>(h) * head_dim, head_dim, false, qq) * scale;
    for (int p = 0; p < n_pos; ++p) {
      const uint8_t* row = kb + static_cast<size_t>(p) * kv_stride;
      const int8_t* kq = reinterpret_cast<const int8_t*>(row) + base;
      int32_t acc = 0;
      for (int d = 0; d < head_dim; ++d) acc += static_cast<int32_t>(qq[d]) * kq[d];
      scratch[p] = static_cast<float>(acc) * (KvQ8Scale(row, n_kv_heads, head_dim, kvh) * c);
    }
    Softmax(scratch, n_pos);
    float* o = out + static_cast<size_t>(h) * head_dim;
    for (int d = 0; d < head_dim; ++d) o[d] = 0.f;
    for (int p = 0; p < n_pos; ++p) {
      const uint8_t* row = vb + static_cast<size_t>(p) * kv_stride;
      const int8_t* vq = reinterpret_cast<const int8_t*>(row) + base;
      const float w = scratch[p] * KvQ8Scale(row, n_kv_heads, head_dim, kvh);
      for (int d = 0; d < head_dim; ++d) o[d] = std::fma(w, static_cast<float>(vq[d]), o[d]);
    }
  }
}

}  // namespace

void Attention(const float* q, const void* k_cache, const void* v_cache, kern::KvType kv_type,
               size_t kv_stride, int n_pos, int n_heads, int n_kv_heads, int head_dim, int h0,
               int h1, float* scratch, float* out) {
  if (kv_type == kern::KvType::kQ8) {
    AttentionQ8(q, k_cache, v_cache, kv_stride, n_pos, n_heads, n_kv_heads, head_dim, h0, h1,
                scratch, out);
    return;
  }
  const int group = n_heads / n_kv_heads;
  const float scale = 1.f / std::sqrt(static_cast<float>(head_dim));
  float kbuf[1024];  // head_dim <= 1024 (validated by the loader)
  for (int h = h0; h < h1; ++h) {
    const int kvh = h / group;
    const float* qh = q + static_cast<size_t>(h) * head_dim;
    for (int p = 0; p < n_pos; ++p) {
      const size_t off = static_cast<size_t>(p) * kv_stride + static_cast<size_t>(kvh) * head_dim;
      const float* kp;
      if (kv_type == kern::KvType::kF32) {
        kp = static_cast<const float*>(k_cache) + off;
      } else {
        const uint16_t* k16 = static_cast<const uint16_t*>(k_cache) + off;
        for (int d = 0; d < head_dim; ++d) kbuf[d] = F16ToF32(k16[d]);
        kp = kbuf;
      }
      scratch[p] = Dot(qh, kp, head_dim) * scale;
    }
    Softmax(scratch, n_pos);
    float* o = out + static_cast<size_t>(h) * head_dim;
    for (int d = 0; d < head_dim; ++d) o[d] = 0.f;
    for (int p = 0; p < n_pos; ++p) {
      const size_t off = static_cast<size_t>(p) * kv_stride + static_cast<size_t>(kvh) * head_dim;
      const float w = scratch[p];
      if (kv_type == kern::KvType::kF32) {
        const float* vp = static_cast<const float*>(v_cache) + off;
        for (int d = 0; d < head_dim; ++d) o[d] = std::fma(w, vp[d], o[d]);
      } else {
        const uint16_t* vp = static_cast<const uint16_t*>(v_cache) + off;
        for (int d = 0; d < head_dim; ++d) o[d] = std::fma(w, F16ToF32(vp[d]), o[d]);
      }
    }
  }
}

void AttentionBatch(const float* q, size_t ldq, int M, const void* k_cache, const void* v_cache,
                    kern::KvType kv_type, size_t kv_stride, int n_pos, int n_heads, int n_kv_heads,
                    int head_dim, int h0, int h1, float* scratch, float* out, size_t ldo) {
  for (int m = 0; m < M; ++m)
    Attention(q + m * ldq, k_cache, v_cache, kv_type, kv_stride, n_pos + m, n_heads, n_kv_heads,
              head_dim, h0, h1, scratch, out + m * ldo);
}

}  // namespace lamina::ref
