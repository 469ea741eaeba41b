// libFuzzer harness: a GGUF file through lamina-convert's GGUF import (reader,
// vocabulary, dequantization, packing); a converted model is then loaded and
// run for 2 tokens.
#include "tests/fuzz/fuzz_util.h"
#include "tools/convert/convert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in = lamina::fuzz::Dir() + "/in.gguf";
  const std::string out = lamina::fuzz::Dir() + "/gguf.lamina";
  lamina::fuzz::WriteFile(in, std::string_view(reinterpret_cast<const char*>(data), size));
  lamina::convert::ConvertOptions o;
  o.quiet = true;
  std::string err;
  if (lamina::convert::ConvertGguf(in, out, o, &err)) {
    lamina::fuzz::LoadAndEval(out);
  } else {
    LAMINA_FUZZ_CHECK(!err.empty(), "a failed conversion says why");
  }
  return 0;
}
