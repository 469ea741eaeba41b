// Tests of the torch.save zip + pickle reader against archives written by
// PyTorch itself (Debian's python3-torch), and its robustness on damage.
#include "tools/convert/pth_reader.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tests/testutil.h"
#include "tools/convert/meta_test_util.h"

namespace lamina {
namespace {

std::vector<uint8_t> ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)),
                              std::istreambuf_iterator<char>());
}

void WriteAll(const std::string& path, const std::vector<uint8_t>& d) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(d.data()), static_cast<std::streamsize>(d.size()));
}

// Writes archives with torch.save and, per tensor, its raw contiguous bytes.
const char* kGen = R"PY(
import collections, os, sys, zipfile, torch
out = sys.argv[1]
torch.manual_seed(0)
sd = collections.OrderedDict()
sd['a.weight'] = torch.randint(-8, 8, (5, 64), dtype=torch.int8)
sd['a.scales'] = torch.rand(5, 2)
sd['a.scales3'] = torch.rand(5, 2, 1)
sd['b.bf16'] = torch.randn(3, 7, dtype=torch.bfloat16)
sd['c.f16'] = torch.randn(9, dtype=torch.float16)
sd['d.f64'] = torch.randn(2, 2, dtype=torch.float64)
sd['e.u8'] = torch.randint(0, 255, (4,), dtype=torch.uint8)
sd['f.i32'] = torch.randint(-1000, 1000, (3, 1), dtype=torch.int32)
sd['g.i64'] = torch.tensor([1 << 40, -5])
base = torch.randn(8, 4)
sd['h.row_view'] = base[3]            # shares a storage, non-zero offset
sd['i.shared'] = base                 # the same storage again
sd['j.scalar'] = torch.tensor(2.5)
sd['k.empty'] = torch.zeros(0, 4)
sd['l.param'] = torch.nn.Parameter(torch.randn(2, 3))
sd['m.bool'] = torch.tensor([True, False, True])
sd._metadata = collections.OrderedDict([('', {'version': 1})])
torch.save(sd, out + '/good.pth')
with open(out + '/good.manifest', 'w') as f:
    for i, (k, v) in enumerate(sd.items()):
        v = v.detach().contiguous()
        raw = v.view(torch.int16) if v.dtype in (torch.bfloat16, torch.float16) else v
        raw.numpy().tofile(out + '/t%d.bin' % i)
        f.write('%s %s %s\n' % (k, str(v.dtype).replace('torch.', ''),
                                ','.join(map(str, v.shape)) or '-'))
torch.save({'x': torch.randn(4, 3).t()}, out + '/noncontig.pth')
torch.save({'x': [1, 2]}, out + '/notensor.pth')
torch.save([torch.zeros(2)], out + '/notdict.pth')
# A deflated copy of good.pth (torch never writes those).
zin = zipfile.ZipFile(out + '/good.pth')
with zipfile.ZipFile(out + '/deflated.pth', 'w', zipfile.ZIP_DEFLATED) as zout:
    for n in zin.namelist():
        zout.writestr(n, zin.read(n))
# What torch 2.x writes beyond torch 1.13 (hand-made pickle): a 7-argument
# _rebuild_tensor_v2 (trailing metadata dict), byteorder and serialization_id
# records, SHORT_BINUNICODE, LONG_BINPUT and a dtype given as torch.bfloat16.
import struct
def u(x):
    b = x.encode(); return b'\x8c' + bytes([len(b)]) + b
pk = (b'\x80\x02}r\x00\x00\x00\x00(' + u('w') + b'ctorch._utils\n_rebuild_tensor_v2\n(('
      + u('storage') + b'ctorch\nbfloat16\n' + u('0') + u('cpu') + b'K\x06tQK\x00K\x02K\x03\x86'
      + b'K\x03K\x01\x86\x89ccollections\nOrderedDict\n)R}tRu.')
with zipfile.ZipFile(out + '/torch2.pth', 'w', zipfile.ZIP_STORED) as zout:
    zout.writestr('archive/data.pkl', pk)
    zout.writestr('archive/byteorder', 'little')
    zout.writestr('archive/data/0', bytes(range(12)))
    zout.writestr('archive/version', '3\n')
    zout.writestr('archive/.data/serialization_id', '1234')
# A big-endian archive (torch >= 2.1 writes <archive>/byteorder).
with zipfile.ZipFile(out + '/bigendian.pth', 'w', zipfile.ZIP_STORED) as zout:
    for n in zin.namelist():
        zout.writestr(n, zin.read(n))
    zout.writestr('good/byteorder', 'big')
# ZIP64 records (as torch writes for > 4 GB archives), forced on a small file:
# with the limits at 0 every size/offset goes to the ZIP64 extra field and the
# ZIP64 end record + locator are written.
zipfile.ZIP64_LIMIT = 0
zipfile.ZIP_FILECOUNT_LIMIT = 0
with zipfile.ZipFile(out + '/zip64.pth', 'w', zipfile.ZIP_STORED) as zout:
    for n in zin.namelist():
        zout.writestr(n, zin.read(n))
data = open(out + '/zip64.pth', 'rb').read()
assert b'PK\x06\x06' in data and b'PK\x06\x07' in data
)PY";

class PthReaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string script = test::TestDataDir("pth_reader") + "/gen_v4.py";
    std::ofstream(script) << kGen;
    dir_ = test::GenerateOnce("pth_reader", kGen,
                              test::Python() + " " + script + " {OUT} >/dev/null 2>&1");
  }
  void SetUp() override {
    if (dir_.empty()) {  // generation failed: skip without torch, fail with it
      LAMINA_REQUIRE_TORCH();
      FAIL() << "the torch.save generator failed";
    }
  }
  static std::string dir_;
};
std::string PthReaderTest::dir_;

void ExpectMatchesManifest(const pth::StateDict& sd, const std::string& dir) {
  std::ifstream man(dir + "/good.manifest");
  std::string line;
  size_t i = 0;
  while (std::getline(man, line)) {
    std::istringstream ls(line);
    std::string name, dtype, shape;
    ls >> name >> dtype >> shape;
    SCOPED_TRACE(name);
    const pth::Tensor* t = sd.Find(name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(pth::DTypeName(t->dtype), dtype);
    std::string got_shape;
    for (size_t d = 0; d < t->shape.size(); ++d)
      got_shape += (d ? "," : "") + std::to_string(t->shape[d]);
    EXPECT_EQ(got_shape.empty() ? "-" : got_shape, shape);
    const std::vector<uint8_t> want = ReadAll(dir + "/t" + std::to_string(i) + ".bin");
    ASSERT_EQ(t->nbytes, want.size());
    EXPECT_TRUE(want.empty() || std::equal(want.begin(), want.end(), t->data));
    ++i;
  }
  EXPECT_EQ(i, 15u);
  EXPECT_EQ(sd.tensors().size(), i);
  // File order is kept.
  EXPECT_EQ(sd.tensors().front().name, "a.weight");
  EXPECT_EQ(sd.tensors().back().name, "m.bool");
}

TEST_F(PthReaderTest, ReadsEveryTensorOfATorchSaveStateDictExactly) {
  pth::StateDict sd;
  std::string err;
  ASSERT_TRUE(sd.Open(dir_ + "/good.pth", &err)) << err;
  ExpectMatchesManifest(sd, dir_);
}

TEST_F(PthReaderTest, ReadsTorch2StyleRecords) {
  pth::StateDict sd;
  std::string err;
  ASSERT_TRUE(sd.Open(dir_ + "/torch2.pth", &err)) << err;
  ASSERT_EQ(sd.tensors().size(), 1u);
  const pth::Tensor* t = sd.Find("w");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, pth::DType::kBF16);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 3}));
  ASSERT_EQ(t->nbytes, 12u);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(t->data[i], i);
}

TEST_F(PthReaderTest, ReadsZip64Records) {
  pth::StateDict sd;
  std::string err;
  ASSERT_TRUE(sd.Open(dir_ + "/zip64.pth", &err)) << err;
  ExpectMatchesManifest(sd, dir_);
}

TEST_F(PthReaderTest, MalformedRejectsCompressedEntries) {
  pth::StateDict sd;
  std::string err;
  EXPECT_FALSE(sd.Open(dir_ + "/deflated.pth", &err));
  EXPECT_NE(err.find("compressed (method 8)"), std::string::npos) << err;
  EXPECT_NE(err.find("deflated.pth"), std::string::npos) << err;
}

TEST_F(PthReaderTest, MalformedRejectsBigEndianStorages) {
  pth::StateDict sd;
  std::string err;
  EXPECT_FALSE(sd.Open(dir_ + "/bigendian.pth", &err));
  EXPECT_NE(err.find("'big' byte order"), std::string::npos) << err;
}

TEST_F(PthReaderTest, MalformedRejectsNonContiguousTensors) {
  pth::StateDict sd;
  std::string err;
  EXPECT_FALSE(sd.Open(dir_ + "/noncontig.pth", &err));
  EXPECT_NE(err.find("tensor x: non-contiguous"), std::string::npos) << err;
}

TEST_F(PthReaderTest, MalformedRejectsNonTensorValuesAndNonDicts) {
  pth::StateDict sd;
  std::string err;
  EXPECT_FALSE(sd.Open(dir_ + "/notensor.pth", &err));
  EXPECT_NE(err.find("entry x is a list, not a tensor"), std::string::npos) << err;
  EXPECT_FALSE(sd.Open(dir_ + "/notdict.pth", &err));
  EXPECT_NE(err.find("not a state dict"), std::string::npos) << err;
}

TEST_F(PthReaderTest, MalformedMissingFileAndNotAZip) {
  pth::StateDict sd;
  std::string err;
  EXPECT_FALSE(sd.Open(dir_ + "/does-not-exist.pth", &err));
  EXPECT_NE(err.find("cannot open"), std::string::npos) << err;
  WriteAll(dir_ + "/garbage.pth", std::vector<uint8_t>(1000, 'x'));
  EXPECT_FALSE(sd.Open(dir_ + "/garbage.pth", &err));
  EXPECT_NE(err.find("end-of-central-directory"), std::string::npos) << err;
}

TEST_F(PthReaderTest, TruncatedArchivesFailCleanly) {
  const std::vector<uint8_t> good = ReadAll(dir_ + "/good.pth");
  ASSERT_GT(good.size(), 1000u);
  int failures = 0, n = 0;
  for (size_t len = 0; len < good.size(); len += 37, ++n) {
    std::vector<uint8_t> cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(len));
    pth::StateDict sd;
    std::string err;
    const bool ok = sd.OpenMemory(cut.data(), cut.size(), "cut.pth", &err);
    failures += !ok;
    if (!ok) {
      EXPECT_EQ(err.rfind("cut.pth: ", 0), 0u) << err;
    }
  }
  EXPECT_EQ(failures, n);  // the end record is at the very end: every cut fails
}

// Finds the data of <prefix>/data.pkl in an archive image.
size_t PickleOffset(const std::vector<uint8_t>& img, size_t* size) {
  pth::ZipArchive z;
  std::string err;
  EXPECT_TRUE(z.OpenMemory(img.data(), img.size(), "x", &err)) << err;
  for (const auto& e : z.entries()) {
    if (e.name.size() > 9 && e.name.compare(e.name.size() - 9, 9, "/data.pkl") == 0) {
      *size = e.size;
      return e.offset;
    }
  }
  ADD_FAILURE() << "no data.pkl";
  return 0;
}

TEST_F(PthReaderTest, MalformedUnsupportedPickleOpcodeIsNamed) {
  std::vector<uint8_t> img = ReadAll(dir_ + "/good.pth");
  size_t size = 0;
  const size_t off = PickleOffset(img, &size);
  ASSERT_EQ(img[off + 2], 'c');  // PROTO 2, then GLOBAL collections.OrderedDict
  img[off + 2] = 0x93;           // STACK_GLOBAL (protocol 4): not in the subset
  pth::StateDict sd;
  std::string err;
  EXPECT_FALSE(sd.OpenMemory(img.data(), img.size(), "op.pth", &err));
  EXPECT_NE(err.find("unsupported pickle opcode 0x93 at offset 2"), std::string::npos) << err;
  img[off + 2] = 'c';
  img[off + size - 1] = 'x';  // STOP replaced
  EXPECT_FALSE(sd.OpenMemory(img.data(), img.size(), "op.pth", &err));
  EXPECT_NE(err.find("unsupported pickle opcode 0x78"), std::string::npos) << err;
}

TEST_F(PthReaderTest, MalformedCentralDirectory) {
  const std::vector<uint8_t> good = ReadAll(dir_ + "/good.pth");
  // Locate the central directory through the end record.
  const size_t eocd = good.size() - 22;
  ASSERT_EQ(good[eocd], 0x50);
  const uint32_t cd = good[eocd + 16] | good[eocd + 17] << 8 | good[eocd + 18] << 16 |
                      static_cast<uint32_t>(good[eocd + 19]) << 24;
  struct Case {
    size_t at;
    uint8_t val;
    const char* expect;
  } cases[] = {
      {cd, 0x00, "bad central directory entry 0"},       // signature
      {cd + 10, 8, "compressed (method 8)"},             // method
      {cd + 42, 0xFF, "bad local header offset"},        // local header offset
      {cd + 8, 1, "encrypted"},                          // flags
      {cd + 28, 0xFF, "bad central directory entry 1"},  // name length
      {eocd + 16, 0xFF, "outside the file"},             // cd offset
      {eocd + 10, 0x7F, "entries in"},                   // entry count
  };
  for (const Case& c : cases) {
    std::vector<uint8_t> img = good;
    img[c.at] = c.val;
    if (c.at == eocd + 10) img[eocd + 8] = c.val;  // keep disk/total counts consistent
    pth::StateDict sd;
    std::string err;
    EXPECT_FALSE(sd.OpenMemory(img.data(), img.size(), "cd.pth", &err)) << c.expect;
    EXPECT_NE(err.find(c.expect), std::string::npos) << err;
  }
}

TEST_F(PthReaderTest, FuzzPickleAndZipBytesNeverCrash) {
  const std::vector<uint8_t> good = ReadAll(dir_ + "/good.pth");
  size_t size = 0;
  const size_t off = PickleOffset(good, &size);
  std::mt19937 rng(42);
  int rejected = 0;
  for (int it = 0; it < 3000; ++it) {
    std::vector<uint8_t> img = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      // Mostly the pickle, sometimes anywhere (headers, directory).
      const size_t at = (it % 4) ? off + rng() % size : rng() % img.size();
      img[at] = static_cast<uint8_t>(rng());
    }
    pth::StateDict sd;
    std::string err;
    if (!sd.OpenMemory(img.data(), img.size(), "fuzz.pth", &err)) {
      ++rejected;
      EXPECT_FALSE(err.empty());
    } else {
      for (const auto& t : sd.tensors()) {  // every accepted view is in bounds
        EXPECT_GE(t.data, img.data());
        EXPECT_LE(t.data + t.nbytes, img.data() + img.size());
      }
    }
  }
  EXPECT_GT(rejected, 1000);
}

// A one-entry stored zip ("a/data.pkl") holding `pkl`, built in memory.
std::vector<uint8_t> StoredZip(const std::vector<uint8_t>& pkl) {
  const std::string name = "a/data.pkl";
  std::vector<uint8_t> z;
  auto u16 = [&](uint32_t v) {
    z.push_back(static_cast<uint8_t>(v));
    z.push_back(static_cast<uint8_t>(v >> 8));
  };
  auto u32 = [&](uint32_t v) {
    u16(v & 0xFFFF);
    u16(v >> 16);
  };
  const uint32_t n = static_cast<uint32_t>(pkl.size());
  const uint32_t nlen = static_cast<uint32_t>(name.size());
  u32(0x04034b50);  // local header
  u16(20), u16(0), u16(0), u16(0), u16(0), u32(0), u32(n), u32(n), u16(nlen), u16(0);
  z.insert(z.end(), name.begin(), name.end());
  z.insert(z.end(), pkl.begin(), pkl.end());
  const uint32_t cd = static_cast<uint32_t>(z.size());
  u32(0x02014b50);  // central directory entry
  u16(20), u16(20), u16(0), u16(0), u16(0), u16(0), u32(0), u32(n), u32(n), u16(nlen);
  u16(0), u16(0), u16(0), u16(0), u32(0), u32(0);
  z.insert(z.end(), name.begin(), name.end());
  const uint32_t cd_size = static_cast<uint32_t>(z.size()) - cd;
  u32(0x06054b50);  // end of central directory
  u16(0), u16(0), u16(1), u16(1), u32(cd_size), u32(cd), u16(0);
  return z;
}

std::string DecodePickle(const std::vector<uint8_t>& pkl) {
  const std::vector<uint8_t> img = StoredZip(pkl);
  pth::StateDict sd;
  std::string err;
  EXPECT_FALSE(sd.OpenMemory(img.data(), img.size(), "deep.pth", &err));
  EXPECT_FALSE(err.empty());
  return err;
}

TEST(PthReaderPickle, MalformedDeepNestingIsRejectedNotAStackOverflow) {
  // The zip builder itself is sound: an empty state dict decodes.
  {
    const std::vector<uint8_t> img = StoredZip({0x80, 2, '}', '.'});
    pth::StateDict sd;
    std::string err;
    ASSERT_TRUE(sd.OpenMemory(img.data(), img.size(), "empty.pth", &err)) << err;
    EXPECT_TRUE(sd.tensors().empty());
  }
  // Far deeper than any sane pickle (crashed before the fix), yet within the
  // memory budget (loader/mem_budget.h) so that the depth check is what refuses it.
  const int kDeep = 100000;
  // [[[[...]]]] through APPENDS: ] ( ] ( ... ] e e ... e
  {
    std::vector<uint8_t> p = {0x80, 2};
    for (int i = 0; i < kDeep; ++i) p.push_back(']'), p.push_back('(');
    p.push_back(']');
    for (int i = 0; i < kDeep; ++i) p.push_back('e');  // list_i.extend([list_{i+1}])
    p.push_back('.');
    const std::string err = DecodePickle(p);
    EXPECT_NE(err.find("nested deeper than 64"), std::string::npos) << err;
    EXPECT_NE(err.find("deep.pth: data.pkl: "), std::string::npos) << err;
  }
  // The same through APPEND: ] ] ... ] a a ... a (the reviewer's repro).
  {
    std::vector<uint8_t> p = {0x80, 2};
    p.insert(p.end(), kDeep, ']');
    p.insert(p.end(), kDeep - 1, 'a');
    p.push_back('.');
    const std::string err = DecodePickle(p);
    EXPECT_NE(err.find("nested deeper than 64"), std::string::npos) << err;
  }
  // Tuples: ((((),),),) via EMPTY_TUPLE then TUPLE1 repeatedly.
  {
    std::vector<uint8_t> p = {0x80, 2, ')'};
    for (int i = 0; i < kDeep; ++i) p.push_back(0x85);  // TUPLE1
    p.push_back('.');
    const std::string err = DecodePickle(p);
    EXPECT_NE(err.find("nested deeper than 64"), std::string::npos) << err;
  }
  // Dicts: {k: {k: {...}}} via SETITEM.
  {
    std::vector<uint8_t> p = {0x80, 2};
    for (int i = 0; i < kDeep; ++i) p.push_back('}'), p.push_back('K'), p.push_back(1);
    p.push_back('}');
    for (int i = 0; i < kDeep; ++i) p.push_back('s');
    p.push_back('.');
    const std::string err = DecodePickle(p);
    EXPECT_NE(err.find("nested deeper than 64"), std::string::npos) << err;
  }
  // Exactly at the limit is fine as far as nesting goes (then rejected as a non-dict).
  {
    std::vector<uint8_t> p = {0x80, 2, ')'};
    for (int i = 1; i < 64; ++i) p.push_back(0x85);
    p.push_back('.');
    const std::string err = DecodePickle(p);
    EXPECT_NE(err.find("holds a tuple, not a state dict"), std::string::npos) << err;
  }
}

TEST(PthReaderPickle, MalformedMemoCyclesAndStaleDepthsAreRejected) {
  // A list appended into itself: ] q0 h0 a .
  {
    const std::string err = DecodePickle({0x80, 2, ']', 'q', 0, 'h', 0, 'a', '.'});
    EXPECT_NE(err.find("list inserted into itself"), std::string::npos) << err;
  }
  // A two-list cycle: A=[] q0, B=[] q1, A.append(B), B.append(A).
  {
    const std::string err =
        DecodePickle({0x80, 2, ']', 'q', 0, ']', 'q', 1, 'a', 'h', 1, 'h', 0, 'a', '.'});
    EXPECT_NE(err.find("already stored inside another object"), std::string::npos) << err;
  }
  // Deep chain built bottom-up through the memo (each list is filled after it was
  // stored in its parent, so recorded depths would go stale): rejected.
  {
    std::vector<uint8_t> p = {0x80, 2};
    const int n = 200;
    for (int i = 0; i < n; ++i)
      p.push_back(']'), p.push_back('q'), p.push_back(static_cast<uint8_t>(i));
    for (int i = 0; i + 1 < n; ++i) {  // L[i].append(L[i+1]): L[i] is already inside L[i-1]
      p.push_back('h'), p.push_back(static_cast<uint8_t>(i));
      p.push_back('h'), p.push_back(static_cast<uint8_t>(i + 1));
      p.push_back('a');
    }
    p.push_back('.');
    const std::string err = DecodePickle(p);
    EXPECT_NE(err.find("already stored inside another object"), std::string::npos) << err;
  }
}

}  // namespace
}  // namespace lamina
