// llama-run's app-runtime flags end to end: --session (prompt cache: the second
// run reuses the saved prompt and prints the same greedy output), --keep
// (generation past the context), and --chat's overflow path (drops the oldest
// whole turns, keeps the system prompt) on a model with the Llama 3 tokenizer;
// --stop and --keep with --lookup print the plain run's text.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

#include "tests/engine_test_models.h"
#include "tests/testutil.h"

namespace lamina::test {
namespace {

std::string Slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

class RuntimeCli : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string bin = std::string(LAMINA_BINARY_DIR) + "/llama-run";
    if (!FileExists(bin)) GTEST_SKIP() << "llama-run not built";
    run_ = Tool("llama-run");
    ASSERT_EQ(test::Run(run_ + " --help >/dev/null 2>&1"), 0) << "cannot execute " << run_;
    dir_ = TestDataDir("runtime_cli");
  }
  std::string run_, dir_;
};

TEST_F(RuntimeCli, SessionReusesPromptAndReproducesOutput) {
  TestModelSpec s;
  s.scheme = "q4";
  s.seed = 5;
  const std::string model = dir_ + "/s.lamina";
  std::string err;
  ASSERT_TRUE(WriteTestModel(s, model, &err)) << err;
  const std::string sess = dir_ + "/s.session";
  std::remove(sess.c_str());
  const std::string cmd =
      run_ + " -m " + model + " -p 'Once upon a time there was' -n 12 --temp 0 --session " + sess;
  ASSERT_EQ(test::Run(cmd + " >" + dir_ + "/1.out 2>" + dir_ + "/1.err"), 0)
      << Slurp(dir_ + "/1.err");
  const std::string e1 = Slurp(dir_ + "/1.err");
  EXPECT_EQ(e1.find("reused"), std::string::npos) << e1;
  EXPECT_NE(e1.find("session: saved"), std::string::npos) << e1;
  ASSERT_EQ(test::Run(cmd + " >" + dir_ + "/2.out 2>" + dir_ + "/2.err"), 0)
      << Slurp(dir_ + "/2.err");
  const std::string e2 = Slurp(dir_ + "/2.err");
  // 'Once upon a time there was' + BOS = 27 tokens with the byte tokenizer.
  EXPECT_NE(e2.find("reused 26 of 27 prompt tokens"), std::string::npos) << e2;
  EXPECT_EQ(Slurp(dir_ + "/1.out"), Slurp(dir_ + "/2.out"));
  // A prompt sharing a prefix reuses that prefix.
  ASSERT_EQ(test::Run(run_ + " -m " + model + " -p 'Once upon a hill' -n 4 --temp 0 --session " +
                      sess + " >/dev/null 2>" + dir_ + "/3.err"),
            0);
  EXPECT_NE(Slurp(dir_ + "/3.err").find("reused 13 of 17"), std::string::npos)
      << Slurp(dir_ + "/3.err");
  // A corrupt session is ignored with a warning (and overwritten).
  {
    std::ofstream f(sess, std::ios::binary | std::ios::trunc);
    f << "garbage";
  }
  ASSERT_EQ(test::Run(cmd + " >/dev/null 2>" + dir_ + "/4.err"), 0);
  EXPECT_NE(Slurp(dir_ + "/4.err").find("ignoring session"), std::string::npos)
      << Slurp(dir_ + "/4.err");
}

TEST_F(RuntimeCli, KeepGeneratesPastTheContext) {
  TestModelSpec s;
  s.scheme = "q4";
  s.seed = 5;
  s.tokenizer = false;  // ids only: no stop token
  const std::string model = dir_ + "/k.lamina";
  std::string err;
  ASSERT_TRUE(WriteTestModel(s, model, &err)) << err;
  const std::string base = run_ + " -m " + model + " --tokens 1,2,3,4 -n 300 -c 64 --temp 0";
  ASSERT_EQ(test::Run(base + " --keep 4 >" + dir_ + "/k.out 2>" + dir_ + "/k.err"), 0)
      << Slurp(dir_ + "/k.err");
  EXPECT_NE(Slurp(dir_ + "/k.err").find("generated 300 tokens"), std::string::npos)
      << Slurp(dir_ + "/k.err");
  ASSERT_EQ(test::Run(base + " >/dev/null 2>" + dir_ + "/nk.err"), 0);
  EXPECT_NE(Slurp(dir_ + "/nk.err").find("stopped: context full"), std::string::npos);
  EXPECT_EQ(test::Run(base + " --keep 64 >/dev/null 2>&1"), 2);
}

TEST_F(RuntimeCli, StopAndKeepCombineWithLookup) {
  TestModelSpec s;
  s.scheme = "q4";
  s.seed = 5;
  const std::string text_model = dir_ + "/l.lamina", ids_model = dir_ + "/li.lamina";
  std::string err;
  ASSERT_TRUE(WriteTestModel(s, text_model, &err)) << err;
  s.tokenizer = false;  // ids only: no stop token, so generation runs into the shifts
  ASSERT_TRUE(WriteTestModel(s, ids_model, &err)) << err;
  // Greedy: --lookup prints exactly the plain text, with --stop (cut at the
  // same place) and with --keep (through context shifts).
  const std::string text_run =
      run_ + " -m " + text_model + " -p 'Once upon a time there was' --temp 0 -n 40";
  ASSERT_EQ(test::Run(text_run + " >" + dir_ + "/free.out 2>/dev/null"), 0);
  const std::string free_text = Slurp(dir_ + "/free.out");
  ASSERT_GE(free_text.size(), 20u);
  const std::string stop = free_text.substr(12, 3);
  ASSERT_EQ(stop.find('\''), std::string::npos);
  const std::string ids_run =
      run_ + " -m " + ids_model + " --tokens 1,2,3,4,1,2,3,4 -n 120 -c 48 --temp 0 --keep 4";
  for (const std::string& cmd : {text_run + " --stop '" + stop + "'", ids_run}) {
    ASSERT_EQ(test::Run(cmd + " >" + dir_ + "/p.out 2>" + dir_ + "/p.err"), 0)
        << Slurp(dir_ + "/p.err");
    ASSERT_EQ(test::Run(cmd + " --lookup >" + dir_ + "/s.out 2>" + dir_ + "/s.err"), 0)
        << Slurp(dir_ + "/s.err");
    EXPECT_EQ(Slurp(dir_ + "/s.out"), Slurp(dir_ + "/p.out")) << cmd;
    EXPECT_NE(Slurp(dir_ + "/s.err").find("[llama-run] speculative:"), std::string::npos)
        << Slurp(dir_ + "/s.err");
  }
  EXPECT_NE(Slurp(dir_ + "/p.err").find("generated 120 tokens"), std::string::npos)
      << Slurp(dir_ + "/p.err");
  EXPECT_NE(Slurp(dir_ + "/s.err").find("generated 120,"), std::string::npos)
      << Slurp(dir_ + "/s.err");
}

TEST_F(RuntimeCli, ChatKeepsSystemPromptAcrossOverflow) {
  LAMINA_REQUIRE_SHARED("tokenizers/llama3/tokenizer.model");
  TestModelSpec s;
  s.scheme = "q4";
  s.seed = 9;
  s.tokenizer_path = SharedDir() + "/tokenizers/llama3/tokenizer.model";
  const std::string model = dir_ + "/chat.lamina";
  std::string err;
  ASSERT_TRUE(WriteTestModel(s, model, &err)) << err;
  const std::string in = dir_ + "/chat.in";
  {
    std::ofstream f(in);
    for (int i = 0; i < 8; ++i)
      f << "Turn " << i
        << ": tell me a long story about the sea, the ships, the sailors and the stars above "
           "them.\n";
  }
  const int rc = test::Run(run_ + " -m " + model +
                           " --chat --system 'You are a terse pirate.' -c 160 -n 24 --temp 0 <" +
                           in + " >" + dir_ + "/chat.out 2>" + dir_ + "/chat.err");
  const std::string e = Slurp(dir_ + "/chat.err");
  ASSERT_EQ(rc, 0) << e;
  EXPECT_NE(e.find("context full: dropped the oldest"), std::string::npos) << e;
  EXPECT_NE(e.find("kept the system prompt"), std::string::npos) << e;
  // The dropped turns leave the cache by a context shift, not a re-read.
  EXPECT_NE(e.find("cache shifted"), std::string::npos) << e;
  EXPECT_EQ(e.find("not sent"), std::string::npos) << e;
  EXPECT_EQ(e.find("starting over"), std::string::npos) << e;
}

}  // namespace
}  // namespace lamina::test
