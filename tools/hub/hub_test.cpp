// Hub client unit tests: SHA-256 / SHA-1 against the FIPS 180 / RFC 3174
// vectors, git blob ids, and the -hf spec grammar. The transfer itself is
// tested end to end against a local fake hub (tests/hf_hub_test.py,
// registered by tests/cmake/hub.cmake).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "tests/testutil.h"
#include "tools/hub/hf_hub.h"
#include "tools/hub/sha.h"

namespace lamina::hub {
namespace {

template <typename Hash>
std::string HashOf(const std::string& s) {
  Hash h;
  h.Update(s.data(), s.size());
  return h.HexDigest();
}
// One million 'a' (FIPS 180 long-message vector), fed in uneven 997-byte
// pieces so that updates straddle block boundaries.
template <typename Hash>
std::string MillionA() {
  Hash h;
  const std::string chunk(997, 'a');
  for (size_t left = 1000000; left;) {
    const size_t n = std::min(left, chunk.size());
    h.Update(chunk.data(), n);
    left -= n;
  }
  return h.HexDigest();
}

TEST(HubSha, Sha256KnownVectors) {
  EXPECT_EQ(HashOf<Sha256>(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(HashOf<Sha256>("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HashOf<Sha256>("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(MillionA<Sha256>(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_EQ(HashOf<Sha256>(std::string(64, 'a')),
            "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

// Lengths around the padding boundaries (the length field fits in the last
// block, or needs one more), against Python's hashlib.
TEST(HubSha, PaddingBoundaries) {
  struct V {
    size_t n;
    const char* sha256;
    const char* sha1;
  };
  const V vs[] = {
      {55, "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072",
       "cef734ba81a024479e09eb5a75b6ddae62e6abf1"},
      {56, "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e",
       "901305367c259952f4e7af8323f480d59f81335b"},
      {63, "75220b47218278e656f2013bb8f0c455a25eaf01e86c64924e9d48d89776d6f2",
       "0ddc4e0cccd9a12850deb5abb0853a4425559fec"},
      {64, "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c",
       "bb2fa3ee7afb9f54c6dfb5d021f14b1ffe40c163"},
      {119, "000b48d4edf0fa7bee3c6236ecd2785baa5db4eeb8bb54341b029e0d9fa5fb0c",
       "4300320394f7ee239bcdce7d3b8bcee173a0cd5c"},
      {120, "13f05a0b594787f5ecd315edc96141bd3243203d1b7d4f0836f37308b276ba98",
       "ceb2821639c4b6dcb10bce0e522ca2e608ce056d"},
  };
  for (const V& v : vs) {
    EXPECT_EQ(HashOf<Sha256>(std::string(v.n, 'x')), v.sha256) << v.n;
    EXPECT_EQ(HashOf<Sha1>(std::string(v.n, 'x')), v.sha1) << v.n;
  }
}

TEST(HubSha, Sha1KnownVectors) {
  EXPECT_EQ(HashOf<Sha1>(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(HashOf<Sha1>("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(HashOf<Sha1>("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  EXPECT_EQ(MillionA<Sha1>(), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
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
  std::string only;
  ASSERT_TRUE(HashFile(path, &only, nullptr, &err)) << err;  // one hash only
  EXPECT_EQ(only, s256);
  ASSERT_TRUE(HashFile(path, nullptr, &only, &err)) << err;
  EXPECT_EQ(only, blob);
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

// The cache key of a conversion: equal for equal options, different for each
// option that changes the file (so an old or other conversion is not reused).
TEST(HubConvertKey, DiffersByEveryOptionThatChangesTheFile) {
  using convert::GptqSource;
  using convert::PipelineOptions;
  const std::string dir = test::TestDataDir("hub");
  const std::string calib_a = dir + "/calib_a.txt", calib_b = dir + "/calib_b.txt";
  for (const auto& [path, text] : {std::pair<std::string, const char*>{calib_a, "one text"},
                                   std::pair<std::string, const char*>{calib_b, "another"}}) {
    FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fputs(text, f);
    std::fclose(f);
  }
  auto key = [](const PipelineOptions& p) {
    std::string k, err;
    EXPECT_TRUE(ConvertKey(p, &k, &err)) << err;
    return k;
  };
  const PipelineOptions base;
  const std::string k0 = key(base);
  EXPECT_EQ(k0.rfind("q4-g32-f", 0), 0u) << k0;
  PipelineOptions same;
  same.input = "/elsewhere";  // not an option: the hub sets it
  EXPECT_EQ(key(same), k0);
  std::vector<std::pair<const char*, PipelineOptions>> variants;
  auto add = [&](const char* what, auto change) {
    PipelineOptions p;
    change(p);
    variants.emplace_back(what, p);
  };
  add("weights", [](PipelineOptions& p) { p.convert.weights = "q8"; });
  add("output", [](PipelineOptions& p) { p.convert.output = "q4"; });
  add("embedding", [](PipelineOptions& p) { p.convert.embedding = "bf16"; });
  add("q4 scales", [](PipelineOptions& p) { p.convert.q4_scales = "f32"; });
  add("no tokenizer", [](PipelineOptions& p) { p.convert.no_tokenizer = true; });
  add("tokenizer", [](PipelineOptions& p) { p.convert.tokenizer_path = "/t/tokenizer.json"; });
  add("seed", [](PipelineOptions& p) { p.seed = 2; });
  add("rotate none", [](PipelineOptions& p) { p.rotate = convert::Rotations{}; });
  add("rotate r4", [](PipelineOptions& p) { p.rotate = convert::Rotations{false, false, true}; });
  add("rotate r1", [](PipelineOptions& p) { p.rotate = convert::Rotations{true, false, false}; });
  add("quant self", [](PipelineOptions& p) { p.gptq.mode = GptqSource::Mode::kSelf; });
  add("quant search", [](PipelineOptions& p) { p.gptq.mode = GptqSource::Mode::kNone; });
  add("quant rtn", [](PipelineOptions& p) {
    p.gptq.mode = GptqSource::Mode::kNone;
    p.convert.q4_method = convert::Q4Method::kRtn;
  });
  add("self tokens", [](PipelineOptions& p) { p.gptq.self.n_tokens = 4096; });
  add("calib a", [&](PipelineOptions& p) {
    p.gptq.mode = GptqSource::Mode::kFile;
    p.gptq.file = calib_a;
  });
  add("calib b", [&](PipelineOptions& p) {
    p.gptq.mode = GptqSource::Mode::kFile;
    p.gptq.file = calib_b;
  });
  add("calib damp", [](PipelineOptions& p) { p.gptq.copts.damp = 0.1; });
  add("act order", [](PipelineOptions& p) { p.gptq.copts.act_order = false; });
  add("calib tokens", [](PipelineOptions& p) { p.gptq.copts.max_tokens = 1000; });
  std::vector<std::string> keys = {k0};
  for (const auto& [what, p] : variants) {
    const std::string k = key(p);
    EXPECT_EQ(std::count(keys.begin(), keys.end(), k), 0) << what << ": " << k;
    keys.push_back(k);
  }
  // The calibration text by content, not by name.
  PipelineOptions a;
  a.gptq.mode = GptqSource::Mode::kFile;
  a.gptq.file = calib_a;
  const std::string ka = key(a);
  FILE* f = std::fopen(calib_a.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fputs("edited", f);
  std::fclose(f);
  EXPECT_NE(key(a), ka);
  // An unreadable calibration file: an error naming it.
  a.gptq.file = dir + "/no-such-calib.txt";
  std::string k, err;
  EXPECT_FALSE(ConvertKey(a, &k, &err));
  EXPECT_NE(err.find("no-such-calib.txt"), std::string::npos) << err;
}

}  // namespace
}  // namespace lamina::hub
