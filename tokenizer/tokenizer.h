// Tokenizers of the Llama family: Llama 3 byte-level BPE (tiktoken
// tokenizer.model / HF tokenizer.json), SentencePiece-style BPE (HF
// tokenizer.json), scored vocabularies (SentencePiece .model, llama2.c
// tokenizer.bin, GGUF), and a plain byte tokenizer for synthetic models. One
// class, serialisable into a lamina model file. The runtime only builds it
// from that blob (Deserialize); reading the source formats is the job of the
// tools' importers (tools/import/tokenizer_import.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lamina {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", "ipython"
  std::string content;
};

/// A vocabulary as GGUF stores it (tokenizer.ggml.*).
struct GgufVocab {
  std::string model;  // "gpt2" (byte-level BPE, Llama 3) or "llama" (SentencePiece-style)
  std::string pre;    // tokenizer.ggml.pre, e.g. "llama-bpe"
  std::vector<std::string> tokens;
  std::vector<float> scores;        // may be empty
  std::vector<int32_t> types;       // may be empty (1 normal, 2 unknown, 3 control, 6 byte, ...)
  std::vector<std::string> merges;  // "a b", gpt2 model only
  int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
  bool add_bos = true;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  /// 256 byte tokens + <bos>=256, <eos>=257 (vocab 258): for synthetic models.
  static std::unique_ptr<Tokenizer> Bytes();
  /// Inverse of Serialize (blob embedded in a model file). Validates fully.
  static std::unique_ptr<Tokenizer> Deserialize(const uint8_t* data, size_t size, std::string* err);
  virtual std::vector<uint8_t> Serialize() const = 0;

  /// Text -> ids. parse_special: special-token text maps to its id (HF
  /// behaviour). Fails (false + *err) only on invalid UTF-8 input.
  virtual bool Encode(std::string_view text, bool add_bos, bool parse_special,
                      std::vector<int32_t>* out, std::string* err) const = 0;
  /// Ids -> text; invalid UTF-8 is replaced by U+FFFD, one per maximal
  /// ill-formed subpart (= Python's errors='replace'); unknown ids by "".
  /// Llama 3 special tokens decode to their text; SentencePiece control
  /// tokens to "" and the leading space of the first piece is dropped.
  virtual std::string Decode(const std::vector<int32_t>& ids) const;
  /// Bytes token `id` contributes to decoded text after token `prev` (-1:
  /// none). `at_start`: SentencePiece drops the piece's leading space (Decode
  /// passes it for the first non-control piece, as libsentencepiece does;
  /// StreamDecoder for the piece right after BOS); llama2.c vocabularies drop
  /// it after BOS (run.c). Used by Decode and StreamDecoder.
  virtual std::string DecodePiece(int32_t prev, int32_t id, bool at_start) const;
  /// Raw bytes of one token (no replacement, no space handling; SentencePiece:
  /// U+2581 as ' ', <0xNN> as that byte, control tokens "").
  virtual std::string TokenBytes(int32_t id) const = 0;

  virtual int32_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
  /// Ids that end a generation (Llama 3: 128001, 128008, 128009).
  virtual std::vector<int32_t> stop_ids() const = 0;
  virtual bool IsSpecial(int32_t id) const = 0;
  /// Scored vocabularies (SentencePiece, llama2.c, GGUF "llama"): fills `out`
  /// as GGUF stores it (model "llama", tokens, scores, types, bos/eos/unk) and
  /// returns true; false for other kinds.
  virtual bool ExportVocab(GgufVocab* /*out*/) const { return false; }
  /// "llama3" when the Llama 3.x instruct template applies, "" otherwise.
  virtual std::string chat_template() const = 0;
  /// Renders messages with the chat template; add_generation_prompt appends the
  /// assistant header. Returns "" when the tokenizer has no template.
  std::string ApplyChatTemplate(const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt) const;
  /// `s` without leading/trailing whitespace as Python's str.strip() defines
  /// it (the template trims contents, as Meta's reference and the Hugging
  /// Face template do).
  static std::string_view TrimWhitespace(std::string_view s);
};

/// Streaming detokenizer: never emits a partial UTF-8 sequence; holds
/// incomplete bytes until they complete, replaces invalid ones with U+FFFD.
/// (SentencePiece: drops the leading space of the first piece after BOS.)
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok) : tok_(tok) {}
  std::string Push(int32_t id);  // text now complete
  std::string Flush();           // whatever is held (invalid bytes replaced)
  void Reset();

 private:
  const Tokenizer& tok_;
  std::string pending_;
  int32_t prev_ = -1;
};

}  // namespace lamina
