// libFuzzer harness: a Meta checkpoint directory (parts: params.json,
// consolidated.00.pth = zip + pickle) through lamina-convert's Meta import; a
// converted model is then loaded and run for 2 tokens.
#include "tests/fuzz/fuzz_util.h"
#include "tools/convert/convert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto p = lamina::fuzz::Parts(data, size, 2);
  const std::string dir = lamina::fuzz::Dir() + "/meta";
  static const bool made = std::system(("mkdir -p '" + dir + "'").c_str()) == 0;
  if (!made) std::abort();
  lamina::fuzz::WriteFile(dir + "/params.json", p[0]);
  lamina::fuzz::WriteFile(dir + "/consolidated.00.pth", p[1]);
  const std::string out = lamina::fuzz::Dir() + "/meta.lamina";
  lamina::convert::ConvertOptions o;
  o.quiet = true;
  o.no_tokenizer = true;
  std::string err;
  if (lamina::convert::ConvertMeta(dir, out, o, &err)) {
    lamina::fuzz::LoadAndEval(out);
  } else {
    LAMINA_FUZZ_CHECK(!err.empty(), "a failed conversion says why");
  }
  return 0;
}
