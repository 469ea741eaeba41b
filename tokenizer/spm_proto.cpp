// The SentencePiece ModelProto reader: a .model file (tools/import) or the
// payload of a kind-3 tokenizer blob (Tokenizer::Deserialize), read by hand
// with no library into the scored BPE of spm.cpp. Only what the scored BPE
// needs is read (pieces, scores, types, special pieces' names); settings it
// does not implement are refused by name.
#include <cstring>
#include <string>
#include <vector>

#include "tokenizer/internal.h"

namespace lamina::tok {
namespace {

// ------------------------------------------------ SentencePiece ModelProto
// Protobuf wire format over a byte span; every read is bounds-checked.
struct Wire {
  std::string_view d;
  size_t i = 0;
  bool Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (i >= d.size()) return false;
      const uint8_t b = static_cast<uint8_t>(d[i++]);
      *v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }
  bool Bytes(std::string_view* out) {
    uint64_t n;
    if (!Varint(&n) || n > d.size() - i) return false;
    *out = d.substr(i, n);
    i += n;
    return true;
  }
  bool Fixed32(void* out) {
    if (d.size() - i < 4) return false;
    std::memcpy(out, d.data() + i, 4);
    i += 4;
    return true;
  }
  bool Skip(uint64_t wire) {
    uint64_t v;
    std::string_view s;
    switch (wire) {
      case 0:
        return Varint(&v);
      case 1:
        if (d.size() - i < 8) return false;
        i += 8;
        return true;
      case 2:
        return Bytes(&s);
      case 5:
        return Fixed32(&v);
      default:
        return false;
    }
  }
};

bool ReadPiece(std::string_view m, SpModel* out) {
  Wire w{m};
  std::string_view piece;
  float score = 0;
  uint64_t type = spm::kNormal;
  while (w.i < m.size()) {
    uint64_t k;
    if (!w.Varint(&k)) return false;
    bool ok;
    if (k == ((1 << 3) | 2)) {
      ok = w.Bytes(&piece);
    } else if (k == ((2 << 3) | 5)) {
      ok = w.Fixed32(&score);
    } else if (k == ((3 << 3) | 0)) {
      ok = w.Varint(&type);
    } else {
      ok = w.Skip(k & 7);
    }
    if (!ok) return false;
  }
  if (type < spm::kNormal || type > spm::kByte) return false;
  out->pieces.emplace_back(piece);
  out->scores.push_back(score);
  out->types.push_back(static_cast<uint8_t>(type));
  return true;
}

/// TrainerSpec (normalizer = false) or NormalizerSpec (true) fields.
bool ReadSpec(std::string_view m, bool normalizer, bool denormalizer, SpModel* out) {
  Wire w{m};
  while (w.i < m.size()) {
    uint64_t k, v = 0;
    std::string_view s;
    if (!w.Varint(&k)) return false;
    const uint64_t field = k >> 3, wire = k & 7;
    bool ok;
    if (wire == 0) {
      ok = w.Varint(&v);
    } else if (wire == 2) {
      ok = w.Bytes(&s);
    } else {
      ok = w.Skip(wire);
    }
    if (!ok) return false;
    if (denormalizer) {
      if (field == 2 && wire == 2 && !s.empty()) out->denorm_charsmap = true;
    } else if (normalizer) {
      if (field == 1 && wire == 2) out->norm_name = std::string(s);
      if (field == 2 && wire == 2) out->norm_charsmap = !s.empty();
      if (field == 3 && wire == 0) out->add_dummy_prefix = v != 0;
      if (field == 4 && wire == 0) out->remove_extra_whitespaces = v != 0;
      if (field == 5 && wire == 0) out->escape_whitespaces = v != 0;
    } else {
      if (field == 3 && wire == 0) out->model_type = v;
      if (field == 24 && wire == 0) out->treat_whitespace_as_suffix = v != 0;
      if (field == 45 && wire == 2) out->unk_piece = std::string(s);
      if (field == 46 && wire == 2) out->bos_piece = std::string(s);
      if (field == 47 && wire == 2) out->eos_piece = std::string(s);
    }
  }
  return true;
}

bool ReadModelProto(std::string_view d, SpModel* out, std::string* err) {
  Wire w{d};
  while (w.i < d.size()) {
    const size_t at = w.i;
    uint64_t k;
    std::string_view m;
    if (!w.Varint(&k)) {
      *err = "malformed protobuf at byte " + std::to_string(at);
      return false;
    }
    const uint64_t field = k >> 3, wire = k & 7;
    if (wire != 2 || field < 1 || field > 5) {
      if (!w.Skip(wire)) {
        *err = "malformed protobuf at byte " + std::to_string(at);
        return false;
      }
      continue;
    }
    if (!w.Bytes(&m)) {
      *err = "malformed protobuf at byte " + std::to_string(at);
      return false;
    }
    bool ok = true;
    if (field == 1) {
      ok = ReadPiece(m, out);
      if (!ok) *err = "malformed SentencePiece entry " + std::to_string(out->pieces.size());
    } else if (field == 2 || field == 3 || field == 5) {
      ok = ReadSpec(m, field != 2, field == 5, out);
      if (!ok) *err = "malformed protobuf at byte " + std::to_string(at);
    }
    if (!ok) return false;
  }
  if (out->pieces.empty()) {
    *err = "no pieces";
    return false;
  }
  return true;
}

/// Empty when the scored BPE implements the model's settings, else what not.
std::string Unsupported(const SpModel& m) {
  if (m.model_type != 2)
    return "model_type " + std::to_string(m.model_type) + " (only BPE, 2, is implemented)";
  if (m.norm_charsmap)
    return "a normalizer with a character map ('" + m.norm_name + "'; only identity)";
  if (m.denorm_charsmap) return "a denormalizer";
  if (!m.add_dummy_prefix) return "add_dummy_prefix false";
  if (m.remove_extra_whitespaces) return "remove_extra_whitespaces true";
  if (!m.escape_whitespaces) return "escape_whitespaces false";
  if (m.treat_whitespace_as_suffix) return "treat_whitespace_as_suffix true";
  return "";
}

int32_t FindPiece(const SpModel& m, const std::string& s, int type) {
  for (size_t i = 0; i < m.pieces.size(); ++i)
    if (m.pieces[i] == s && m.types[i] == type) return static_cast<int32_t>(i);
  return -1;
}

}  // namespace

bool ReadSpModel(std::string_view proto, SpModel* out, std::string* err, bool* unsupported) {
  *out = SpModel();
  if (unsupported) *unsupported = false;
  if (!ReadModelProto(proto, out, err)) return false;
  if (const std::string what = Unsupported(*out); !what.empty()) {
    if (unsupported) *unsupported = true;
    *err = "SentencePiece model with " + what +
           ": not supported (lamina implements Llama-style BPE models)";
    return false;
  }
  out->bos = FindPiece(*out, out->bos_piece, spm::kControl);
  out->eos = FindPiece(*out, out->eos_piece, spm::kControl);
  out->unk = FindPiece(*out, out->unk_piece, spm::kUnknown);
  return true;
}

std::unique_ptr<Tokenizer> MakeScoredFromSp(SpModel* m, std::string* err) {
  return MakeScored(std::move(m->pieces), std::move(m->scores), std::move(m->types),
                    ScoredMode::kSentencePiece, m->bos, m->eos, m->unk, /*add_bos=*/true, err);
}

std::unique_ptr<Tokenizer> DeserializeSentencePiece(BlobReader* r, std::string* err) {
  // Payload: u32 size, then the ModelProto bytes (read in place).
  const uint32_t n = r->Count("proto size", 1);
  const uint8_t* p = r->Span(n, "proto");
  if (!p) return nullptr;  // r's error
  SpModel m;
  if (!ReadSpModel(std::string_view(reinterpret_cast<const char*>(p), n), &m, err, nullptr))
    return nullptr;
  return MakeScoredFromSp(&m, err);
}

}  // namespace lamina::tok
