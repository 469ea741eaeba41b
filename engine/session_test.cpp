// Saved sessions (lamina_state_save / lamina_state_load): a continuation after
// save + load into a new context is identical to an uninterrupted run (greedy
// and sampled, f16 and f32 KV); bad files are clean errors that leave the
// context untouched.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "lamina/lamina.h"
#include "tests/engine_test_models.h"
#include "tests/testutil.h"

namespace lamina::test {
namespace {

struct ModelDel {
  void operator()(lamina_model* m) const { lamina_model_free(m); }
};
struct CtxDel {
  void operator()(lamina_context* c) const { lamina_context_free(c); }
};
struct SmpDel {
  void operator()(lamina_sampler* s) const { lamina_sampler_free(s); }
};
using ModelPtr = std::unique_ptr<lamina_model, ModelDel>;
using CtxPtr = std::unique_ptr<lamina_context, CtxDel>;
using SmpPtr = std::unique_ptr<lamina_sampler, SmpDel>;

std::string Dir() { return TestDataDir("session"); }

ModelPtr MakeAndLoad(const std::string& name, uint64_t seed) {
  TestModelSpec spec;
  spec.scheme = "q4";
  spec.seed = seed;
  const std::string path = Dir() + "/" + name + ".lamina";
  std::string err;
  EXPECT_TRUE(WriteTestModel(spec, path, &err)) << err;
  lamina_model* m = nullptr;
  EXPECT_EQ(lamina_model_load(path.c_str(), nullptr, &m), LAMINA_OK) << lamina_last_error();
  return ModelPtr(m);
}

CtxPtr NewCtx(const lamina_model* m, int n_ctx, lamina_kv_type kv, int threads = 2) {
  lamina_context_params p = lamina_context_default_params();
  p.n_ctx = n_ctx;
  p.n_threads = TestThreads(threads);
  p.n_batch = 16;
  p.kv_type = kv;
  lamina_context* c = nullptr;
  EXPECT_EQ(lamina_context_create(m, &p, &c), LAMINA_OK) << lamina_last_error();
  return CtxPtr(c);
}

SmpPtr NewSampler(const lamina_model* m, float temp, uint64_t seed) {
  lamina_sampler_params sp = lamina_sampler_default_params();
  sp.temperature = temp;
  sp.seed = seed;
  sp.top_k = 0;
  sp.min_p = 0;
  lamina_sampler* s = nullptr;
  EXPECT_EQ(lamina_sampler_create(m, &sp, &s), LAMINA_OK);
  return SmpPtr(s);
}

// Generates up to n tokens (ids appended to *out); the byte tokenizer's stop
// token may end it early, which both runs then see identically.
void Gen(lamina_context* c, lamina_sampler* s, const std::vector<int32_t>& prompt, size_t n,
         std::vector<int32_t>* out) {
  auto cb = [](int32_t t, const char*, size_t, void* u) -> int {
    if (t >= 0) static_cast<std::vector<int32_t>*>(u)->push_back(t);
    return 0;
  };
  lamina_generate_result r;
  ASSERT_EQ(lamina_generate(c, s, prompt.data(), prompt.size(), n, cb, out, &r), LAMINA_OK)
      << lamina_last_error();
}

void RoundTrip(lamina_kv_type kv, float temp) {
  ModelPtr m = MakeAndLoad("rt", 11);
  ASSERT_TRUE(m);
  const std::vector<int32_t> prompt = {256, 72, 101, 108, 108, 111, 32, 119};
  // Uninterrupted: prompt, 24 tokens, 24 more.
  std::vector<int32_t> ref;
  {
    CtxPtr a = NewCtx(m.get(), 128, kv);
    SmpPtr s = NewSampler(m.get(), temp, 5);
    Gen(a.get(), s.get(), prompt, 24, &ref);
    Gen(a.get(), s.get(), {}, 24, &ref);
  }
  // Interrupted: 24 tokens, save, a new context (other n_ctx, threads) and a
  // sampler of another seed load it, 24 more.
  const std::string path = Dir() + "/rt.session";
  std::vector<int32_t> got;
  int32_t n_past_saved = 0;
  {
    CtxPtr b = NewCtx(m.get(), 128, kv);
    SmpPtr s = NewSampler(m.get(), temp, 5);
    Gen(b.get(), s.get(), prompt, 24, &got);
    n_past_saved = lamina_n_past(b.get());
    ASSERT_EQ(lamina_state_save(b.get(), path.c_str(), s.get()), LAMINA_OK) << lamina_last_error();
  }
  EXPECT_FALSE(FileExists(path + ".tmp." + std::to_string(::getpid())));
  CtxPtr c = NewCtx(m.get(), 96, kv, 1);
  SmpPtr s2 = NewSampler(m.get(), temp, 999);
  ASSERT_EQ(lamina_state_load(c.get(), path.c_str(), s2.get()), LAMINA_OK) << lamina_last_error();
  EXPECT_EQ(lamina_n_past(c.get()), n_past_saved);
  ASSERT_NE(lamina_get_logits(c.get()), nullptr);
  Gen(c.get(), s2.get(), {}, 24, &got);
  EXPECT_EQ(got, ref);
  EXPECT_GT(ref.size(), 24u);
}

TEST(Session, RoundTripGreedyF16) { RoundTrip(LAMINA_KV_F16, 0.f); }
TEST(Session, RoundTripGreedyF32) { RoundTrip(LAMINA_KV_F32, 0.f); }
TEST(Session, RoundTripSampledRestoresRng) { RoundTrip(LAMINA_KV_F16, 1.0f); }

TEST(Session, EmptyContextRoundTrip) {
  ModelPtr m = MakeAndLoad("rt", 11);
  ASSERT_TRUE(m);
  CtxPtr a = NewCtx(m.get(), 64, LAMINA_KV_F16);
  const std::string path = Dir() + "/empty.session";
  ASSERT_EQ(lamina_state_save(a.get(), path.c_str(), nullptr), LAMINA_OK) << lamina_last_error();
  CtxPtr b = NewCtx(m.get(), 64, LAMINA_KV_F16);
  const int32_t t[3] = {256, 65, 66};
  ASSERT_EQ(lamina_eval(b.get(), t, 3), LAMINA_OK);
  ASSERT_EQ(lamina_state_load(b.get(), path.c_str(), nullptr), LAMINA_OK) << lamina_last_error();
  EXPECT_EQ(lamina_n_past(b.get()), 0);
  EXPECT_EQ(lamina_get_logits(b.get()), nullptr);
}

std::vector<char> ReadBytes(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(f), {});
}
void WriteBytes(const std::string& p, const std::vector<char>& b) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(b.data(), static_cast<std::streamsize>(b.size()));
}

// Loads path into c expecting LAMINA_ERR_SESSION with `what` in the message and
// the context untouched.
void ExpectRejected(lamina_context* c, const std::string& path, const std::string& what) {
  const int32_t before = lamina_n_past(c);
  const float* l = lamina_get_logits(c);
  const float l0 = l ? l[0] : 0.f;
  EXPECT_EQ(lamina_state_load(c, path.c_str(), nullptr), LAMINA_ERR_SESSION) << path;
  EXPECT_NE(std::string(lamina_last_error()).find(what), std::string::npos) << lamina_last_error();
  EXPECT_EQ(lamina_n_past(c), before);
  ASSERT_NE(lamina_get_logits(c), nullptr);
  EXPECT_EQ(lamina_get_logits(c)[0], l0);
}

TEST(Session, CorruptAndMalformedFilesAreErrors) {
  ModelPtr m = MakeAndLoad("rt", 11);
  ASSERT_TRUE(m);
  const std::string good = Dir() + "/good.session";
  {
    CtxPtr a = NewCtx(m.get(), 64, LAMINA_KV_F16);
    const int32_t t[5] = {256, 65, 66, 67, 68};
    ASSERT_EQ(lamina_eval(a.get(), t, 5), LAMINA_OK);
    ASSERT_EQ(lamina_state_save(a.get(), good.c_str(), nullptr), LAMINA_OK);
  }
  CtxPtr c = NewCtx(m.get(), 64, LAMINA_KV_F16);
  const int32_t t2[2] = {256, 90};
  ASSERT_EQ(lamina_eval(c.get(), t2, 2), LAMINA_OK);
  const std::vector<char> bytes = ReadBytes(good);
  ASSERT_GT(bytes.size(), 100u);
  const std::string bad = Dir() + "/bad.session";

  ExpectRejected(c.get(), Dir() + "/missing.session", "cannot open");
  // A flipped byte anywhere after the header fields: the checksum.
  for (size_t off : {size_t{60}, bytes.size() / 2, bytes.size() - 9, bytes.size() - 1}) {
    std::vector<char> b = bytes;
    b[off] = static_cast<char>(b[off] ^ 0x10);
    WriteBytes(bad, b);
    ExpectRejected(c.get(), bad, "checksum");
  }
  // Truncated at every kind of boundary, and padded.
  for (size_t n : {size_t{0}, size_t{10}, size_t{56}, size_t{80}, bytes.size() - 1}) {
    WriteBytes(bad, std::vector<char>(bytes.begin(), bytes.begin() + static_cast<long>(n)));
    ExpectRejected(c.get(), bad, "truncated");
  }
  {
    std::vector<char> b = bytes;
    b.push_back(0);
    WriteBytes(bad, b);
    ExpectRejected(c.get(), bad, "oversized");
  }
  {
    std::vector<char> b = bytes;
    b[0] = 'X';
    WriteBytes(bad, b);
    ExpectRejected(c.get(), bad, "bad magic");
  }
  {
    std::vector<char> b = bytes;
    b[38] = 7;  // SessionHeader::n_tokens (bytes 36..39) += 7 << 16
    WriteBytes(bad, b);
    ExpectRejected(c.get(), bad, "more than the context's n_ctx");
  }
  // A session of another model (same shapes, other weights).
  {
    ModelPtr other = MakeAndLoad("other", 12);
    ASSERT_TRUE(other);
    CtxPtr o = NewCtx(other.get(), 64, LAMINA_KV_F16);
    const int32_t t[2] = {256, 65};
    ASSERT_EQ(lamina_eval(o.get(), t, 2), LAMINA_OK);
    const std::string p = Dir() + "/other.session";
    ASSERT_EQ(lamina_state_save(o.get(), p.c_str(), nullptr), LAMINA_OK);
    ExpectRejected(c.get(), p, "another model");
  }
  // Another KV type.
  {
    CtxPtr f32 = NewCtx(m.get(), 64, LAMINA_KV_F32);
    ASSERT_EQ(lamina_eval(f32.get(), t2, 2), LAMINA_OK);
    ExpectRejected(f32.get(), good, "f16 KV cache, the context's is f32");
  }
  // A context too small for the session's 5 tokens.
  {
    CtxPtr small = NewCtx(m.get(), 4, LAMINA_KV_F16);
    ASSERT_EQ(lamina_eval(small.get(), t2, 2), LAMINA_OK);
    ExpectRejected(small.get(), good, "more than the context's n_ctx 4");
  }
  // The good file still loads into c afterwards.
  ASSERT_EQ(lamina_state_load(c.get(), good.c_str(), nullptr), LAMINA_OK) << lamina_last_error();
  EXPECT_EQ(lamina_n_past(c.get()), 5);
  // Saving into a missing directory fails cleanly.
  EXPECT_EQ(lamina_state_save(c.get(), (Dir() + "/no/such/dir/x.session").c_str(), nullptr),
            LAMINA_ERR_SESSION);
  EXPECT_EQ(lamina_state_save(nullptr, good.c_str(), nullptr), LAMINA_ERR_INVALID_ARG);
  EXPECT_EQ(lamina_state_load(c.get(), nullptr, nullptr), LAMINA_ERR_INVALID_ARG);
}

}  // namespace
}  // namespace lamina::test
