// Memory budget of a parser of untrusted input (GGUF metadata, JSON, pickle,
// zip directory): a few bytes of input can become a ~100-byte node, so every
// reader charges what it is about to allocate and refuses the input once the
// budget is spent (GGUF, pickle and zip charge monotonically; JSON releases
// the old block of a grown vector). Why the limit is "input size + 56 MiB": lamina bounds a
// hostile file to <= 2x its size + 64 MiB of peak memory — the input itself
// (mapped or read) is the other 1x, ~8 MiB the program's own.
#pragma once

#include <cstdint>
#include <string>

namespace lamina {

class MemBudget {
 public:
  static constexpr uint64_t kSlack = 56ull << 20;
  /// A budget of input_size + kSlack bytes.
  explicit MemBudget(uint64_t input_size) : left_(input_size + kSlack), limit_(left_) {}
  /// Charges `bytes`; false (+ *why) once the budget would be exceeded.
  bool Charge(uint64_t bytes, std::string* why) {
    if (bytes <= left_) {
      left_ -= bytes;
      return true;
    }
    *why = "needs more than " + std::to_string(limit_ >> 20) +
           " MiB of memory to parse (the input's size + " + std::to_string(kSlack >> 20) +
           " MiB): malformed or hostile input";
    return false;
  }
  /// Gives back bytes charged earlier (for readers that track live memory).
  void Release(uint64_t bytes) { left_ = bytes > limit_ - left_ ? limit_ : left_ + bytes; }
  /// Heap bytes a std::string of `len` bytes allocates (0 in the small-string buffer).
  static uint64_t Str(uint64_t len) { return len < 16 ? 0 : len + 1; }

 private:
  uint64_t left_, limit_;
};

}  // namespace lamina
