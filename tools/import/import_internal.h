// Internals shared by the tokenizer importers of tools/import/ (not a public
// header). Each reader validates its source and builds the runtime's
// implementation through the constructors of tokenizer/internal.h.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/internal.h"
#include "tokenizer/tokenizer.h"

namespace lamina::json {
class Value;
}

namespace lamina::tok {

// byte_bpe_import.cpp: Llama 3 byte-level BPE.
std::unique_ptr<Tokenizer> LoadTiktoken(const std::string& path, const std::string& text,
                                        const std::vector<std::string>& special_names,
                                        std::string* err);
/// tokenizer.json of either family (byte-level, else SentencePiece style).
std::unique_ptr<Tokenizer> LoadHfJson(const std::string& path, std::string* err);
std::unique_ptr<Tokenizer> LoadGgufGpt2(const GgufVocab& v, std::string* err);

// hf_spm_import.cpp: SentencePiece-style tokenizer.json (Prepend/Replace
// normalizer or Metaspace, BPE with byte fallback): `root` is the parsed file
// at `path`.
std::unique_ptr<Tokenizer> LoadHfSpmBpe(const std::string& path, const json::Value& root,
                                        std::string* err);

// spm_import.cpp: scored vocabularies.
std::unique_ptr<Tokenizer> LoadLlama2cBin(const std::string& path, const std::string& data,
                                          std::string* err);
std::unique_ptr<Tokenizer> LoadGgufLlama(const GgufVocab& v, std::string* err);
/// A SentencePiece .model: the protobuf read by the runtime's reader
/// (ReadSpModel, tokenizer/spm_proto.cpp, which also reads kind-3 blobs:
/// pieces, trainer and normalizer settings; a configuration the scored BPE
/// does not implement is an error), cross-checked against libsentencepiece's reading when built
/// with it. Errors are prefixed with `path`.
std::unique_ptr<Tokenizer> LoadSentencePieceProto(const std::string& path, std::string_view proto,
                                                  std::string* err);

// tokenizer_import.cpp.
/// One entry of tokenizer.json's model.merges: "a b" (exactly one space) or
/// ["a", "b"]. False + *what when it is neither.
bool SplitMerge(const json::Value& m, std::string_view* l, std::string_view* r, std::string* what);
/// The Llama 3.1/3.2 names of the 256 special tokens (index i = id 128000+i).
std::vector<std::string> Llama31SpecialNames();

}  // namespace lamina::tok
