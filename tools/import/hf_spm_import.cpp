// Importer of SentencePiece-style Hugging Face tokenizer.json files (Llama 2
// family, Mistral, TinyLlama): reads the normalizer / pre-tokenizer / decoder
// / BPE model settings the runtime implements (tokenizer/hf_spm.cpp), rejects
// the others by name, and builds it through MakeHfSpmBpe.
#include <string>
#include <vector>

#include "tools/import/import_internal.h"
#include "tools/import/json.h"

namespace lamina::tok {
namespace {

constexpr const char* kMark = kSpaceMark;

using hfspm::Config;
using hfspm::kAdded;
using hfspm::kInModel;
using hfspm::kLstrip;
using hfspm::kNormalized;
using hfspm::kRstrip;
using hfspm::kSpecial;
using hfspm::Prepend;

// ------------------------------------------------------- tokenizer.json
const char* TypeOf(const json::Value* v) {
  const json::Value* t = v ? v->Find("type") : nullptr;
  return t && t->is_string() ? t->as_string().c_str() : "";
}
bool StrIs(const json::Value* v, const char* key, std::string_view want) {
  const json::Value* x = v ? v->Find(key) : nullptr;
  return x && x->is_string() && x->as_string() == want;
}
bool BoolOf(const json::Value* v, const char* key, bool dflt) {
  const json::Value* x = v ? v->Find(key) : nullptr;
  return x && x->is_bool() ? x->as_bool() : dflt;
}
/// Replace's pattern {"String": from} with content `to`.
bool IsReplace(const json::Value& v, std::string_view from, std::string_view to) {
  const json::Value* pat = v.Find("pattern");
  return std::string_view(TypeOf(&v)) == "Replace" && pat && StrIs(pat, "String", from) &&
         StrIs(&v, "content", to);
}
/// Flattens a "Sequence" (key `list`) into its elements; null -> none.
std::vector<const json::Value*> Flatten(const json::Value* v, const char* list) {
  std::vector<const json::Value*> out;
  if (!v || v->is_null()) return out;
  if (std::string_view(TypeOf(v)) == "Sequence") {
    const json::Value* items = v->Find(list);
    if (items && items->is_array())
      for (const auto& x : items->items()) out.push_back(&x);
    return out;
  }
  out.push_back(v);
  return out;
}
bool MetaspacePrepend(const json::Value& v, Prepend* p, std::string* what) {
  if (!StrIs(&v, "replacement", kMark)) {
    *what = "Metaspace with a replacement other than U+2581";
    return false;
  }
  if (const json::Value* s = v.Find("prepend_scheme"); s && s->is_string()) {
    const std::string& x = s->as_string();
    if (x == "always") {
      *p = Prepend::kAlways;
    } else if (x == "first") {
      *p = Prepend::kFirst;
    } else if (x == "never") {
      *p = Prepend::kNever;
    } else {
      *what = "Metaspace prepend_scheme '" + x + "'";
      return false;
    }
  } else {
    *p = BoolOf(&v, "add_prefix_space", true) ? Prepend::kAlways : Prepend::kNever;
  }
  return true;
}

std::string JsonDirOf(const std::string& path) {
  const size_t s = path.rfind('/');
  return s == std::string::npos ? std::string(".") : path.substr(0, s);
}
/// A token name in tokenizer_config.json: "name" or {"content": "name"}.
std::string ConfigToken(const json::Value* cfg, const char* key) {
  const json::Value* v = cfg ? cfg->Find(key) : nullptr;
  if (v && v->is_string()) return v->as_string();
  const json::Value* c = v ? v->Find("content") : nullptr;
  return c && c->is_string() ? c->as_string() : "";
}

}  // namespace

std::unique_ptr<Tokenizer> LoadHfSpmBpe(const std::string& path, const json::Value& root,
                                        std::string* err) {
  auto bad = [&](const std::string& what) {
    *err = path + ": " + what;
    return nullptr;
  };
  auto unsupported = [&](const std::string& what) {
    return bad("unsupported SentencePiece-style tokenizer.json: " + what +
               " (supported: normalizer Prepend(\"\xE2\x96\x81\") + Replace(\" \", "
               "\"\xE2\x96\x81\") or a Metaspace pre-tokenizer, BPE, decoder Replace/"
               "ByteFallback/Fuse/Strip or Metaspace; use lamina-convert --tokenizer none to "
               "convert without a tokenizer)");
  };
  Config cfg;
  const json::Value* model = root.Find("model");
  // Normalizer.
  for (const json::Value* n : Flatten(root.Find("normalizer"), "normalizers")) {
    const std::string_view t = TypeOf(n);
    if (t == "Prepend" && StrIs(n, "prepend", kMark)) {
      cfg.norm_prepend = true;
    } else if (IsReplace(*n, " ", kMark)) {
      cfg.norm_replace = true;
    } else {
      return unsupported("normalizer '" + std::string(t) + "'");
    }
  }
  // Pre-tokenizer.
  for (const json::Value* p : Flatten(root.Find("pre_tokenizer"), "pretokenizers")) {
    const std::string_view t = TypeOf(p);
    std::string what;
    if (t != "Metaspace") return unsupported("pre_tokenizer '" + std::string(t) + "'");
    if (cfg.metaspace) return unsupported("two Metaspace pre-tokenizers");
    if (!MetaspacePrepend(*p, &cfg.meta_prepend, &what)) return unsupported(what);
    cfg.metaspace = true;
    cfg.meta_split = BoolOf(p, "split", true);
  }
  if (!cfg.metaspace && !(cfg.norm_prepend && cfg.norm_replace))
    return unsupported(
        "neither a Prepend + Replace normalizer nor a Metaspace pre-tokenizer (not a "
        "SentencePiece-style tokenizer)");
  // Decoder.
  bool dec_meta = false;
  for (const json::Value* d : Flatten(root.Find("decoder"), "decoders")) {
    const std::string_view t = TypeOf(d);
    std::string what;
    if (IsReplace(*d, kMark, " ")) {
      cfg.dec_replace = true;
    } else if (t == "ByteFallback") {
      cfg.dec_bytes = true;
    } else if (t == "Fuse") {
    } else if (t == "Strip" && StrIs(d, "content", " ")) {
      int64_t start = 0, stop = 0;
      const json::Value* a = d->Find("start");
      const json::Value* b = d->Find("stop");
      if (!a || !a->as_int64(&start) || start < 0 || start > 8 || !b || !b->as_int64(&stop) ||
          stop != 0)
        return unsupported("decoder Strip other than (start <= 8, stop 0)");
      cfg.dec_strip = static_cast<uint8_t>(start);
    } else if (t == "Metaspace") {
      Prepend p;
      if (!MetaspacePrepend(*d, &p, &what)) return unsupported("decoder " + what);
      cfg.dec_replace = true;
      cfg.dec_strip = p == Prepend::kNever ? 0 : 1;
      dec_meta = true;
    } else {
      return unsupported("decoder '" + std::string(t) + "'");
    }
  }
  if (!cfg.dec_replace && !dec_meta)
    return unsupported("a decoder that does not map U+2581 back to a space");
  // Model.
  if (!model || !model->is_object() || !StrIs(model, "type", "BPE"))
    return unsupported("model.type is not BPE");
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json::Value* v = model->Find(k);
    if (v && !v->is_null() && !(v->is_string() && v->as_string().empty()))
      return unsupported(std::string("model.") + k);
  }
  if (const json::Value* d = model->Find("dropout");
      d && !d->is_null() && !(d->is_number() && d->as_number() == 0.0))
    return unsupported("model.dropout (non-deterministic)");
  cfg.byte_fallback = BoolOf(model, "byte_fallback", false);
  cfg.fuse_unk = BoolOf(model, "fuse_unk", false);
  cfg.ignore_merges = BoolOf(model, "ignore_merges", false);
  const json::Value* vocab = model->Find("vocab");
  const json::Value* merges = model->Find("merges");
  if (!vocab || !vocab->is_object()) return bad("missing model.vocab");
  if (!merges || !merges->is_array()) return bad("missing model.merges");
  const size_t nv = vocab->size();
  if (nv == 0 || nv > (1u << 24)) return bad("model.vocab size " + std::to_string(nv) + " invalid");
  std::vector<std::string> pieces(nv);
  std::vector<uint8_t> flags(nv, 0);
  for (const auto& m : vocab->members()) {
    int64_t id;
    if (!m.second.as_int64(&id) || id < 0 || static_cast<size_t>(id) >= nv)
      return bad("model.vocab['" + m.first + "']: id not in [0, vocab size)");
    if (flags[id]) return bad("model.vocab: id " + std::to_string(id) + " used twice");
    if (m.first.empty()) return bad("model.vocab: empty token");
    pieces[id] = m.first;
    flags[id] = kInModel;
  }
  if (const json::Value* at = root.Find("added_tokens"); at && at->is_array()) {
    for (const auto& a : at->items()) {
      int64_t id;
      const json::Value* idv = a.Find("id");
      const json::Value* content = a.Find("content");
      if (!idv || !idv->as_int64(&id) || id < 0 || id >= (1 << 24) || !content ||
          !content->is_string() || content->as_string().empty())
        return bad("added_tokens: entry without a valid id/content");
      if (BoolOf(&a, "single_word", false))
        return unsupported("added token '" + content->as_string() + "' with single_word");
      if (static_cast<size_t>(id) >= pieces.size()) {
        pieces.resize(id + 1);
        flags.resize(id + 1, 0);
      }
      if ((flags[id] & kInModel) && pieces[id] != content->as_string())
        return bad("added_tokens: id " + std::to_string(id) + " is '" + content->as_string() +
                   "' but model.vocab has '" + pieces[id] + "'");
      if (flags[id] & kAdded) return bad("added_tokens: id " + std::to_string(id) + " twice");
      pieces[id] = content->as_string();
      flags[id] |= kAdded;
      if (BoolOf(&a, "special", false)) flags[id] |= kSpecial;
      if (BoolOf(&a, "lstrip", false)) flags[id] |= kLstrip;
      if (BoolOf(&a, "rstrip", false)) flags[id] |= kRstrip;
      if (BoolOf(&a, "normalized", !(flags[id] & kSpecial))) flags[id] |= kNormalized;
    }
  }
  for (size_t i = 0; i < pieces.size(); ++i)
    if (!flags[i]) return bad("token id " + std::to_string(i) + " missing");
  // Merges: "a b" strings or [a, b] arrays, by model.vocab string.
  StrIdMap map;
  auto key_of = [&pieces](int32_t id) { return std::string_view(pieces[id]); };
  std::vector<uint8_t> in_model(pieces.size());
  for (size_t i = 0; i < pieces.size(); ++i) in_model[i] = (flags[i] & kInModel) != 0;
  map.Build(pieces.size(), key_of, &in_model);
  std::vector<std::pair<int32_t, int32_t>> mlist;
  mlist.reserve(merges->size());
  for (size_t i = 0; i < merges->items().size(); ++i) {
    std::string_view l, r;
    std::string what;
    if (!SplitMerge(merges->items()[i], &l, &r, &what))
      return bad("merges[" + std::to_string(i) + "]: " + what);
    const int32_t a = map.Find(l, key_of), b = map.Find(r, key_of);
    if (a < 0 || b < 0) return bad("merges[" + std::to_string(i) + "]: token not in model.vocab");
    mlist.emplace_back(a, b);
  }
  // unk / bos / eos: model.unk_token; tokenizer_config.json beside the file
  // (bos_token, eos_token), else the post-processor's first special token and
  // "</s>".
  auto id_of = [&](const std::string& name) -> int32_t {
    if (name.empty()) return -1;
    for (size_t i = 0; i < pieces.size(); ++i)
      if (pieces[i] == name) return static_cast<int32_t>(i);
    return -1;
  };
  int32_t unk = -1;
  if (const json::Value* u = model->Find("unk_token"); u && u->is_string()) {
    unk = map.Find(u->as_string(), key_of);
    if (unk < 0) return bad("model.unk_token '" + u->as_string() + "' not in model.vocab");
  }
  json::Value tc;
  std::string e;
  const bool have_tc = json::ParseFile(JsonDirOf(path) + "/tokenizer_config.json", &tc, &e);
  std::string bos_name = have_tc ? ConfigToken(&tc, "bos_token") : "";
  std::string eos_name = have_tc ? ConfigToken(&tc, "eos_token") : "";
  if (bos_name.empty()) {
    const json::Value* pp = root.Find("post_processor");
    const json::Value* single = pp ? pp->Find("single") : nullptr;
    if (single && single->is_array() && single->size() > 0) {
      const json::Value* st = single->items()[0].Find("SpecialToken");
      const json::Value* id = st ? st->Find("id") : nullptr;
      if (id && id->is_string()) bos_name = id->as_string();
    }
  }
  if (eos_name.empty()) eos_name = "</s>";
  const int32_t bos = id_of(bos_name), eos = id_of(eos_name);
  auto t =
      MakeHfSpmBpe(cfg, std::move(pieces), std::move(flags), std::move(mlist), unk, bos, eos, &e);
  if (!t) return bad(e);
  return t;
}

}  // namespace lamina::tok
