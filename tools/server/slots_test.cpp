// lamina-server slots: FIFO queue, bounded wait, prompt-cache slot choice and
// KV prefix reuse, on a small model (no HTTP).
#include "tools/server/slots.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "tests/engine_test_models.h"
#include "tests/testutil.h"

namespace lamina::test {
namespace {

using server::Clock;
using server::Slot;
using server::SlotPool;

struct Model {
  lamina_model* m = nullptr;
  Model() {
    TestModelSpec s;
    s.vocab = 258;
    s.seed = 31;
    const std::string path = TestDataDir("slots") + "/m.lamina";
    std::string err;
    EXPECT_TRUE(WriteTestModel(s, path, &err)) << err;
    EXPECT_EQ(lamina_model_load(path.c_str(), nullptr, &m), LAMINA_OK);
  }
  ~Model() { lamina_model_free(m); }
};

lamina_context_params Params() {
  lamina_context_params cp = lamina_context_default_params();
  cp.n_ctx = 128;
  cp.n_threads = 1;
  return cp;
}

TEST(ServerSlots, QueueWaitIsBoundedAndFifo) {
  Model m;
  SlotPool pool;
  std::string err;
  ASSERT_TRUE(pool.Init(m.m, 1, Params(), &err)) << err;
  Slot* a = pool.Acquire({1, 2}, Clock::now() + std::chrono::seconds(10));
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(pool.n_busy(), 1);
  // Every slot busy: a waiter gives up at its deadline.
  const auto t0 = Clock::now();
  EXPECT_EQ(pool.Acquire({1}, t0 + std::chrono::milliseconds(150)), nullptr);
  EXPECT_GE(Clock::now() - t0, std::chrono::milliseconds(150));
  EXPECT_EQ(pool.n_queued(), 0u);
  // Three waiters are served in arrival order.
  std::vector<int> order;
  std::mutex mu;
  std::vector<std::thread> th;
  for (int i = 0; i < 3; ++i) {
    th.emplace_back([&, i] {
      Slot* s = pool.Acquire({i}, Clock::now() + std::chrono::seconds(60));
      ASSERT_NE(s, nullptr);
      {
        std::lock_guard<std::mutex> lock(mu);
        order.push_back(i);
      }
      pool.Release(s);
    });
    while (pool.n_queued() < static_cast<size_t>(i + 1))
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  pool.Release(a);
  for (std::thread& t : th) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(pool.n_busy(), 0);
}

TEST(ServerSlots, PromptCacheReusesTheLongestPrefix) {
  Model m;
  SlotPool pool;
  std::string err;
  ASSERT_TRUE(pool.Init(m.m, 2, Params(), &err)) << err;
  server::GenParams gp;
  gp.max_tokens = 4;
  gp.sampling = lamina_sampler_default_params();
  gp.sampling.seed = 3;
  gp.deadline = Clock::now() + std::chrono::seconds(60);
  const std::vector<int32_t> p1 = {256, 'a', 'b', 'c', 'd'}, p2 = {256, 'x', 'y'};
  Slot* s1 = pool.Acquire(p1, gp.deadline);
  Slot* s2 = pool.Acquire(p2, gp.deadline);
  ASSERT_TRUE(s1 && s2);
  const server::GenOutcome g1 = server::Generate(m.m, s1, p1, gp);
  const server::GenOutcome g2 = server::Generate(m.m, s2, p2, gp);
  ASSERT_EQ(g1.status, LAMINA_OK) << g1.error;
  EXPECT_EQ(g1.n_reused, 0u);
  EXPECT_EQ(s1->cached.size(), p1.size() + g1.n_generated);
  EXPECT_EQ(lamina_n_past(s1->ctx), static_cast<int32_t>(s1->cached.size()));
  pool.Release(s1);
  pool.Release(s2);
  // A prompt extending conversation 1 goes to slot 1 and evaluates only the rest...
  std::vector<int32_t> p3 = s1->cached;
  p3.push_back('e');
  Slot* s3 = pool.Acquire(p3, gp.deadline);
  ASSERT_EQ(s3, s1);
  const server::GenOutcome g3 = server::Generate(m.m, s3, p3, gp);
  EXPECT_EQ(g3.n_reused, p3.size() - 1);
  pool.Release(s3);
  // ...with the same result as a fresh slot evaluating everything.
  Slot* s4 = pool.Acquire(p2, gp.deadline);  // slot 2 (longest prefix with p2)
  ASSERT_EQ(s4, s2);
  const server::GenOutcome g4 = server::Generate(m.m, s4, p3, gp);
  EXPECT_LT(g4.n_reused, 2u);
  EXPECT_EQ(g4.text, g3.text);
  // The same prompt again: all but its last token reused.
  const server::GenOutcome g5 = server::Generate(m.m, s4, p3, gp);
  EXPECT_EQ(g5.n_reused, p3.size() - 1);
  EXPECT_EQ(g5.text, g3.text);
  pool.Release(s4);
}

}  // namespace
}  // namespace lamina::test
