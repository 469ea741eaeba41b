// llama-run --bench: `--bench --json` on a tiny synthetic model prints one valid
// JSON object with the documented keys; the table form names the same figures;
// conflicting or bad flags are usage errors (exit 2) with a message.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/engine_test_models.h"
#include "tests/testutil.h"
#include "tools/import/json.h"

namespace lamina::test {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class BenchCli : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string bin = std::string(LAMINA_BINARY_DIR) + "/llama-run";
    if (!FileExists(bin)) GTEST_SKIP() << "llama-run not built";
    run_ = Tool("llama-run");
    ASSERT_EQ(test::Run(run_ + " --help >/dev/null 2>&1"), 0) << "cannot execute " << run_;
    dir_ = TestDataDir("bench_cli");
    TestModelSpec s;
    s.scheme = "q4";
    s.seed = 5;
    s.dim = 32;
    s.n_heads = 2;
    s.n_kv_heads = 1;
    s.ffn = 64;
    s.n_layers = 1;
    s.max_context = 64;
    model_ = dir_ + "/bench.lamina";
    std::string err;
    ASSERT_TRUE(WriteTestModel(s, model_, &err)) << err;
  }
  std::string run_, dir_, model_;
};

TEST_F(BenchCli, JsonHasEveryKey) {
  const std::string out = dir_ + "/bench.json", log = dir_ + "/bench.err";
  ASSERT_EQ(
      test::Run(run_ + " -m " + model_ + " --bench --json -p 9 -n 5 -r 2 -t 1 --kv f32 -c 32" +
                " >" + out + " 2>" + log),
      0)
      << ReadAll(log);
  const std::string text = ReadAll(out);
  json::Value v;
  std::string err;
  ASSERT_TRUE(json::Parse(text, &v, &err)) << err << "\n" << text;
  ASSERT_TRUE(v.is_object()) << text;
  auto num = [&](const char* k) -> double {
    const json::Value* x = v.Find(k);
    EXPECT_TRUE(x && x->is_number()) << "key " << k << " missing or not a number: " << text;
    return x && x->is_number() ? x->as_number() : -1;
  };
  auto str = [&](const char* k) -> std::string {
    const json::Value* x = v.Find(k);
    EXPECT_TRUE(x && x->is_string()) << "key " << k << " missing or not a string: " << text;
    return x && x->is_string() ? x->as_string() : "";
  };
  EXPECT_EQ(str("model"), model_);
  EXPECT_EQ(str("weight_scheme"), "q4");
  EXPECT_FALSE(str("kernel_tier").empty());
  EXPECT_EQ(str("kv_type"), "f32");
  EXPECT_EQ(num("dim"), 32);
  EXPECT_EQ(num("n_layers"), 1);
  EXPECT_EQ(num("n_heads"), 2);
  EXPECT_EQ(num("n_kv_heads"), 1);
  EXPECT_EQ(num("head_dim"), 16);
  EXPECT_EQ(num("ffn_dim"), 64);
  EXPECT_EQ(num("vocab_size"), 300);
  EXPECT_EQ(num("threads"), 1);
  EXPECT_EQ(num("n_ctx"), 32);
  EXPECT_EQ(num("n_prompt"), 9);
  EXPECT_EQ(num("n_gen"), 5);
  EXPECT_EQ(num("reps"), 2);
  EXPECT_GT(num("file_bytes"), 0);
  EXPECT_GT(num("kv_bytes"), 0);
  EXPECT_GT(num("n_batch"), 0);
  EXPECT_GE(num("load_ms"), 0);
  EXPECT_GT(num("prefill_tok_s"), 0);
  EXPECT_GT(num("decode_tok_s"), 0);
  EXPECT_GT(num("peak_rss_bytes"), 1 << 20);
  for (const char* k : {"prefill_tok_s_runs", "decode_tok_s_runs"}) {
    const json::Value* a = v.Find(k);
    ASSERT_TRUE(a && a->is_array()) << k << ": " << text;
    ASSERT_EQ(a->size(), 2u) << k;
    for (const json::Value& x : a->items()) EXPECT_TRUE(x.is_number() && x.as_number() > 0) << k;
  }
}

TEST_F(BenchCli, TableNamesTheFigures) {
  const std::string out = dir_ + "/bench.txt";
  ASSERT_EQ(
      test::Run(run_ + " -m " + model_ + " --bench -p 4 -n 2 -r 1 -t 1 >" + out + " 2>/dev/null"),
      0);
  const std::string text = "\n" + ReadAll(out);  // every row starts a line
  for (const char* row : {"model", "dims", "weights", "kernels", "threads", "context", "load",
                          "prefill", "decode", "peak RSS"})
    EXPECT_NE(text.find(std::string("\n") + row), std::string::npos) << row << "\n" << text;
  EXPECT_NE(text.find("4 tokens:"), std::string::npos) << text;
  EXPECT_NE(text.find("tok/s"), std::string::npos) << text;
}

TEST_F(BenchCli, BadFlagsAreUsageErrors) {
  const std::string m = run_ + " -m " + model_ + " ";
  const std::string log = dir_ + "/bad.err";
  struct Case {
    const char* args;
    const char* message;
  } cases[] = {
      {"--bench -p hello", "-p: with --bench"},
      {"--bench -p 0", "-p: with --bench"},
      {"--bench -r 0", "-r: expected"},
      {"--bench --chat", "--bench takes none of"},
      {"--bench --tokens 1,2", "--bench takes none of"},
      {"--bench --temp 0.5", "--bench decodes greedily"},
      {"--json --grammar g.gbnf -p hi", "give at most one of --grammar, --json-schema, --json"},
      {"-r 2 -p hi", "-r/--reps needs --bench"},
      {"--bench -p 40 -n 40 -c 64", "do not fit the context"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(test::Run(m + c.args + " >/dev/null 2>" + log), 2) << c.args;
    EXPECT_NE(ReadAll(log).find(c.message), std::string::npos) << c.args << ": " << ReadAll(log);
  }
}

}  // namespace
}  // namespace lamina::test
