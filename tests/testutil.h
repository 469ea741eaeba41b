// Helpers shared by the test suites.
#pragma once

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace lamina::test {

/// ../shared beside the repository (read-only fixtures), or $LAMINA_SHARED.
inline std::string SharedDir() {
  if (const char* e = std::getenv("LAMINA_SHARED")) return e;
  return LAMINA_SHARED_DIR;
}
inline std::string SourceDir() { return LAMINA_SOURCE_DIR; }
/// Scratch directory for data generated at test time (created on demand).
/// ctest gives each test case its own $LAMINA_TESTDATA (cases run in parallel
/// processes and must not share generated files).
inline std::string TestDataDir(const std::string& sub) {
  const char* base = std::getenv("LAMINA_TESTDATA");
  const std::string d =
      (base && *base ? std::string(base) : std::string(LAMINA_BINARY_DIR) + "/testdata") + "/" +
      sub;
  std::system(("mkdir -p '" + d + "'").c_str());
  return d;
}
inline bool FileExists(const std::string& p) { return std::system(("test -e '" + p + "'").c_str()) == 0; }

/// Skips the current test (with the reason) when ../shared/<rel> is absent.
#define LAMINA_REQUIRE_SHARED(rel)                                                  \
  do {                                                                              \
    if (!::lamina::test::FileExists(::lamina::test::SharedDir() + "/" + (rel)))     \
      GTEST_SKIP() << "fixture " << (rel) << " not found under "                    \
                   << ::lamina::test::SharedDir() << " (../shared is absent)";      \
  } while (0)

/// Debian's python3 with torch (the pyenv python3 on PATH may lack it).
inline std::string Python() {
  if (const char* e = std::getenv("LAMINA_PYTHON")) return e;
  return "/usr/bin/python3";
}
inline bool HaveTorch() {
  return std::system((Python() + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0;
}
/// Skips when PyTorch is missing, except under CI (CI=true) where it fails.
#define LAMINA_REQUIRE_TORCH()                                                       \
  do {                                                                               \
    if (!::lamina::test::HaveTorch()) {                                              \
      const char* ci = std::getenv("CI");                                            \
      if (ci && *ci) FAIL() << "python3-torch missing under CI";                     \
      GTEST_SKIP() << "python3-torch not installed (tools/setup-deps.sh installs it)"; \
    }                                                                                \
  } while (0)

/// Shell command that runs one of this build's programs (llama-run, ...):
/// prefixed with $LAMINA_EMULATOR (ctest sets it to qemu-aarch64 on cross
/// builds, where a child Arm binary cannot be exec'd directly).
inline std::string Tool(const std::string& name) {
  const char* emu = std::getenv("LAMINA_EMULATOR");
  const std::string bin = std::string(LAMINA_BINARY_DIR) + "/" + name;
  return (emu && *emu) ? std::string(emu) + " " + bin : bin;
}

/// A file of raw little-endian f32 values (empty if unreadable).
inline std::vector<float> ReadF32(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), v.size() * 4);
  return v;
}

/// Runs a command through /bin/sh; returns its exit status (0 = success).
inline int Run(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  return rc == -1 ? -1 : WEXITSTATUS(rc);
}

}  // namespace lamina::test
