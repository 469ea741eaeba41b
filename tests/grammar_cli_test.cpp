// llama-run's constrained-output flags end to end (--grammar, --json-schema,
// --json) on a random-weight test model with the byte tokenizer: the output is
// what the grammar allows whatever the weights, errors are clear, and a cut
// generation is reported.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

#include "tests/engine_test_models.h"
#include "tests/testutil.h"
#include "tools/import/json.h"

namespace lamina::test {
namespace {

std::string Slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void Write(const std::string& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << text;
}

class GrammarCli : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string bin = std::string(LAMINA_BINARY_DIR) + "/llama-run";
    if (!FileExists(bin)) GTEST_SKIP() << "llama-run not built";
    run_ = Tool("llama-run");
    dir_ = TestDataDir("grammar_cli");
    TestModelSpec s;
    s.scheme = "q4";
    s.seed = 9;
    model_ = dir_ + "/g.lamina";
    std::string err;
    ASSERT_TRUE(WriteTestModel(s, model_, &err)) << err;
  }
  // Runs llama-run with `args`; returns the exit status, stdout in *out, stderr in *err.
  int Run(const std::string& args, std::string* out, std::string* err) {
    const int rc = test::Run(run_ + " -m " + model_ + " -p 'Answer:' " + args + " >" + dir_ +
                             "/o.txt 2>" + dir_ + "/e.txt");
    *out = Slurp(dir_ + "/o.txt");
    *err = Slurp(dir_ + "/e.txt");
    return rc;
  }
  std::string run_, dir_, model_;
};

TEST_F(GrammarCli, GrammarForcesTheOutput) {
  Write(dir_ + "/yn.gbnf", "# yes or no, then a full stop\nroot ::= (\"yes\" | \"no\") \".\"\n");
  for (const char* temp : {"0", "1.5"}) {
    std::string out, err;
    ASSERT_EQ(Run(std::string("-n 50 --seed 3 --temp ") + temp + " --grammar " + dir_ + "/yn.gbnf",
                  &out, &err),
              0)
        << err;
    EXPECT_TRUE(out == "yes.\n" || out == "no.\n") << out;
    EXPECT_EQ(err.find("incomplete"), std::string::npos) << err;
  }
}

TEST_F(GrammarCli, JsonSchemaOutputValidates) {
  Write(dir_ + "/s.json", R"({"type":"object","properties":{"ok":{"type":"boolean"},
      "n":{"type":"integer"},"tag":{"enum":["a","b"]}},"required":["ok","n","tag"]})");
  for (int seed = 1; seed <= 3; ++seed) {
    std::string out, err;
    ASSERT_EQ(Run("-n 300 -c 512 --temp 1 --seed " + std::to_string(seed) + " --json-schema " +
                      dir_ + "/s.json",
                  &out, &err),
              0)
        << err;
    json::Value v;
    std::string e;
    ASSERT_TRUE(json::Parse(out, &v, &e)) << e << "\n" << out;
    ASSERT_TRUE(v.is_object()) << out;
    ASSERT_TRUE(v.Find("ok") && v.Find("ok")->is_bool()) << out;
    int64_t n;
    ASSERT_TRUE(v.Find("n") && v.Find("n")->as_int64(&n)) << out;
    ASSERT_TRUE(v.Find("tag") && v.Find("tag")->is_string()) << out;
    EXPECT_TRUE(v.Find("tag")->as_string() == "a" || v.Find("tag")->as_string() == "b") << out;
    EXPECT_EQ(v.size(), 3u) << out;
  }
}

TEST_F(GrammarCli, CutOutputIsReported) {
  std::string out, err;
  ASSERT_EQ(Run("-n 3 --temp 0 --json", &out, &err), 0) << err;
  EXPECT_EQ(out.substr(0, 1), "{") << out;
  EXPECT_NE(err.find("grammar: the output is incomplete"), std::string::npos) << err;
}

TEST_F(GrammarCli, MalformedGrammarAndSchemaAreClearErrors) {
  Write(dir_ + "/bad.gbnf", "root ::= \"a\"\nitem ::= [a-\n");
  std::string out, err;
  EXPECT_EQ(Run("--grammar " + dir_ + "/bad.gbnf", &out, &err), 1);
  EXPECT_NE(err.find("grammar line 2 col 10: unterminated character class"), std::string::npos)
      << err;
  Write(dir_ + "/left.gbnf", "root ::= root \"a\" | \"b\"\n");
  EXPECT_EQ(Run("--grammar " + dir_ + "/left.gbnf", &out, &err), 1);
  EXPECT_NE(err.find("left recursion"), std::string::npos) << err;
  Write(dir_ + "/bad.json",
        R"({"type":"object","properties":{"d":{"type":"string","format":"email"}}})");
  EXPECT_EQ(Run("--json-schema " + dir_ + "/bad.json", &out, &err), 1);
  EXPECT_NE(err.find("#/properties/d: 'format' is not supported"), std::string::npos) << err;
  EXPECT_EQ(Run("--json-schema " + dir_ + "/missing.json", &out, &err), 1);
  EXPECT_NE(err.find("cannot read"), std::string::npos) << err;
  EXPECT_EQ(Run("--json --grammar " + dir_ + "/bad.gbnf", &out, &err), 2);
  EXPECT_EQ(Run("--json --lookup", &out, &err), 2);
}

}  // namespace
}  // namespace lamina::test
