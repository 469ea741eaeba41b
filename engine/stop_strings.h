// Stop strings for generation: holds back generated text that may be the start
// of a stop string, so text is never emitted past a stop string's start even
// when the stop string spans several tokens.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lamina::engine {

class StopStringFilter {
 public:
  /// `stops`: non-empty byte strings (matched on the UTF-8 bytes of the text).
  explicit StopStringFilter(std::vector<std::string> stops);

  /// Appends `text` and returns what can be emitted now: everything except the
  /// longest tail that is a proper prefix of some stop string. When a stop
  /// string occurs (the earliest one wins), returns the text before its start,
  /// sets *matched, and drops the rest (later calls return "").
  std::string Push(std::string_view text, bool* matched);
  /// End of the text: returns the held tail (never part of a match) and resets.
  std::string Flush();

  bool matched() const { return matched_; }
  size_t held_bytes() const { return held_.size(); }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool matched_ = false;
};

}  // namespace lamina::engine
