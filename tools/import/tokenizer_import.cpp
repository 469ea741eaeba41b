// Tokenizer import entry points: file-kind detection, tiktoken special names
// from the Hugging Face files beside a model, GGUF vocabulary dispatch.
#include "tools/import/tokenizer_import.h"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "tools/import/import_internal.h"
#include "tools/import/json.h"

namespace lamina {
namespace tok {

std::vector<std::string> Llama31SpecialNames() {
  std::vector<std::string> names(256);
  int reserved = 0;
  for (int i = 0; i < 256; ++i) {
    switch (i) {
      case 0:
        names[i] = "<|begin_of_text|>";
        break;
      case 1:
        names[i] = "<|end_of_text|>";
        break;
      case 4:
        names[i] = "<|finetune_right_pad_id|>";
        break;
      case 6:
        names[i] = "<|start_header_id|>";
        break;
      case 7:
        names[i] = "<|end_header_id|>";
        break;
      case 8:
        names[i] = "<|eom_id|>";
        break;
      case 9:
        names[i] = "<|eot_id|>";
        break;
      case 10:
        names[i] = "<|python_tag|>";
        break;
      default:
        names[i] = "<|reserved_special_token_" + std::to_string(reserved++) + "|>";
    }
  }
  return names;
}

namespace {

bool ReadFile(const std::string& path, std::string* out, std::string* err) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    *err = path + ": cannot open";
    return false;
  }
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) {
    *err = path + ": read error";
    return false;
  }
  *out = ss.str();
  return true;
}

bool LooksLikeTiktoken(const std::string& d) {
  // First line: base64 token, one space, decimal rank.
  const size_t nl = d.find('\n');
  const std::string_view line(d.data(), nl == std::string::npos ? d.size() : nl);
  const size_t sp = line.find(' ');
  if (sp == std::string_view::npos || sp == 0 || sp + 1 >= line.size()) return false;
  for (size_t i = 0; i < sp; ++i) {
    const char c = line[i];
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '='))
      return false;
  }
  for (size_t i = sp + 1; i < line.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(line[i])) && line[i] != '\r') return false;
  return true;
}

std::string DirOf(const std::string& path) {
  const size_t s = path.rfind('/');
  return s == std::string::npos ? std::string(".") : path.substr(0, s);
}

}  // namespace
}  // namespace tok

std::unique_ptr<Tokenizer> TokenizerFromFile(const std::string& path, std::string* err) {
  std::string e, data;
  if (!tok::ReadFile(path, &data, &e)) {
    if (err) *err = e;
    return nullptr;
  }
  std::unique_ptr<Tokenizer> t;
  const size_t first = data.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && data[first] == '{') {
    t = tok::LoadHfJson(path, &e);
  } else if (tok::LooksLikeTiktoken(data)) {
    t = tok::LoadTiktoken(path, data, TiktokenSpecialNamesFor(path), &e);
  } else if (!data.empty() && data[0] == 0x0A) {
    // SentencePiece protobuf (field 1, length-delimited) - or a llama2.c
    // tokenizer.bin whose max_token_length happens to be 10.
    std::string e2;
    t = tok::LoadSentencePieceProto(path, data, &e);
    if (!t) t = tok::LoadLlama2cBin(path, data, &e2);
  } else if (data.size() >= 4) {
    t = tok::LoadLlama2cBin(path, data, &e);
  } else {
    e = path +
        ": unrecognised tokenizer file (expected tiktoken tokenizer.model, SentencePiece "
        "tokenizer.model, HF tokenizer.json or llama2.c tokenizer.bin)";
  }
  if (!t && err) *err = e;
  return t;
}

std::vector<std::string> TiktokenSpecialNamesFor(const std::string& path) {
  // The names come from a Hugging Face file beside the model when there is
  // one (tokenizer_config.json's added_tokens_decoder, else tokenizer.json's
  // added_tokens); otherwise they are Meta's Llama 3.1/3.2 names.
  const std::string dir = tok::DirOf(path);
  std::vector<std::string> names;
  for (const char* file : {"/tokenizer_config.json", "/tokenizer.json"}) {
    std::string text, e;
    if (!tok::ReadFile(dir + file, &text, &e)) continue;
    json::Value v;
    if (!json::Parse(text, &v, &e)) continue;
    std::vector<std::string> got(256);
    size_t found = 0;
    auto take = [&](int64_t id, const json::Value* content) {
      if (id >= 128000 && id < 128256 && content && content->is_string() &&
          got[id - 128000].empty()) {
        got[id - 128000] = content->as_string();
        ++found;
      }
    };
    if (const json::Value* dec = v.Find("added_tokens_decoder"); dec && dec->is_object()) {
      for (const auto& m : dec->members()) {
        char* end = nullptr;
        const long long id = std::strtoll(m.first.c_str(), &end, 10);
        if (end && *end == 0) take(id, m.second.Find("content"));
      }
    } else if (const json::Value* at = v.Find("added_tokens"); at && at->is_array()) {
      for (const auto& a : at->items()) {
        int64_t id;
        const json::Value* idv = a.Find("id");
        if (idv && idv->as_int64(&id)) take(id, a.Find("content"));
      }
    }
    if (found == 256) return got;
  }
  return {};
}

std::unique_ptr<Tokenizer> TokenizerFromTiktoken(const std::string& path,
                                                 const std::vector<std::string>& special_names,
                                                 std::string* err) {
  std::string e, data;
  if (!tok::ReadFile(path, &data, &e)) {
    if (err) *err = e;
    return nullptr;
  }
  auto t = tok::LoadTiktoken(path, data, special_names, &e);
  if (!t && err) *err = e;
  return t;
}

std::unique_ptr<Tokenizer> TokenizerFromGguf(const GgufVocab& vocab, std::string* err) {
  std::string e;
  std::unique_ptr<Tokenizer> t;
  if (vocab.model == "gpt2") {
    t = tok::LoadGgufGpt2(vocab, &e);
  } else if (vocab.model == "llama") {
    t = tok::LoadGgufLlama(vocab, &e);
  } else {
    e = "gguf: tokenizer.ggml.model '" + vocab.model + "' not supported (gpt2, llama)";
  }
  if (!t && err) *err = e;
  return t;
}

bool tok::SplitMerge(const json::Value& m, std::string_view* l, std::string_view* r,
                     std::string* what) {
  if (m.is_string()) {
    const std::string& s = m.as_string();
    const size_t sp = s.find(' ');
    if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
      *what = "not two tokens separated by one space";
      return false;
    }
    *l = std::string_view(s).substr(0, sp);
    *r = std::string_view(s).substr(sp + 1);
    return true;
  }
  if (m.is_array() && m.size() == 2 && m.items()[0].is_string() && m.items()[1].is_string()) {
    *l = m.items()[0].as_string();
    *r = m.items()[1].as_string();
    return true;
  }
  *what = "neither \"a b\" nor [a, b]";
  return false;
}

}  // namespace lamina
