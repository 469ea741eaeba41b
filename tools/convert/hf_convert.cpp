// Hugging Face Llama checkpoints: config.json + model.safetensors (or shards
// with model.safetensors.index.json), weights in bf16/f16/f32. Inputs are
// mmapped and converted tensor by tensor (bounded memory); q/k rows are
// permuted from HF's rotate-half order to the engine's interleaved pairs.
#include <dirent.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <set>

#include "kernels/ref/fp16.h"
#include "tools/convert/convert.h"
#include "tools/convert/convert_util.h"
#include "tools/convert/safetensors.h"
#include "tools/import/json.h"

namespace lamina::convert {
namespace {

using schema::TensorId;

// Hugging Face's (transformers LlamaForCausalLM) names for the schema's tensors.
constexpr schema::NameMap kHfNames = {"model.layers.",
                                      {{TensorId::kTokEmbd, "model.embed_tokens.weight"},
                                       {TensorId::kAttnNorm, "input_layernorm.weight"},
                                       {TensorId::kAttnQ, "self_attn.q_proj.weight"},
                                       {TensorId::kAttnK, "self_attn.k_proj.weight"},
                                       {TensorId::kAttnV, "self_attn.v_proj.weight"},
                                       {TensorId::kAttnOutput, "self_attn.o_proj.weight"},
                                       {TensorId::kFfnNorm, "post_attention_layernorm.weight"},
                                       {TensorId::kFfnGate, "mlp.gate_proj.weight"},
                                       {TensorId::kFfnUp, "mlp.up_proj.weight"},
                                       {TensorId::kFfnDown, "mlp.down_proj.weight"},
                                       {TensorId::kOutputNorm, "model.norm.weight"},
                                       {TensorId::kOutput, "lm_head.weight"}}};
static_assert(schema::NameMapComplete(kHfNames), "every schema tensor needs its HF name");

// Reads a 1-D or 2-D source tensor's rows as f32; perm_heads > 0 applies the
// rotate-half -> interleaved row permutation (heads of perm_hd rows).
RowFn SourceRows(const StTensor& t, int perm_heads, int perm_hd) {
  const uint64_t K = t.shape.size() == 2 ? t.shape[1] : t.shape[0];
  const size_t es = ElemSize(t.dtype);
  const uint8_t* base = t.file->data() + t.offset;
  const StType dt = t.dtype;
  const MappedFile* file = t.file;
  const uint64_t off = t.offset;
  return [=](uint64_t r0, uint64_t n, float* out) {
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t src = r0 + i;
      if (perm_heads > 0) {
        // Destination row h*hd + 2j + t comes from source row h*hd + t*hd/2 + j.
        const uint64_t h = src / perm_hd, m = src % perm_hd, j = m / 2, tt = m % 2;
        src = h * perm_hd + tt * (perm_hd / 2) + j;
      }
      const uint8_t* row = base + src * K * es;
      if (dt == StType::kF32) {
        std::memcpy(out + i * K, row, K * 4);
      } else {
        for (uint64_t k = 0; k < K; ++k) out[i * K + k] = LoadElem(dt, row + k * es);
      }
    }
    // Bounded memory: drop the consumed input pages from this process (rows
    // are read in order; a page needed again is simply re-read from the file).
    file->Release(off + r0 * K * es, n * K * es);
  };
}

bool GetU32(const json::Value& cfg, const char* key, uint32_t* out, bool required,
            const std::string& path, std::string* err) {
  const json::Value* v = cfg.Find(key);
  if (!v || v->is_null()) {
    if (required) *err = path + ": missing " + key;
    return !required;
  }
  int64_t x;
  if (!v->as_int64(&x) || x < 0 || x > 0xFFFFFFFFll) {
    *err = path + ": " + key + " is not a valid unsigned integer";
    return false;
  }
  *out = static_cast<uint32_t>(x);
  return true;
}

bool GetF32(const json::Value& cfg, const char* key, float* out, bool required,
            const std::string& path, std::string* err) {
  const json::Value* v = cfg.Find(key);
  if (!v || v->is_null()) {
    if (required) *err = path + ": missing " + key;
    return !required;
  }
  if (!v->is_number() || !std::isfinite(v->as_number())) {
    *err = path + ": " + key + " is not a finite number";
    return false;
  }
  *out = static_cast<float>(v->as_number());
  return true;
}

// Token ids of a config field that is an int or a list of ints.
std::vector<int64_t> IdList(const json::Value* v) {
  std::vector<int64_t> ids;
  if (!v) return ids;
  int64_t x;
  if (v->is_array()) {
    for (const auto& e : v->items())
      if (e.as_int64(&x)) ids.push_back(x);
  } else if (v->as_int64(&x)) {
    ids.push_back(x);
  }
  return ids;
}

bool ListShards(const std::string& dir, std::vector<std::string>* files, std::string* err) {
  const std::string index = dir + "/model.safetensors.index.json";
  if (IsFile(index)) {
    json::Value idx;
    if (!json::ParseFile(index, &idx, err)) return false;
    const json::Value* wm = idx.Find("weight_map");
    if (!wm || !wm->is_object()) {
      *err = index + ": missing weight_map";
      return false;
    }
    std::set<std::string> seen;
    for (const auto& [name, f] : wm->members()) {
      (void)name;
      if (!f.is_string() || f.as_string().find('/') != std::string::npos) {
        *err = index + ": bad shard file name for " + name;
        return false;
      }
      if (seen.insert(f.as_string()).second) files->push_back(dir + "/" + f.as_string());
    }
    return true;
  }
  if (IsFile(dir + "/model.safetensors")) {
    files->push_back(dir + "/model.safetensors");
    return true;
  }
  // Shards without an index: model-0000x-of-0000y.safetensors.
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n.rfind("model-", 0) == 0 && n.size() > 12 &&
          n.compare(n.size() - 12, 12, ".safetensors") == 0)
        files->push_back(dir + "/" + n);
    }
    ::closedir(d);
  }
  std::sort(files->begin(), files->end());
  if (files->empty()) {
    *err = dir + ": no model.safetensors, shards or model.safetensors.index.json";
    return false;
  }
  return true;
}

}  // namespace

bool ConvertHf(const std::string& dir, const std::string& out, const ConvertOptions& o,
               std::string* err) {
  const std::string cfg_path = dir + "/config.json";
  json::Value cfg;
  if (!json::ParseFile(cfg_path, &cfg, err)) return false;
  if (!cfg.is_object()) {
    *err = cfg_path + ": not a JSON object";
    return false;
  }
  if (const json::Value* mt = cfg.Find("model_type")) {
    if (mt->is_string() && mt->as_string() != "llama") {
      *err = cfg_path + ": model_type '" + mt->as_string() + "' is not supported (llama only)";
      return false;
    }
  }
  {
    format::DType probe;
    if (!TypeFor(Role::kLinear, o, &probe, err)) return false;
  }
  uint32_t dim = 0, n_layers = 0, n_heads = 0, ffn = 0, vocab = 0, head_dim = 0;
  if (!GetU32(cfg, "hidden_size", &dim, true, cfg_path, err) ||
      !GetU32(cfg, "num_hidden_layers", &n_layers, true, cfg_path, err) ||
      !GetU32(cfg, "num_attention_heads", &n_heads, true, cfg_path, err) ||
      !GetU32(cfg, "intermediate_size", &ffn, true, cfg_path, err) ||
      !GetU32(cfg, "vocab_size", &vocab, true, cfg_path, err))
    return false;
  uint32_t n_kv = n_heads;
  if (!GetU32(cfg, "num_key_value_heads", &n_kv, false, cfg_path, err) ||
      !GetU32(cfg, "head_dim", &head_dim, false, cfg_path, err))
    return false;
  if (n_heads == 0 || dim == 0) {
    *err = cfg_path + ": hidden_size and num_attention_heads must be > 0";
    return false;
  }
  if (!head_dim) head_dim = dim / n_heads;
  if (uint64_t{head_dim} * n_heads != dim) {
    *err = cfg_path + ": head_dim * num_attention_heads != hidden_size (not supported)";
    return false;
  }
  uint32_t max_context = 2048;
  float norm_eps = 1e-6f, rope_theta = 10000.f;
  if (!GetU32(cfg, "max_position_embeddings", &max_context, false, cfg_path, err) ||
      !GetF32(cfg, "rms_norm_eps", &norm_eps, false, cfg_path, err) ||
      !GetF32(cfg, "rope_theta", &rope_theta, false, cfg_path, err))
    return false;
  bool llama3 = false;
  float rope_factor = 0, rope_low = 0, rope_high = 0;
  uint32_t rope_orig = 0;
  if (const json::Value* rs = cfg.Find("rope_scaling"); rs && !rs->is_null()) {
    const json::Value* ty = rs->Find("rope_type");
    if (!ty) ty = rs->Find("type");
    const std::string type = ty && ty->is_string() ? ty->as_string() : "";
    if (type == "llama3") {
      llama3 = true;
      if (!GetF32(*rs, "factor", &rope_factor, true, cfg_path + " rope_scaling", err) ||
          !GetF32(*rs, "low_freq_factor", &rope_low, true, cfg_path + " rope_scaling", err) ||
          !GetF32(*rs, "high_freq_factor", &rope_high, true, cfg_path + " rope_scaling", err) ||
          !GetU32(*rs, "original_max_position_embeddings", &rope_orig, true,
                  cfg_path + " rope_scaling", err))
        return false;
    } else if (type != "default" && type != "") {
      *err = cfg_path + ": rope_scaling type '" + type + "' is not supported (llama3 only)";
      return false;
    }
  }
  schema::LlamaDims dims;
  dims.dim = dim;
  dims.n_layers = n_layers;
  dims.n_heads = n_heads;
  dims.n_kv_heads = n_kv;
  dims.head_dim = head_dim;
  dims.ffn_dim = ffn;
  dims.vocab_size = vocab;
  dims.max_context = max_context;
  dims.norm_eps = norm_eps;
  dims.rope_theta = rope_theta;
  dims.rope_llama3 = llama3;
  dims.rope_factor = rope_factor;
  dims.rope_low_freq_factor = rope_low;
  dims.rope_high_freq_factor = rope_high;
  dims.rope_orig_max_pos = rope_orig;
  format::HParams hp;
  if (!schema::MakeHParams(dims, &hp, err)) {
    *err = cfg_path + ": " + *err;
    return false;
  }
  bool tied = false;
  if (const json::Value* t = cfg.Find("tie_word_embeddings"); t && t->is_bool())
    tied = t->as_bool();

  // Special ids: config.json, then generation_config.json's eos list.
  std::vector<int64_t> bos = IdList(cfg.Find("bos_token_id"));
  std::vector<int64_t> eos = IdList(cfg.Find("eos_token_id"));
  std::vector<int64_t> stops = eos;
  if (IsFile(dir + "/generation_config.json")) {
    json::Value gc;
    if (!json::ParseFile(dir + "/generation_config.json", &gc, err)) return false;
    const auto g_eos = IdList(gc.Find("eos_token_id"));
    if (!g_eos.empty()) stops = g_eos;
    if (bos.empty()) bos = IdList(gc.Find("bos_token_id"));
    if (eos.empty()) eos = g_eos;
  }
  Stats st(o.quiet);
  auto in_vocab = [&](int64_t id) { return id >= 0 && id < int64_t{hp.vocab_size}; };
  hp.bos_id = bos.empty() || !in_vocab(bos[0]) ? 0xFFFFFFFFu : static_cast<uint32_t>(bos[0]);
  hp.eos_id = eos.empty() || !in_vocab(eos[0]) ? 0xFFFFFFFFu : static_cast<uint32_t>(eos[0]);
  for (int64_t s : stops)
    if (in_vocab(s) && hp.n_stop_ids < 8) hp.stop_ids[hp.n_stop_ids++] = static_cast<uint32_t>(s);

  ModelWriter w;
  if (!w.Open(out, err)) return false;
  // Tokenizer: explicit path, tokenizer.json, tokenizer.model, original/tokenizer.model.
  std::string tok_path = o.tokenizer_path;
  if (tok_path.empty() && !o.no_tokenizer) {
    for (const char* c : {"tokenizer.json", "tokenizer.model", "original/tokenizer.model"})
      if (IsFile(dir + "/" + c)) {
        tok_path = dir + "/" + c;
        break;
      }
  }
  if (!tok_path.empty()) {
    const bool have_ids = hp.bos_id != 0xFFFFFFFFu && hp.n_stop_ids > 0;
    if (!EmbedTokenizerFile(w, tok_path, &hp, have_ids, err)) return false;
  } else if (!o.quiet && !o.no_tokenizer) {
    st.Warn(dir +
            ": no tokenizer.json or tokenizer.model; the model will be driven by token ids "
            "(llama-run --tokens)");
  }
  if (hp.n_stop_ids == 0 && hp.eos_id != 0xFFFFFFFFu) hp.stop_ids[hp.n_stop_ids++] = hp.eos_id;

  std::vector<std::string> shard_paths;
  if (!ListShards(dir, &shard_paths, err)) return false;
  std::vector<std::unique_ptr<MappedFile>> shards;
  std::map<std::string, StTensor> tensors;
  for (const auto& sp : shard_paths) {
    shards.push_back(std::make_unique<MappedFile>());
    if (!shards.back()->Open(sp, err) || !ReadSafetensors(*shards.back(), &tensors, err))
      return false;
  }

  auto get = [&](const std::string& name, std::vector<uint64_t> shape, const StTensor** t) -> bool {
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      *err = dir + ": tensor " + name + " missing";
      return false;
    }
    if (it->second.dtype == StType::kOther) {
      *err = it->second.file->path() + ": tensor " + name + ": dtype " + it->second.dtype_name +
             " not supported (bf16, f16, f32)";
      return false;
    }
    if (it->second.shape != shape) {
      std::string s, want;
      for (auto d : it->second.shape) s += (s.empty() ? "" : ", ") + std::to_string(d);
      for (auto d : shape) want += (want.empty() ? "" : ", ") + std::to_string(d);
      *err = it->second.file->path() + ": tensor " + name + ": shape [" + s + "], expected [" +
             want + "] from config.json";
      return false;
    }
    *t = &it->second;
    return true;
  };
  auto matrix = [&](const std::string& src, const schema::TensorRef& r, int perm_heads) -> bool {
    const StTensor* t;
    if (!get(src, r.shape, &t)) return false;
    const bool ok = EmitMatrix(w, &st, r.name, r.spec->role, r.rows(), r.cols(),
                               SourceRows(*t, perm_heads, static_cast<int>(hp.head_dim)), o, err);
    t->file->Release(t->offset, t->size);
    return ok;
  };
  auto norm = [&](const std::string& src, const schema::TensorRef& r) -> bool {
    const StTensor* t;
    if (!get(src, r.shape, &t)) return false;
    std::vector<float> v(r.rows());
    SourceRows(*t, 0, 0)(0, 1, v.data());
    return EmitVector(w, &st, r.name, v.data(), v.size(), err);
  };

  const bool untie = tied && OutputUntied(o);
  const bool file_tied = tied && !untie;
  st.Begin(schema::CountTensors(hp, file_tied));
  // Tied checkpoints saved with shared-tensor deduplication hold the matrix
  // once, as either name: use the one present.
  std::string embd_name = schema::SourceOf(kHfNames, TensorId::kTokEmbd);
  const std::string head_name = schema::SourceOf(kHfNames, TensorId::kOutput);
  if (tied && !tensors.count(embd_name) && tensors.count(head_name)) embd_name = head_name;
  const bool ok = schema::ForEachTensor(hp, file_tied, [&](const schema::TensorRef& r) {
    const TensorId id = r.spec->id;
    // Tied, but the output layer's type differs from the embedding's: two
    // tensors, both from the embedding.
    const std::string src = id == TensorId::kTokEmbd || (id == TensorId::kOutput && untie)
                                ? embd_name
                                : schema::SourceName(kHfNames, id, r.layer);
    if (r.spec->role == Role::kNorm) return norm(src, r);
    // HF's q/k rows are in rotate-half order: permute to interleaved pairs.
    const int perm = id == TensorId::kAttnQ   ? static_cast<int>(hp.n_heads)
                     : id == TensorId::kAttnK ? static_cast<int>(hp.n_kv_heads)
                                              : 0;
    return matrix(src, r, perm);
  });
  if (!ok) return false;
  w.SetHParams(hp);
  w.SetFlags(tied && !untie ? static_cast<uint32_t>(format::kFlagTiedEmbeddings) : 0u);
  w.SetScheme(o.weights);
  if (!w.Finish(err)) return false;
  st.Summary(out, w.bytes_written());
  return true;
}

}  // namespace lamina::convert
