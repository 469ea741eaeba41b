// What every command-line tool's main() shares (llama-run, lamina-convert,
// lamina-tokenize, lamina-perplexity, lamina-server): the exception guard
// around the tool's Main, and strict integer flag values.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>

namespace lamina::tools {

/// Runs main_fn(argc, argv) and returns its exit status. An exception that
/// escapes it (std::bad_alloc, a library error) becomes one line on stderr,
/// "TOOL: error: WHAT", and exit status 1 instead of std::terminate's abort.
inline int RunMain(const char* tool, int (*main_fn)(int, char**), int argc, char** argv) {
  try {
    return main_fn(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", tool, e.what());
  } catch (...) {
    std::fprintf(stderr, "%s: error: unknown exception\n", tool);
  }
  return 1;
}

/// Parses all of `s` as a decimal integer in [lo, hi] into *out; false (and
/// *out untouched) on an empty string, trailing characters, overflow or a
/// value out of range.
inline bool ParseLong(const char* s, long lo, long hi, long* out) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

/// ParseLong for an int flag.
inline bool ParseInt(const char* s, int lo, int hi, int* out) {
  long v = 0;
  if (!ParseLong(s, lo, hi, &v)) return false;
  *out = static_cast<int>(v);
  return true;
}

}  // namespace lamina::tools
