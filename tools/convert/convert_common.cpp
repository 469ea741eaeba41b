// Shared converter helpers: float tensor emission by weight scheme, the HF
// q/k permutation, progress and summary.

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>

#include "kernels/ref/fp16.h"
#include "loader/pack.h"
#include "tokenizer/tokenizer.h"
#include "tools/convert/convert.h"
#include "tools/convert/convert_util.h"
#include "tools/convert/quantize.h"
#include "tools/import/tokenizer_import.h"

namespace lamina::convert {

using format::DType;
using format::Layout;

namespace {
using format::DTypeName;
// Rows per chunk: bounded temporary memory (~16 MiB of floats for K = 8192).
uint64_t ChunkRows(uint64_t K) {
  uint64_t r = (uint64_t{4} << 20) / std::max<uint64_t>(K, 1);
  r = std::max<uint64_t>(4, r / 4 * 4);
  return r;
}
// Rows per chunk for an [N, K] matrix: ChunkRows(K), but never more than the
// matrix (rounded up to the 4-row blocks), so a tiny tensor costs a tiny
// scratch (it was ~16 MiB zeroed per matrix whatever its size).
uint64_t ChunkRowsFor(uint64_t N, uint64_t K) {
  return std::min(ChunkRows(K), format::RoundUp(N, 4));
}
// Non-finite weights are refused: they would quantize to garbage (and a NaN
// activation later). False + *err naming the tensor and the first bad
// (row, col) of rows [r0, r0 + n) held in v (n * K floats).
bool CheckFinite(const std::string& name, const float* v, uint64_t r0, uint64_t n, uint64_t K,
                 std::string* err) {
  for (uint64_t i = 0; i < n * K; ++i)
    if (!std::isfinite(v[i])) {
      *err = "tensor " + name + ": " + (v[i] != v[i] ? "NaN" : "Inf") + " at [" +
             std::to_string(r0 + i / K) + ", " + std::to_string(i % K) +
             "] (non-finite weights cannot be converted; the checkpoint is corrupt)";
      return false;
    }
  return true;
}
// Runs fn(b0, b1) over [0, n_blocks). Each row block is independent, so
// this is the place to split the work across threads; it runs inline for now:
// spawning threads per chunk hung under qemu-aarch64 (the test emulator) and
// gained only ~12% on the 2-core host.
void ParallelBlocks(uint64_t n_blocks, uint64_t K,
                    const std::function<void(uint64_t, uint64_t)>& fn) {
  (void)K;
  fn(0, n_blocks);
}
}  // namespace

namespace {
// "q8" | "q4" | "bf16" | "f32" -> the file type of an output layer / embedding.
bool ParseRowType(const std::string& flag, const std::string& s, DType* dtype, std::string* err) {
  if (s == "q8") {
    *dtype = DType::kQ8C;
  } else if (s == "q4") {
    *dtype = DType::kQ4G;
  } else if (s == "bf16") {
    *dtype = DType::kBF16;
  } else if (s == "f32") {
    *dtype = DType::kF32;
  } else {
    *err = "unknown " + flag + " type '" + s + "' (expected q8, q4, bf16 or f32)";
    return false;
  }
  return true;
}
}  // namespace

bool TypeFor(Role role, const ConvertOptions& opts, DType* dtype, std::string* err) {
  const std::string& s = opts.weights;
  if (s != "q4" && s != "q8" && s != "bf16" && s != "f32") {
    *err = "unknown weight scheme '" + s + "' (expected q4, q8, bf16 or f32)";
    return false;
  }
  if (opts.q4_scales != "f16" && opts.q4_scales != "f32") {
    *err = "unknown --q4-scales '" + opts.q4_scales + "' (expected f16 or f32)";
    return false;
  }
  // --output / --embedding are checked whatever the role, so a bad name is an
  // error even when the tensor it names is absent (tied models).
  DType parsed;
  if (!opts.output.empty() && !ParseRowType("--output", opts.output, &parsed, err)) return false;
  if (!opts.embedding.empty() && !ParseRowType("--embedding", opts.embedding, &parsed, err))
    return false;
  if (s == "q4" && opts.group_size != 32) {
    *err = "--group-size " + std::to_string(opts.group_size) +
           " is not supported (the q4g kernels use groups of 32)";
    return false;
  }
  switch (role) {
    case Role::kNorm:
    case Role::kLora:
      *dtype = DType::kF32;
      return true;
    case Role::kLinear:
      *dtype = s == "q4"     ? DType::kQ4G
               : s == "q8"   ? DType::kQ8C
               : s == "bf16" ? DType::kBF16
                             : DType::kF32;
      return true;
    case Role::kEmbedding:
    case Role::kOutput: {
      const std::string& o = role == Role::kOutput ? opts.output : opts.embedding;
      if (!o.empty())
        return ParseRowType(role == Role::kOutput ? "--output" : "--embedding", o, dtype, err);
      *dtype = (s == "q4" || s == "q8") ? DType::kQ8C : s == "bf16" ? DType::kBF16 : DType::kF32;
      return true;
    }
  }
  *err = "unknown tensor role";
  return false;
}

bool OutputUntied(const ConvertOptions& opts) {
  DType o, e;
  std::string err;
  return TypeFor(Role::kOutput, opts, &o, &err) && TypeFor(Role::kEmbedding, opts, &e, &err) &&
         o != e;
}

Layout Q4Layout(const ConvertOptions& opts) {
  return opts.q4_scales == "f32" ? Layout::kQ4G_R4K8 : Layout::kQ4G_R4K8_F16S;
}

void Stats::Add(const std::string& name, DType dtype, const std::vector<uint64_t>& shape) {
  uint64_t n = 1;
  for (auto d : shape) n *= d;
  params_ += n;
  ++count_[static_cast<int>(dtype)];
  ++done_;
  if (quiet_) return;
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? " x " : "") + std::to_string(shape[i]);
  // On a terminal the progress line is rewritten in place; in a log, one line
  // per tensor.
  const bool tty = ::isatty(2);
  std::fprintf(stderr, "%s[%4zu/%4zu] %-28s %-5s [%s]%s", tty ? "\r\033[K" : "", done_,
               total_ ? total_ : done_, name.c_str(), DTypeName(dtype), s.c_str(), tty ? "" : "\n");
  if (tty && done_ == total_) std::fputc('\n', stderr);
}

void Stats::Summary(const std::string& out, uint64_t file_size) const {
  if (quiet_) return;
  std::string counts;
  for (int i = 0; i < 5; ++i)
    if (count_[i])
      counts += (counts.empty() ? "" : ", ") + std::to_string(count_[i]) + " " +
                DTypeName(static_cast<DType>(i));
  std::fprintf(stderr, "wrote %s: %.3f M parameters, %.2f MiB, %.2f bits/weight; tensors: %s\n",
               out.c_str(), static_cast<double>(params_) / 1e6,
               static_cast<double>(file_size) / (1024.0 * 1024.0),
               params_ ? static_cast<double>(file_size) * 8.0 / static_cast<double>(params_) : 0.0,
               counts.c_str());
}

void Stats::Warn(const std::string& msg) const {
  std::fprintf(stderr, "warning: %s\n", msg.c_str());
}

bool EmitVector(ModelWriter& w, Stats* stats, const std::string& name, const float* data,
                uint64_t n, std::string* err) {
  if (!CheckFinite(name, data, 0, 1, n, err)) return false;
  if (!w.AddTensor(name, DType::kF32, Layout::kRowMajor, {n}, 0, 0, data, n * 4, err)) return false;
  if (stats) stats->Add(name, DType::kF32, {n});
  return true;
}

bool EmitMatrix(ModelWriter& w, Stats* stats, const std::string& name, Role role, uint64_t N,
                uint64_t K, const RowFn& rows, const ConvertOptions& opts, std::string* err,
                uint32_t tensor_flags) {
  DType dt;
  if (!TypeFor(role, opts, &dt, err)) return false;
  if (N == 0 || K == 0 || N > 0x7fffffff || K > 0x7fffffff) {
    *err = "tensor " + name + ": bad shape [" + std::to_string(N) + ", " + std::to_string(K) + "]";
    return false;
  }
  const std::vector<uint64_t> shape = {N, K};
  const uint64_t chunk = ChunkRowsFor(N, K);  // a multiple of 4
  std::vector<float> f(chunk * K);
  std::vector<uint8_t> out;
  Layout layout = Layout::kRowMajor;
  uint32_t group = 0;
  const int Ki = static_cast<int>(K);
  switch (dt) {
    case DType::kF32: {
      out.resize(N * K * 4);
      for (uint64_t r = 0; r < N; r += chunk) {
        const uint64_t n = std::min(chunk, N - r);
        rows(r, n, reinterpret_cast<float*>(out.data()) + r * K);
        if (!CheckFinite(name, reinterpret_cast<const float*>(out.data()) + r * K, r, n, K, err))
          return false;
      }
      break;
    }
    case DType::kBF16:
    case DType::kF16: {
      out.resize(N * K * 2);
      for (uint64_t r = 0; r < N; r += chunk) {
        const uint64_t n = std::min(chunk, N - r);
        rows(r, n, f.data());
        if (!CheckFinite(name, f.data(), r, n, K, err)) return false;
        for (uint64_t i = 0; i < n * K; ++i) {
          const uint16_t h = dt == DType::kBF16 ? F32ToBF16(f[i]) : F32ToF16(f[i]);
          std::memcpy(out.data() + (r * K + i) * 2, &h, 2);
        }
      }
      break;
    }
    case DType::kQ8C: {
      layout = Layout::kQ8C_R4K4;
      out.resize(pack::Q8CBytes(static_cast<int>(N), Ki));
      const size_t bb = format::kQ8BlockBytes(format::RoundUp(K, 32));
      std::vector<int8_t> q(chunk * K);
      std::vector<float> sc(chunk);
      for (uint64_t r = 0; r < N; r += chunk) {
        const uint64_t n = std::min(chunk, N - r);  // chunk is a multiple of 4
        rows(r, n, f.data());
        if (!CheckFinite(name, f.data(), r, n, K, err)) return false;
        ParallelBlocks((n + 3) / 4, K, [&](uint64_t b0, uint64_t b1) {
          for (uint64_t b = 4 * b0; b < std::min(n, 4 * b1); b += 4) {
            const uint64_t nb = std::min<uint64_t>(4, n - b);
            for (uint64_t i = b; i < b + nb; ++i)
              sc[i] = pack::QuantizeRowQ8(&f[i * K], Ki, &q[i * K]);
            pack::PackQ8C(&q[b * K], &sc[b], static_cast<int>(nb), Ki,
                          out.data() + (r + b) / 4 * bb);
          }
        });
      }
      break;
    }
    case DType::kQ4G: {
      // The default layout has f16 scales: every q4 quantizer picks
      // f16-representable scales (tools/convert/quantize.h), so packing is exact.
      layout = Q4Layout(opts);
      const bool f16s = layout == Layout::kQ4G_R4K8_F16S;
      group = static_cast<uint32_t>(format::kQ4Group);
      out.resize(f16s ? pack::Q4GF16SBytes(static_cast<int>(N), Ki)
                      : pack::Q4GBytes(static_cast<int>(N), Ki));
      const uint64_t Kp = format::RoundUp(K, 32);
      const size_t bb = f16s ? format::kQ4F16SBlockBytes(Kp) : format::kQ4BlockBytes(Kp);
      bool packed_ok = true;
      const uint64_t G = (K + 31) / 32;
      std::vector<int8_t> q(chunk * K);
      std::vector<float> sc(chunk * G);
      for (uint64_t r = 0; r < N; r += chunk) {
        const uint64_t n = std::min(chunk, N - r);
        rows(r, n, f.data());
        if (!CheckFinite(name, f.data(), r, n, K, err)) return false;
        ParallelBlocks((n + 3) / 4, K, [&](uint64_t b0, uint64_t b1) {
          for (uint64_t b = 4 * b0; b < std::min(n, 4 * b1); b += 4) {
            const uint64_t nb = std::min<uint64_t>(4, n - b);
            // Values and f16-representable scales: tools/convert/quantize.h.
            QuantizeRowsQ4(opts.q4_method, opts.q4_plan, name, r + b, nb, K, &f[b * K], &q[b * K],
                           &sc[b * G]);
            uint8_t* dst = out.data() + (r + b) / 4 * bb;
            if (!f16s)
              pack::PackQ4G(&q[b * K], &sc[b * G], static_cast<int>(nb), Ki, dst);
            else if (!pack::PackQ4GF16S(&q[b * K], &sc[b * G], static_cast<int>(nb), Ki, dst))
              packed_ok = false;  // only a NaN scale can get here
          }
        });
      }
      if (!packed_ok) {
        *err = "tensor " + name + ": a group scale is not finite (NaN or infinite weights?)";
        return false;
      }
      break;
    }
  }
  if (!w.AddTensor(name, dt, layout, shape, group, tensor_flags, out.data(), out.size(), err))
    return false;
  if (stats) stats->Add(name, dt, shape);
  return true;
}

bool EmitFloatTensor(ModelWriter& w, const std::string& name, Role role, const float* data,
                     const std::vector<uint64_t>& shape, const ConvertOptions& opts,
                     std::string* err, uint32_t tensor_flags) {
  if (shape.size() == 1 && (role == Role::kNorm || role == Role::kLora)) {
    if (tensor_flags) {
      *err = "tensor " + name + ": flags on a vector";
      return false;
    }
    return EmitVector(w, nullptr, name, data, shape[0], err);
  }
  if (shape.size() != 2) {
    *err = "tensor " + name + ": expected a matrix";
    return false;
  }
  const uint64_t K = shape[1];
  return EmitMatrix(
      w, nullptr, name, role, shape[0], K,
      [&](uint64_t r0, uint64_t n, float* out) {
        std::memcpy(out, data + r0 * K, n * K * sizeof(float));
      },
      opts, err, tensor_flags);
}

void PermuteRotateHalfToInterleaved(const void* src, void* dst, int n_heads, int head_dim,
                                    int64_t row_bytes) {
  // HF row (h, t*hd/2 + j) holds Meta row (h, 2j + t).
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  const int half = head_dim / 2;
  for (int h = 0; h < n_heads; ++h)
    for (int j = 0; j < half; ++j)
      for (int t = 0; t < 2; ++t) {
        const int64_t dst_row = static_cast<int64_t>(h) * head_dim + 2 * j + t;
        const int64_t src_row = static_cast<int64_t>(h) * head_dim + t * half + j;
        std::memcpy(d + dst_row * row_bytes, s + src_row * row_bytes,
                    static_cast<size_t>(row_bytes));
      }
}

std::string DirName(const std::string& path) {
  const size_t s = path.rfind('/');
  if (s == std::string::npos) return ".";
  if (s == 0) return "/";
  return path.substr(0, s);
}

bool IsFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool EmbedTokenizerFile(ModelWriter& w, const std::string& path, format::HParams* hp, bool keep_ids,
                        std::string* err) {
  std::string terr;
  auto tok = TokenizerFromFile(path, &terr);
  if (!tok) {
    *err = terr.empty() ? path + ": cannot load tokenizer" : terr;
    return false;
  }
  if (tok->vocab_size() <= 0 || static_cast<uint32_t>(tok->vocab_size()) > hp->vocab_size) {
    *err = path + ": tokenizer has " + std::to_string(tok->vocab_size()) +
           " tokens, more than the model's vocab_size " + std::to_string(hp->vocab_size);
    return false;
  }
  if (!keep_ids) {
    if (tok->bos_id() >= 0) hp->bos_id = static_cast<uint32_t>(tok->bos_id());
    if (tok->eos_id() >= 0) hp->eos_id = static_cast<uint32_t>(tok->eos_id());
    const auto stops = tok->stop_ids();
    hp->n_stop_ids = 0;
    for (int32_t s : stops)
      if (s >= 0 && hp->n_stop_ids < 8) hp->stop_ids[hp->n_stop_ids++] = static_cast<uint32_t>(s);
  }
  w.SetTokenizer(tok->Serialize());
  return true;
}

}  // namespace lamina::convert
