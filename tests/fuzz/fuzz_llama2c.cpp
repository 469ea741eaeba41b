// libFuzzer harness: a llama2.c checkpoint (parts: model.bin, tokenizer.bin)
// through lamina-convert's llama2.c import; a converted model is then loaded
// and run for 2 tokens. The tokenizer.bin is also loaded on its own.
#include "tests/fuzz/fuzz_util.h"
#include "tools/convert/convert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto p = lamina::fuzz::Parts(data, size, 2);
  const std::string dir = lamina::fuzz::Dir() + "/l2c";
  static const bool made = std::system(("mkdir -p '" + dir + "'").c_str()) == 0;
  if (!made) std::abort();
  lamina::fuzz::WriteFile(dir + "/model.bin", p[0]);
  lamina::fuzz::WriteFile(dir + "/tokenizer.bin", p[1]);
  std::string err;
  if (auto t = lamina::Tokenizer::FromFile(dir + "/tokenizer.bin", &err)) {
    std::vector<int32_t> ids;
    if (t->Encode("Once upon a time \xC3\xA9", true, true, &ids, &err)) (void)t->Decode(ids);
  }
  const std::string out = lamina::fuzz::Dir() + "/l2c.lamina";
  lamina::convert::ConvertOptions o;
  o.quiet = true;
  err.clear();
  if (lamina::convert::ConvertLlama2c(dir + "/model.bin", out, o, &err)) {
    lamina::fuzz::LoadAndEval(out);
  } else {
    LAMINA_FUZZ_CHECK(!err.empty(), "a failed conversion says why");
  }
  return 0;
}
