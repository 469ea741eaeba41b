// libFuzzer harness: the Llama 3 chat template. The input is split at NUL
// bytes into role, content, role, content, ...; the rendered text must start
// with <|begin_of_text|>, tokenize with special tokens parsed (valid UTF-8
// contents) and decode back to exactly the rendered text.
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto tok = lamina::fuzz::MakeLlama3Like();
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> fields;
  size_t start = 0;
  for (size_t i = 0; i <= in.size(); ++i)
    if (i == in.size() || in[i] == '\0') {
      fields.emplace_back(in.substr(start, i - start));
      start = i + 1;
    }
  std::vector<lamina::ChatMessage> msgs;
  for (size_t i = 0; i + 1 < fields.size(); i += 2) msgs.push_back({fields[i], fields[i + 1]});
  const bool gen = !fields.empty() && fields.size() % 2 == 1;
  const std::string text = tok->ApplyChatTemplate(msgs, gen);
  LAMINA_FUZZ_CHECK(text.rfind("<|begin_of_text|>", 0) == 0, "starts with <|begin_of_text|>");
  std::vector<int32_t> ids;
  std::string err;
  if (tok->Encode(text, false, true, &ids, &err)) {
    LAMINA_FUZZ_CHECK(!ids.empty() && ids[0] == 128000, "first id is <|begin_of_text|>");
    LAMINA_FUZZ_CHECK(tok->Decode(ids) == text, "Decode(Encode(rendered)) == rendered");
  } else {
    LAMINA_FUZZ_CHECK(!err.empty(), "Encode says why it failed");
  }
  return 0;
}
