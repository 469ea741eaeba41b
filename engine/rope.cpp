#include "engine/rope.h"

#include <cmath>

namespace lamina::engine {

std::vector<double> RopeFrequencies(const Config& c) {
  const int half = c.head_dim / 2;
  std::vector<double> f(half);
  const double kPi = 3.14159265358979323846;
  for (int j = 0; j < half; ++j) {
    double freq = 1.0 / std::pow(static_cast<double>(c.rope_theta),
                                 static_cast<double>(2 * j) / static_cast<double>(c.head_dim));
    if (c.rope_llama3) {
      const double orig = c.rope_orig_max_pos, factor = c.rope_factor;
      const double low = c.rope_low, high = c.rope_high;
      const double wavelen = 2.0 * kPi / freq;
      if (wavelen < orig / high) {
        // high frequency: unchanged
      } else if (wavelen > orig / low) {
        freq = freq / factor;
      } else {
        const double smooth = (orig / wavelen - low) / (high - low);
        freq = (1.0 - smooth) * freq / factor + smooth * freq;
      }
    }
    f[j] = freq;
  }
  return f;
}

void RopeTables(const Config& c, int n_pos, std::vector<float>* cos_t, std::vector<float>* sin_t) {
  const std::vector<double> f = RopeFrequencies(c);
  const size_t half = f.size();
  cos_t->assign(static_cast<size_t>(n_pos) * half, 0.f);
  sin_t->assign(static_cast<size_t>(n_pos) * half, 0.f);
  for (int p = 0; p < n_pos; ++p)
    for (size_t j = 0; j < half; ++j) {
      const double a = static_cast<double>(p) * f[j];
      (*cos_t)[p * half + j] = static_cast<float>(std::cos(a));
      (*sin_t)[p * half + j] = static_cast<float>(std::sin(a));
    }
}

}  // namespace lamina::engine
