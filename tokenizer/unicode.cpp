#include "tokenizer/unicode.h"

namespace lamina::uni {
namespace {
#include "tokenizer/unicode_tables.inc"

// Length of the well-formed prefix of the sequence starting at s[i] (0 if s[i]
// cannot start a sequence), and the full length the lead byte announces.
inline size_t ValidPrefix(const unsigned char* s, size_t n, size_t i, size_t* need) {
  const unsigned c = s[i];
  if (c < 0x80) {
    *need = 1;
    return 1;
  }
  unsigned lo = 0x80, hi = 0xBF;
  size_t len;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    *need = 1;
    return 0;
  }
  *need = len;
  size_t k = 1;
  while (k < len && i + k < n) {
    const unsigned b = s[i + k];
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) break;
    ++k;
  }
  return k;
}
}  // namespace

Class ClassOf(uint32_t cp) {
  if (cp >= 0x110000) return kOther;
  return static_cast<Class>(kUniBlocks[kUniIndex[cp >> 7]][cp & 127]);
}

bool DecodeOne(const char* str, size_t n, size_t* i, uint32_t* cp) {
  const auto* s = reinterpret_cast<const unsigned char*>(str);
  size_t need;
  const size_t k = ValidPrefix(s, n, *i, &need);
  if (k == 0 || k != need) return false;
  uint32_t c = s[*i];
  if (need == 1) {
    *cp = c;
  } else {
    c &= (need == 2 ? 0x1F : need == 3 ? 0x0F : 0x07);
    for (size_t j = 1; j < need; ++j) c = (c << 6) | (s[*i + j] & 0x3F);
    *cp = c;
  }
  *i += need;
  return true;
}

bool IsValid(std::string_view str, size_t* bad_offset) {
  const auto* s = reinterpret_cast<const unsigned char*>(str.data());
  const size_t n = str.size();
  size_t i = 0;
  while (i < n) {
    if (s[i] < 0x80) {
      ++i;
      continue;
    }
    size_t need;
    const size_t k = ValidPrefix(s, n, i, &need);
    if (k == 0 || k != need) {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    i += need;
  }
  return true;
}

std::string Sanitize(std::string_view str) {
  const auto* s = reinterpret_cast<const unsigned char*>(str.data());
  const size_t n = str.size();
  std::string out;
  out.reserve(n);
  size_t i = 0;
  while (i < n) {
    if (s[i] < 0x80) {
      out.push_back(static_cast<char>(s[i++]));
      continue;
    }
    size_t need;
    const size_t k = ValidPrefix(s, n, i, &need);
    if (k != 0 && k == need) {
      out.append(str.data() + i, need);
      i += need;
    } else {
      out.append("\xEF\xBF\xBD");
      i += k == 0 ? 1 : k;
    }
  }
  return out;
}

size_t CompletePrefix(std::string_view str) {
  const auto* s = reinterpret_cast<const unsigned char*>(str.data());
  const size_t n = str.size();
  // Only the last 3 bytes can belong to an incomplete sequence.
  const size_t start = n > 3 ? n - 3 : 0;
  for (size_t i = start; i < n; ++i) {
    if (s[i] >= 0x80 && s[i] < 0xC0) continue;  // continuation byte
    size_t need;
    const size_t k = ValidPrefix(s, n, i, &need);
    if (k != 0 && k < need && i + k == n) return i;  // well-formed so far, cut short by the end
  }
  return n;
}

void Append(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace lamina::uni
