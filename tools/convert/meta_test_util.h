// Test helpers for the Meta/GGUF/pth converter suites: run a Python
// generator once per content version and share its output between the test
// processes ctest starts (possibly in parallel).
#pragma once

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "tests/testutil.h"

namespace lamina::test {

inline std::vector<uint8_t> ReadFileBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)),
                              std::istreambuf_iterator<char>());
}

inline void WriteFileBytes(const std::string& path, const std::vector<uint8_t>& d) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(d.data()), static_cast<std::streamsize>(d.size()));
}

/// Runs `cmd_with_out` (the literal "{OUT}" is replaced by a fresh directory)
/// unless a completed result for `key` exists; returns the result directory
/// or "" on failure. Concurrent callers race safely (temp dir + rename).
inline std::string GenerateOnce(const std::string& sub, const std::string& key,
                                const std::string& cmd_with_out) {
  const std::string root = TestDataDir(sub);
  const std::string final_dir =
      root + "/" + std::to_string(std::hash<std::string>{}(key + cmd_with_out));
  if (FileExists(final_dir + "/.done")) return final_dir;
  const std::string tmp = final_dir + ".tmp." + std::to_string(getpid());
  Run("rm -rf '" + tmp + "' && mkdir -p '" + tmp + "'");
  std::string cmd = cmd_with_out;
  for (size_t p; (p = cmd.find("{OUT}")) != std::string::npos;) cmd.replace(p, 5, tmp);
  if (Run(cmd) != 0) {
    Run("rm -rf '" + tmp + "'");
    return "";
  }
  Run("touch '" + tmp + "/.done'");
  if (std::rename(tmp.c_str(), final_dir.c_str()) != 0) Run("rm -rf '" + tmp + "'");
  return FileExists(final_dir + "/.done") ? final_dir : "";
}

}  // namespace lamina::test
