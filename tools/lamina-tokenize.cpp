// lamina-tokenize: encode/decode text with a Llama-family tokenizer.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "loader/format.h"
#include "loader/model_file.h"
#include "tokenizer/tokenizer.h"
#include "tools/common/cli.h"
#include "tools/import/json.h"
#include "tools/import/tokenizer_import.h"

namespace {

const char kUsage[] =
    "usage: lamina-tokenize --tokenizer PATH (-p TEXT | --decode IDS | --jsonl) [options]\n"
    "\n"
    "PATH: tokenizer.model (Meta tiktoken or SentencePiece), tokenizer.json (Hugging Face,\n"
    "      Llama 3), tokenizer.bin (llama2.c) or model.lamina (its embedded tokenizer).\n"
    "\n"
    "  -p TEXT        encode TEXT; prints the ids on one line, comma-separated without\n"
    "                 spaces (e.g. 9906,1917), the form --decode accepts\n"
    "  -f FILE        encode the contents of FILE (same output)\n"
    "  --decode IDS   decode ids separated by commas and/or spaces; prints the text\n"
    "                 (invalid UTF-8 replaced by U+FFFD)\n"
    "  --jsonl        read one JSON string per line on stdin, write one JSON array of\n"
    "                 ids per line (special tokens parsed, no BOS; --no-special/--bos apply)\n"
    "  --no-special   special-token text (e.g. <|eot_id|>) is ordinary text\n"
    "  --bos          prepend the BOS id when encoding\n"
    "  --pieces       with -p/-f: also print each id with its bytes, one per line\n"
    "  --info         first print vocabulary size, bos/eos/stop ids, chat template name\n"
    "  -h, --help     this help\n"
    "\n"
    "Exit status: 0 success, 1 error (message on stderr), 2 usage error.\n";

int Usage(const char* msg) {
  if (msg) std::fprintf(stderr, "lamina-tokenize: %s\n\n", msg);
  std::fputs(kUsage, stderr);
  return 2;
}

bool HasLaminaMagic(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char m[8] = {};
  f.read(m, 8);
  return f.gcount() == 8 && std::memcmp(m, lamina::format::kMagic, 8) == 0;
}

std::unique_ptr<lamina::Tokenizer> Load(const std::string& path, std::string* err) {
  if (!HasLaminaMagic(path)) return lamina::TokenizerFromFile(path, err);
  auto mf = lamina::ModelFile::Open(path, lamina::LoadOptions{}, err);
  if (!mf) return nullptr;
  if (mf->tokenizer_size() == 0) {
    *err = path + ": model file has no embedded tokenizer";
    return nullptr;
  }
  auto t = lamina::Tokenizer::Deserialize(mf->tokenizer_data(), mf->tokenizer_size(), err);
  if (!t) *err = path + ": " + *err;
  return t;
}

std::string Join(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(ids[i]);
  }
  return s;
}

std::string Printable(const std::string& b) {
  std::string out;
  lamina::json::AppendQuoted(&out, b);
  return out;
}

int Main(int argc, char** argv) {
  std::string tok_path, text, decode, file;
  bool have_text = false, have_decode = false, jsonl = false, special = true, bos = false;
  bool pieces = false, info = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) return nullptr;
      (void)name;
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--tokenizer" || a == "-t") {
      const char* v = value("--tokenizer");
      if (!v) return Usage("--tokenizer needs a path");
      tok_path = v;
    } else if (a == "-p" || a == "--prompt") {
      const char* v = value("-p");
      if (!v) return Usage("-p needs text");
      text = v;
      have_text = true;
    } else if (a == "-f") {
      const char* v = value("-f");
      if (!v) return Usage("-f needs a file");
      file = v;
    } else if (a == "--decode") {
      const char* v = value("--decode");
      if (!v) return Usage("--decode needs ids");
      decode = v;
      have_decode = true;
    } else if (a == "--jsonl") {
      jsonl = true;
    } else if (a == "--no-special") {
      special = false;
    } else if (a == "--bos") {
      bos = true;
    } else if (a == "--pieces") {
      pieces = true;
    } else if (a == "--info") {
      info = true;
    } else {
      return Usage(("unknown argument '" + a + "'").c_str());
    }
  }
  if (tok_path.empty()) return Usage("--tokenizer is required");
  if (!file.empty()) {
    std::ifstream f(file, std::ios::binary);
    if (!f) {
      std::fprintf(stderr, "lamina-tokenize: %s: cannot open\n", file.c_str());
      return 1;
    }
    text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    have_text = true;
  }
  const int modes = have_text + have_decode + jsonl;
  if (modes > 1 || (modes == 0 && !info))
    return Usage("give exactly one of -p/-f, --decode, --jsonl (or just --info)");

  std::string err;
  auto tok = Load(tok_path, &err);
  if (!tok) {
    std::fprintf(stderr, "lamina-tokenize: %s\n", err.c_str());
    return 1;
  }
  if (info) {
    std::printf("vocab_size %d\nbos_id %d\neos_id %d\nstop_ids %s\nchat_template %s\n",
                tok->vocab_size(), tok->bos_id(), tok->eos_id(), Join(tok->stop_ids()).c_str(),
                tok->chat_template().empty() ? "(none)" : tok->chat_template().c_str());
    if (modes == 0) return 0;
  }
  if (have_decode) {
    std::vector<int32_t> ids;
    const char* p = decode.c_str();
    while (*p) {
      if (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n') {
        ++p;
        continue;
      }
      char* end = nullptr;
      const long v = std::strtol(p, &end, 10);
      if (end == p || v < 0 || v > 0x7FFFFFFF) {
        std::fprintf(stderr, "lamina-tokenize: --decode: bad id at '%s'\n", p);
        return 1;
      }
      if (v >= tok->vocab_size())
        std::fprintf(stderr,
                     "lamina-tokenize: warning: id %ld >= vocab size %d (decodes to \"\")\n", v,
                     tok->vocab_size());
      ids.push_back(static_cast<int32_t>(v));
      p = end;
    }
    const std::string out = tok->Decode(ids);
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fputc('\n', stdout);
    return 0;
  }
  if (have_text) {
    std::vector<int32_t> ids;
    if (!tok->Encode(text, bos, special, &ids, &err)) {
      std::fprintf(stderr, "lamina-tokenize: %s\n", err.c_str());
      return 1;
    }
    std::printf("%s\n", Join(ids).c_str());
    if (pieces)
      for (int32_t id : ids) std::printf("%d\t%s\n", id, Printable(tok->TokenBytes(id)).c_str());
    return 0;
  }
  // --jsonl
  std::string line, out;
  size_t line_no = 0;
  std::vector<int32_t> ids;
  while (std::getline(std::cin, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lamina::json::Value v;
    std::string perr;
    const bool parsed = lamina::json::Parse(line, &v, &perr);
    if (!parsed || !v.is_string()) {
      std::fprintf(stderr, "lamina-tokenize: stdin line %zu: %s\n", line_no,
                   parsed ? "not a JSON string" : perr.c_str());
      return 1;
    }
    if (!tok->Encode(v.as_string(), bos, special, &ids, &err)) {
      std::fprintf(stderr, "lamina-tokenize: stdin line %zu: %s\n", line_no, err.c_str());
      return 1;
    }
    out = "[" + Join(ids) + "]\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return lamina::tools::RunMain("lamina-tokenize", Main, argc, argv);
}
