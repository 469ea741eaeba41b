// Hadamard rotations fused into a float model (rotate.h).
#include "tools/convert/rotate.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>

#include "kernels/ref/ref.h"
#include "loader/model_file.h"
#include "tools/convert/convert_util.h"
#include "tools/convert/gguf_reader.h"
#include "tools/import/json.h"

namespace lamina::convert {

using format::DType;

bool ParseRotations(const std::string& s, Rotations* r, std::string* err) {
  *r = Rotations{};
  if (s == "none") return true;
  if (s == "all") {
    r->r1 = r->r2 = r->r4 = true;
    return true;
  }
  size_t p = 0;
  while (p <= s.size()) {
    const size_t c = std::min(s.find(',', p), s.size());
    const std::string t = s.substr(p, c - p);
    if (t == "r1") {
      r->r1 = true;
    } else if (t == "r2") {
      r->r2 = true;
    } else if (t == "r4") {
      r->r4 = true;
    } else {
      *err = "--rotate: unknown rotation '" + t + "' (expected none, all or a list of r1, r2, r4)";
      return false;
    }
    p = c + 1;
  }
  return true;
}

std::string RotationsTag(const Rotations& r) {
  if (!r.any()) return "";
  return std::string("r") + (r.r1 ? "1" : "") + (r.r2 ? "2" : "") + (r.r4 ? "4" : "");
}

namespace {
uint64_t SplitMix(uint64_t* s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
}  // namespace

BlockHadamard::BlockHadamard(int n, uint64_t seed) : n_(n), b_(n & -n) {
  if (seed) {
    sign_.resize(static_cast<size_t>(n));
    uint64_t s = seed;
    for (float& v : sign_) v = (SplitMix(&s) >> 63) ? -1.0f : 1.0f;
  }
}

void BlockHadamard::Apply(float* x) const {
  if (!sign_.empty())
    for (int i = 0; i < n_; ++i) x[i] *= sign_[static_cast<size_t>(i)];
  // Each block: the engine's own transform (natural-order butterflies,
  // x 1/sqrt(b)), so R4 is applied to the weights as the engine applies it
  // to the activations.
  for (int o = 0; o < n_; o += b_) ref::Hadamard(x + o, b_);
}

bool SupportsR4(uint32_t ffn_dim) { return ffn_dim != 0 && (ffn_dim & (ffn_dim - 1)) == 0; }

namespace {

// Row segments of length R.n(): row[s*n .. (s+1)*n) <- row[...] R.
void RotateRowSegments(float* row, uint64_t K, const BlockHadamard& R, float* tmp) {
  const uint64_t n = static_cast<uint64_t>(R.n());
  for (uint64_t o = 0; o < K; o += n) {
    for (uint64_t i = 0; i < n; ++i) tmp[i] = row[o + i];
    R.Apply(tmp);
    for (uint64_t i = 0; i < n; ++i) row[o + i] = tmp[i];
  }
}

// W [N][K] <- blockdiag(R^T, ...) W: every column's segments of length R.n()
// (a column segment c is replaced by c R, i.e. the rows are mixed).
void RotateColumnSegments(float* W, uint64_t N, uint64_t K, const BlockHadamard& R, float* tmp) {
  const uint64_t n = static_cast<uint64_t>(R.n());
  for (uint64_t o = 0; o < N; o += n)
    for (uint64_t k = 0; k < K; ++k) {
      for (uint64_t i = 0; i < n; ++i) tmp[i] = W[(o + i) * K + k];
      R.Apply(tmp);
      for (uint64_t i = 0; i < n; ++i) W[(o + i) * K + k] = tmp[i];
    }
}

// Drops the mapped pages of a tensor already consumed, so resident memory
// stays at about one tensor (the source f32 model of a 1B is ~5 GB).
void Release(const ModelFile& m, const format::TensorEntry& t) {
  const long page = ::sysconf(_SC_PAGESIZE);
  const auto p = reinterpret_cast<uintptr_t>(m.Data(t));
  const uintptr_t a = p / static_cast<uintptr_t>(page) * static_cast<uintptr_t>(page);
  ::madvise(reinterpret_cast<void*>(a), t.size + (p - a), MADV_DONTNEED);
}

uint64_t R1Seed(uint64_t seed) { return seed * 0x9E3779B97F4A7C15ull + 0x1001; }
uint64_t R2Seed(uint64_t seed, uint64_t layer) {
  return seed * 0xD1B54A32D192ED03ull + 0x2002 + layer;
}

bool Fail(std::string* err, const std::string& msg) {
  *err = msg;
  return false;
}

}  // namespace

bool InputMayTakeR4(const std::string& input) {
  struct stat st;
  if (::stat(input.c_str(), &st) != 0) return true;  // the converter says what is wrong
  std::string err;
  int64_t ffn = 0;
  if (S_ISDIR(st.st_mode)) {  // Hugging Face
    json::Value cfg;
    const json::Value* v = nullptr;
    if (!json::ParseFile(input + "/config.json", &cfg, &err) ||
        !(v = cfg.Find("intermediate_size")) || !v->as_int64(&ffn))
      return true;
  } else {
    std::ifstream f(input, std::ios::binary);
    int32_t h[7] = {};
    if (!f.read(reinterpret_cast<char*>(h), sizeof(h))) return true;
    if (std::memcmp(h, "GGUF", 4) == 0) {
      gguf::File g;
      if (!g.Open(input, &err)) return true;
      for (const gguf::TensorInfo& t : g.tensors())
        if (t.type != gguf::kGgmlF32 && t.type != gguf::kGgmlF16 && t.type != gguf::kGgmlBF16)
          return false;  // pre-quantized: kept as it is
      const gguf::Value* v = g.Find("llama.feed_forward_length");
      if (!v || !v->is_int()) return true;
      ffn = v->i;
    } else {
      ffn = h[1];  // llama2.c: dim, hidden_dim, ...
    }
  }
  return ffn <= 0 || ffn > UINT32_MAX || SupportsR4(static_cast<uint32_t>(ffn));
}

bool IsPlainF32Model(const std::string& src, std::string* why) {
  std::string err;
  auto m = ModelFile::Open(src, LoadOptions{}, &err);
  if (!m) {
    *why = err;
    return false;
  }
  if (m->hparams().lora_rank) {
    *why = "the model has LoRA adaptors";
    return false;
  }
  for (size_t i = 0; i < m->n_tensors(); ++i) {
    const auto& t = m->tensor(i);
    if (t.dtype != static_cast<uint32_t>(DType::kF32)) {
      *why = std::string("tensor ") + t.name + " is " +
             format::DTypeName(static_cast<DType>(t.dtype)) + " (pre-quantized), not float";
      return false;
    }
  }
  return true;
}

bool RewriteF32Model(const std::string& src, const std::string& dst, const ConvertOptions& o,
                     const Rotations& rot, uint64_t seed, const std::string& scheme,
                     std::string* err) {
  std::string why;
  if (!IsPlainF32Model(src, &why)) return Fail(err, src + ": cannot rewrite: " + why);
  auto m = ModelFile::Open(src, LoadOptions{}, err);
  if (!m) return false;
  const format::HParams& hp = m->hparams();
  const uint64_t d = hp.dim, hd = hp.head_dim, ff = hp.ffn_dim;
  if (rot.r4 && !SupportsR4(hp.ffn_dim))
    return Fail(err,
                "--rotate r4: the engine's online Hadamard needs a power-of-two ffn_dim, got " +
                    std::to_string(hp.ffn_dim));
  if (rot.r2 && (hd == 0 || d != uint64_t{hp.n_heads} * hd))
    return Fail(err, "--rotate r2: dim != n_heads * head_dim");
  const BlockHadamard R1(static_cast<int>(d), R1Seed(seed));
  const BlockHadamard R4(static_cast<int>(ff), 0);  // the engine's H: no signs
  std::vector<float> tmp(std::max({d, ff, hd, uint64_t{1}}));

  auto vec = [&](const std::string& name) -> const float* {
    const format::TensorEntry* t = m->Find(name);
    return t && t->n_dims == 1 && t->shape[0] == d ? reinterpret_cast<const float*>(m->Data(*t))
                                                   : nullptr;
  };
  if (rot.r1 && !vec("output_norm"))
    return Fail(err, src + ": output_norm missing or of the wrong width");
  const bool tied = m->tied_embeddings();
  // R1 breaks the tie (the output layer also absorbs the final norm gain);
  // so do different output / embedding types.
  const bool untie = tied && (rot.r1 || OutputUntied(o));

  ModelWriter w;
  if (!w.Open(dst, err)) return false;
  Stats st(o.quiet);
  st.Begin(m->n_tensors() + (untie ? 1 : 0));
  if (m->tokenizer_size())
    w.SetTokenizer(
        std::vector<uint8_t>(m->tokenizer_data(), m->tokenizer_data() + m->tokenizer_size()));
  const std::vector<float> ones(d, 1.0f);

  // Emits [N, K] `name` from float rows `f`, after: the input gain `g`
  // (columns scaled, nullable), row-vector rotations of the inputs `in_rot`
  // (segments of its width, nullable) and of the outputs `out_rot`
  // (column segments, nullable; needs the whole matrix), then R4 on inputs.
  auto emit = [&](const std::string& name, Role role, const float* f, uint64_t N, uint64_t K,
                  const float* g, const BlockHadamard* in_seg, const BlockHadamard* in_full,
                  const BlockHadamard* out_seg, const BlockHadamard* out_full,
                  uint32_t flags) -> bool {
    auto row_fix = [&](float* row) {
      if (g)
        for (uint64_t k = 0; k < K; ++k) row[k] *= g[k];
      if (in_seg) RotateRowSegments(row, K, *in_seg, tmp.data());
      if (in_full) RotateRowSegments(row, K, *in_full, tmp.data());
    };
    if (!out_seg && !out_full)
      return EmitMatrix(
          w, &st, name, role, N, K,
          [&](uint64_t r0, uint64_t n, float* out) {
            std::memcpy(out, f + r0 * K, n * K * sizeof(float));
            for (uint64_t r = 0; r < n; ++r) row_fix(out + r * K);
          },
          o, err, flags);
    std::vector<float> W(f, f + N * K);
    for (uint64_t r = 0; r < N; ++r) row_fix(&W[r * K]);
    if (out_seg) RotateColumnSegments(W.data(), N, K, *out_seg, tmp.data());
    if (out_full) RotateColumnSegments(W.data(), N, K, *out_full, tmp.data());
    return EmitMatrix(
        w, &st, name, role, N, K,
        [&](uint64_t r0, uint64_t n, float* out) {
          std::memcpy(out, &W[r0 * K], n * K * sizeof(float));
        },
        o, err, flags);
  };

  const BlockHadamard* r1 = rot.r1 ? &R1 : nullptr;
  const float* embd = nullptr;
  uint64_t embd_rows = 0;
  for (size_t i = 0; i < m->n_tensors(); ++i) {
    const format::TensorEntry& t = m->tensor(i);
    const std::string name = t.name;
    const auto* f = reinterpret_cast<const float*>(m->Data(t));
    if (t.n_dims == 1) {
      auto ends = [&name](const std::string& e) {
        return name.size() >= e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0;
      };
      const bool norm = name == "output_norm" || ends(".attn_norm") || ends(".ffn_norm");
      if (!EmitVector(w, &st, name, rot.r1 && norm ? ones.data() : f, t.shape[0], err))
        return false;
      continue;
    }
    if (t.n_dims != 2) return Fail(err, src + ": tensor " + name + ": expected a matrix");
    const uint64_t N = t.shape[0], K = t.shape[1];
    uint32_t flags = t.flags;
    bool ok;
    if (name == "tok_embd") {
      embd = f;
      embd_rows = N;
      ok = emit(name, Role::kEmbedding, f, N, K, nullptr, nullptr, r1, nullptr, nullptr, flags);
    } else if (name == "output") {
      ok = emit(name, Role::kOutput, f, N, K, rot.r1 ? vec("output_norm") : nullptr, nullptr, r1,
                nullptr, nullptr, flags);
    } else if (name.rfind("blk.", 0) == 0) {
      const size_t dot = name.find('.', 4);
      const std::string blk = name.substr(0, dot + 1), lin = name.substr(dot + 1);
      const uint64_t layer = std::strtoull(name.c_str() + 4, nullptr, 10);
      const BlockHadamard R2(static_cast<int>(hd), R2Seed(seed, layer));
      const BlockHadamard* r2 = rot.r2 ? &R2 : nullptr;
      const float* g_attn = rot.r1 ? vec(blk + "attn_norm") : nullptr;
      const float* g_ffn = rot.r1 ? vec(blk + "ffn_norm") : nullptr;
      if (rot.r1 && (!g_attn || !g_ffn))
        return Fail(err, src + ": " + blk + "attn_norm/ffn_norm missing or of the wrong width");
      if (lin == "attn_q" || lin == "attn_k") {
        ok = emit(name, Role::kLinear, f, N, K, g_attn, nullptr, r1, nullptr, nullptr, flags);
      } else if (lin == "attn_v") {
        ok = emit(name, Role::kLinear, f, N, K, g_attn, nullptr, r1, r2, nullptr, flags);
      } else if (lin == "attn_output") {
        ok = emit(name, Role::kLinear, f, N, K, nullptr, r2, nullptr, nullptr, r1, flags);
      } else if (lin == "ffn_gate" || lin == "ffn_up") {
        ok = emit(name, Role::kLinear, f, N, K, g_ffn, nullptr, r1, nullptr, nullptr, flags);
      } else if (lin == "ffn_down") {
        if (rot.r4 && (flags & format::kTensorHadamardInput))
          return Fail(err, src + ": " + name + " already has the online Hadamard (R4)");
        if (rot.r4) flags |= format::kTensorHadamardInput;
        ok = emit(name, Role::kLinear, f, N, K, nullptr, rot.r4 ? &R4 : nullptr, nullptr, nullptr,
                  r1, flags);
      } else {
        return Fail(err, src + ": unexpected tensor " + name);
      }
    } else {
      return Fail(err, src + ": unexpected tensor " + name);
    }
    if (!ok) return false;
    if (name != "tok_embd" || !untie) Release(*m, t);
  }
  if (untie) {
    if (!embd) return Fail(err, src + ": tied model without tok_embd");
    if (!emit("output", Role::kOutput, embd, embd_rows, d, rot.r1 ? vec("output_norm") : nullptr,
              nullptr, r1, nullptr, nullptr, 0))
      return false;
  }
  w.SetHParams(hp);
  w.SetFlags(tied && !untie ? static_cast<uint32_t>(format::kFlagTiedEmbeddings) : 0u);
  w.SetScheme(scheme);
  if (!w.Finish(err)) return false;
  st.Summary(dst, w.bytes_written());
  return true;
}

}  // namespace lamina::convert
