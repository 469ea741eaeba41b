// RoPE tables: cos/sin of position * freq_j for j in [0, head_dim/2), with
// Llama 3 frequency scaling. Computed in double, stored as f32.
#pragma once

#include <vector>

#include "engine/config.h"

namespace lamina::engine {

/// The head_dim/2 inverse frequencies (double), llama3-scaled when c.rope_llama3:
///   freq_j = 1 / theta^(2j / head_dim); wavelen = 2*pi / freq_j;
///   wavelen < orig/high: keep; wavelen > orig/low: freq/factor;
///   else smooth = (orig/wavelen - low) / (high - low),
///        freq = (1 - smooth) * freq / factor + smooth * freq.
std::vector<double> RopeFrequencies(const Config& c);

/// cos/sin tables [n_pos][head_dim/2]: angle = pos * freq_j (double).
void RopeTables(const Config& c, int n_pos, std::vector<float>* cos_t, std::vector<float>* sin_t);

}  // namespace lamina::engine
