// MappedFile and the two readers that open files through it (GGUF, torch zip):
// missing, empty and non-regular inputs are clear errors naming the path.
#include "tools/convert/mapped_file.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "tests/testutil.h"
#include "tools/convert/gguf_reader.h"
#include "tools/convert/pth_reader.h"

namespace lamina::convert {
namespace {

std::string WriteFile(const std::string& path, const std::string& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  EXPECT_NE(f, nullptr) << path;
  if (f) {
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
  return path;
}

TEST(MappedFile, MapsBytesEmptyFilesAndReleases) {
  const std::string dir = test::TestDataDir("mapped_file");
  MappedFile m;
  std::string err;
  ASSERT_TRUE(m.Open(WriteFile(dir + "/abc", "abcdef"), &err)) << err;
  ASSERT_EQ(m.size(), 6u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(m.data()), 6), "abcdef");
  m.Release(0, 6);  // partial page: nothing dropped, still readable
  EXPECT_EQ(m.data()[5], 'f');
  MappedFile e;
  ASSERT_TRUE(e.Open(WriteFile(dir + "/empty", ""), &err)) << err;
  EXPECT_EQ(e.size(), 0u);
  EXPECT_EQ(e.data(), nullptr);
  MappedFile d;
  EXPECT_FALSE(d.Open(dir, &err));
  EXPECT_NE(err.find("not a regular file"), std::string::npos) << err;
  MappedFile n;
  EXPECT_FALSE(n.Open(dir + "/missing", &err));
  EXPECT_NE(err.find("cannot open"), std::string::npos) << err;
}

TEST(MappedFile, ReadersRejectEmptyMissingAndDirectoryInputs) {
  const std::string dir = test::TestDataDir("mapped_file");
  const std::string empty = WriteFile(dir + "/empty.bin", "");
  for (const std::string& path : {empty, dir + "/missing.bin", dir}) {
    std::string err;
    gguf::File g;
    EXPECT_FALSE(g.Open(path, &err)) << path;
    EXPECT_NE(err.find(path), std::string::npos) << err;
    err.clear();
    pth::ZipArchive z;
    EXPECT_FALSE(z.Open(path, &err)) << path;
    EXPECT_NE(err.find(path), std::string::npos) << err;
  }
  std::string err;
  gguf::File g;
  EXPECT_FALSE(g.Open(empty, &err));
  EXPECT_NE(err.find("empty file"), std::string::npos) << err;
  pth::ZipArchive z;
  EXPECT_FALSE(z.Open(empty, &err));
  EXPECT_NE(err.find("empty file, not a zip archive"), std::string::npos) << err;
}

}  // namespace
}  // namespace lamina::convert
