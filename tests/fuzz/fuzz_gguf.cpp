// libFuzzer harness: a GGUF file through lamina-convert's GGUF import (reader,
// vocabulary, dequantization, packing); a converted model is then loaded and
// run for 2 tokens.
#include "tests/fuzz/fuzz_util.h"
#include "tools/convert/convert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string dir = lamina::fuzz::WriteParts(data, size, "gguf", {"in.gguf"});
  const std::string out = lamina::fuzz::Dir() + "/gguf.lamina";
  lamina::convert::ConvertOptions o;
  o.quiet = true;
  std::string err;
  const bool ok = lamina::convert::ConvertGguf(dir + "/in.gguf", out, o, &err);
  lamina::fuzz::AfterConvert(ok, err, out);
  return 0;
}
