// libFuzzer harness: a Hugging Face directory (parts: config.json,
// model.safetensors, tokenizer.json) through lamina-convert's HF import; a
// converted model is then loaded and run for 2 tokens. The tokenizer.json is
// also loaded on its own and round-trips a fixed text when it loads.
#include "tests/fuzz/fuzz_util.h"
#include "tools/convert/convert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto p = lamina::fuzz::Parts(data, size, 3);
  const std::string dir = lamina::fuzz::Dir() + "/hf";
  static const bool made = std::system(("mkdir -p '" + dir + "'").c_str()) == 0;
  if (!made) std::abort();
  lamina::fuzz::WriteFile(dir + "/config.json", p[0]);
  lamina::fuzz::WriteFile(dir + "/model.safetensors", p[1]);
  lamina::fuzz::WriteFile(dir + "/tokenizer.json", p[2]);
  std::string err;
  if (auto t = lamina::Tokenizer::FromFile(dir + "/tokenizer.json", &err)) {
    std::vector<int32_t> ids;
    if (t->Encode("Hello world <s> \xC3\xA9", true, true, &ids, &err)) (void)t->Decode(ids);
    const auto blob = t->Serialize();
    auto u = lamina::Tokenizer::Deserialize(blob.data(), blob.size(), &err);
    LAMINA_FUZZ_CHECK(u && u->Serialize() == blob, "tokenizer blob round trip");
  }
  const std::string out = lamina::fuzz::Dir() + "/hf.lamina";
  lamina::convert::ConvertOptions o;
  o.quiet = true;
  err.clear();
  if (lamina::convert::ConvertHf(dir, out, o, &err)) {
    lamina::fuzz::LoadAndEval(out);
  } else {
    LAMINA_FUZZ_CHECK(!err.empty(), "a failed conversion says why");
  }
  return 0;
}
