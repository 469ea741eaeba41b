// libFuzzer harness: a .lamina file through lamina_model_load, then a 2-token
// evaluation, a greedy sample, tokenize/detokenize and the chat template
// (tests/fuzz/fuzz_util.h LoadAndEval). Seeds: converted synthetic models.
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = lamina::fuzz::Dir() + "/in.lamina";
  lamina::fuzz::WriteFile(path, std::string_view(reinterpret_cast<const char*>(data), size));
  lamina::fuzz::LoadAndEval(path);
  return 0;
}
