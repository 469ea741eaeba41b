// lamina-convert's quantizers end to end: on stories260K (a real trained
// model), the default scale search and --calib (GPTQ) move the model less far
// from f32 than RTN, as lamina-perplexity --kl-base measures on a text the
// calibration did not see; and --calib's errors on bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "tests/quality_test_util.h"
#include "tests/testutil.h"

namespace lamina::test {
namespace {

TEST(Quality, Stories260KSearchAndGptqBeatRtn) {
  LAMINA_REQUIRE_SHARED("models/stories260K/stories260K.bin");
  const std::string bin = SharedDir() + "/models/stories260K/stories260K.bin";
  const std::string dir = TestDataDir("quality");
  const std::string eval = SourceDir() + "/tests/data/stories_eval.txt";
  const std::string calib = SourceDir() + "/tests/data/stories_calib.txt";
  struct Variant {
    const char* name;
    std::string args;
    const char* scheme;
  };
  const Variant vs[] = {{"f32", "--weights f32", "f32"},
                        {"rtn", "--quant rtn", "q4-rtn"},
                        {"search", "", "q4-search"},
                        {"gptq", "--calib " + calib + " --calib-tokens 1024", "q4-gptq"}};
  double kl[4] = {};
  for (int i = 0; i < 4; ++i) {
    const std::string out = dir + "/" + vs[i].name + ".lamina";
    ASSERT_EQ(test::Run(Tool("lamina-convert") + " " + bin + " -q " + vs[i].args + " -o " + out), 0)
        << vs[i].name;
    const std::string info = dir + "/" + vs[i].name + ".info";
    ASSERT_EQ(test::Run(Tool("lamina-convert") + " --info " + out + " > " + info), 0);
    EXPECT_NE(Slurp(info).find(std::string("scheme '") + vs[i].scheme + "'"), std::string::npos)
        << Slurp(info);
    if (i == 0) continue;
    const std::string js = dir + "/" + vs[i].name + ".json";
    ASSERT_EQ(test::Run(Tool("lamina-perplexity") + " -m " + out + " -f " + eval +
                        " -c 256 --kl-base " + dir + "/f32.lamina --json > " + js + " 2>/dev/null"),
              0);
    kl[i] = JsonNumber(Slurp(js), "kl");
    std::printf("%-6s %s", vs[i].name, Slurp(js).c_str());
  }
  // Measured (docs/QUALITY.md): rtn 0.113, search 0.078 (0.69x), gptq 0.049 (0.43x).
  EXPECT_GT(kl[1], 0.0);
  EXPECT_LT(kl[2], 0.8 * kl[1]);
  EXPECT_LT(kl[3], 0.55 * kl[1]);
}

// --calib on bad input: a clear error naming the file, exit status 1.
TEST(QualityMalformed, CalibFilesAndModelsWithoutTokenizer) {
  const std::string dir = TestDataDir("quality_bad");
  const std::string err_path = dir + "/err.txt";
  auto expect_error = [&](const std::string& args, const std::string& needle) {
    const int rc = test::Run(Tool("lamina-convert") + " " + args + " > /dev/null 2> " + err_path);
    const std::string e = Slurp(err_path);
    EXPECT_EQ(rc, 1) << args << ": " << e;
    EXPECT_NE(e.find(needle), std::string::npos) << args << ": " << e;
  };
  const std::string empty = dir + "/empty.txt", bad = dir + "/latin1.txt",
                    shrt = dir + "/short.txt", ok = dir + "/ok.txt";
  WriteFile(empty, "");
  WriteFile(bad, std::string(600, 'a') + "caf\xe9");
  WriteFile(shrt, "Once upon a time.");
  std::string story;
  for (int i = 0; i < 12; ++i) story += "Once upon a time there was a cat who liked the sun. ";
  WriteFile(ok, story);
  // "tiny" (byte tokenizer, float path): windows of 512 tokens.
  const std::string tiny = "--synthetic tiny -q -o " + dir + "/t.lamina --calib ";
  expect_error(tiny + empty, empty + ": the file is empty");
  expect_error(tiny + bad, bad + ": ");
  expect_error(tiny + shrt, shrt + ": ");
  expect_error(tiny + dir + "/missing.txt", dir + "/missing.txt");
  const std::string bin = dir + "/notok/model.bin";
  ASSERT_TRUE(WriteLlama2cCheckpoint(bin, 3));
  expect_error(bin + " -q -o " + dir + "/n.lamina --calib " + ok, "needs the model's tokenizer");
  EXPECT_FALSE(FileExists(dir + "/n.lamina.calib-f32.tmp"));
  // And a valid calibration works on the same tiny model.
  EXPECT_EQ(test::Run(Tool("lamina-convert") + " " + tiny + ok), 0);
}

}  // namespace
}  // namespace lamina::test
