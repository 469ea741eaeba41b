// libFuzzer harness: a llama2.c checkpoint (parts: model.bin, tokenizer.bin)
// through lamina-convert's llama2.c import; a converted model is then loaded
// and run for 2 tokens. The tokenizer.bin is also loaded on its own.
#include "tests/fuzz/fuzz_util.h"
#include "tools/convert/convert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string dir =
      lamina::fuzz::WriteParts(data, size, "l2c", {"model.bin", "tokenizer.bin"});
  lamina::fuzz::TryTokenizerFile(dir + "/tokenizer.bin", "Once upon a time \xC3\xA9");
  const std::string out = lamina::fuzz::Dir() + "/l2c.lamina";
  lamina::convert::ConvertOptions o;
  o.quiet = true;
  std::string err;
  const bool ok = lamina::convert::ConvertLlama2c(dir + "/model.bin", out, o, &err);
  lamina::fuzz::AfterConvert(ok, err, out);
  return 0;
}
