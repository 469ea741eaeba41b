// Importers of scored vocabularies: SentencePiece .model (the protobuf read
// by the runtime's reader, tokenizer/spm_proto.cpp; libsentencepiece, when
// built with it, reads it too and must agree), llama2.c tokenizer.bin and
// GGUF "llama" vocabularies. All build the runtime's scored BPE
// (tokenizer/spm.cpp) through MakeScored.
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

#ifdef LAMINA_WITH_SENTENCEPIECE
/// libsentencepiece's reading of the same protobuf; "" when it agrees.
std::string LibraryDisagrees(std::string_view proto, const SpModel& m) {
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
  if (sp.bos_id() != m.bos || sp.eos_id() != m.eos || sp.unk_id() != m.unk)
    return "libsentencepiece reads other bos/eos/unk ids";
  return "";
}
#endif

}  // namespace

std::unique_ptr<Tokenizer> LoadSentencePieceProto(const std::string& path, std::string_view proto,
                                                  std::string* err) {
  SpModel m;
  std::string e;
  bool unsupported = false;
  if (!ReadSpModel(proto, &m, &e, &unsupported)) {
    *err = path + ": " + e +
           (unsupported ? " (lamina-convert --tokenizer none converts without a tokenizer)" : "");
    return nullptr;
  }
#ifdef LAMINA_WITH_SENTENCEPIECE
  if (const std::string what = LibraryDisagrees(proto, m); !what.empty()) {
    *err = path + ": " + what;
    return nullptr;
  }
#endif
  auto t = MakeScoredFromSp(&m, &e);
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
