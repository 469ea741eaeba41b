// Memory amplification (issue 11, finding 4): hostile inputs whose every few
// bytes become a ~100-byte node — GGUF metadata (millions of empty strings,
// nested empty arrays, keys), JSON (huge arrays of empty values, deep nests),
// pickle (millions of MARK / NONE opcodes), zip directories — must be refused
// within 2x their size + 64 MiB of peak memory (loader/mem_budget.h).
//
// Each case writes a ~30 MB file, then parses it in a forked child and reads
// the child's peak RSS (wait4's ru_maxrss) minus that of an idle fork (the
// test process itself, or QEMU under the cross build). Under ASan (shadow
// memory) only the refusal is checked.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "tests/testutil.h"
#include "tools/convert/gguf_reader.h"
#include "tools/convert/pth_reader.h"
#include "tools/import/json.h"

#if defined(__SANITIZE_ADDRESS__)
#define LAMINA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LAMINA_ASAN 1
#endif
#endif

namespace lamina {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

// Streams a file in pieces (never holds it whole: the forks inherit our RSS).
class Out {
 public:
  explicit Out(const std::string& path) : f_(std::fopen(path.c_str(), "wb")) {}
  ~Out() { Close(); }
  void Close() {
    if (f_) std::fclose(f_);
    f_ = nullptr;
  }
  template <typename T>
  void Put(T v) {
    std::fwrite(&v, sizeof(T), 1, f_);
  }
  void Bytes(const void* p, size_t n) { std::fwrite(p, 1, n, f_); }
  void Str(const std::string& s) { Bytes(s.data(), s.size()); }
  // `n` copies of `pat`.
  void Repeat(const std::string& pat, uint64_t n) {
    std::string chunk;
    for (int i = 0; i < 4096; ++i) chunk += pat;
    for (; n >= 4096; n -= 4096) Str(chunk);
    for (; n > 0; --n) Str(pat);
  }
  long Size() { return std::ftell(f_); }

 private:
  FILE* f_;
};

uint64_t FileSize(const std::string& p) {
  FILE* f = std::fopen(p.c_str(), "rb");
  if (!f) return 0;
  std::fseek(f, 0, SEEK_END);
  const long n = std::ftell(f);
  std::fclose(f);
  return static_cast<uint64_t>(n);
}

struct ChildResult {
  bool ok;          // fn returned true
  uint64_t peak;    // child's peak RSS, bytes
  std::string msg;  // what fn wrote to *msg
};

// Runs fn in a forked child (the parent never parses: its heap stays as it
// was, so every case starts from the same baseline).
ChildResult RunInFork(const std::function<bool(std::string*)>& fn) {
  std::fflush(nullptr);
  int fd[2];
  EXPECT_EQ(::pipe(fd), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fd[0]);
    std::string msg;
    const bool ok = fn(&msg);
    const ssize_t w = ::write(fd[1], msg.data(), std::min<size_t>(msg.size(), 4096));
    (void)w;
    _exit(ok ? 0 : 1);
  }
  ::close(fd[1]);
  std::string msg;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd[0], buf, sizeof(buf))) > 0;) msg.append(buf, n);
  ::close(fd[0]);
  int st = 0;
  struct rusage ru {};
  EXPECT_EQ(::wait4(pid, &st, 0, &ru), pid);
  return {WIFEXITED(st) && WEXITSTATUS(st) == 0, static_cast<uint64_t>(ru.ru_maxrss) * 1024, msg};
}

// Parses `path` with `parse` (returns success, fills the error) in a fork;
// expects a refusal whose message contains `needle`, within the memory bound.
void ExpectRefusedWithinBound(const std::string& path,
                              const std::function<bool(std::string*)>& parse,
                              const std::string& needle) {
  const uint64_t size = FileSize(path);
  ASSERT_GT(size, 0u) << path;
  const ChildResult idle = RunInFork([](std::string*) { return true; });
  const ChildResult r = RunInFork(parse);
  EXPECT_FALSE(r.ok) << path;
  EXPECT_NE(r.msg.find(needle), std::string::npos) << r.msg;
  const uint64_t used = r.peak > idle.peak ? r.peak - idle.peak : 0;
#ifndef LAMINA_ASAN
  EXPECT_LE(used, 2 * size + 64 * kMiB)
      << path << ": " << (used >> 20) << " MiB for a " << (size >> 20) << " MiB input";
#endif
  std::printf("[ memory ] %s: %.1f MiB input, %.1f MiB peak above an idle fork\n", path.c_str(),
              static_cast<double>(size) / kMiB, static_cast<double>(used) / kMiB);
  std::remove(path.c_str());
}

std::string Dir() { return test::TestDataDir("hostile"); }

// Host only: under qemu-user the RSS is the emulator's, and parsing tens of MB
// emulated takes minutes.
#define LAMINA_SKIP_UNDER_EMULATOR()                                                      \
  do {                                                                                    \
    const char* emu = std::getenv("LAMINA_EMULATOR");                                     \
    if (emu && *emu) GTEST_SKIP() << "host only (RSS under qemu-user is the emulator's)"; \
  } while (0)

// ------------------------------------------------------------------- GGUF

void GgufHeader(Out* o, uint64_t n_tensors, uint64_t n_kv) {
  o->Str("GGUF");
  o->Put<uint32_t>(3);
  o->Put<uint64_t>(n_tensors);
  o->Put<uint64_t>(n_kv);
}
void GgufKey(Out* o, const std::string& k, uint32_t type) {
  o->Put<uint64_t>(k.size());
  o->Str(k);
  o->Put<uint32_t>(type);
}

bool OpenGguf(const std::string& path, std::string* err) {
  gguf::File f;
  return f.Open(path, err);
}

TEST(MalformedMemory, GgufMillionsOfEmptyStrings) {
  LAMINA_SKIP_UNDER_EMULATOR();
  const std::string p = Dir() + "/strings.gguf";
  {
    Out o(p);
    GgufHeader(&o, 0, 1);
    GgufKey(&o, "tokenizer.ggml.tokens", 9);
    o.Put<uint32_t>(8);  // string elements
    const uint64_t n = 4000000;
    o.Put<uint64_t>(n);
    o.Repeat(std::string(8, '\0'), n);  // each: length 0
  }
  ExpectRefusedWithinBound(
      p, [&](std::string* e) { return OpenGguf(p, e); }, "malformed or hostile");
}

TEST(MalformedMemory, GgufNestedEmptyArrays) {
  LAMINA_SKIP_UNDER_EMULATOR();
  const std::string p = Dir() + "/arrays.gguf";
  {
    Out o(p);
    GgufHeader(&o, 0, 1);
    GgufKey(&o, "bomb", 9);
    o.Put<uint32_t>(9);  // arrays of arrays
    const uint64_t n = 2700000;
    o.Put<uint64_t>(n);
    std::string empty(12, '\0');  // inner: elem type u8 (0), count 0
    o.Repeat(empty, n);
  }
  ExpectRefusedWithinBound(
      p, [&](std::string* e) { return OpenGguf(p, e); }, "malformed or hostile");
}

TEST(MalformedMemory, GgufMillionsOfKeys) {
  LAMINA_SKIP_UNDER_EMULATOR();
  const std::string p = Dir() + "/keys.gguf";
  const uint64_t n = 1200000;
  {
    Out o(p);
    GgufHeader(&o, 0, n);
    char k[16];
    for (uint64_t i = 0; i < n; ++i) {
      std::snprintf(k, sizeof(k), "%07llu", static_cast<unsigned long long>(i));
      GgufKey(&o, k, 8);
      o.Put<uint64_t>(0);  // empty string value
    }
  }
  ExpectRefusedWithinBound(
      p, [&](std::string* e) { return OpenGguf(p, e); }, "malformed or hostile");
}

TEST(MalformedMemory, GgufMillionsOfTensorInfos) {
  LAMINA_SKIP_UNDER_EMULATOR();
  const std::string p = Dir() + "/tensors.gguf";
  const uint64_t n = 1000000;
  {
    Out o(p);
    GgufHeader(&o, n, 0);
    char k[16];
    for (uint64_t i = 0; i < n; ++i) {
      std::snprintf(k, sizeof(k), "%07llu", static_cast<unsigned long long>(i));
      o.Put<uint64_t>(7);
      o.Str(k);
      o.Put<uint32_t>(1);  // 1 dim
      o.Put<uint64_t>(1);  // of 1
      o.Put<uint32_t>(0);  // f32
      o.Put<uint64_t>(0);  // offset 0 (all share it)
    }
  }
  ExpectRefusedWithinBound(
      p, [&](std::string* e) { return OpenGguf(p, e); }, "malformed or hostile");
}

// ------------------------------------------------------------------- JSON

bool ParseJson(const std::string& path, std::string* err) {
  json::Value v;
  return json::ParseFile(path, &v, err);
}

// `n` copies of `elem` between `open` and `close`, as a JSON file.
void ExpectJsonRefused(const char* name, const std::string& open, const std::string& elem,
                       const std::string& close, uint64_t n) {
  LAMINA_SKIP_UNDER_EMULATOR();
  const std::string p = Dir() + "/" + name + ".json";
  {
    Out o(p);
    o.Str(open);
    o.Repeat(elem, n);
    o.Str(close);
  }
  ExpectRefusedWithinBound(
      p, [&](std::string* e) { return ParseJson(p, e); }, "malformed or hostile input");
}

TEST(MalformedMemory, JsonMillionsOfZeros) {
  ExpectJsonRefused("zeros", "[", "0,", "0]", 15000000);
}
TEST(MalformedMemory, JsonMillionsOfEmptyArrays) {
  ExpectJsonRefused("empty_arrays", "[", "[],", "[]]", 10000000);
}
TEST(MalformedMemory, JsonMillionsOfEmptyObjects) {
  ExpectJsonRefused("empty_objects", "[", "{},", "{}]", 10000000);
}
TEST(MalformedMemory, JsonMillionsOfEmptyStrings) {
  ExpectJsonRefused("empty_strings", "[", "\"\",", "\"\"]", 8000000);
}
TEST(MalformedMemory, JsonMillionsOfMembers) {
  ExpectJsonRefused("members", "{", "\"\":0,", "\"\":0}", 6000000);
}
TEST(MalformedMemory, JsonDeepThenHugeArray) {
  // 200 levels deep, a huge array of empty arrays at the bottom.
  ExpectJsonRefused("deep", std::string(200, '['), "[],", "[]" + std::string(200, ']'), 10000000);
}

TEST(MalformedMemory, JsonLegitimateLargeArrayStillParses) {
  // 600000 short strings (a Llama 3-sized merges list, ~7 MB): accepted.
  const std::string p = Dir() + "/merges.json";
  {
    Out o(p);
    o.Str("{\"merges\":[");
    o.Repeat("\"ab cd\",", 600000);
    o.Str("\"x y\"]}");
  }
  json::Value v;
  std::string err;
  ASSERT_TRUE(json::ParseFile(p, &v, &err)) << err;
  ASSERT_NE(v.Find("merges"), nullptr);
  EXPECT_EQ(v.Find("merges")->size(), 600001u);
  EXPECT_EQ(v.Find("merges")->items()[0].as_string(), "ab cd");
  std::remove(p.c_str());
}

// ----------------------------------------------------------------- pickle

// A stored (uncompressed) zip holding "archive/data.pkl" = `pkl`.
void WriteTorchZip(const std::string& path, const std::function<void(Out*)>& pkl, uint32_t size) {
  const std::string name = "archive/data.pkl";
  Out o(path);
  o.Put<uint32_t>(0x04034b50);  // local header
  o.Put<uint16_t>(20);
  o.Put<uint16_t>(0);
  o.Put<uint16_t>(0);  // stored
  o.Put<uint32_t>(0);  // time/date
  o.Put<uint32_t>(0);  // crc (not checked)
  o.Put<uint32_t>(size);
  o.Put<uint32_t>(size);
  o.Put<uint16_t>(static_cast<uint16_t>(name.size()));
  o.Put<uint16_t>(0);
  o.Str(name);
  const long data = o.Size();
  pkl(&o);
  EXPECT_EQ(static_cast<uint64_t>(o.Size() - data), size);
  const long cd = o.Size();
  o.Put<uint32_t>(0x02014b50);  // central directory entry
  o.Put<uint16_t>(20);
  o.Put<uint16_t>(20);
  o.Put<uint16_t>(0);
  o.Put<uint16_t>(0);
  o.Put<uint32_t>(0);
  o.Put<uint32_t>(0);
  o.Put<uint32_t>(size);
  o.Put<uint32_t>(size);
  o.Put<uint16_t>(static_cast<uint16_t>(name.size()));
  o.Put<uint16_t>(0);
  o.Put<uint16_t>(0);
  o.Put<uint16_t>(0);
  o.Put<uint16_t>(0);
  o.Put<uint32_t>(0);
  o.Put<uint32_t>(0);  // local header at 0
  o.Str(name);
  const long cd_end = o.Size();
  o.Put<uint32_t>(0x06054b50);  // end of central directory
  o.Put<uint16_t>(0);
  o.Put<uint16_t>(0);
  o.Put<uint16_t>(1);
  o.Put<uint16_t>(1);
  o.Put<uint32_t>(static_cast<uint32_t>(cd_end - cd));
  o.Put<uint32_t>(static_cast<uint32_t>(cd));
  o.Put<uint16_t>(0);
}

bool OpenPth(const std::string& path, std::string* err) {
  pth::StateDict sd;
  return sd.Open(path, err);
}

TEST(MalformedMemory, PickleMillionsOfMarksAndNones) {
  LAMINA_SKIP_UNDER_EMULATOR();
  for (const char op : {'(', 'N', ']'}) {
    SCOPED_TRACE(std::string(1, op));
    const std::string p = Dir() + "/ops.pth";
    const uint32_t n = 10000000;
    WriteTorchZip(
        p,
        [&](Out* o) {
          o->Str("\x80\x02");
          o->Repeat(std::string(1, op), n);
          o->Str(".");
        },
        n + 3);
    ExpectRefusedWithinBound(
        p, [&](std::string* e) { return OpenPth(p, e); }, "malformed or hostile input");
  }
}

}  // namespace
}  // namespace lamina
