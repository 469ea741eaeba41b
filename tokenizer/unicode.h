// UTF-8 and Unicode character-class helpers for the tokenizers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace lamina::uni {

enum Class : uint8_t { kOther = 0, kLetter = 1, kNumber = 2, kSpace = 3 };

/// Class of code point `cp` (any value; >= 0x110000 is kOther): kLetter for
/// General_Category L*, kNumber for N*, kSpace for White_Space (= regex \s).
Class ClassOf(uint32_t cp);

/// Decodes one well-formed UTF-8 sequence at s[*i] (i < n). Returns false (and
/// leaves *i) on an ill-formed sequence; on success advances *i.
bool DecodeOne(const char* s, size_t n, size_t* i, uint32_t* cp);

/// True iff `s` is well-formed UTF-8 (no surrogates, no overlongs, <= U+10FFFF).
/// On failure *bad_offset (if non-null) gets the offset of the first bad byte.
bool IsValid(std::string_view s, size_t* bad_offset = nullptr);

/// Replacement policy: every maximal subpart of an ill-formed subsequence
/// becomes one U+FFFD (Unicode §3.9 "U+FFFD substitution of maximal subparts",
/// = Python's bytes.decode('utf-8', errors='replace') and the WHATWG decoder).
std::string Sanitize(std::string_view s);

/// Length of the longest prefix of `s` that ends neither inside nor at the
/// start of an incomplete (but so far well-formed) final UTF-8 sequence: the
/// bytes after it may still complete a character when more bytes arrive.
size_t CompletePrefix(std::string_view s);

/// Appends the UTF-8 encoding of `cp` (cp < 0x110000).
void Append(std::string* out, uint32_t cp);

}  // namespace lamina::uni
