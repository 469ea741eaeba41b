// lamina-perplexity against a NumPy computation (tests/reference/perplexity_ref.py)
// from the logits llama-run --tokens ... --dump-logits writes for the same
// windows, and its errors on bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "tests/quality_test_util.h"
#include "tests/testutil.h"

namespace lamina::test {
namespace {

const char kStory[] =
    "Once upon a time, there was a little dog named Max. Max liked to run in the green "
    "field behind the house. One day he found a red ball under a tree. He picked it up and "
    "ran to his friend Sam. Sam was happy and threw the ball far away. Max ran and ran until "
    "he was tired. Then they sat in the sun and ate apples. The end.\n";

// Converts tiny synthetic models (byte tokenizer: one token per byte) once per case.
std::string MakeModel(const std::string& dir, const std::string& weights, int seed) {
  const std::string path = dir + "/tiny_" + weights + "_" + std::to_string(seed) + ".lamina";
  if (test::Run(Tool("lamina-convert") + " --synthetic tiny --quiet --seed " +
                std::to_string(seed) + " --weights " + weights + " -o " + path) != 0)
    return "";
  return path;
}

TEST(Perplexity, MatchesNumpyOnDumpedLogits) {
  if (test::Run(Python() + " -c 'import numpy' >/dev/null 2>&1") != 0) {
    const char* ci = std::getenv("CI");
    if (ci && *ci) FAIL() << "python3-numpy missing under CI";
    GTEST_SKIP() << "python3-numpy not installed (tools/setup-deps.sh installs it)";
  }
  const std::string dir = TestDataDir("perplexity");
  const std::string q4 = MakeModel(dir, "q4", 11), f32 = MakeModel(dir, "f32", 11);
  ASSERT_FALSE(q4.empty());
  ASSERT_FALSE(f32.empty());
  const std::string text = dir + "/story.txt";
  WriteFile(text, kStory);
  const int C = 40;

  // The tool.
  const std::string js_path = dir + "/ppl.json";
  ASSERT_EQ(test::Run(Tool("lamina-perplexity") + " -m " + q4 + " -f " + text + " -c " +
                      std::to_string(C) + " --kl-base " + f32 + " --json -t 2 > " + js_path +
                      " 2> " + dir + "/ppl.err"),
            0)
      << Slurp(dir + "/ppl.err");
  const std::string js = Slurp(js_path);

  // The same windows, by hand: BOS + the text's tokens, cut into windows of C
  // whose first token is BOS.
  std::string err;
  auto model = engine::Model::Load(q4, engine::ModelOptions{}, &err);
  ASSERT_TRUE(model) << err;
  const Tokenizer* tok = model->tokenizer();
  ASSERT_TRUE(tok);
  std::vector<int32_t> ids;
  ASSERT_TRUE(tok->Encode(kStory, true, false, &ids, &err)) << err;
  const size_t W = ids.size() / C;
  ASSERT_GE(W, 3u);
  std::string all_ids;
  for (size_t w = 0; w < W; ++w) {
    std::string win;
    for (int i = 0; i < C; ++i) {
      const int32_t id = i == 0 ? tok->bos_id() : ids[w * C + i];
      win += (i ? "," : "") + std::to_string(id);
    }
    all_ids += (w ? "," : "") + win;
    for (const auto& [m, tag] : {std::pair{q4, "m"}, std::pair{f32, "b"}}) {
      const std::string out = dir + "/" + tag + std::to_string(w) + ".f32";
      ASSERT_EQ(test::Run(Tool("llama-run") + " -m " + m + " -c " + std::to_string(C) +
                          " --tokens " + win + " --dump-logits " + out + " 2>/dev/null"),
                0);
    }
  }
  WriteFile(dir + "/ids.txt", all_ids);
  std::string cat_m = "cat", cat_b = "cat";
  for (size_t w = 0; w < W; ++w) {
    cat_m += " " + dir + "/m" + std::to_string(w) + ".f32";
    cat_b += " " + dir + "/b" + std::to_string(w) + ".f32";
  }
  ASSERT_EQ(test::Run(cat_m + " > " + dir + "/m.f32 && " + cat_b + " > " + dir + "/b.f32"), 0);
  const std::string ref_path = dir + "/ref.json";
  ASSERT_EQ(test::Run(Python() + " " + SourceDir() + "/tests/reference/perplexity_ref.py --ctx " +
                      std::to_string(C) + " --vocab " + std::to_string(model->config().vocab) +
                      " --tokens " + dir + "/ids.txt --logits " + dir + "/m.f32 --base-logits " +
                      dir + "/b.f32 > " + ref_path),
            0);
  const std::string ref = Slurp(ref_path);
  std::printf("lamina-perplexity: %sNumPy:             %s", js.c_str(), ref.c_str());
  EXPECT_EQ(JsonNumber(js, "n_tokens"), static_cast<double>(W * (C - 1 - C / 2)));
  for (const char* k : {"n_tokens", "ppl", "ppl_stderr", "kl", "kl_p99", "top1", "ppl_ratio"}) {
    const double got = JsonNumber(js, k), want = JsonNumber(ref, k);
    ASSERT_FALSE(std::isnan(got)) << k << " missing from " << js;
    ASSERT_FALSE(std::isnan(want)) << k << " missing from " << ref;
    EXPECT_LE(std::fabs(got - want), 1e-6 * std::fabs(want)) << k << ": " << got << " vs " << want;
  }
  // Quantization moves the model: the figures must not be trivially zero.
  EXPECT_GT(JsonNumber(js, "kl"), 0.0);
  EXPECT_GT(JsonNumber(js, "ppl"), 1.0);

  // Without --kl-base: only the first three keys, same values.
  const std::string js2 = dir + "/ppl2.json";
  ASSERT_EQ(test::Run(Tool("lamina-perplexity") + " -m " + q4 + " -f " + text + " -c " +
                      std::to_string(C) + " --json > " + js2 + " 2>/dev/null"),
            0);
  const std::string j2 = Slurp(js2);
  EXPECT_EQ(j2.find("\"kl\""), std::string::npos) << j2;
  EXPECT_EQ(JsonNumber(j2, "ppl"), JsonNumber(js, "ppl"));
}

// Bad inputs: a clear error naming the file, exit status 1, never a crash.
TEST(PerplexityMalformed, BadTextAndModelsAreClearErrors) {
  const std::string dir = TestDataDir("perplexity_bad");
  const std::string q4 = MakeModel(dir, "q4", 12);
  ASSERT_FALSE(q4.empty());
  const std::string err_path = dir + "/err.txt";
  auto expect_error = [&](const std::string& args, const std::string& needle) {
    const int rc =
        test::Run(Tool("lamina-perplexity") + " " + args + " > /dev/null 2> " + err_path);
    const std::string e = Slurp(err_path);
    EXPECT_EQ(rc, 1) << args << ": " << e;
    EXPECT_NE(e.find(needle), std::string::npos) << args << ": " << e;
  };
  const std::string empty = dir + "/empty.txt", bad = dir + "/latin1.txt",
                    shrt = dir + "/short.txt", ok = dir + "/ok.txt";
  WriteFile(empty, "");
  WriteFile(bad, std::string("caf\xe9 au lait, ") + kStory);
  WriteFile(shrt, "Once upon a time.");
  WriteFile(ok, kStory);
  expect_error("-m " + q4 + " -f " + empty + " -c 32", empty + ": the file is empty");
  expect_error("-m " + q4 + " -f " + bad + " -c 32", bad + ": ");
  expect_error("-m " + q4 + " -f " + shrt + " -c 32", shrt + ": ");
  expect_error("-m " + q4 + " -f " + dir + "/missing.txt -c 32", dir + "/missing.txt");
  // A model without a tokenizer: a llama2.c checkpoint with no tokenizer.bin beside it.
  const std::string bin = dir + "/notok/model.bin", notok = dir + "/notok.lamina";
  ASSERT_TRUE(WriteLlama2cCheckpoint(bin, 5));
  ASSERT_EQ(test::Run(Tool("lamina-convert") + " " + bin + " --quiet -o " + notok), 0);
  expect_error("-m " + notok + " -f " + ok + " -c 32", notok + ": no usable tokenizer");
  // A vocabulary mismatch for --kl-base: tiny (258) vs direct-mini (260).
  const std::string mini = dir + "/mini.lamina";
  ASSERT_EQ(test::Run(Tool("lamina-convert") + " --synthetic direct-mini --quiet -o " + mini), 0);
  expect_error("-m " + q4 + " -f " + ok + " -c 32 --kl-base " + mini, "vocabulary");
  expect_error("-m " + dir + "/nope.lamina -f " + ok, dir + "/nope.lamina");
}

}  // namespace
}  // namespace lamina::test
