// ModelWriter + ModelFile: round trip, layout invariants, option handling,
// and the validation of hand-damaged images.
#include "loader/model_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "loader/model_writer.h"
#include "loader/pack.h"
#include "tests/testutil.h"

namespace lamina {
namespace {

using format::DType;
using format::Layout;

format::HParams TinyHParams() {
  format::HParams hp{};
  hp.arch = static_cast<uint32_t>(format::Arch::kLlama);
  hp.dim = 16;
  hp.n_layers = 2;
  hp.n_heads = 2;
  hp.n_kv_heads = 1;
  hp.head_dim = 8;
  hp.ffn_dim = 40;
  hp.vocab_size = 10;
  hp.max_context = 64;
  hp.norm_eps = 1e-5f;
  hp.rope_theta = 500000.f;
  hp.rope_scaling = static_cast<uint32_t>(format::RopeScaling::kLlama3);
  hp.rope_factor = 32;
  hp.rope_low_freq_factor = 1;
  hp.rope_high_freq_factor = 4;
  hp.rope_orig_max_pos = 8192;
  hp.bos_id = 1;
  hp.eos_id = 2;
  hp.n_stop_ids = 1;
  hp.stop_ids[0] = 2;
  return hp;
}

bool AddF32(ModelWriter& w, const std::string& name, std::vector<uint64_t> shape, float base,
            std::string* err) {
  uint64_t n = 1;
  for (auto d : shape) n *= d;
  std::vector<float> v(n);
  for (uint64_t i = 0; i < n; ++i) v[i] = base + static_cast<float>(i) * 0.001f;
  return w.AddTensor(name, DType::kF32, Layout::kRowMajor, shape, 0, 0, v.data(), n * 4, err);
}

// Writes a tiny complete f32 model (untied unless `tied`); `extra` may add
// tensors (the graph ignores unknown names; the directory checks them).
bool WriteTiny(const std::string& path, bool tied, std::string* err,
               const std::vector<uint8_t>& tok = {},
               const std::function<bool(ModelWriter&, std::string*)>& extra = nullptr) {
  const auto hp = TinyHParams();
  ModelWriter w;
  if (!w.Open(path, err)) return false;
  w.SetHParams(hp);
  w.SetFlags(tied ? static_cast<uint32_t>(format::kFlagTiedEmbeddings) : 0u);
  w.SetScheme("f32");
  if (!tok.empty()) w.SetTokenizer(tok);
  const uint64_t d = hp.dim, q = hp.n_heads * hp.head_dim, kv = hp.n_kv_heads * hp.head_dim,
                 f = hp.ffn_dim;
  bool ok = AddF32(w, "tok_embd", {hp.vocab_size, d}, 0.5f, err);
  for (uint32_t l = 0; ok && l < hp.n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    ok = AddF32(w, b + "attn_norm", {d}, 1, err) && AddF32(w, b + "attn_q", {q, d}, 0, err) &&
         AddF32(w, b + "attn_k", {kv, d}, 0, err) && AddF32(w, b + "attn_v", {kv, d}, 0, err) &&
         AddF32(w, b + "attn_output", {d, q}, 0, err) && AddF32(w, b + "ffn_norm", {d}, 1, err) &&
         AddF32(w, b + "ffn_gate", {f, d}, 0, err) && AddF32(w, b + "ffn_up", {f, d}, 0, err) &&
         AddF32(w, b + "ffn_down", {d, f}, 0, err);
  }
  ok = ok && AddF32(w, "output_norm", {d}, 1, err);
  if (ok && !tied) ok = AddF32(w, "output", {hp.vocab_size, d}, 0.25f, err);
  if (ok && extra) ok = extra(w, err);
  return ok && w.Finish(err);
}

std::vector<uint8_t> ReadAll(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), {});
}

TEST(ModelFile, RoundTripTiny) {
  const std::string path = test::TestDataDir("loader") + "/tiny_rt.lamina";
  std::string err;
  const std::vector<uint8_t> tok = {1, 2, 3, 4, 5};
  ASSERT_TRUE(WriteTiny(path, false, &err, tok)) << err;
  EXPECT_FALSE(test::FileExists(path + ".tmp"));
  auto m = ModelFile::Open(path, LoadOptions{}, &err);
  ASSERT_TRUE(m) << err;
  EXPECT_EQ(m->file_size() % format::kFileAlign, 0u);
  EXPECT_EQ(m->header().data_offset, format::kDataAlign);
  EXPECT_EQ(m->hparams().dim, 16u);
  EXPECT_FALSE(m->tied_embeddings());
  EXPECT_EQ(m->n_tensors(), 1u + 2u * 9u + 2u);
  for (size_t i = 0; i < m->n_tensors(); ++i) {
    EXPECT_EQ(m->tensor(i).offset % format::kTensorAlign, 0u) << m->tensor(i).name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(m->Data(m->tensor(i))) % format::kTensorAlign, 0u);
  }
  const auto* t = m->Find("output");
  ASSERT_NE(t, nullptr);
  float v[3];
  std::memcpy(v, m->Data(*t), sizeof(v));
  EXPECT_FLOAT_EQ(v[0], 0.25f);
  EXPECT_FLOAT_EQ(v[2], 0.25f + 0.002f);
  EXPECT_EQ(m->Find("nope"), nullptr);
  ASSERT_EQ(m->tokenizer_size(), tok.size());
  EXPECT_EQ(std::memcmp(m->tokenizer_data(), tok.data(), tok.size()), 0);
  EXPECT_EQ(std::string(m->header().weight_scheme), "f32");
}

TEST(ModelFile, TiedAndOptions) {
  const std::string path = test::TestDataDir("loader") + "/tiny_tied.lamina";
  std::string err;
  ASSERT_TRUE(WriteTiny(path, true, &err)) << err;
  LoadOptions o;
  o.populate = true;
  o.willneed = true;
  auto m = ModelFile::Open(path, o, &err);
  ASSERT_TRUE(m) << err;
  EXPECT_TRUE(m->tied_embeddings());
  EXPECT_EQ(m->Find("output"), nullptr);
  EXPECT_EQ(m->tokenizer_size(), 0u);
  o.mlock = true;
  auto m2 = ModelFile::Open(path, o, &err);
  // mlock may be refused by RLIMIT_MEMLOCK; then the error must name it.
  if (!m2) {
    EXPECT_NE(err.find("RLIMIT_MEMLOCK"), std::string::npos) << err;
  }
}

TEST(ModelWriter, RejectsBadTensorsAndLeavesNoFile) {
  const std::string path = test::TestDataDir("loader") + "/bad_writer.lamina";
  ::unlink(path.c_str());
  std::string err;
  {
    ModelWriter w;
    ASSERT_TRUE(w.Open(path, &err)) << err;
    float x[4] = {};
    EXPECT_FALSE(w.AddTensor("a", DType::kF32, Layout::kRowMajor, {5}, 0, 0, x, 16, &err));
    EXPECT_NE(err.find("size 16 != expected 20"), std::string::npos) << err;
    EXPECT_FALSE(w.AddTensor("a", DType::kQ8C, Layout::kRowMajor, {4}, 0, 0, x, 16, &err));
    EXPECT_TRUE(w.AddTensor("a", DType::kF32, Layout::kRowMajor, {4}, 0, 0, x, 16, &err));
    EXPECT_FALSE(w.AddTensor("a", DType::kF32, Layout::kRowMajor, {4}, 0, 0, x, 16, &err));
    EXPECT_NE(err.find("duplicate"), std::string::npos);
    // Incomplete model: Finish refuses to publish it.
    EXPECT_FALSE(w.Finish(&err));
    EXPECT_NE(err.find("refusing to write an invalid model"), std::string::npos) << err;
  }
  EXPECT_FALSE(test::FileExists(path));
  EXPECT_FALSE(test::FileExists(path + ".tmp"));
  {
    ModelWriter w;  // abandoned without Finish: temp file removed
    ASSERT_TRUE(w.Open(path, &err));
  }
  EXPECT_FALSE(test::FileExists(path + ".tmp"));
}

TEST(ModelWriter, TensorBytesFormulas) {
  const uint64_t s[2] = {5, 33};
  EXPECT_EQ(TensorBytes(DType::kQ4G, Layout::kQ4G_R4K8, s, 2, 32), 2u * (2 * 80 + 16));
  EXPECT_EQ(TensorBytes(DType::kQ8C, Layout::kQ8C_R4K4, s, 2, 0), 2u * (64 * 4 + 32));
  EXPECT_EQ(TensorBytes(DType::kBF16, Layout::kRowMajor, s, 2, 0), 5u * 33 * 2);
  EXPECT_EQ(TensorBytes(DType::kQ4G, Layout::kQ4G_R4K8, s, 2, 64), 0u);
  EXPECT_EQ(TensorBytes(DType::kQ4G, Layout::kQ8C_R4K4, s, 2, 32), 0u);
  EXPECT_EQ(TensorBytes(DType::kQ8C, Layout::kQ8C_R4K4, s, 1, 0), 0u);
  const uint64_t huge[4] = {1ull << 30, 1ull << 30, 1ull << 30, 1ull << 30};
  EXPECT_EQ(TensorBytes(DType::kF32, Layout::kRowMajor, huge, 4, 0), 0u);  // overflow
  const uint64_t zero[1] = {0};
  EXPECT_EQ(TensorBytes(DType::kF32, Layout::kRowMajor, zero, 1, 0), 0u);
}

// Damaged images: each mutation must be refused with a message naming the field.
class CorruptImage : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = test::TestDataDir("loader") + "/tiny_corrupt_src.lamina";
    std::string err;
    ASSERT_TRUE(WriteTiny(path, false, &err, {9, 9, 9})) << err;
    img_ = ReadAll(path);
    ASSERT_TRUE(ValidateModelImage(img_.data(), img_.size(), "m", &err)) << err;
  }
  format::FileHeader* H(std::vector<uint8_t>& v) {
    return reinterpret_cast<format::FileHeader*>(v.data());
  }
  format::TensorEntry* T(std::vector<uint8_t>& v, size_t i) {
    return reinterpret_cast<format::TensorEntry*>(v.data() + H(v)->tensor_dir_offset) + i;
  }
  size_t FindT(std::vector<uint8_t>& v, const char* name) {
    for (size_t i = 0; i < H(v)->n_tensors; ++i)
      if (std::strcmp(T(v, i)->name, name) == 0) return i;
    ADD_FAILURE() << name;
    return 0;
  }
  void Expect(const std::vector<uint8_t>& v, const std::string& needle) {
    std::string err;
    EXPECT_FALSE(ValidateModelImage(v.data(), v.size(), "m.lamina", &err)) << needle;
    EXPECT_NE(err.find(needle), std::string::npos) << "got: " << err;
    EXPECT_EQ(err.rfind("m.lamina: ", 0), 0u) << err;
  }
  std::vector<uint8_t> img_;
};

TEST_F(CorruptImage, HeaderFields) {
  auto v = img_;
  v[0] = 'X';
  Expect(v, "bad magic");
  v = img_;
  H(v)->version_major = 2;
  Expect(v, "unsupported format version 2.");
  v = img_;
  H(v)->header_size = 300;
  Expect(v, "header_size");
  v = img_;
  H(v)->tensor_entry_size = 128;
  Expect(v, "tensor_entry_size");
  v = img_;
  H(v)->file_size += format::kFileAlign;
  Expect(v, "file_size");
  v = img_;
  H(v)->n_tensors = 1ull << 60;
  Expect(v, "n_tensors");
  v = img_;
  H(v)->n_tensors += 1;
  Expect(v, "tensor");
  v = img_;
  H(v)->tensor_dir_offset = ~0ull - 10;
  Expect(v, "tensor directory");
  v = img_;
  H(v)->tokenizer_offset = v.size() - 1;
  Expect(v, "tokenizer blob");
  v = img_;
  H(v)->data_size = ~0ull;
  Expect(v, "data region");
  v = img_;
  H(v)->flags = 0x80;
  Expect(v, "unknown header flags");
  v = img_;
  H(v)->tensor_dir_offset = format::kDataAlign;
  Expect(v, "overlaps");
}

TEST_F(CorruptImage, HParamsFields) {
  auto v = img_;
  H(v)->hparams.dim = 17;
  Expect(v, "hparams.");
  v = img_;
  H(v)->hparams.n_kv_heads = 3;
  Expect(v, "hparams.n_kv_heads");
  v = img_;
  H(v)->hparams.head_dim = 7;
  Expect(v, "hparams.head_dim");
  v = img_;
  H(v)->hparams.norm_eps = std::nanf("");
  Expect(v, "hparams.norm_eps");
  v = img_;
  H(v)->hparams.rope_theta = -1;
  Expect(v, "hparams.rope_theta");
  v = img_;
  H(v)->hparams.n_stop_ids = 9;
  Expect(v, "hparams.n_stop_ids");
  v = img_;
  H(v)->hparams.vocab_size = 0xFFFFFFFFu;
  Expect(v, "hparams.vocab_size");
  v = img_;
  H(v)->hparams.n_layers = 3;
  Expect(v, "tensor blk.2.attn_norm: missing");
  v = img_;
  H(v)->hparams.rope_high_freq_factor = 0.5f;
  Expect(v, "hparams.rope_high_freq_factor");
  v = img_;
  H(v)->hparams.lora_rank = 16;
  Expect(v, "lora_a: missing");
}

TEST_F(CorruptImage, TensorFields) {
  auto v = img_;
  size_t i = FindT(v, "blk.1.ffn_down");
  T(v, i)->offset = v.size() + 256 * 4;
  Expect(v, "tensor blk.1.ffn_down: offset beyond end of file");
  v = img_;
  T(v, i)->offset += 4;
  Expect(v, "not aligned to 256");
  v = img_;
  T(v, i)->offset = T(v, FindT(v, "blk.1.ffn_up"))->offset;
  Expect(v, "overlaps tensor blk.1.ffn_up");
  v = img_;
  T(v, i)->shape[0] = 1ull << 40;
  Expect(v, "tensor blk.1.ffn_down: shape[0]");
  v = img_;
  T(v, i)->shape[0] = 17;
  Expect(v, "tensor blk.1.ffn_down: size");
  v = img_;
  T(v, i)->dtype = 77;
  Expect(v, "unknown dtype 77");
  v = img_;
  T(v, i)->layout = static_cast<uint32_t>(Layout::kQ4G_R4K8);
  Expect(v, "invalid dtype/layout");
  v = img_;
  T(v, i)->n_dims = 0;
  Expect(v, "n_dims");
  v = img_;
  std::memset(T(v, i)->name, 'x', sizeof(T(v, i)->name));
  Expect(v, "not NUL-terminated");
  v = img_;
  std::strcpy(T(v, i)->name, "blk.1.ffn_up");
  Expect(v, "duplicate tensor name");
  v = img_;
  T(v, i)->flags = format::kTensorHadamardInput;  // K = 40: not a power of two
  Expect(v, "power-of-two");
  v = img_;
  T(v, FindT(v, "blk.0.attn_q"))->flags = format::kTensorHadamardInput;
  Expect(v, "only valid on ffn_down");
  v = img_;
  std::strcpy(T(v, FindT(v, "output"))->name, "outpux");
  Expect(v, "tensor output: missing");
  v = img_;
  H(v)->flags = format::kFlagTiedEmbeddings;
  Expect(v, "present although embeddings are tied");
}

TEST_F(CorruptImage, NonFiniteNormVectors) {
  // Norm vectors are small and checked at load (big tensors are not scanned;
  // the engine reports their NaN/Inf at run time: tests/numeric_test.cpp).
  auto patch = [&](const char* t, uint64_t i, float f) {
    auto v = img_;
    std::memcpy(v.data() + T(v, FindT(v, t))->offset + 4 * i, &f, 4);
    return v;
  };
  Expect(patch("output_norm", 2, std::numeric_limits<float>::quiet_NaN()),
         "tensor output_norm: element 2 is NaN");
  Expect(patch("blk.1.ffn_norm", 15, -std::numeric_limits<float>::infinity()),
         "tensor blk.1.ffn_norm: element 15 is Inf");
  Expect(patch("blk.0.attn_norm", 0, std::numeric_limits<float>::infinity()),
         "tensor blk.0.attn_norm: element 0 is Inf");
  std::string err;
  EXPECT_TRUE(ValidateModelImage(patch("output_norm", 2, 3e38f).data(), img_.size(), "m", &err))
      << err;
}

// q8c: K is capped at 65536 so the int32 dot products cannot overflow; the
// row sums (wsum) are not read at load (the kernels subtract zp * wsum in
// int64: any value is defined, kernels_test MatmulQ8CCorruptWsumAsan).
TEST(ModelFileCorrupt, Q8CKLimitAndUncheckedWsum) {
  const std::string path = test::TestDataDir("loader") + "/tiny_q8c.lamina";
  auto q8 = [](ModelWriter& w, const std::string& name, int N, int K, std::string* err) {
    std::vector<int8_t> vals(static_cast<size_t>(N) * K);
    for (size_t i = 0; i < vals.size(); ++i) vals[i] = static_cast<int8_t>(i % 2 ? 127 : -128);
    std::vector<float> sc(N, 0.01f);
    std::vector<uint8_t> packed(pack::Q8CBytes(N, K));
    pack::PackQ8C(vals.data(), sc.data(), N, K, packed.data());
    // A corrupt row sum: still a valid file.
    const int32_t bad = INT32_MIN;
    std::memcpy(packed.data() + format::RoundUp(K, 32) * 4 + 16, &bad, 4);
    return w.AddTensor(name, DType::kQ8C, Layout::kQ8C_R4K4,
                       {static_cast<uint64_t>(N), static_cast<uint64_t>(K)}, 0, 0, packed.data(),
                       packed.size(), err);
  };
  std::string err;
  // K = 65536 is the widest q8c accepted.
  ASSERT_TRUE(WriteTiny(path, false, &err, {}, [&](ModelWriter& w, std::string* e) {
    return q8(w, "x.small", 6, 40, e) && q8(w, "x.widest", 4, 65536, e);
  })) << err;
  const auto img = ReadAll(path);
  EXPECT_TRUE(ValidateModelImage(img.data(), img.size(), "m", &err)) << err;
  // One 32-column group more is refused (the writer runs the same validation
  // before publishing a file).
  EXPECT_FALSE(WriteTiny(path, false, &err, {}, [&](ModelWriter& w, std::string* e) {
    return q8(w, "x.too_wide", 4, 65536 + 32, e);
  }));
  EXPECT_NE(err.find("tensor x.too_wide: q8c K = 65568 exceeds 65536"), std::string::npos) << err;
}

TEST_F(CorruptImage, TruncatedAtRandomPoints) {
  std::mt19937_64 rng(42);
  std::string err;
  for (int it = 0; it < 200; ++it) {
    const size_t n = rng() % img_.size();
    std::vector<uint8_t> v(img_.begin(), img_.begin() + n);
    EXPECT_FALSE(ValidateModelImage(v.data(), v.size(), "t", &err)) << n;
    EXPECT_FALSE(err.empty());
  }
  EXPECT_FALSE(ValidateModelImage(nullptr, 0, "t", &err));
}

TEST_F(CorruptImage, RandomHeaderAndDirectoryBytes) {
  // Flip random bytes of the header and directory: must never crash; when a
  // mutation is accepted it must have been a harmless byte (checked by ASan).
  std::mt19937_64 rng(7);
  const uint64_t dir = H(img_)->tensor_dir_offset;
  const uint64_t dir_bytes = H(img_)->n_tensors * sizeof(format::TensorEntry);
  std::string err;
  int refused = 0;
  for (int it = 0; it < 2000; ++it) {
    auto v = img_;
    for (int k = 0; k < 3; ++k) {
      const size_t pos = (rng() & 1) ? rng() % 512 : dir + rng() % dir_bytes;
      v[pos] ^= static_cast<uint8_t>(1u << (rng() % 8));
    }
    if (!ValidateModelImage(v.data(), v.size(), "f", &err)) ++refused;
  }
  EXPECT_GT(refused, 500);
}

TEST(ModelFile, OpenErrors) {
  std::string err;
  EXPECT_FALSE(ModelFile::Open("/nonexistent/x.lamina", LoadOptions{}, &err));
  EXPECT_NE(err.find("/nonexistent/x.lamina: cannot open"), std::string::npos) << err;
  const std::string p = test::TestDataDir("loader") + "/empty.lamina";
  { std::ofstream f(p); }
  EXPECT_FALSE(ModelFile::Open(p, LoadOptions{}, &err));
  EXPECT_NE(err.find("too small"), std::string::npos) << err;
  EXPECT_FALSE(ModelFile::Open(test::TestDataDir("loader"), LoadOptions{}, &err));
}

TEST(ModelFile, TruncatedOnDisk) {
  const std::string src = test::TestDataDir("loader") + "/tiny_trunc_src.lamina";
  const std::string p = test::TestDataDir("loader") + "/tiny_trunc.lamina";
  std::string err;
  ASSERT_TRUE(WriteTiny(src, false, &err)) << err;
  const auto img = ReadAll(src);
  for (size_t n : {size_t{0}, size_t{100}, size_t{512}, size_t{70000}, img.size() - 1}) {
    std::ofstream(p, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(img.data()), static_cast<std::streamsize>(n));
    EXPECT_FALSE(ModelFile::Open(p, LoadOptions{}, &err)) << n;
    EXPECT_EQ(err.rfind(p + ": ", 0), 0u) << err;
    if (n >= 512) {
      EXPECT_NE(err.find("truncated file?"), std::string::npos) << err;
    }
  }
}

// The documented byte offsets (docs/FORMAT.md) of the on-disk structs.
static_assert(offsetof(format::FileHeader, file_size) == 16);
static_assert(offsetof(format::FileHeader, n_tensors) == 32);
static_assert(offsetof(format::FileHeader, data_offset) == 64);
static_assert(offsetof(format::FileHeader, weight_scheme) == 80);
static_assert(offsetof(format::HParams, norm_eps) == 36);
static_assert(offsetof(format::HParams, bos_id) == 64);
static_assert(offsetof(format::HParams, stop_ids) == 76);
static_assert(offsetof(format::HParams, lora_rank) == 108);
static_assert(offsetof(format::HParams, reserved) == 116);
static_assert(offsetof(format::TensorEntry, dtype) == 96);
static_assert(offsetof(format::TensorEntry, shape) == 112);
static_assert(offsetof(format::TensorEntry, group_size) == 144);
static_assert(offsetof(format::TensorEntry, offset) == 152);
static_assert(offsetof(format::TensorEntry, size) == 160);

}  // namespace
}  // namespace lamina
