// libFuzzer harness: text through every kind of tokenizer (byte tokenizer,
// Llama 3-shaped byte-level BPE, SentencePiece-style tokenizer.json, scored
// SentencePiece vocabulary). Invalid UTF-8 must be refused; valid UTF-8 must
// encode, decode back to itself (parse_special off; for the SentencePiece
// kinds only text without U+2581, which they decode as a space by
// definition), stream-decode to the same text, and encode again with special
// tokens parsed.
#include "tests/fuzz/fuzz_util.h"

namespace {

struct Toks {
  std::vector<std::unique_ptr<lamina::Tokenizer>> all;
  std::vector<bool> sentencepiece;  // U+2581 in the text decodes as a space
  Toks() {
    all.push_back(lamina::Tokenizer::Bytes());
    all.push_back(lamina::fuzz::MakeLlama3Like());
    all.push_back(lamina::fuzz::MakeHfSentencePiece());
    all.push_back(lamina::fuzz::MakeScored());
    sentencepiece = {false, false, true, true};
  }
};

bool ValidUtf8(std::string_view s) {
  std::vector<int32_t> ids;
  std::string err;
  return lamina::Tokenizer::Bytes()->Encode(s, false, false, &ids, &err);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Toks toks;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const bool valid = ValidUtf8(text);
  const bool has_mark = text.find("\xE2\x96\x81") != std::string_view::npos;
  for (size_t k = 0; k < toks.all.size(); ++k) {
    const auto& t = toks.all[k];
    std::vector<int32_t> ids;
    std::string err;
    const bool ok = t->Encode(text, false, false, &ids, &err);
    LAMINA_FUZZ_CHECK(ok == valid, "Encode succeeds exactly on valid UTF-8");
    if (!ok) {
      LAMINA_FUZZ_CHECK(!err.empty(), "Encode says why it failed");
      continue;
    }
    for (int32_t id : ids) LAMINA_FUZZ_CHECK(id >= 0 && id < t->vocab_size(), "id in range");
    const std::string back = t->Decode(ids);
    LAMINA_FUZZ_CHECK(back == text || (toks.sentencepiece[k] && has_mark),
                      "Decode(Encode(text)) == text");
    lamina::StreamDecoder sd(*t);
    std::string streamed;
    for (int32_t id : ids) streamed += sd.Push(id);
    streamed += sd.Flush();
    // Decode drops the first piece's leading space of a SentencePiece text;
    // the stream (not after BOS) keeps it.
    LAMINA_FUZZ_CHECK(streamed == back || (toks.sentencepiece[k] && streamed == " " + back),
                      "stream decode == Decode");
    std::vector<int32_t> sp;
    LAMINA_FUZZ_CHECK(t->Encode(text, true, true, &sp, &err), "Encode with specials");
    for (int32_t id : sp) LAMINA_FUZZ_CHECK(id >= 0 && id < t->vocab_size(), "id in range");
    (void)t->Decode(sp);
  }
  return 0;
}
