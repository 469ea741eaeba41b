// libFuzzer harness: a Meta checkpoint directory (parts: params.json,
// consolidated.00.pth = zip + pickle) through lamina-convert's Meta import; a
// converted model is then loaded and run for 2 tokens.
#include "tests/fuzz/fuzz_util.h"
#include "tools/convert/convert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string dir =
      lamina::fuzz::WriteParts(data, size, "meta", {"params.json", "consolidated.00.pth"});
  const std::string out = lamina::fuzz::Dir() + "/meta.lamina";
  lamina::convert::ConvertOptions o;
  o.quiet = true;
  o.no_tokenizer = true;
  std::string err;
  const bool ok = lamina::convert::ConvertMeta(dir, out, o, &err);
  lamina::fuzz::AfterConvert(ok, err, out);
  return 0;
}
