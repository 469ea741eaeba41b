// The Llama 3.2 forward pass, straight-line (llama2.c style), over a batch of
// M tokens: M > 1 is a prefill chunk (GEMM), M == 1 a decode step (GEMV). Every
// op is defined per token row / per output element by kernels/ref, so the
// result of a token does not depend on M, on the chunking, or on the thread
// count (tests check all three).
#include <cstring>
#include <string>

#include "engine/adapter.h"
#include "engine/engine.h"
#include "kernels/ref/fp16.h"
#include "kernels/ref/kv_q8.h"
#include "loader/finite.h"
#include "loader/pack.h"

namespace lamina::engine {
namespace {

using format::DType;

// Output rows per thread are split in units of 16 floats (one 64-byte cache
// line; also a multiple of the 4-row weight blocks the kernels require).
constexpr int kRowAlign = 16;

// Runs fn(m0, m1) over token rows [0, M): on the calling thread for M == 1,
// else split across the pool.
template <class F>
void ForRows(ThreadPool& pool, int M, F&& fn) {
  if (M == 1 || pool.size() == 1) {
    fn(0, M);
    return;
  }
  auto job = [&](int tid, int nt) {
    int m0, m1;
    SplitRange(M, 1, tid, nt, &m0, &m1);
    if (m0 < m1) fn(m0, m1);
  };
  pool.RunF(job);
}

// First row of x [M][width] holding a NaN or +-Inf, or -1 (loader/finite.h),
// run on the calling thread. Why here and always on: the residual stream is
// M x dim floats per layer (1B decode: 17 x 2048 values plus 128256 logits per
// token, +0.26% of the token's instructions, measured in docs/PERFORMANCE.md),
// and it names the first layer that went bad.
int FirstNonFiniteRow(const float* x, int M, size_t width) {
  for (int m = 0; m < M; ++m)
    if (FirstNonFinite(x + static_cast<size_t>(m) * width, width) != width) return m;
  return -1;
}

}  // namespace

struct Context::Linear {
  const Matrix* m;
  float* y;  // output [M][ldy]
  size_t ldy;
  int layer = -1;   // block index; -1: the output layer (no adapters)
  int linear = -1;  // format::kLinearNames index
};

void Context::QuantizeRows(const float* x, int M, int K) {
  qa_.M = M;
  qa_.K = K;
  const kern::QuantizeActsKernel& qk = ks_->quantize_acts;
  ForRows(*pool_, M, [&](int m0, int m1) { qk.run(x, static_cast<size_t>(K), m0, m1, &qa_); });
}

// The observer hook (engine.h): which block and linear `first` is.
void Context::ObserveLinearInput(const float* x, int M, const Matrix* first) {
  for (int l = 0; l < cfg_.n_layers; ++l) {
    const LayerWeights& L = w_.layers[l];
    const Matrix* ms[7] = {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down};
    for (int i = 0; i < 7; ++i)
      if (ms[i] == first) return observer_(l, i, x, M, first->K);
  }
}

// y_i = W_i x (+ lora_scale * B_i(A_i x)) for every linear of a group that
// shares the input x [M][K]. x is quantized once when any W_i is quantized.
void Context::RunLinears(const float* x, int M, const Linear* lins, int n_lins) {
  const int K = lins[0].m->K;
  if (observer_) ObserveLinearInput(x, M, lins[0].m);
  bool any_q = false, any_lora = false;
  for (int i = 0; i < n_lins; ++i) {
    any_q |= lins[i].m->quantized();
    any_lora |= lins[i].m->lora_a != nullptr;
  }
  // Attached adapters' matrices of these linears, [adapter][linear].
  const int n_ad = static_cast<int>(adapters_.size());
  const AdapterMatrix* am[kMaxAdapters][3] = {};
  bool any_adapter = false;
  for (int j = 0; j < n_ad; ++j)
    for (int i = 0; i < n_lins; ++i)
      if (lins[i].layer >= 0) {
        const AdapterMatrix& mm = adapters_[j].adapter->matrix(lins[i].layer, lins[i].linear);
        if (mm.a) {
          am[j][i] = &mm;
          any_adapter = true;
        }
      }
  const int rmax = adapter_rmax_;
  const size_t t_block = static_cast<size_t>(n_batch_) * (rmax > 0 ? rmax : 1);
  if (any_q) QuantizeRows(x, M, K);
  const kern::KernelSet& ks = *ks_;
  const int r = cfg_.lora_rank;
  const size_t ldt = static_cast<size_t>(3) * (r > 0 ? r : 1);
  // Pass 1: the main products and the LoRA down-projections t_i = A_i x.
  auto main_job = [&](int tid, int nt) {
    for (int i = 0; i < n_lins; ++i) {
      const Matrix& w = *lins[i].m;
      int n0, n1;
      SplitRange(w.N, kRowAlign, tid, nt, &n0, &n1);
      if (n0 < n1) {
        switch (w.dtype) {
          case DType::kQ4G:
            (w.layout == format::Layout::kQ4G_R4K8_F16S ? ks.matmul_q4g_f16s : ks.matmul_q4g)
                .run(qa_, w.data, w.N, w.K, n0, n1, lins[i].y, lins[i].ldy);
            break;
          case DType::kQ8C:
            ks.matmul_q8c.run(qa_, w.data, w.N, w.K, n0, n1, lins[i].y, lins[i].ldy);
            break;
          default:
            ks.matmul_float.run(x, static_cast<size_t>(K), M, w.data, static_cast<int>(w.dtype),
                                w.N, w.K, n0, n1, lins[i].y, lins[i].ldy);
            break;
        }
      }
      if (w.lora_a) {
        SplitRange(r, 4, tid, nt, &n0, &n1);
        if (n0 < n1)
          ks.matmul_float.run(x, static_cast<size_t>(K), M, w.lora_a, w.lora_a_type, r, K, n0, n1,
                              lora_t_.data() + static_cast<size_t>(i) * r, ldt);
      }
      for (int j = 0; j < n_ad; ++j) {
        if (!am[j][i]) continue;
        const int rj = adapters_[j].adapter->rank();
        SplitRange(rj, 4, tid, nt, &n0, &n1);
        if (n0 < n1)
          ks.matmul_float.run(x, static_cast<size_t>(K), M, am[j][i]->a, am[j][i]->a_type, rj, K,
                              n0, n1,
                              adapter_t_.data() + (static_cast<size_t>(j) * 3 + i) * t_block,
                              static_cast<size_t>(rmax));
      }
    }
  };
  pool_->RunF(main_job);
  if (!any_lora && !any_adapter) return;
  // Pass 2: u_i = B_i t_i, then y_i += lora_scale * u_i (same rows per thread);
  // then the same for each attached adapter, in order.
  const size_t ldu = lora_u_.size() / static_cast<size_t>(n_batch_);
  const float scale = cfg_.lora_scale;
  auto lora_job = [&](int tid, int nt) {
    size_t off = 0;
    for (int i = 0; i < n_lins; ++i) {
      const Matrix& w = *lins[i].m;
      int n0, n1;
      SplitRange(w.N, kRowAlign, tid, nt, &n0, &n1);
      float* u = lora_u_.data() + off;
      // y += s * u over this thread's rows.
      auto add = [&](float s) {
        for (int m = 0; m < M; ++m) {
          float* y = lins[i].y + static_cast<size_t>(m) * lins[i].ldy;
          const float* um = u + static_cast<size_t>(m) * ldu;
          for (int n = n0; n < n1; ++n) y[n] = y[n] + s * um[n];
        }
      };
      if (n0 < n1 && w.lora_b) {
        ks.matmul_float.run(lora_t_.data() + static_cast<size_t>(i) * r, ldt, M, w.lora_b,
                            w.lora_b_type, w.N, r, n0, n1, u, ldu);
        add(scale);
      }
      for (int j = 0; j < n_ad && n0 < n1; ++j) {
        if (!am[j][i]) continue;
        ks.matmul_float.run(adapter_t_.data() + (static_cast<size_t>(j) * 3 + i) * t_block,
                            static_cast<size_t>(rmax), M, am[j][i]->b, am[j][i]->b_type, w.N,
                            adapters_[j].adapter->rank(), n0, n1, u, ldu);
        add(adapters_[j].scale);
      }
      off += static_cast<size_t>(w.N);
    }
  };
  pool_->RunF(lora_job);
}

// x[m] = tok_embd[tokens[m]] (dequantized for Q8C / Q4G), m in [0, M).
void Context::EmbedTokens(const int32_t* tokens, int M, float* x) {
  const int dim = cfg_.dim;
  ForRows(*pool_, M, [&](int m0, int m1) {
    const Matrix& e = w_.tok_embd;
    for (int m = m0; m < m1; ++m) {
      float* xr = x + static_cast<size_t>(m) * dim;
      const size_t row = static_cast<size_t>(tokens[m]) * dim;
      switch (e.dtype) {
        case DType::kQ8C:
          pack::Q8CDequantRow(e.data, e.N, e.K, tokens[m], xr);
          break;
        case DType::kQ4G:
          pack::Q4GDequantRow(e.data, e.layout == format::Layout::kQ4G_R4K8_F16S, e.N, e.K,
                              tokens[m], xr);
          break;
        case DType::kF32:
          std::memcpy(xr, reinterpret_cast<const float*>(e.data) + row, sizeof(float) * dim);
          break;
        case DType::kF16: {
          const uint16_t* s = reinterpret_cast<const uint16_t*>(e.data) + row;
          for (int i = 0; i < dim; ++i) xr[i] = F16ToF32(s[i]);
          break;
        }
        default: {  // kBF16
          const uint16_t* s = reinterpret_cast<const uint16_t*>(e.data) + row;
          for (int i = 0; i < dim; ++i) xr[i] = BF16ToF32(s[i]);
          break;
        }
      }
    }
  });
}

// Block l over x [M][dim] in place, tokens at positions p0 + m.
void Context::ForwardLayer(int l, float* x, int M, int p0, bool observe_only) {
  const Config& c = cfg_;
  const kern::KernelSet& ks = *ks_;
  const int dim = c.dim, qd = c.q_dim, kvd = c.kv_dim, ffn = c.ffn_dim, hd = c.head_dim;
  const int half = hd / 2;
  float* xb = xb_.data();  // [M, dim]
  const LayerWeights& L = w_.layers[l];
  uint8_t* kc = kv_.get() + static_cast<size_t>(2 * l) * kv_layer_bytes_;  // [n_ctx, kvd]
  uint8_t* vc = kc + kv_layer_bytes_;                                      // [n_ctx, kvd]

  // ---- attention block ------------------------------------------------
  // xb = rmsnorm(x) * attn_norm                                  [M, dim]
  ForRows(*pool_, M, [&](int m0, int m1) {
    for (int m = m0; m < m1; ++m)
      ks.rmsnorm.run(xb + static_cast<size_t>(m) * dim, x + static_cast<size_t>(m) * dim,
                     L.attn_norm, dim, c.norm_eps);
  });
  // q = Wq xb [M, qd], k = Wk xb [M, kvd], v = Wv xb [M, kvd] (xb quantized once)
  const Linear qkv[3] = {{&L.wq, q_.data(), static_cast<size_t>(qd), l, 0},
                         {&L.wk, k_.data(), static_cast<size_t>(kvd), l, 1},
                         {&L.wv, v_.data(), static_cast<size_t>(kvd), l, 2}};
  RunLinears(xb, M, qkv, 3);
  // RoPE on q and k at positions p0 + m; k, v -> cache rows p0 + m.
  ForRows(*pool_, M, [&](int m0, int m1) {
    for (int m = m0; m < m1; ++m) {
      const int pos = p0 + m;
      const float* cs = rope_cos_.data() + static_cast<size_t>(pos) * half;
      const float* sn = rope_sin_.data() + static_cast<size_t>(pos) * half;
      float* qm = q_.data() + static_cast<size_t>(m) * qd;
      float* km = k_.data() + static_cast<size_t>(m) * kvd;
      const float* vm = v_.data() + static_cast<size_t>(m) * kvd;
      ks.rope.run(qm, c.n_heads, hd, cs, sn);
      ks.rope.run(km, c.n_kv_heads, hd, cs, sn);
      const size_t off = static_cast<size_t>(pos) * kvd;
      if (kv_type_ == kern::KvType::kQ8) {
        const size_t row = static_cast<size_t>(pos) * kv_row_bytes_;
        ref::StoreKvQ8Row(km, c.n_kv_heads, hd, kc + row);
        ref::StoreKvQ8Row(vm, c.n_kv_heads, hd, vc + row);
      } else if (kv_type_ == kern::KvType::kF32) {
        std::memcpy(reinterpret_cast<float*>(kc) + off, km, sizeof(float) * kvd);
        std::memcpy(reinterpret_cast<float*>(vc) + off, vm, sizeof(float) * kvd);
      } else {
        uint16_t* kd = reinterpret_cast<uint16_t*>(kc) + off;
        uint16_t* vd = reinterpret_cast<uint16_t*>(vc) + off;
        for (int i = 0; i < kvd; ++i) {
          kd[i] = F32ToF16(km[i]);
          vd[i] = F32ToF16(vm[i]);
        }
      }
    }
  });
  // att[m] = causal GQA attention of q[m] over cache rows [0, p0 + m]   [M, qd]
  {
    const int items = M * c.n_heads;
    auto att_job = [&](int tid, int nt) {
      int i0, i1;
      SplitRange(items, 1, tid, nt, &i0, &i1);
      float* scratch =
          att_scratch_.data() + static_cast<size_t>(tid) * n_ctx_ * kern::kAttentionScratchRows;
      while (i0 < i1) {
        const int m = i0 / c.n_heads, h0 = i0 % c.n_heads;
        const int h1 = (i1 - m * c.n_heads) < c.n_heads ? i1 - m * c.n_heads : c.n_heads;
        ks.attention.run(q_.data() + static_cast<size_t>(m) * qd, kc, vc, kv_type_,
                         kv_type_ == kern::KvType::kQ8 ? kv_row_bytes_ : static_cast<size_t>(kvd),
                         p0 + m + 1, c.n_heads, c.n_kv_heads, hd, h0, h1, scratch,
                         att_.data() + static_cast<size_t>(m) * qd);
        i0 = m * c.n_heads + h1;
      }
    };
    pool_->RunF(att_job);
  }
  // proj = Wo att [M, dim]; x += proj
  const Linear wo[1] = {{&L.wo, proj_.data(), static_cast<size_t>(dim), l, 3}};
  RunLinears(att_.data(), M, wo, 1);
  ForRows(*pool_, M, [&](int m0, int m1) {
    for (size_t i = static_cast<size_t>(m0) * dim; i < static_cast<size_t>(m1) * dim; ++i)
      x[i] = x[i] + proj_[i];
  });

  // ---- feed-forward block ---------------------------------------------
  // xb = rmsnorm(x) * ffn_norm                                   [M, dim]
  ForRows(*pool_, M, [&](int m0, int m1) {
    for (int m = m0; m < m1; ++m)
      ks.rmsnorm.run(xb + static_cast<size_t>(m) * dim, x + static_cast<size_t>(m) * dim,
                     L.ffn_norm, dim, c.norm_eps);
  });
  // hb = W_gate xb, hb2 = W_up xb                                [M, ffn]
  const Linear gu[2] = {{&L.w_gate, hb_.data(), static_cast<size_t>(ffn), l, 4},
                        {&L.w_up, hb2_.data(), static_cast<size_t>(ffn), l, 5}};
  RunLinears(xb, M, gu, 2);
  // hb = silu(hb) * hb2, then (SpinQuant R4) hb = H hb
  ForRows(*pool_, M, [&](int m0, int m1) {
    for (int m = m0; m < m1; ++m) {
      float* h = hb_.data() + static_cast<size_t>(m) * ffn;
      ks.silu_mul.run(h, hb2_.data() + static_cast<size_t>(m) * ffn, ffn);
      if (L.w_down.hadamard_input) ks.hadamard.run(h, ffn);
    }
  });
  // proj = W_down hb [M, dim]; x += proj
  if (observe_only) {
    if (observer_) ObserveLinearInput(hb_.data(), M, &L.w_down);
    return;
  }
  const Linear dn[1] = {{&L.w_down, proj_.data(), static_cast<size_t>(dim), l, 6}};
  RunLinears(hb_.data(), M, dn, 1);
  ForRows(*pool_, M, [&](int m0, int m1) {
    for (size_t i = static_cast<size_t>(m0) * dim; i < static_cast<size_t>(m1) * dim; ++i)
      x[i] = x[i] + proj_[i];
  });
}

bool Context::Forward(const int32_t* tokens, int M, int logits_mode, std::string* err) {
  const Config& c = cfg_;
  const kern::KernelSet& ks = *ks_;
  const int dim = c.dim;
  const int p0 = n_past_;  // position of token 0 of this batch
  float* x = x_.data();    // [M, dim]
  // Stops the pass at the first non-finite row of `v` [rows][width] (rows
  // starting at token `first`): names the stage, position and token id.
  auto finite = [&](const float* v, int rows, int width, int first, const std::string& where) {
    const int m = FirstNonFiniteRow(v, rows, static_cast<size_t>(width));
    if (m < 0) return true;
    *err = "numeric error: NaN or Inf in " + where + " at position " +
           std::to_string(p0 + first + m) + " (token id " + std::to_string(tokens[first + m]) +
           "): the model's weights are corrupt or overflow float";
    return false;
  };

  EmbedTokens(tokens, M, x);
  if (!finite(x, M, dim, 0, "the token embedding (tok_embd)")) return false;

  for (int l = 0; l < c.n_layers; ++l) {
    ForwardLayer(l, x, M, p0, false);
    if (!finite(x, M, dim, 0,
                "the output of layer " + std::to_string(l) + " (blk." + std::to_string(l) + ".*)"))
      return false;
  }

  // ---- output: final norm + classifier, only for the rows needed ---------
  if (logits_mode == 0) {
    n_logits_ = 0;
    return true;
  }
  const int first = logits_mode == 2 ? 0 : M - 1;
  const int n_out = M - first;
  float* ox = out_x_.data();
  ForRows(*pool_, n_out, [&](int m0, int m1) {
    for (int m = m0; m < m1; ++m)
      ks.rmsnorm.run(ox + static_cast<size_t>(m) * dim, x + static_cast<size_t>(first + m) * dim,
                     w_.output_norm, dim, c.norm_eps);
  });
  const Linear out[1] = {{&w_.output, logits_.data(), static_cast<size_t>(c.vocab)}};
  RunLinears(ox, n_out, out, 1);
  if (!finite(logits_.data(), n_out, c.vocab, first, "the logits (output_norm / output layer)"))
    return false;
  n_logits_ = n_out;
  return true;
}

EvalStatus Context::EvalLayer(int layer, float* x, int M, int pos, std::string* err,
                              bool observe_only) {
  if (layer < 0 || layer >= cfg_.n_layers || M <= 0 || M > n_batch_ || pos < 0 ||
      pos > n_ctx_ - M) {
    *err = "eval layer: block " + std::to_string(layer) + ", " + std::to_string(M) +
           " rows at position " + std::to_string(pos) + " outside the context (" +
           std::to_string(cfg_.n_layers) + " blocks, n_batch " + std::to_string(n_batch_) +
           ", n_ctx " + std::to_string(n_ctx_) + ")";
    return EvalStatus::kInvalid;
  }
  ForwardLayer(layer, x, M, pos, observe_only);
  if (observe_only) return EvalStatus::kOk;
  const int m = FirstNonFiniteRow(x, M, static_cast<size_t>(cfg_.dim));
  if (m < 0) return EvalStatus::kOk;
  *err = "numeric error: NaN or Inf in the output of layer " + std::to_string(layer) + " (blk." +
         std::to_string(layer) + ".*) at position " + std::to_string(pos + m);
  return EvalStatus::kNumeric;
}

}  // namespace lamina::engine
