// Tokenizer importers (tools only, library lamina_import): read a tokenizer in
// its source format and build lamina's own implementation of it, which the
// converter then serialises into the model file. The runtime library never
// reads these formats (it only deserialises that blob).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace lamina {

/// tokenizer.model (tiktoken text or SentencePiece protobuf, detected),
/// tokenizer.json (HF), tokenizer.bin (llama2.c). Error: nullptr + *err.
/// A tiktoken file's special-token names come from tokenizer_config.json /
/// tokenizer.json beside it when present, else Meta's Llama 3.1/3.2 names.
std::unique_ptr<Tokenizer> TokenizerFromFile(const std::string& path, std::string* err);
/// tiktoken tokenizer.model with explicit names for ids 128000.. (256 of
/// them; empty = the Llama 3.1/3.2 names).
std::unique_ptr<Tokenizer> TokenizerFromTiktoken(const std::string& path,
                                                 const std::vector<std::string>& special_names,
                                                 std::string* err);
/// The special names TokenizerFromFile uses for a tiktoken file at `path`
/// (empty = no Hugging Face file beside it: Llama 3.1/3.2 names).
std::vector<std::string> TiktokenSpecialNamesFor(const std::string& path);
/// A GGUF vocabulary (tokenizer.ggml.*, model "gpt2" or "llama").
std::unique_ptr<Tokenizer> TokenizerFromGguf(const GgufVocab& vocab, std::string* err);

}  // namespace lamina
