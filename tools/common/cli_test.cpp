// Tests of what the tools' main() functions share (tools/common/cli.h).
#include "tools/common/cli.h"

#include <gtest/gtest.h>

#include <climits>
#include <new>
#include <stdexcept>
#include <string>

namespace lamina::tools {
namespace {

TEST(ToolCli, ParseLongAcceptsTheRange) {
  long v = 0;
  EXPECT_TRUE(ParseLong("7", 1, 7, &v));
  EXPECT_EQ(v, 7);
  EXPECT_TRUE(ParseLong("-1", -1, 5, &v));
  EXPECT_EQ(v, -1);
  EXPECT_TRUE(ParseLong("1073741824", 0, 1L << 30, &v));
  EXPECT_EQ(v, 1L << 30);
}

TEST(ToolCli, ParseLongRejectsMalformedValues) {
  long v = 42;
  for (const char* s : {"", " ", "x", "3x", "3 ", "1.5", "0x10", "--1", "99999999999999999999999"})
    EXPECT_FALSE(ParseLong(s, LONG_MIN, LONG_MAX, &v)) << "'" << s << "'";
  EXPECT_FALSE(ParseLong("8", 1, 7, &v));
  EXPECT_FALSE(ParseLong("0", 1, 7, &v));
  EXPECT_EQ(v, 42);  // untouched on failure
  int i = 5;
  EXPECT_FALSE(ParseInt("2147483648", 0, 1 << 30, &i));
  EXPECT_TRUE(ParseInt("512", 1, 512, &i));
  EXPECT_EQ(i, 512);
}

int Returns3(int, char**) { return 3; }
int ThrowsRuntimeError(int, char**) { throw std::runtime_error("boom"); }
int ThrowsBadAlloc(int, char**) { throw std::bad_alloc(); }
int ThrowsInt(int, char**) { throw 17; }

TEST(ToolCli, RunMainReturnsTheStatus) {
  char arg0[] = "tool";
  char* argv[] = {arg0, nullptr};
  EXPECT_EQ(RunMain("tool", Returns3, 1, argv), 3);
}

TEST(ToolCli, RunMainTurnsExceptionsIntoOneErrorLine) {
  char arg0[] = "tool";
  char* argv[] = {arg0, nullptr};
  struct Case {
    int (*fn)(int, char**);
    std::string line;
  };
  for (const Case& c : {Case{ThrowsRuntimeError, "lamina-x: error: boom\n"},
                        Case{ThrowsBadAlloc, "lamina-x: error: std::bad_alloc\n"},
                        Case{ThrowsInt, "lamina-x: error: unknown exception\n"}}) {
    testing::internal::CaptureStderr();
    const int rc = RunMain("lamina-x", c.fn, 1, argv);
    EXPECT_EQ(testing::internal::GetCapturedStderr(), c.line);
    EXPECT_EQ(rc, 1);
  }
}

}  // namespace
}  // namespace lamina::tools
