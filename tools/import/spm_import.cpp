// Importers of scored vocabularies: SentencePiece .model (protobuf read by
// hand; libsentencepiece, when built with it, reads it too and must agree),
// llama2.c tokenizer.bin and GGUF "llama" vocabularies. All build the
// runtime's scored BPE (tokenizer/spm.cpp) through MakeScored.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "tools/import/import_internal.h"

#ifdef LAMINA_WITH_SENTENCEPIECE
#include <sentencepiece_processor.h>
#endif

namespace lamina::tok {
namespace {

using spm::kByte;
using spm::kControl;
using spm::kNormal;
using spm::kUnknown;

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

/// What the scored BPE needs from a ModelProto, with the proto's defaults.
struct SpModel {
  std::vector<std::string> pieces;  // ModelProto.pieces (1): piece (1), score (2), type (3)
  std::vector<float> scores;
  std::vector<uint8_t> types;
  // TrainerSpec (2).
  uint64_t model_type = 1;                  // 3: UNIGRAM = 1, BPE = 2, WORD = 3, CHAR = 4
  bool treat_whitespace_as_suffix = false;  // 24
  std::string unk_piece = "<unk>", bos_piece = "<s>", eos_piece = "</s>";  // 45, 46, 47
  // NormalizerSpec (3) and denormalizer_spec (5).
  std::string norm_name;                 // 1
  bool norm_charsmap = false;            // 2: a non-empty precompiled_charsmap
  bool add_dummy_prefix = true;          // 3
  bool remove_extra_whitespaces = true;  // 4
  bool escape_whitespaces = true;        // 5
  bool denorm_charsmap = false;
};

bool ReadPiece(std::string_view m, SpModel* out) {
  Wire w{m};
  std::string_view piece;
  float score = 0;
  uint64_t type = kNormal;
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
  if (type < static_cast<uint64_t>(kNormal) || type > static_cast<uint64_t>(kByte)) return false;
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

#ifdef LAMINA_WITH_SENTENCEPIECE
/// libsentencepiece's reading of the same protobuf; "" when it agrees.
std::string LibraryDisagrees(std::string_view proto, const SpModel& m, int32_t bos, int32_t eos,
                             int32_t unk) {
  sentencepiece::SentencePieceProcessor sp;
  const auto st = sp.LoadFromSerializedProto(std::string(proto));
  if (!st.ok()) return "libsentencepiece: " + st.ToString();
  if (sp.GetPieceSize() != static_cast<int>(m.pieces.size()))
    return "libsentencepiece reads " + std::to_string(sp.GetPieceSize()) + " pieces";
  for (int i = 0; i < sp.GetPieceSize(); ++i) {
    const int type = sp.IsUnknown(i)   ? kUnknown
                     : sp.IsControl(i) ? kControl
                     : sp.IsUnused(i)  ? spm::kUnused
                     : sp.IsByte(i)    ? kByte
                                       : -1;
    const bool same_type =
        type < 0 ? (m.types[i] == kNormal || m.types[i] == spm::kUserDefined) : m.types[i] == type;
    if (sp.IdToPiece(i) != m.pieces[i] || !(sp.GetScore(i) == m.scores[i]) || !same_type)
      return "libsentencepiece reads piece " + std::to_string(i) + " differently";
  }
  if (sp.bos_id() != bos || sp.eos_id() != eos || sp.unk_id() != unk)
    return "libsentencepiece reads other bos/eos/unk ids";
  return "";
}
#endif

}  // namespace

std::unique_ptr<Tokenizer> LoadSentencePieceProto(const std::string& path, std::string_view proto,
                                                  std::string* err) {
  SpModel m;
  std::string e;
  if (!ReadModelProto(proto, &m, &e)) {
    *err = path + ": " + e;
    return nullptr;
  }
  if (const std::string what = Unsupported(m); !what.empty()) {
    *err = path + ": SentencePiece model with " + what +
           ": not supported (lamina implements Llama-style BPE models; lamina-convert "
           "--tokenizer none converts without a tokenizer)";
    return nullptr;
  }
  const int32_t bos = FindPiece(m, m.bos_piece, kControl);
  const int32_t eos = FindPiece(m, m.eos_piece, kControl);
  const int32_t unk = FindPiece(m, m.unk_piece, kUnknown);
#ifdef LAMINA_WITH_SENTENCEPIECE
  if (const std::string what = LibraryDisagrees(proto, m, bos, eos, unk); !what.empty()) {
    *err = path + ": " + what;
    return nullptr;
  }
#endif
  auto t = MakeScored(std::move(m.pieces), std::move(m.scores), std::move(m.types),
                      ScoredMode::kSentencePiece, bos, eos, unk, true, &e);
  if (!t) *err = path + ": " + e;
  return t;
}

std::unique_ptr<Tokenizer> LoadLlama2cBin(const std::string& path, const std::string& d,
                                          std::string* err) {
  BlobReader r(reinterpret_cast<const uint8_t*>(d.data()), d.size());
  const int32_t max_len = r.I32("max_token_length");
  if (max_len <= 0 || max_len > 65536) {
    *err =
        path + ": not a llama2.c tokenizer.bin (max_token_length " + std::to_string(max_len) + ")";
    return nullptr;
  }
  std::vector<std::string> pieces;
  std::vector<float> scores;
  while (r.ok() && r.remaining() > 0) {
    const float score = r.F32("score");
    const int32_t len = r.I32("token length");
    if (!r.ok()) break;
    if (len < 0 || len > max_len) {
      *err = path + ": token " + std::to_string(pieces.size()) + ": length " + std::to_string(len) +
             " outside [0, max_token_length]";
      return nullptr;
    }
    const uint8_t* p = r.Span(static_cast<size_t>(len), "token bytes");
    if (!p) break;
    pieces.emplace_back(reinterpret_cast<const char*>(p), len);
    scores.push_back(score);
  }
  if (!r.ok()) {
    *err = path + ": " + r.error() + " (token " + std::to_string(pieces.size()) + ")";
    return nullptr;
  }
  if (pieces.size() < 3) {
    *err = path + ": only " + std::to_string(pieces.size()) + " tokens";
    return nullptr;
  }
  // llama2.c convention: 0 <unk>, 1 <s> (BOS), 2 </s> (EOS), then byte tokens.
  std::vector<uint8_t> types(pieces.size(), kNormal);
  types[0] = kUnknown;
  types[1] = kControl;
  types[2] = kControl;
  for (size_t i = 3; i < pieces.size(); ++i)
    if (ParseBytePiece(pieces[i]) >= 0) types[i] = kByte;
  std::string e;
  auto t = MakeScored(std::move(pieces), std::move(scores), std::move(types), ScoredMode::kLlama2c,
                      1, 2, 0, true, &e);
  if (!t) {
    *err = path + ": " + e;
    return nullptr;
  }
  return t;
}

std::unique_ptr<Tokenizer> LoadGgufLlama(const GgufVocab& v, std::string* err) {
  const size_t n = v.tokens.size();
  if (!v.scores.empty() && v.scores.size() != n) {
    *err = "gguf: tokenizer.ggml.scores has " + std::to_string(v.scores.size()) +
           " entries, tokens has " + std::to_string(n);
    return nullptr;
  }
  if (!v.types.empty() && v.types.size() != n) {
    *err = "gguf: tokenizer.ggml.token_type has " + std::to_string(v.types.size()) +
           " entries, tokens has " + std::to_string(n);
    return nullptr;
  }
  std::vector<uint8_t> types(n, kNormal);
  for (size_t i = 0; i < v.types.size(); ++i) {
    if (v.types[i] < kNormal || v.types[i] > kByte) {
      *err = "gguf: tokenizer.ggml.token_type[" + std::to_string(i) +
             "] = " + std::to_string(v.types[i]) + " invalid";
      return nullptr;
    }
    types[i] = static_cast<uint8_t>(v.types[i]);
  }
  // Vocabularies that use raw spaces (llama2.c exports) take run.c's rules.
  bool has_mark = false;
  for (const auto& t : v.tokens)
    if (t.find(kSpaceMark) != std::string::npos) {
      has_mark = true;
      break;
    }
  std::string e;
  auto t = MakeScored(v.tokens, v.scores, std::move(types),
                      has_mark ? ScoredMode::kSentencePiece : ScoredMode::kLlama2c, v.bos_id,
                      v.eos_id, v.unk_id, v.add_bos, &e);
  if (!t) {
    *err = "gguf: " + e;
    return nullptr;
  }
  return t;
}

}  // namespace lamina::tok
