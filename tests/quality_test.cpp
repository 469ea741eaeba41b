// lamina-convert's quantizers end to end: on stories260K (a real trained
// model), the default (GPTQ calibrated on the model's own samples), the
// data-free scale search and --calib (GPTQ on text) move the model less far
// from f32 than RTN, as lamina-perplexity --kl-base measures on a text the
// calibration did not see; self-calibration's determinism and limits; and
// --calib's errors on bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/quality_test_util.h"
#include "tests/testutil.h"

namespace lamina::test {
namespace {

TEST(Quality, Stories260KDefaultSearchAndGptqBeatRtn) {
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
                        {"search", "--quant search", "q4-search"},
                        {"gptq", "--calib " + calib + " --calib-tokens 1024", "q4-gptq"},
                        {"default", "", "q4-self"}};
  double kl[5] = {};
  for (int i = 0; i < 5; ++i) {
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
  // Measured (docs/QUALITY.md): rtn 0.113, search 0.078 (0.69x), gptq 0.051
  // (0.45x), default 0.052 (0.46x; seeds 1-5: 0.051-0.052). Issue 13's targets are relative to the
  // RTN before f16 scales (KL 0.1085; --quant rtn rounds scales up: 0.1130), so "default <= 0.7x of
  // it" is <= 0.7 x 0.1085 / 0.1130 = 0.672x of kl[1].
  EXPECT_GT(kl[1], 0.0);
  EXPECT_LT(kl[2], 0.8 * kl[1]);
  EXPECT_LT(kl[3], 0.55 * kl[1]);
  EXPECT_LT(kl[4], 0.7 * 0.1085 / 0.1130 * kl[1]);
}

// The default conversion of a float input (--quant auto -> self-calibrated
// GPTQ on a small model) is a function of the input and --seed: the same seed
// gives the same file, another seed another file.
TEST(Quality, SelfCalibDeterministicBySeed) {
  const std::string dir = TestDataDir("quality_self");
  const std::string bin = dir + "/m.bin";
  ASSERT_TRUE(WriteLlama2cCheckpoint(bin, 4));
  auto convert = [&](const std::string& args, const std::string& out) {
    const std::string err = out + ".err";
    EXPECT_EQ(test::Run(Tool("lamina-convert") + " " + bin + " " + args + " -o " + out +
                        " > /dev/null 2> " + err),
              0)
        << Slurp(err);
    return Slurp(out);
  };
  const std::string a = convert("--seed 3", dir + "/a.lamina");
  const std::string b = convert("--seed 3 --quant self", dir + "/b.lamina");
  const std::string c = convert("--seed 4", dir + "/c.lamina");
  const std::string s = convert("--quant search", dir + "/s.lamina");
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(a == c);
  EXPECT_FALSE(a == s);
  EXPECT_NE(a.find("q4-self"), std::string::npos);
  EXPECT_NE(s.find("q4-search"), std::string::npos);
  // Through the rotation path: sampled from the rotated float model.
  EXPECT_NE(convert("--rotate r2", dir + "/r.lamina").find("q4-self+r2"), std::string::npos);
  // auto says what it did (one line on stderr).
  EXPECT_NE(Slurp(dir + "/a.lamina.err").find("sampled from the model itself"), std::string::npos)
      << Slurp(dir + "/a.lamina.err");
  EXPECT_FALSE(FileExists(dir + "/a.lamina.calib-f32.tmp"));
}

// --quant self where there is nothing to sample: a clear error; --quant auto
// then keeps the data-free search. Options that cannot go with it: exit 2.
TEST(QualityMalformed, SelfCalibTinyContextAndBadOptions) {
  const std::string dir = TestDataDir("quality_self_bad");
  const std::string bin = dir + "/ctx1.bin", err = dir + "/err.txt";
  ASSERT_TRUE(WriteLlama2cCheckpoint(bin, 5, 1));
  const std::string cmd = Tool("lamina-convert") + " " + bin + " -o " + dir + "/o.lamina ";
  EXPECT_EQ(test::Run(cmd + "--quant self > /dev/null 2> " + err), 1) << Slurp(err);
  EXPECT_NE(Slurp(err).find("a context of 1 token(s) is too short"), std::string::npos)
      << Slurp(err);
  EXPECT_FALSE(FileExists(dir + "/o.lamina.calib-f32.tmp"));
  EXPECT_EQ(test::Run(cmd + "-q > /dev/null 2> " + err), 0) << Slurp(err);
  EXPECT_NE(Slurp(dir + "/o.lamina").find("q4-search"), std::string::npos);
  for (const std::string& bad :
       std::vector<std::string>{"--quant self --weights q8", "--quant self --calib " + err,
                                "--quant bogus", "--self-calib-tokens 0"})
    EXPECT_EQ(test::Run(cmd + bad + " > /dev/null 2>&1"), 2) << bad;
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
