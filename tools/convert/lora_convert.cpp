// Hugging Face PEFT LoRA adapters -> lamina adapter files (loader/format.h
// kFlagAdapter, docs/FORMAT.md "Adapter files").
//
// Input: adapter_config.json (peft_type LORA, r, lora_alpha, use_rslora,
// target_modules) and adapter_model.safetensors whose tensors are
//   <prefix>layers.<i>.self_attn.{q,k,v,o}_proj.lora_{A,B}[.<name>].weight
//   <prefix>layers.<i>.mlp.{gate,up,down}_proj.lora_{A,B}[.<name>].weight
// (A [r, in], B [out, r], f32 / f16 / bf16). Output: the same values, same
// type, under the lamina names blk.<i>.<linear>.lora_a / .lora_b, B's rows of
// q_proj / k_proj permuted from HF's rotate-half order to the engine's
// interleaved RoPE pairs (as the base's q/k rows are), with scale alpha / r
// (alpha / sqrt(r) with use_rslora) and the base model's binding hash.
// Everything PEFT can express beyond that (per-module ranks, DoRA, trained
// biases, embedding LoRA, modules_to_save) is refused by name.
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>

#include "kernels/ref/fp16.h"
#include "loader/finite.h"
#include "tools/import/json.h"
#include "loader/model_file.h"
#include "tools/convert/convert.h"
#include "tools/convert/convert_util.h"
#include "tools/convert/safetensors.h"

namespace lamina::convert {
namespace {

// HF module path -> format::kLinearNames index.
constexpr const char* kHfModules[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                       "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                       "mlp.down_proj"};
constexpr const char* kHfShort[7] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                     "gate_proj", "up_proj", "down_proj"};

bool NonEmpty(const json::Value* v) {
  if (!v || v->is_null()) return false;
  if (v->is_object() || v->is_array()) return v->size() > 0;
  if (v->is_bool()) return v->as_bool();
  return true;
}

// Parses "<prefix>layers.<i>.<module>.lora_<A|B>[.<adapter name>].weight".
// False when the key is not of that form.
bool ParseKey(const std::string& key, int* layer, int* linear, int* ab) {
  const size_t p = key.rfind("layers.");
  if (p == std::string::npos || (p > 0 && key[p - 1] != '.')) return false;
  size_t i = p + 7, digits = 0;
  long l = 0;
  while (i < key.size() && key[i] >= '0' && key[i] <= '9' && digits < 7) {
    l = l * 10 + (key[i] - '0');
    ++i;
    ++digits;
  }
  if (digits == 0 || i >= key.size() || key[i] != '.') return false;
  const std::string rest = key.substr(i + 1);
  for (int m = 0; m < 7; ++m) {
    const std::string mod = std::string(kHfModules[m]) + ".lora_";
    if (rest.compare(0, mod.size(), mod) != 0) continue;
    std::string tail = rest.substr(mod.size());  // "A.weight" or "A.default.weight"
    if (tail.size() < 8 || (tail[0] != 'A' && tail[0] != 'B') || tail[1] != '.') return false;
    if (tail.compare(tail.size() - 7, 7, ".weight") != 0) return false;
    *layer = static_cast<int>(l);
    *linear = m;
    *ab = tail[0] == 'B';
    return true;
  }
  return false;
}

struct Pair {
  const StTensor* t[2] = {nullptr, nullptr};  // A, B
};

format::DType FileType(StType t) {
  return t == StType::kF32   ? format::DType::kF32
         : t == StType::kF16 ? format::DType::kF16
                             : format::DType::kBF16;
}

}  // namespace

bool ConvertLoraAdapter(const std::string& dir, const std::string& base_path,
                        const std::string& out, const ConvertOptions& o, std::string* err) {
  // The base model: its shapes and binding hash.
  std::unique_ptr<ModelFile> base = ModelFile::Open(base_path, LoadOptions{}, err);
  if (!base) return false;
  if (base->is_adapter()) {
    *err = base_path + ": this is an adapter file; -m needs the base model";
    return false;
  }
  const format::HParams& bh = base->hparams();

  // adapter_config.json
  const std::string cfg_path = dir + "/adapter_config.json";
  json::Value cfg;
  if (!json::ParseFile(cfg_path, &cfg, err)) return false;
  auto bad = [&](const std::string& what) {
    *err = cfg_path + ": " + what;
    return false;
  };
  if (!cfg.is_object()) return bad("not a JSON object");
  if (const json::Value* v = cfg.Find("peft_type");
      v && !(v->is_string() && v->as_string() == "LORA"))
    return bad("peft_type is not \"LORA\" (only LoRA adapters are supported)");
  int64_t r = 0;
  const json::Value* rv = cfg.Find("r");
  if (!rv || !rv->as_int64(&r) || r < 1 || r > 1024) return bad("r missing or not in 1..1024");
  double alpha = 8;  // PEFT's LoraConfig default
  if (const json::Value* v = cfg.Find("lora_alpha"); v && !v->is_null()) {
    if (!v->is_number()) return bad("lora_alpha is not a number");
    alpha = v->as_number();
  }
  if (!std::isfinite(alpha)) return bad("lora_alpha is not finite");
  bool rslora = false;
  if (const json::Value* v = cfg.Find("use_rslora"); v && !v->is_null()) {
    if (!v->is_bool()) return bad("use_rslora is not a boolean");
    rslora = v->as_bool();
  }
  if (NonEmpty(cfg.Find("rank_pattern")) || NonEmpty(cfg.Find("alpha_pattern")))
    return bad("rank_pattern / alpha_pattern (per-module ranks or alphas) are not supported");
  if (NonEmpty(cfg.Find("use_dora"))) return bad("use_dora: DoRA adapters are not supported");
  if (NonEmpty(cfg.Find("fan_in_fan_out"))) return bad("fan_in_fan_out is not supported");
  if (NonEmpty(cfg.Find("modules_to_save")))
    return bad("modules_to_save (fully trained extra modules) is not supported");
  if (NonEmpty(cfg.Find("layer_replication"))) return bad("layer_replication is not supported");
  if (const json::Value* v = cfg.Find("bias");
      v && !(v->is_null() || (v->is_string() && v->as_string() == "none")))
    return bad("bias \"" + (v->is_string() ? v->as_string() : std::string("?")) +
               "\": trained biases are not supported (only \"none\")");
  if (const json::Value* v = cfg.Find("target_modules"); v && v->is_array()) {
    for (const json::Value& t : v->items()) {
      bool ok = false;
      for (const char* s : kHfShort) ok |= t.is_string() && t.as_string() == s;
      if (!ok)
        return bad("target module \"" + (t.is_string() ? t.as_string() : std::string("?")) +
                   "\" is not supported (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, "
                   "down_proj)");
    }
  }
  const double scale = rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / r;
  if (!std::isfinite(static_cast<float>(scale))) return bad("alpha / r overflows float");

  // adapter_model.safetensors
  const std::string st_path = dir + "/adapter_model.safetensors";
  if (!IsFile(st_path)) {
    *err = dir + ": no adapter_model.safetensors" +
           (IsFile(dir + "/adapter_model.bin")
                ? " (only adapter_model.bin: re-save the adapter with safe_serialization=True)"
                : "");
    return false;
  }
  MappedFile mf;
  if (!mf.Open(st_path, err)) return false;
  std::map<std::string, StTensor> tensors;
  if (!ReadSafetensors(mf, &tensors, err)) return false;
  const uint64_t dim = bh.dim, ffn = bh.ffn_dim;
  const uint64_t qd = static_cast<uint64_t>(bh.n_heads) * bh.head_dim;
  const uint64_t kvd = static_cast<uint64_t>(bh.n_kv_heads) * bh.head_dim;
  const uint64_t shapes[7][2] = {{qd, dim},  {kvd, dim}, {kvd, dim}, {dim, qd},
                                 {ffn, dim}, {ffn, dim}, {dim, ffn}};
  std::map<std::pair<int, int>, Pair> pairs;  // (layer, linear), in order
  for (const auto& [key, t] : tensors) {
    const std::string where = st_path + ": tensor " + key + ": ";
    int layer, lin, ab;
    if (!ParseKey(key, &layer, &lin, &ab)) {
      *err = where + "not a LoRA A/B weight of q/k/v/o/gate/up/down_proj (unsupported)";
      return false;
    }
    const std::string ours = "blk." + std::to_string(layer) + "." + format::kLinearNames[lin] +
                             (ab ? ".lora_b" : ".lora_a");
    if (layer >= static_cast<int>(bh.n_layers)) {
      *err = where + "layer " + std::to_string(layer) + " does not exist (the base model has " +
             std::to_string(bh.n_layers) + " layers)";
      return false;
    }
    if (t.dtype == StType::kOther) {
      *err = where + "dtype " + t.dtype_name + " is not supported (f32, f16, bf16)";
      return false;
    }
    const uint64_t want0 = ab ? shapes[lin][0] : static_cast<uint64_t>(r);
    const uint64_t want1 = ab ? static_cast<uint64_t>(r) : shapes[lin][1];
    if (t.shape.size() != 2 || t.shape[0] != want0 || t.shape[1] != want1) {
      std::string got = "[";
      for (size_t i = 0; i < t.shape.size(); ++i)
        got += (i ? ", " : "") + std::to_string(t.shape[i]);
      *err = where + "shape " + got + "], expected [" + std::to_string(want0) + ", " +
             std::to_string(want1) + "] (" + ours + ": r = " + std::to_string(r) +
             ", the base model's " + kHfShort[lin] + " is [" + std::to_string(shapes[lin][0]) +
             ", " + std::to_string(shapes[lin][1]) + "])";
      return false;
    }
    Pair& p = pairs[{layer, lin}];
    if (p.t[ab]) {
      *err = where + "a second lora_" + (ab ? "B" : "A") + " for " + ours +
             " (several adapters in one file?)";
      return false;
    }
    p.t[ab] = &t;
  }
  if (pairs.empty()) {
    *err = st_path + ": no LoRA tensors";
    return false;
  }
  for (const auto& [k, p] : pairs)
    if (!p.t[0] || !p.t[1]) {
      *err = st_path + ": " + (p.t[0] ? p.t[0] : p.t[1])->name + ": its lora_" +
             (p.t[0] ? "B" : "A") + " is missing";
      return false;
    }

  ModelWriter w;
  if (!w.Open(out, err)) return false;
  format::HParams hp = bh;
  hp.lora_rank = static_cast<uint32_t>(r);
  hp.lora_scale = static_cast<float>(scale);
  w.SetHParams(hp);
  w.SetFlags(format::kFlagAdapter);
  w.SetScheme("lora");
  w.SetBaseBinding(base->AdapterBinding());
  std::vector<uint8_t> buf, perm;
  for (const auto& [k, p] : pairs) {
    const auto [layer, lin] = k;
    for (int ab = 0; ab < 2; ++ab) {
      const StTensor& t = *p.t[ab];
      const std::string name = "blk." + std::to_string(layer) + "." + format::kLinearNames[lin] +
                               (ab ? ".lora_b" : ".lora_a");
      const uint8_t* src = mf.data() + t.offset;
      const uint64_t count = t.shape[0] * t.shape[1];
      for (uint64_t i = 0; i < count; ++i) {
        const float v = LoadElem(t.dtype, src + i * ElemSize(t.dtype));
        if (!std::isfinite(v)) {
          *err =
              st_path + ": tensor " + t.name + ": element " + std::to_string(i) + " is NaN or Inf";
          return false;
        }
      }
      buf.assign(src, src + t.size);
      // B's output rows of q_proj / k_proj: HF rotate-half -> interleaved.
      if (ab == 1 && (lin == 0 || lin == 1)) {
        perm.resize(buf.size());
        PermuteRotateHalfToInterleaved(
            buf.data(), perm.data(), static_cast<int>(lin == 0 ? bh.n_heads : bh.n_kv_heads),
            static_cast<int>(bh.head_dim), static_cast<int64_t>(t.shape[1] * ElemSize(t.dtype)));
        buf.swap(perm);
      }
      if (!w.AddTensor(name, FileType(t.dtype), format::Layout::kRowMajor, t.shape, 0, 0,
                       buf.data(), buf.size(), err))
        return false;
    }
  }
  if (!w.Finish(err)) return false;
  if (!o.quiet)
    std::fprintf(stderr,
                 "lamina-convert: %s: LoRA adapter, rank %lld, alpha %g%s -> scale %g, %zu "
                 "linears, for base %s\n",
                 out.c_str(), static_cast<long long>(r), alpha, rslora ? " (rsLoRA)" : "", scale,
                 pairs.size(), base_path.c_str());
  return true;
}

lamina_status LoadLoraAdapter(const lamina_model* model, const std::string& model_path,
                              const std::string& path, lamina_adapter** out, std::string* err) {
  if (!IsDir(path)) {
    const lamina_status s = lamina_adapter_load(model, path.c_str(), out);
    if (s != LAMINA_OK) *err = lamina_last_error();
    return s;
  }
  // A PEFT directory: convert it to a temporary adapter file, map it, unlink it
  // (the mapping keeps the pages).
  const char* tmp = std::getenv("TMPDIR");
  std::string name = std::string(tmp && *tmp ? tmp : "/tmp") + "/lamina-lora-XXXXXX";
  std::vector<char> tmpl(name.begin(), name.end());
  tmpl.push_back(0);
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0) {
    *err = "cannot create a temporary file in " + std::string(tmp && *tmp ? tmp : "/tmp");
    return LAMINA_ERR_ADAPTER;
  }
  ::close(fd);
  name = tmpl.data();
  ConvertOptions o;
  o.quiet = true;
  lamina_status s = LAMINA_ERR_ADAPTER;
  if (ConvertLoraAdapter(path, model_path, name, o, err)) {
    s = lamina_adapter_load(model, name.c_str(), out);
    if (s != LAMINA_OK) *err = lamina_last_error();
  }
  ::unlink(name.c_str());
  return s;
}

LoraSet::~LoraSet() {
  for (lamina_adapter* a : adapters) lamina_adapter_free(a);
}

bool LoraSet::Load(const lamina_model* model, const std::string& model_path,
                   const std::vector<std::string>& paths, const std::vector<float>& sc,
                   std::string* err) {
  for (size_t i = 0; i < paths.size(); ++i) {
    lamina_adapter* a = nullptr;
    std::string e;
    if (LoadLoraAdapter(model, model_path, paths[i], &a, &e) != LAMINA_OK) {
      *err = "--lora " + paths[i] + ": " + e;
      return false;
    }
    adapters.push_back(a);
    scales.push_back(i < sc.size() ? sc[i] : 1.f);
    std::fprintf(stderr, "[llama-run] LoRA adapter %s, scale %g\n", paths[i].c_str(),
                 static_cast<double>(scales.back()));
  }
  return true;
}

}  // namespace lamina::convert
