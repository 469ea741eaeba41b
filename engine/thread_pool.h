// A fixed pool of worker threads, created once per context. The calling
// thread is worker 0; Run() returns when every worker has finished its part.
// Idle workers spin briefly (a decode step dispatches many small jobs) and
// then sleep on a condition variable. Run() never allocates.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

namespace lamina::engine {

class ThreadPool {
 public:
  using Fn = void (*)(void* arg, int tid, int n_threads);

  /// n_threads >= 1 (the caller counts as one: n_threads - 1 threads start).
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_; }

  /// Calls fn(arg, tid, size()) once for every tid in [0, size()) (tid 0 on
  /// the calling thread) and waits for all. Not reentrant; one caller at a time.
  void Run(Fn fn, void* arg);

  /// Run() for a callable f(int tid, int n_threads), by reference (no copy).
  template <class F>
  void RunF(F& f) {
    Run([](void* a, int tid, int n) { (*static_cast<F*>(a))(tid, n); }, &f);
  }

 private:
  void WorkerLoop(int tid);
  void StopAndJoin();

  int n_;
  std::vector<std::thread> threads_;
  Fn fn_ = nullptr;
  void* arg_ = nullptr;
  std::atomic<uint64_t> gen_{0};
  std::atomic<int> pending_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
};

/// [begin, end) of the contiguous share of thread `tid` of n items split in
/// units of `align` (the last thread takes the remainder). Shares are
/// balanced to within one unit; each starts at a multiple of align.
inline void SplitRange(int n, int align, int tid, int n_threads, int* begin, int* end) {
  const int units = (n + align - 1) / align;
  const int base = units / n_threads, extra = units % n_threads;
  const int u0 = tid * base + (tid < extra ? tid : extra);
  const int u1 = u0 + base + (tid < extra ? 1 : 0);
  *begin = u0 * align < n ? u0 * align : n;
  *end = u1 * align < n ? u1 * align : n;
}

/// Default thread count, >= 1. Linux/x86: the physical cores among the CPUs
/// this process may run on (PhysicalCoreCount); Linux/Arm: the performance
/// cores (those of maximal cpu_capacity or cpuinfo_max_freq). Falls back to
/// the allowed CPUs, then std::thread::hardware_concurrency().
int DefaultThreadCount();

#if defined(__linux__)
/// Distinct (physical_package_id, core_id) pairs of the CPUs in `set`, read
/// from <sys_cpu_dir>/cpuN/topology/; 0 when an entry is missing or unreadable.
int PhysicalCoreCount(const cpu_set_t& set, const char* sys_cpu_dir);
#endif

}  // namespace lamina::engine
