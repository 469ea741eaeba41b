#include "engine/stop_strings.h"

#include <algorithm>

namespace lamina::engine {

StopStringFilter::StopStringFilter(std::vector<std::string> stops) : stops_(std::move(stops)) {
  stops_.erase(
      std::remove_if(stops_.begin(), stops_.end(), [](const std::string& s) { return s.empty(); }),
      stops_.end());
}

std::string StopStringFilter::Push(std::string_view text, bool* matched) {
  *matched = matched_;
  if (matched_) return std::string();
  held_.append(text.data(), text.size());
  // Earliest occurrence of any stop string. Everything before held_ was
  // checked already, and held_ starts where a match could still begin.
  size_t first = std::string::npos;
  for (const std::string& s : stops_) first = std::min(first, held_.find(s));
  if (first != std::string::npos) {
    std::string out = held_.substr(0, first);
    held_.clear();
    matched_ = true;
    *matched = true;
    return out;
  }
  // Longest tail of held_ that is a proper prefix of a stop string.
  size_t hold = 0;
  for (const std::string& s : stops_) {
    for (size_t k = std::min(s.size() - 1, held_.size()); k > hold; --k) {
      if (held_.compare(held_.size() - k, k, s, 0, k) == 0) {
        hold = k;
        break;
      }
    }
  }
  std::string out = held_.substr(0, held_.size() - hold);
  held_.erase(0, held_.size() - hold);
  return out;
}

std::string StopStringFilter::Flush() {
  std::string out;
  out.swap(held_);
  matched_ = false;
  return out;
}

}  // namespace lamina::engine
