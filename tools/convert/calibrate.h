// lamina-convert --calib: GPTQ with the input activations of each linear
// computed by lamina's own forward pass over calibration text.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tools/convert/quantize.h"

namespace lamina::convert {

/// Reads the UTF-8 text file `path` and tokenizes it with `tok`, BOS first
/// (when the tokenizer has one). False + *err naming the file when it cannot
/// be read, is empty, is not UTF-8 or has fewer than min_tokens tokens.
bool ReadTextTokens(const Tokenizer& tok, const std::string& path, size_t min_tokens,
                    std::vector<int32_t>* ids, std::string* err);

struct CalibOptions {
  int window = 512;       // tokens per calibration window (clamped to the model's context)
  int max_tokens = 0;     // 0: every full window of the file
  double damp = 0.01;     // GPTQ dampening, x mean diag(H)
  bool act_order = true;  // GPTQ columns by decreasing H_ii (static groups)
  int threads = 0;        // engine threads (0: all cores)
  bool quiet = false;
};

/// GPTQ of every f32 linear of `f32_model` (a .lamina written with
/// --weights f32, modified in place: each block's linears are replaced by
/// their dequantized q4 values once quantized, so later blocks see the
/// quantized earlier ones). The calibration text at `calib_path` is tokenized
/// with the model's embedded tokenizer and cut into windows that start with
/// BOS; block by block, the Hessian H = X^T X of each linear group's input
/// (q/k/v share one, gate/up share one) is accumulated over all windows.
/// Fills `plan` by tensor name. False + *err (naming the file) on a bad
/// calibration file, a model without a tokenizer, or a numerical failure.
bool CalibrateGptq(const std::string& f32_model, const std::string& calib_path,
                   const CalibOptions& o, Q4Plan* plan, std::string* err);

/// The same GPTQ on calibration tokens given as ids (`source` names them in
/// messages: a file, or the model's own samples). `ids` is cut into windows of
/// o.window tokens (clamped to the model's context); the first token of every
/// window is set to BOS when the model has one. False + *err when `ids` holds
/// less than one window or an id is out of the vocabulary.
bool CalibrateGptqIds(const std::string& f32_model, const std::vector<int32_t>& ids,
                      const std::string& source, const CalibOptions& o, Q4Plan* plan,
                      std::string* err);

}  // namespace lamina::convert
