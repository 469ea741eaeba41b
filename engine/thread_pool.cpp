#include "engine/thread_pool.h"

#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <utility>

#if defined(__linux__)
#include <sched.h>
#endif

namespace lamina::engine {
namespace {

inline void CpuRelax() {
#if defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#elif defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spin iterations before an idle worker sleeps (~tens of microseconds).
constexpr int kSpinIters = 1 << 14;

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_(n_threads < 1 ? 1 : n_threads) {
  try {
    threads_.reserve(n_ - 1);
    for (int t = 1; t < n_; ++t) threads_.emplace_back([this, t] { WorkerLoop(t); });
  } catch (...) {
    // A thread could not be started (resource limits): stop and join the ones
    // that did before the members they wait on are destroyed, then report.
    StopAndJoin();
    throw;
  }
}

ThreadPool::~ThreadPool() { StopAndJoin(); }

void ThreadPool::StopAndJoin() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_.store(true, std::memory_order_seq_cst);
    gen_.fetch_add(1, std::memory_order_seq_cst);
  }
  cv_.notify_all();
  for (std::thread& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

void ThreadPool::Run(Fn fn, void* arg) {
  if (n_ == 1) {
    fn(arg, 0, 1);
    return;
  }
  fn_ = fn;
  arg_ = arg;
  pending_.store(n_ - 1, std::memory_order_relaxed);
  gen_.fetch_add(1, std::memory_order_seq_cst);  // publishes fn_/arg_
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    { std::lock_guard<std::mutex> lk(mu_); }
    cv_.notify_all();
  }
  fn(arg, 0, n_);
  for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < kSpinIters) {
      CpuRelax();
    } else {
      std::this_thread::yield();
    }
  }
}

void ThreadPool::WorkerLoop(int tid) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g;
    int spins = 0;
    while ((g = gen_.load(std::memory_order_acquire)) == seen) {
      if (++spins < kSpinIters) {
        CpuRelax();
        continue;
      }
      std::unique_lock<std::mutex> lk(mu_);
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      cv_.wait(lk, [&] { return gen_.load(std::memory_order_seq_cst) != seen; });
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
      spins = 0;
    }
    seen = g;
    if (stop_.load(std::memory_order_acquire)) return;
    fn_(arg_, tid, n_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

#if defined(__linux__)
namespace {

// The first integer in a sysfs file, or -1.
long ReadSysLong(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return -1;
  long v = -1;
  if (std::fscanf(f, "%ld", &v) != 1) v = -1;
  std::fclose(f);
  return v;
}

}  // namespace

int PhysicalCoreCount(const cpu_set_t& set, const char* sys_cpu_dir) {
  // A core is a distinct (physical_package_id, core_id) pair among the allowed
  // CPUs; any unreadable entry gives up (0).
  std::set<std::pair<long, long>> cores;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    const std::string dir = std::string(sys_cpu_dir) + "/cpu" + std::to_string(cpu) + "/topology/";
    const long pkg = ReadSysLong(dir + "physical_package_id");
    const long core = ReadSysLong(dir + "core_id");
    if (pkg < 0 || core < 0) return 0;
    cores.insert({pkg, core});
  }
  return static_cast<int>(cores.size());
}
#endif

int DefaultThreadCount() {
  int fallback = static_cast<int>(std::thread::hardware_concurrency());
  if (fallback < 1) fallback = 1;
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return fallback;
  const int allowed = CPU_COUNT(&set);
  if (allowed >= 1) fallback = allowed;
#if defined(__x86_64__) || defined(__i386__)
  // x86: one thread per physical core. Why: SMT siblings share a core's
  // vector units and caches, and the int8 matmuls already keep those busy;
  // a second thread per core adds synchronisation, not throughput.
  const int cores = PhysicalCoreCount(set, "/sys/devices/system/cpu");
  return cores >= 1 ? cores : fallback;
#else
  // Performance cores: those with the largest capacity (big.LITTLE/DynamIQ);
  // cpu_capacity when the kernel exports it, else cpuinfo_max_freq.
  for (const char* file : {"cpu_capacity", "cpufreq/cpuinfo_max_freq"}) {
    long best = -1;
    int count = 0, seen = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (!CPU_ISSET(cpu, &set)) continue;
      const std::string path =
          "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/" + std::string(file);
      FILE* f = std::fopen(path.c_str(), "r");
      if (!f) break;
      long v = -1;
      const int ok = std::fscanf(f, "%ld", &v);
      std::fclose(f);
      if (ok != 1 || v <= 0) break;
      ++seen;
      if (v > best) {
        best = v;
        count = 1;
      } else if (v == best) {
        ++count;
      }
    }
    if (seen == allowed && count >= 1) return count;
  }
#endif  // x86
#endif  // linux
  return fallback;
}

}  // namespace lamina::engine
