// libFuzzer harness: a Hugging Face directory (parts: config.json,
// model.safetensors, tokenizer.json) through lamina-convert's HF import; a
// converted model is then loaded and run for 2 tokens. The tokenizer.json is
// also loaded on its own (encode, decode, blob round trip).
#include "tests/fuzz/fuzz_util.h"
#include "tools/convert/convert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string dir = lamina::fuzz::WriteParts(
      data, size, "hf", {"config.json", "model.safetensors", "tokenizer.json"});
  lamina::fuzz::TryTokenizerFile(dir + "/tokenizer.json", "Hello world <s> \xC3\xA9");
  const std::string out = lamina::fuzz::Dir() + "/hf.lamina";
  lamina::convert::ConvertOptions o;
  o.quiet = true;
  std::string err;
  const bool ok = lamina::convert::ConvertHf(dir, out, o, &err);
  lamina::fuzz::AfterConvert(ok, err, out);
  return 0;
}
