// Hub client unit tests: SHA-256 / SHA-1 against the FIPS 180 / RFC 3174
// vectors, git blob ids, and the -hf spec grammar. The transfer itself is
// tested end to end against a local fake hub (tests/hf_hub_test.py,
// registered by tests/cmake/hub.cmake).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "tests/testutil.h"
#include "tools/hub/hf_hub.h"
#include "tools/hub/sha.h"

namespace lamina::hub {
namespace {

std::string Sha256Of(const std::string& s) {
  Sha256 h;
  h.Update(s.data(), s.size());
  return h.HexDigest();
}
std::string Sha1Of(const std::string& s) {
  Sha1 h;
  h.Update(s.data(), s.size());
  return h.HexDigest();
}

TEST(HubSha, Sha256KnownVectors) {
  EXPECT_EQ(Sha256Of(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Of("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // One million 'a', fed in uneven pieces (crosses block boundaries).
  Sha256 h;
  const std::string chunk(997, 'a');
  size_t left = 1000000;
  while (left) {
    const size_t n = std::min(left, chunk.size());
    h.Update(chunk.data(), n);
    left -= n;
  }
  EXPECT_EQ(h.HexDigest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // Lengths around the padding boundary (55, 56, 63, 64 bytes).
  EXPECT_EQ(Sha256Of(std::string(55, 'x')).size(), 64u);
  EXPECT_NE(Sha256Of(std::string(55, 'x')), Sha256Of(std::string(56, 'x')));
  EXPECT_EQ(Sha256Of(std::string(64, 'a')),
            "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

TEST(HubSha, Sha1KnownVectors) {
  EXPECT_EQ(Sha1Of(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(Sha1Of("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(Sha1Of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  Sha1 h;
  const std::string chunk(1000, 'a');
  for (int i = 0; i < 1000; ++i) h.Update(chunk.data(), chunk.size());
  EXPECT_EQ(h.HexDigest(), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

TEST(HubSha, HashFileGivesSha256AndGitBlobId) {
  const std::string path = test::TestDataDir("hub") + "/hello.txt";
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fputs("hello world\n", f);
  std::fclose(f);
  std::string s256, blob, err;
  ASSERT_TRUE(HashFile(path, &s256, &blob, &err)) << err;
  EXPECT_EQ(s256, "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447");
  // `printf 'hello world\n' | git hash-object --stdin`
  EXPECT_EQ(blob, "3b18e512dba79e4c8300dd08aeb37f8e728b8dad");
  EXPECT_FALSE(HashFile(path + ".missing", &s256, &blob, &err));
  EXPECT_NE(err.find("hello.txt.missing"), std::string::npos);
}

TEST(HubSpec, Parses) {
  HfSpec s;
  std::string err;
  ASSERT_TRUE(ParseHfSpec("unsloth/Llama-3.2-1B-Instruct", &s, &err)) << err;
  EXPECT_EQ(s.repo, "unsloth/Llama-3.2-1B-Instruct");
  EXPECT_EQ(s.revision, "");
  EXPECT_EQ(s.file, "");
  ASSERT_TRUE(
      ParseHfSpec("bartowski/Llama-3.2-1B-Instruct-GGUF:Llama-3.2-1B-Instruct-Q4_0.gguf", &s, &err))
      << err;
  EXPECT_EQ(s.repo, "bartowski/Llama-3.2-1B-Instruct-GGUF");
  EXPECT_EQ(s.file, "Llama-3.2-1B-Instruct-Q4_0.gguf");
  ASSERT_TRUE(ParseHfSpec("meta-llama/Llama-3.2-1B@refs/pr/1:original", &s, &err)) << err;
  EXPECT_EQ(s.repo, "meta-llama/Llama-3.2-1B");
  EXPECT_EQ(s.revision, "refs/pr/1");
  EXPECT_EQ(s.file, "original");
}

TEST(HubSpecMalformed, Rejected) {
  HfSpec s;
  for (const char* bad :
       {"", "llama", "/repo", "org/", "org/repo/extra", "../x", "org/..", "org/re po",
        "org/repo:", "org/repo:../secret", "org/repo:/etc/passwd", "org/repo:a//b", "org/repo@",
        "org/repo@..", "-org/repo", "org/repo:a/./b", "org/.hidden"}) {
    std::string err;
    EXPECT_FALSE(ParseHfSpec(bad, &s, &err)) << bad;
    EXPECT_FALSE(err.empty()) << bad;
  }
}

}  // namespace
}  // namespace lamina::hub
