#include "engine/grammar.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <stdexcept>
#include <utility>

namespace lamina::engine {

namespace {

// ------------------------------------------------------------------- parsing

struct ParseError {
  size_t pos;
  std::string msg;
};

using Seq = std::vector<Grammar::Elem>;
using Alts = std::vector<Seq>;

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

class GbnfParser {
 public:
  explicit GbnfParser(std::string_view src) : s_(src) {}

  void Run(std::string_view root_name, Grammar* g) {
    SkipSpace(true);
    while (p_ < s_.size()) ParseRule();
    for (size_t r = 0; r < rules_.size(); ++r)
      if (!defined_[r]) throw ParseError{first_ref_[r], "undefined rule '" + names_[r] + "'"};
    auto it = ids_.find(std::string(root_name));
    if (it == ids_.end() || !defined_[it->second])
      throw ParseError{s_.size(), "no rule '" + std::string(root_name) + "' (the start rule)"};
    // Flatten: each alternative = its elems + kEnd.
    g->rule_names = names_;
    g->rule_alts.resize(rules_.size());
    for (size_t r = 0; r < rules_.size(); ++r)
      for (const Seq& alt : rules_[r]) {
        g->rule_alts[r].push_back(static_cast<uint32_t>(g->elems.size()));
        g->elems.insert(g->elems.end(), alt.begin(), alt.end());
        g->elems.push_back({Grammar::kEnd, 0});
      }
    g->classes = std::move(classes_);
    g->root = it->second;
  }

  std::string LineCol(size_t pos) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        col = 1;
      } else if ((static_cast<uint8_t>(s_[i]) & 0xC0) != 0x80) {
        ++col;
      }
    }
    return "line " + std::to_string(line) + " col " + std::to_string(col);
  }

 private:
  [[noreturn]] void Fail(const std::string& msg) const { throw ParseError{p_, msg}; }
  bool AtEnd() const { return p_ >= s_.size(); }
  char Peek() const { return AtEnd() ? '\0' : s_[p_]; }

  void SkipSpace(bool newline_ok) {
    while (!AtEnd()) {
      const char c = s_[p_];
      if (c == ' ' || c == '\t') {
        ++p_;
      } else if (c == '#') {
        while (!AtEnd() && s_[p_] != '\n') ++p_;
      } else if (newline_ok && (c == '\n' || c == '\r')) {
        ++p_;
      } else {
        break;
      }
    }
  }

  std::string ParseName() {
    const size_t b = p_;
    while (!AtEnd() && IsNameChar(s_[p_])) ++p_;
    return std::string(s_.substr(b, p_ - b));
  }

  uint32_t RuleId(const std::string& name, size_t ref_pos) {
    auto it = ids_.find(name);
    if (it != ids_.end()) return it->second;
    return NewRule(name, ref_pos);
  }
  uint32_t NewRule(const std::string& name, size_t ref_pos) {
    if (rules_.size() >= (1u << 24)) Fail("too many rules");
    const uint32_t id = static_cast<uint32_t>(rules_.size());
    ids_[name] = id;
    names_.push_back(name);
    rules_.emplace_back();
    defined_.push_back(false);
    first_ref_.push_back(ref_pos);
    return id;
  }
  // A helper rule (grouping, repetition), named after the rule it serves.
  uint32_t HelperRule(uint32_t parent, Alts alts) {
    const std::string name = names_[parent] + "_" + std::to_string(rules_.size());
    const uint32_t id = NewRule(name, p_);
    defined_[id] = true;
    rules_[id] = std::move(alts);
    for (const Seq& a : rules_[id]) Count(a.size() + 1);
    return id;
  }
  void Count(size_t n) {
    n_elems_ += n;
    if (n_elems_ > Grammar::kMaxElems)
      Fail("grammar too large (more than " + std::to_string(Grammar::kMaxElems) +
           " elements after expanding repetitions)");
  }

  void ParseRule() {
    const size_t at = p_;
    const std::string name = ParseName();
    if (name.empty()) Fail("expected a rule name");
    SkipSpace(false);
    if (s_.substr(p_, 3) != "::=") Fail("expected '::=' after rule name '" + name + "'");
    p_ += 3;
    SkipSpace(true);
    const uint32_t id = RuleId(name, at);
    if (defined_[id]) throw ParseError{at, "rule '" + name + "' defined twice"};
    defined_[id] = true;
    Alts alts = ParseAlternates(id, false);
    rules_[id] = std::move(alts);
    for (const Seq& a : rules_[id]) Count(a.size() + 1);
    SkipSpace(false);
    if (!AtEnd() && Peek() != '\n' && Peek() != '\r')
      Fail(std::string("unexpected '") + Peek() + "' (expected the end of the rule)");
    SkipSpace(true);
  }

  Alts ParseAlternates(uint32_t rule, bool nested) {
    Alts alts;
    for (;;) {
      alts.push_back(ParseSequence(rule, nested));
      if (Peek() == '|') {
        ++p_;
        SkipSpace(true);
        continue;
      }
      if (!nested) {
        // A top-level rule may continue on a line that starts with '|'.
        const size_t save = p_;
        SkipSpace(true);
        if (Peek() == '|') {
          ++p_;
          SkipSpace(true);
          continue;
        }
        p_ = save;
      }
      return alts;
    }
  }

  Seq ParseSequence(uint32_t rule, bool nested) {
    Seq seq;
    size_t last = SIZE_MAX;  // start of the last element (for postfix operators)
    for (;;) {
      const char c = Peek();
      if (c == '"') {
        ++p_;
        last = seq.size();
        for (;;) {
          if (AtEnd() || Peek() == '\n') Fail("unterminated string literal");
          if (Peek() == '"') {
            ++p_;
            break;
          }
          const uint32_t cp = ParseChar();
          seq.push_back({Grammar::kChars, AddClass(false, {{cp, cp}})});
        }
        if (seq.size() == last) last = SIZE_MAX;  // "" is nothing to repeat
      } else if (c == '[') {
        ++p_;
        last = seq.size();
        seq.push_back({Grammar::kChars, ParseClass()});
      } else if (c == '.') {
        ++p_;
        last = seq.size();
        seq.push_back({Grammar::kChars, AddClass(true, {})});
      } else if (IsNameChar(c)) {
        const size_t at = p_;
        const std::string name = ParseName();
        {
          const size_t save = p_;
          SkipSpace(false);
          if (s_.substr(p_, 3) == "::=") {
            p_ = at;
            Fail(nested ? "rule definition inside parentheses (missing ')')"
                        : "a new rule must start on its own line");
          }
          p_ = save;
        }
        last = seq.size();
        seq.push_back({Grammar::kRule, RuleId(name, at)});
      } else if (c == '(') {
        const size_t open = p_;
        ++p_;
        SkipSpace(true);
        Alts sub = ParseAlternates(rule, true);
        if (Peek() != ')') {
          if (AtEnd()) throw ParseError{open, "unclosed '('"};
          Fail(std::string("unexpected '") + Peek() + "' (expected ')')");
        }
        ++p_;
        last = seq.size();
        seq.push_back({Grammar::kRule, HelperRule(rule, std::move(sub))});
      } else if (c == '*' || c == '+' || c == '?' || c == '{') {
        if (last == SIZE_MAX) Fail(std::string("'") + c + "' has nothing to repeat");
        uint32_t lo = 0, hi = UINT32_MAX;  // UINT32_MAX: unbounded
        ++p_;
        if (c == '+') {
          lo = 1;
        } else if (c == '?') {
          hi = 1;
        } else if (c == '{') {
          ParseBraces(&lo, &hi);
        }
        Repeat(rule, &seq, last, lo, hi);
        last = SIZE_MAX;  // x** is an error, as in llama.cpp
      } else {
        break;
      }
      Count(0);
      if (seq.size() > Grammar::kMaxElems) Fail("grammar too large");
      SkipSpace(nested);
    }
    return seq;
  }

  uint32_t ParseInt() {
    if (!(Peek() >= '0' && Peek() <= '9')) Fail("expected a number");
    uint64_t v = 0;
    while (Peek() >= '0' && Peek() <= '9') {
      v = v * 10 + static_cast<uint64_t>(Peek() - '0');
      if (v > Grammar::kMaxRepeat)
        Fail("repetition count above " + std::to_string(Grammar::kMaxRepeat));
      ++p_;
    }
    return static_cast<uint32_t>(v);
  }

  void ParseBraces(uint32_t* lo, uint32_t* hi) {
    SkipSpace(false);
    if (Peek() == ',') {
      *lo = 0;
    } else {
      *lo = ParseInt();
    }
    SkipSpace(false);
    if (Peek() == '}') {
      *hi = *lo;
    } else if (Peek() == ',') {
      ++p_;
      SkipSpace(false);
      *hi = Peek() == '}' ? UINT32_MAX : ParseInt();
    } else {
      Fail("expected ',' or '}' in a {m,n} repetition");
    }
    SkipSpace(false);
    if (Peek() != '}') Fail("expected '}'");
    ++p_;
    if (*hi < *lo) Fail("repetition {m,n} with n < m");
  }

  // seq[last..] repeated lo..hi times (hi == UINT32_MAX: unbounded), as
  // llama.cpp: lo copies, then x* as R ::= x R | empty, or the optional tail
  // (x (x (x)?)?)? as nested rules.
  void Repeat(uint32_t rule, Seq* seq, size_t last, uint32_t lo, uint32_t hi) {
    Seq item(seq->begin() + static_cast<std::ptrdiff_t>(last), seq->end());
    seq->resize(last);
    if (item.size() > 1) item = {{Grammar::kRule, HelperRule(rule, {item})}};
    Count(static_cast<size_t>(lo) * item.size());
    for (uint32_t i = 0; i < lo; ++i) seq->insert(seq->end(), item.begin(), item.end());
    if (hi == UINT32_MAX) {
      const uint32_t r = HelperRule(rule, {});
      Seq loop = item;
      loop.push_back({Grammar::kRule, r});
      rules_[r] = {loop, {}};
      Count(loop.size() + 2);
      seq->push_back({Grammar::kRule, r});
      return;
    }
    if (hi == lo) return;
    uint32_t inner = UINT32_MAX;
    for (uint32_t i = 0; i < hi - lo; ++i) {
      Seq alt = item;
      if (inner != UINT32_MAX) alt.push_back({Grammar::kRule, inner});
      inner = HelperRule(rule, {alt, {}});
    }
    seq->push_back({Grammar::kRule, inner});
  }

  uint32_t AddClass(bool negated, std::vector<std::pair<uint32_t, uint32_t>> ranges) {
    if (classes_.size() >= Grammar::kMaxElems) Fail("grammar too large");
    Grammar::CharClass c;
    c.negated = negated;
    c.ranges = std::move(ranges);
    classes_.push_back(std::move(c));
    return static_cast<uint32_t>(classes_.size() - 1);
  }

  uint32_t ParseClass() {
    const size_t open = p_ - 1;
    bool neg = false;
    if (Peek() == '^') {
      neg = true;
      ++p_;
    }
    std::vector<std::pair<uint32_t, uint32_t>> ranges;
    for (;;) {
      if (AtEnd() || Peek() == '\n') throw ParseError{open, "unterminated character class"};
      if (Peek() == ']') {
        ++p_;
        break;
      }
      const uint32_t lo = ParseChar();
      uint32_t hi = lo;
      if (Peek() == '-' && p_ + 1 < s_.size() && s_[p_ + 1] != ']') {
        ++p_;
        if (AtEnd() || Peek() == '\n') throw ParseError{open, "unterminated character class"};
        hi = ParseChar();
        if (hi < lo) Fail("character range with end below start");
      }
      ranges.emplace_back(lo, hi);
    }
    return AddClass(neg, std::move(ranges));
  }

  uint32_t Hex(int n) {
    uint32_t v = 0;
    for (int i = 0; i < n; ++i) {
      const char c = Peek();
      int d;
      if (c >= '0' && c <= '9') {
        d = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        d = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        d = c - 'A' + 10;
      } else {
        Fail("expected " + std::to_string(n) + " hex digits");
      }
      v = v * 16 + static_cast<uint32_t>(d);
      ++p_;
    }
    return v;
  }

  // One code point of a literal or class: an escape or a UTF-8 sequence.
  uint32_t ParseChar() {
    const size_t at = p_;
    const uint8_t c = static_cast<uint8_t>(s_[p_]);
    if (c == '\\') {
      ++p_;
      if (AtEnd()) Fail("unterminated escape");
      const char e = s_[p_++];
      uint32_t v = 0;
      switch (e) {
        case 'n':
          return '\n';
        case 'r':
          return '\r';
        case 't':
          return '\t';
        case '\\':
        case '"':
        case '[':
        case ']':
        case '-':
        case '/':
        case '^':
        case '\'':
          return static_cast<uint8_t>(e);
        case 'x':
          v = Hex(2);
          break;
        case 'u':
          v = Hex(4);
          break;
        case 'U':
          v = Hex(8);
          break;
        default:
          p_ = at;
          Fail(std::string("unknown escape '\\") + e + "'");
      }
      if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        p_ = at;
        Fail("escape is not a Unicode scalar value");
      }
      return v;
    }
    int n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      n = 1;
      cp = c;
    } else if ((c & 0xE0) == 0xC0 && c >= 0xC2) {
      n = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0 && c <= 0xF4) {
      n = 4;
      cp = c & 0x07;
    } else {
      Fail("invalid UTF-8");
    }
    if (p_ + static_cast<size_t>(n) > s_.size()) Fail("invalid UTF-8 (truncated)");
    for (int i = 1; i < n; ++i) {
      const uint8_t b = static_cast<uint8_t>(s_[p_ + static_cast<size_t>(i)]);
      if ((b & 0xC0) != 0x80) Fail("invalid UTF-8");
      cp = (cp << 6) | (b & 0x3F);
    }
    static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) Fail("invalid UTF-8");
    p_ += static_cast<size_t>(n);
    return cp;
  }

  std::string_view s_;
  size_t p_ = 0;
  size_t n_elems_ = 0;
  std::map<std::string, uint32_t> ids_;
  std::vector<std::string> names_;
  std::vector<Alts> rules_;
  std::vector<bool> defined_;
  std::vector<size_t> first_ref_;
  std::vector<Grammar::CharClass> classes_;
};

// Refuses left recursion (a rule reaching itself before consuming input): the
// stack model would expand it forever. Nullable rules are seen through.
bool CheckLeftRecursion(const Grammar& g, std::string* err) {
  const size_t n = g.rule_alts.size();
  std::vector<bool> nullable(n, false);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < n; ++r) {
      if (nullable[r]) continue;
      for (uint32_t a : g.rule_alts[r]) {
        bool all = true;
        for (uint32_t i = a; g.elems[i].kind != Grammar::kEnd; ++i)
          if (g.elems[i].kind != Grammar::kRule || !nullable[g.elems[i].v]) {
            all = false;
            break;
          }
        if (all) {
          nullable[r] = changed = true;
          break;
        }
      }
    }
  }
  // Edges r -> s: s can be the first thing r expands to.
  std::vector<std::vector<uint32_t>> first(n);
  for (size_t r = 0; r < n; ++r)
    for (uint32_t a : g.rule_alts[r])
      for (uint32_t i = a; g.elems[i].kind == Grammar::kRule; ++i) {
        first[r].push_back(g.elems[i].v);
        if (!nullable[g.elems[i].v]) break;
      }
  // Iterative DFS with colours; a grey target closes a cycle.
  std::vector<uint8_t> color(n, 0);
  std::vector<std::pair<uint32_t, size_t>> path;
  for (size_t start = 0; start < n; ++start) {
    if (color[start]) continue;
    path.push_back({static_cast<uint32_t>(start), 0});
    color[start] = 1;
    while (!path.empty()) {
      auto& [r, k] = path.back();
      if (k == first[r].size()) {
        color[r] = 2;
        path.pop_back();
        continue;
      }
      const uint32_t s = first[r][k++];
      if (color[s] == 1) {
        std::string cyc;
        size_t i = 0;
        while (path[i].first != s) ++i;
        for (; i < path.size(); ++i) cyc += g.rule_names[path[i].first] + " -> ";
        cyc += g.rule_names[s];
        *err = "grammar: left recursion (rule '" + g.rule_names[s] +
               "' can reach itself without consuming input: " + cyc +
               "); rewrite it with repetition, e.g. a ::= b (\"+\" b)*";
        return false;
      }
      if (color[s] == 0) {
        color[s] = 1;
        path.push_back({s, 0});
      }
    }
  }
  return true;
}

}  // namespace

std::shared_ptr<const Grammar> Grammar::Parse(std::string_view gbnf, std::string_view root,
                                              std::string* err) {
  if (gbnf.size() > kMaxTextBytes) {
    *err = "grammar: text of " + std::to_string(gbnf.size()) + " bytes, at most " +
           std::to_string(kMaxTextBytes);
    return nullptr;
  }
  auto g = std::make_shared<Grammar>();
  GbnfParser p(gbnf);
  try {
    p.Run(root.empty() ? "root" : root, g.get());
  } catch (const ParseError& e) {
    *err = "grammar " + p.LineCol(e.pos) + ": " + e.msg;
    return nullptr;
  }
  if (!CheckLeftRecursion(*g, err)) return nullptr;
  return g;
}

bool Grammar::ClassHas(uint32_t cls, uint32_t cp) const {
  const CharClass& c = classes[cls];
  bool in = false;
  for (const auto& r : c.ranges)
    if (cp >= r.first && cp <= r.second) {
      in = true;
      break;
    }
  return in != c.negated;
}

bool Grammar::ClassCovers(uint32_t cls, uint32_t lo, uint32_t hi) const {
  const CharClass& c = classes[cls];
  if (c.negated) {
    for (const auto& r : c.ranges)
      if (r.first <= hi && r.second >= lo) return false;
    return true;
  }
  return !ClassIntersects(cls, lo, hi, /*complement=*/true);
}

bool Grammar::ClassIntersects(uint32_t cls, uint32_t lo, uint32_t hi) const {
  return ClassIntersects(cls, lo, hi, false);
}

bool Grammar::ClassIntersects(uint32_t cls, uint32_t lo, uint32_t hi, bool complement) const {
  const CharClass& c = classes[cls];
  if (c.negated == complement) {
    for (const auto& r : c.ranges)
      if (r.first <= hi && r.second >= lo) return true;
    return false;
  }
  // Negated (or the complement of a plain class): some point of [lo, hi] outside every range. Walk
  // up from lo, jumping past each range that covers the current point.
  uint32_t x = lo;
  for (bool moved = true; moved;) {
    moved = false;
    for (const auto& r : c.ranges)
      if (x >= r.first && x <= r.second) {
        if (r.second >= hi) return false;
        x = r.second + 1;
        moved = true;
      }
  }
  return x <= hi;
}

namespace {

using Utf8 = GrammarUtf8;

// Feeds one byte: 1 = a code point completed (u->cp), 0 = need more, -1 = invalid.
int Utf8Push(Utf8* u, uint8_t b) {
  if (u->need == 0) {
    if (b < 0x80) {
      u->cp = b;
      u->len = 1;
      return 1;
    }
    if ((b & 0xE0) == 0xC0 && b >= 0xC2) {
      u->cp = b & 0x1Fu;
      u->need = 1;
    } else if ((b & 0xF0) == 0xE0) {
      u->cp = b & 0x0Fu;
      u->need = 2;
    } else if ((b & 0xF8) == 0xF0 && b <= 0xF4) {
      u->cp = b & 0x07u;
      u->need = 3;
    } else {
      return -1;
    }
    u->len = static_cast<uint8_t>(u->need + 1);
    return 0;
  }
  if ((b & 0xC0) != 0x80) return -1;
  u->cp = (u->cp << 6) | (b & 0x3Fu);
  if (--u->need > 0) {
    // After the second byte: reject overlong 3/4-byte forms, surrogates and
    // code points above U+10FFFF early.
    if (u->need == u->len - 2) {
      if (u->len == 3 && (u->cp < 0x20 || (u->cp >= 0x360 && u->cp <= 0x37F))) return -1;
      if (u->len == 4 && (u->cp < 0x10 || u->cp > 0x10F)) return -1;
    }
    return 0;
  }
  return 1;
}
// The code points a partial sequence can still become (not below the
// shortest form of its length, not above U+10FFFF).
void Utf8Range(const Utf8& u, uint32_t* lo, uint32_t* hi) {
  static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  const uint32_t sh = 6u * u.need;
  const uint32_t base = u.cp << sh;
  *lo = std::max(base, kMin[u.len]);
  *hi = std::min(base | ((1u << sh) - 1), 0x10FFFFu);
}

}  // namespace

// --------------------------------------------------------------------- vocab

GrammarVocab::GrammarVocab(const std::vector<std::string>& token_bytes,
                           std::vector<int32_t> stop_ids)
    : n_vocab_(static_cast<int32_t>(token_bytes.size())),
      bytes_(token_bytes),
      stop_ids_(std::move(stop_ids)) {
  for (int32_t s : stop_ids_)
    if (s >= 0 && s < n_vocab_) bytes_[static_cast<size_t>(s)].clear();
  std::vector<int32_t> order;
  for (int32_t i = 0; i < n_vocab_; ++i)
    if (!bytes_[static_cast<size_t>(i)].empty()) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    const int c = bytes_[static_cast<size_t>(a)].compare(bytes_[static_cast<size_t>(b)]);
    return c < 0 || (c == 0 && a < b);
  });
  nodes_.push_back({0, 0, 0, 0, 0});
  Build(order, 0, order.size(), 0, 0);
  Summarize();
}

// Bottom-up (children have larger indices than parents): what the token
// suffixes below each node contain when decoding starts fresh there.
void GrammarVocab::Summarize() {
  sums_.assign(nodes_.size(), Summary());
  for (size_t i = nodes_.size(); i-- > 0;) {
    Summary& s = sums_[i];
    s.sub_tok_end = nodes_[i].tok_end;
    if (nodes_[i].child_end > nodes_[i].child_begin)
      s.sub_tok_end = sums_[nodes_[i].child_end - 1].sub_tok_end;
    for (uint32_t c = nodes_[i].child_begin; c < nodes_[i].child_end; ++c) {
      Utf8 u;
      const int r = Utf8Push(&u, nodes_[c].byte);
      if (r < 0) {
        s.bad = true;
      } else if (r == 1) {
        s.ascii[u.cp >> 6] |= uint64_t{1} << (u.cp & 63);
        Merge(sums_[c], &s);
      } else {
        s.high = true;
        Descend(c, u, &s);
      }
    }
  }
}

void GrammarVocab::Merge(const Summary& from, Summary* to) {
  to->ascii[0] |= from.ascii[0];
  to->ascii[1] |= from.ascii[1];
  to->high |= from.high;
  to->bad |= from.bad;
}

// The rest of a multi-byte character below node x (decoder state u).
void GrammarVocab::Descend(uint32_t x, Utf8 u, Summary* s) {
  for (uint32_t c = nodes_[x].child_begin; c < nodes_[x].child_end; ++c) {
    Utf8 w = u;
    const int r = Utf8Push(&w, nodes_[c].byte);
    if (r < 0) {
      s->bad = true;
    } else if (r == 1) {
      static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
      if (w.cp < kMin[w.len] || w.cp > 0x10FFFF || (w.cp >= 0xD800 && w.cp <= 0xDFFF)) {
        s->bad = true;
      } else {
        Merge(sums_[c], s);
      }
    } else {
      Descend(c, w, s);
    }
  }
}

// Node `node` is the prefix of length depth shared by order[lo, hi) (sorted):
// the tokens of exactly that length end here, the rest group by their next
// byte into children, allocated contiguously.
void GrammarVocab::Build(const std::vector<int32_t>& order, size_t lo, size_t hi, size_t depth,
                         uint32_t node) {
  nodes_[node].tok_begin = static_cast<uint32_t>(toks_.size());
  while (lo < hi && bytes_[static_cast<size_t>(order[lo])].size() == depth)
    toks_.push_back(order[lo++]);
  nodes_[node].tok_end = static_cast<uint32_t>(toks_.size());
  std::vector<std::pair<size_t, size_t>> groups;
  for (size_t i = lo; i < hi;) {
    const char b = bytes_[static_cast<size_t>(order[i])][depth];
    size_t j = i + 1;
    while (j < hi && bytes_[static_cast<size_t>(order[j])][depth] == b) ++j;
    groups.emplace_back(i, j);
    i = j;
  }
  const uint32_t first = static_cast<uint32_t>(nodes_.size());
  nodes_[node].child_begin = first;
  nodes_[node].child_end = first + static_cast<uint32_t>(groups.size());
  for (const auto& gr : groups)
    nodes_.push_back(
        {0, 0, 0, 0, static_cast<uint8_t>(bytes_[static_cast<size_t>(order[gr.first])][depth])});
  for (size_t k = 0; k < groups.size(); ++k)
    Build(order, groups[k].first, groups[k].second, depth + 1, first + static_cast<uint32_t>(k));
}

bool GrammarVocab::IsStop(int32_t id) const {
  return std::find(stop_ids_.begin(), stop_ids_.end(), id) != stop_ids_.end();
}

// ------------------------------------------------------------------- matcher

namespace {

struct LimitError {
  std::string msg;
};

// uint64 -> uint32 open-addressing hash map (key 0 is reserved as "free").
class FlatMap {
 public:
  FlatMap() { Clear(); }
  void Clear() {
    keys_.assign(1024, 0);
    vals_.assign(1024, 0);
    n_ = 0;
  }
  size_t size() const { return n_; }
  uint32_t Get(uint64_t key) const {  // UINT32_MAX if absent
    const size_t mask = keys_.size() - 1;
    for (size_t h = Slot(key, mask);; h = (h + 1) & mask) {
      if (keys_[h] == key) return vals_[h];
      if (keys_[h] == 0) return UINT32_MAX;
    }
  }
  void Put(uint64_t key, uint32_t val) {
    const size_t mask = keys_.size() - 1;
    size_t h = Slot(key, mask);
    while (keys_[h] != 0 && keys_[h] != key) h = (h + 1) & mask;
    if (keys_[h] == 0) ++n_;
    keys_[h] = key;
    vals_[h] = val;
    if (n_ * 2 > keys_.size()) Grow();
  }

 private:
  static size_t Slot(uint64_t key, size_t mask) {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> 24) & mask;
  }
  void Grow() {
    std::vector<uint64_t> k;
    std::vector<uint32_t> v;
    k.swap(keys_);
    v.swap(vals_);
    keys_.assign(k.size() * 2, 0);
    vals_.assign(k.size() * 2, 0);
    n_ = 0;
    for (size_t i = 0; i < k.size(); ++i)
      if (k[i]) Put(k[i], v[i]);
  }
  std::vector<uint64_t> keys_;
  std::vector<uint32_t> vals_;
  size_t n_ = 0;
};

}  // namespace

struct GrammarMatcher::Impl {
  const Grammar& g;
  const GrammarVocab& v;
  // Interned stacks: node i = (top position pos_[i], rest parent_[i]); node 0
  // is the empty stack (the grammar has ended). Equal stacks share one id.
  std::vector<uint32_t> pos_, parent_, depth_;
  FlatMap stack_ids_;  // (pos << 32 | parent) + 1 -> node
  // Successors of a stack after its top character matched (any character:
  // the result does not depend on which), expanded and sorted.
  std::vector<uint32_t> succ_off_, succ_len_;
  std::vector<uint32_t> succ_data_;
  size_t expand_work_ = 0;

  std::vector<uint32_t> state_;  // current stacks, sorted
  Utf8 partial_;                 // pending bytes of an incomplete code point
  std::string init_error_;

  std::vector<uint32_t> bits_;
  struct CacheEntry {
    std::vector<uint32_t> key, bits;
    int count;
  };
  std::vector<CacheEntry> cache_;
  size_t cache_next_ = 0;

  // Interned stack sets (the parser state at a trie node) and the
  // transitions between them: Walk visits ~275k trie nodes for the Llama 3
  // vocabulary, so a node must cost a table lookup, not a parser step. A
  // transition depends only on (set, code point), and JSON-like grammars have
  // few distinct sets, so the tables fill quickly and stay small.
  static constexpr uint32_t kUnknown = UINT32_MAX, kDead = UINT32_MAX - 1;
  std::vector<uint32_t> set_data_;
  std::vector<std::pair<uint32_t, uint32_t>> set_span_;  // id -> (offset, length)
  FlatMap set_ids_;                                      // hash of contents -> first id
  std::vector<uint32_t> set_next_;                       // chain of ids with the same hash
  std::vector<uint32_t> ascii_;                          // [set * 128 + cp] -> set / kDead
  FlatMap trans_;  // (set << 32 | code) -> set / kDead; code: cp, or a partial sequence

  // Per set: the characters that lead back to the same set (lazily).
  struct Loop {
    bool done = false, high = false;  // high: every non-ASCII code point loops
    uint64_t ascii[2] = {0, 0};
  };
  std::vector<Loop> loops_;

  struct Frame {
    uint32_t node, child, set;
    Utf8 u;
  };
  std::vector<Frame> frames_;
  std::vector<uint32_t> tmp_;

  Impl(const Grammar& gr, const GrammarVocab& vo) : g(gr), v(vo) {
    bits_.assign((static_cast<size_t>(v.n_vocab()) + 31) / 32, 0);
    ClearArena();
  }

  void ClearArena() {
    pos_.assign(1, UINT32_MAX);
    parent_.assign(1, 0);
    depth_.assign(1, 0);
    succ_off_.assign(1, 0);
    succ_len_.assign(1, UINT32_MAX);
    succ_data_.clear();
    stack_ids_.Clear();
    cache_.clear();
    cache_next_ = 0;
    ClearSets();
  }

  // Drops the interned stack sets and their transition tables.
  void ClearSets() {
    set_data_.clear();
    set_span_.clear();
    set_ids_.Clear();
    set_next_.clear();
    ascii_.clear();
    trans_.Clear();
    loops_.clear();
  }

  uint32_t Intern(uint32_t pos, uint32_t parent) {
    const uint64_t key = ((static_cast<uint64_t>(pos) << 32) | parent) + 1;
    const uint32_t found = stack_ids_.Get(key);
    if (found != UINT32_MAX) return found;
    if (pos_.size() >= kMaxArena)
      throw LimitError{"grammar: parser state too large (more than " + std::to_string(kMaxArena) +
                       " stack entries)"};
    const uint32_t d = depth_[parent] + 1;
    if (d > kMaxDepth)
      throw LimitError{"grammar: nesting deeper than " + std::to_string(kMaxDepth) + " levels"};
    const uint32_t id = static_cast<uint32_t>(pos_.size());
    pos_.push_back(pos);
    parent_.push_back(parent);
    depth_.push_back(d);
    succ_off_.push_back(0);
    succ_len_.push_back(UINT32_MAX);
    stack_ids_.Put(key, id);
    return id;
  }

  // Appends the stacks `s` expands to (each with a character class on top, or
  // the empty stack) to out.
  void Expand(uint32_t s, std::vector<uint32_t>* out) {
    if (++expand_work_ > (size_t{1} << 22))
      throw LimitError{"grammar: too ambiguous (expansion work cap reached)"};
    if (s == 0) {
      out->push_back(0);
      return;
    }
    const uint32_t p = pos_[s];
    const Grammar::Elem& e = g.elems[p];
    if (e.kind == Grammar::kChars) {
      out->push_back(s);
      if (out->size() > kMaxStacks * 4)
        throw LimitError{"grammar: more than " + std::to_string(kMaxStacks) +
                         " parser stacks at once (too ambiguous)"};
      return;
    }
    uint32_t base = parent_[s];
    if (g.elems[p + 1].kind != Grammar::kEnd) base = Intern(p + 1, base);
    for (uint32_t a : g.rule_alts[e.v]) {
      if (g.elems[a].kind == Grammar::kEnd) {
        Expand(base, out);
      } else {
        Expand(Intern(a, base), out);
      }
    }
  }

  static void SortUnique(std::vector<uint32_t>* v, size_t from) {
    std::sort(v->begin() + static_cast<std::ptrdiff_t>(from), v->end());
    v->erase(std::unique(v->begin() + static_cast<std::ptrdiff_t>(from), v->end()), v->end());
  }

  // The successors of stack s (top class matched); cached.
  std::pair<uint32_t, uint32_t> Succ(uint32_t s) {
    if (succ_len_[s] != UINT32_MAX) return {succ_off_[s], succ_len_[s]};
    std::vector<uint32_t> out;
    expand_work_ = 0;
    const uint32_t p = pos_[s];
    const uint32_t base = parent_[s];
    Expand(g.elems[p + 1].kind != Grammar::kEnd ? Intern(p + 1, base) : base, &out);
    SortUnique(&out, 0);
    if (out.size() > kMaxStacks)
      throw LimitError{"grammar: more than " + std::to_string(kMaxStacks) +
                       " parser stacks at once (too ambiguous)"};
    succ_off_[s] = static_cast<uint32_t>(succ_data_.size());
    succ_len_[s] = static_cast<uint32_t>(out.size());
    succ_data_.insert(succ_data_.end(), out.begin(), out.end());
    return {succ_off_[s], succ_len_[s]};
  }

  // out += the stacks of in[0..n) after code point cp (sorted, unique).
  void Step(const uint32_t* in, size_t n, uint32_t cp, std::vector<uint32_t>* out) {
    const size_t from = out->size();
    for (size_t i = 0; i < n; ++i) {
      const uint32_t s = in[i];
      if (s == 0 || !g.ClassHas(g.elems[pos_[s]].v, cp)) continue;
      const auto [off, len] = Succ(s);
      // succ_data_ may not grow during this insert (Succ finished above).
      out->insert(out->end(), succ_data_.begin() + off, succ_data_.begin() + off + len);
    }
    if (out->size() - from > 1) SortUnique(out, from);
    if (out->size() - from > kMaxStacks)
      throw LimitError{"grammar: more than " + std::to_string(kMaxStacks) +
                       " parser stacks at once (too ambiguous)"};
  }

  bool PartialPossible(const uint32_t* set, size_t n, const Utf8& u) const {
    uint32_t lo, hi;
    Utf8Range(u, &lo, &hi);
    for (size_t i = 0; i < n; ++i)
      if (set[i] != 0 && g.ClassIntersects(g.elems[pos_[set[i]]].v, lo, hi)) return true;
    return false;
  }

  void Reset() {
    ClearArena();
    state_.clear();
    partial_ = Utf8();
    init_error_.clear();
    try {
      expand_work_ = 0;
      // The root rule as a one-element stack: a kRule position is needed, so
      // start from a synthetic reference: expand each root alternative.
      for (uint32_t a : g.rule_alts[g.root]) {
        if (g.elems[a].kind == Grammar::kEnd) {
          state_.push_back(0);
        } else {
          Expand(Intern(a, 0), &state_);
        }
      }
      SortUnique(&state_, 0);
    } catch (const LimitError& e) {
      state_.clear();
      init_error_ = e.msg;
    }
  }

  bool CanEnd() const { return partial_.need == 0 && !state_.empty() && state_[0] == 0; }

  // Re-interns the current stacks into a fresh arena when the arena has grown
  // (ids change; caches are dropped).
  void MaybeCompact() {
    if (pos_.size() < kMaxArena / 2) return;
    std::vector<std::vector<uint32_t>> stacks;
    for (uint32_t s : state_) {
      std::vector<uint32_t> st;
      for (uint32_t x = s; x != 0; x = parent_[x]) st.push_back(pos_[x]);
      stacks.push_back(std::move(st));
    }
    ClearArena();
    state_.clear();
    for (const auto& st : stacks) {
      uint32_t id = 0;
      for (size_t i = st.size(); i-- > 0;) id = Intern(st[i], id);
      state_.push_back(id);
    }
    SortUnique(&state_, 0);
  }

  bool AcceptBytes(std::string_view bytes, bool commit, std::string* err) {
    if (!init_error_.empty()) {
      *err = init_error_;
      return false;
    }
    try {
      std::vector<uint32_t> cur = state_, next;
      Utf8 u = partial_;
      for (size_t i = 0; i < bytes.size(); ++i) {
        const int r = Utf8Push(&u, static_cast<uint8_t>(bytes[i]));
        if (r < 0) {
          *err = "grammar: invalid UTF-8 in the output";
          return false;
        }
        if (r == 0) continue;
        next.clear();
        Step(cur.data(), cur.size(), u.cp, &next);
        if (next.empty()) {
          *err = "grammar: the output does not match the grammar at byte " + std::to_string(i);
          return false;
        }
        cur.swap(next);
        u = Utf8();
      }
      if (u.need > 0 && !PartialPossible(cur.data(), cur.size(), u)) {
        *err = "grammar: the output does not match the grammar (incomplete character)";
        return false;
      }
      if (commit) {
        state_.swap(cur);
        partial_ = u;
        MaybeCompact();
      }
      return true;
    } catch (const LimitError& e) {
      *err = e.msg;
      return false;
    }
  }

  int ComputeMask(const uint32_t** out_bits, std::string* err) {
    if (!init_error_.empty()) {
      *err = init_error_;
      return -1;
    }
    *out_bits = bits_.data();
    std::vector<uint32_t> key = state_;
    key.push_back(partial_.cp);
    key.push_back(partial_.need | (static_cast<uint32_t>(partial_.len) << 8));
    for (const CacheEntry& c : cache_)
      if (c.key == key) {
        std::memcpy(bits_.data(), c.bits.data(), bits_.size() * sizeof(uint32_t));
        return c.count;
      }
    std::fill(bits_.begin(), bits_.end(), 0u);
    int count = 0;
    try {
      count = Walk();
    } catch (const LimitError& e) {
      *err = e.msg;
      return -1;
    }
    if (CanEnd())
      for (int32_t s : v.stop_ids())
        if (s >= 0 && s < v.n_vocab() && !(bits_[static_cast<size_t>(s) / 32] & (1u << (s % 32)))) {
          bits_[static_cast<size_t>(s) / 32] |= 1u << (s % 32);
          ++count;
        }
    CacheEntry e{std::move(key), bits_, count};
    if (cache_.size() < kMaskCacheSize) {
      cache_.push_back(std::move(e));
    } else {
      cache_[cache_next_] = std::move(e);
      cache_next_ = (cache_next_ + 1) % kMaskCacheSize;
    }
    return count;
  }

  static uint64_t HashSpan(const uint32_t* p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ULL;
    return h | 1;  // never 0 (FlatMap's free marker)
  }

  uint32_t InternSet(const std::vector<uint32_t>& st) {
    const uint64_t h = HashSpan(st.data(), st.size());
    const uint32_t first = set_ids_.Get(h);
    for (uint32_t id = first; id != kUnknown; id = set_next_[id]) {
      const auto [off, len] = set_span_[id];
      if (len == st.size() && std::equal(st.begin(), st.end(), set_data_.begin() + off)) return id;
    }
    const uint32_t id = static_cast<uint32_t>(set_span_.size());
    set_span_.emplace_back(static_cast<uint32_t>(set_data_.size()),
                           static_cast<uint32_t>(st.size()));
    set_data_.insert(set_data_.end(), st.begin(), st.end());
    set_next_.push_back(first);
    set_ids_.Put(h, id);
    ascii_.resize(ascii_.size() + 128, kUnknown);
    loops_.emplace_back();
    return id;
  }

  // The set after code point cp (kDead: no stack accepts it).
  uint32_t Trans(uint32_t set, uint32_t cp) {
    uint32_t* slot = cp < 128 ? &ascii_[static_cast<size_t>(set) * 128 + cp] : nullptr;
    const uint64_t key = (static_cast<uint64_t>(set) << 32) | cp;
    if (slot) {
      if (*slot != kUnknown) return *slot;
    } else {
      const uint32_t r = trans_.Get(key);
      if (r != kUnknown) return r;
    }
    tmp_.clear();
    const auto [off, len] = set_span_[set];
    std::vector<uint32_t> in(set_data_.begin() + off, set_data_.begin() + off + len);
    Step(in.data(), in.size(), cp, &tmp_);
    const uint32_t r = tmp_.empty() ? kDead : InternSet(tmp_);
    if (cp < 128) {
      ascii_[static_cast<size_t>(set) * 128 + cp] = r;  // ascii_ may have grown: re-index
    } else {
      trans_.Put(key, r);
    }
    return r;
  }

  // Whether some stack of the set can take a code point starting with the
  // partial sequence u (cached like Trans; codes >= 0x110000 are partials).
  bool PartialOk(uint32_t set, const Utf8& u) {
    const uint32_t code = 0x80000000u | (static_cast<uint32_t>(u.need) << 28) |
                          (static_cast<uint32_t>(u.len) << 24) | u.cp;
    const uint64_t key = (static_cast<uint64_t>(set) << 32) | code;
    const uint32_t r = trans_.Get(key);
    if (r != kUnknown) return r != kDead;
    const auto [off, len] = set_span_[set];
    const bool ok = PartialPossible(set_data_.data() + off, len, u);
    trans_.Put(key, ok ? set : kDead);
    return ok;
  }

  const Loop& LoopOf(uint32_t set) {
    if (loops_[set].done) return loops_[set];
    Loop l;
    l.done = true;
    for (uint32_t c = 0; c < 128; ++c)
      if (Trans(set, c) == set) l.ascii[c >> 6] |= uint64_t{1} << (c & 63);
    // Non-ASCII loops when every stack takes all of it or none of it, and
    // then one code point (so all) leads back.
    bool uniform = true;
    const auto [off, len] = set_span_[set];
    for (uint32_t i = 0; i < len && uniform; ++i) {
      const uint32_t st = set_data_[off + i];
      if (st == 0) continue;
      const uint32_t cls = g.elems[pos_[st]].v;
      uniform = g.ClassCovers(cls, 0x80, 0x10FFFF) || !g.ClassIntersects(cls, 0x80, 0x10FFFF);
    }
    l.high = uniform && Trans(set, 0x80) == set;
    loops_[set] = l;
    return loops_[set];
  }

  // Depth-first walk of the vocabulary trie, carrying the parser state; a
  // subtree is pruned as soon as its prefix leaves the grammar.
  int Walk() {
    const auto& nodes = v.nodes();
    const auto& toks = v.toks();
    int count = 0;
    if (trans_.size() > (size_t{1} << 22)) ClearSets();  // bound the tables' memory
    frames_.clear();
    frames_.push_back({0, nodes[0].child_begin, InternSet(state_), partial_});
    while (!frames_.empty()) {
      Frame& f = frames_.back();
      if (f.child == nodes[f.node].child_end) {
        frames_.pop_back();
        continue;
      }
      const uint32_t c = f.child++;
      Utf8 u = f.u;
      const int r = Utf8Push(&u, nodes[c].byte);
      if (r < 0) continue;
      uint32_t set = f.set;
      if (r == 1) {
        static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (u.cp < kMin[u.len] || u.cp > 0x10FFFF || (u.cp >= 0xD800 && u.cp <= 0xDFFF)) continue;
        set = Trans(set, u.cp);
        if (set == kDead) continue;
        u = Utf8();
        // Every character below c loops on this set: all its tokens at once.
        const GrammarVocab::Summary& sm = v.summaries()[c];
        const Loop& l = LoopOf(set);
        if (!sm.bad && !(sm.ascii[0] & ~l.ascii[0]) && !(sm.ascii[1] & ~l.ascii[1]) &&
            (!sm.high || l.high)) {
          for (uint32_t t = nodes[c].tok_begin; t < sm.sub_tok_end; ++t) {
            const int32_t id = toks[t];
            bits_[static_cast<size_t>(id) / 32] |= 1u << (id % 32);
          }
          count += static_cast<int>(sm.sub_tok_end - nodes[c].tok_begin);
          continue;
        }
      } else if (!PartialOk(set, u)) {
        continue;
      }
      const GrammarVocab::Node& n = nodes[c];
      for (uint32_t t = n.tok_begin; t < n.tok_end; ++t) {
        const int32_t id = toks[t];
        bits_[static_cast<size_t>(id) / 32] |= 1u << (id % 32);
        ++count;
      }
      if (n.child_begin != n.child_end)
        frames_.push_back({c, n.child_begin, set, u});  // f may dangle from here
    }
    return count;
  }
};

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> g,
                               std::shared_ptr<const GrammarVocab> v)
    : g_(std::move(g)), v_(std::move(v)), impl_(std::make_unique<Impl>(*g_, *v_)) {
  impl_->Reset();
}

GrammarMatcher::~GrammarMatcher() = default;

void GrammarMatcher::Reset() {
  impl_->Reset();
  ended_ = false;
}

int GrammarMatcher::ComputeMask(const uint32_t** bits, std::string* err) {
  if (ended_) {
    std::fill(impl_->bits_.begin(), impl_->bits_.end(), 0u);
    *bits = impl_->bits_.data();
    return 0;
  }
  return impl_->ComputeMask(bits, err);
}

bool GrammarMatcher::AcceptToken(int32_t id, std::string* err) { return TokenStep(id, true, err); }

bool GrammarMatcher::Allows(int32_t id) {
  std::string err;
  return TokenStep(id, false, &err);
}

bool GrammarMatcher::TokenStep(int32_t id, bool commit, std::string* err) {
  if (id < 0 || id >= v_->n_vocab()) {
    *err = "grammar: token id " + std::to_string(id) + " out of range";
    return false;
  }
  if (ended_) {
    *err = "grammar: the match has ended (a stop token was accepted)";
    return false;
  }
  if (v_->IsStop(id)) {
    if (!impl_->CanEnd()) {
      *err = "grammar: stop token " + std::to_string(id) + " before the grammar is complete";
      return false;
    }
    if (commit) ended_ = true;
    return true;
  }
  const std::string& b = v_->bytes(id);
  if (b.empty()) {
    *err = "grammar: token " + std::to_string(id) + " (special / no text) is never allowed";
    return false;
  }
  return impl_->AcceptBytes(b, commit, err);
}

bool GrammarMatcher::AcceptBytes(std::string_view bytes, std::string* err) {
  if (ended_) {
    *err = "grammar: the match has ended (a stop token was accepted)";
    return false;
  }
  return impl_->AcceptBytes(bytes, true, err);
}

bool GrammarMatcher::CanEnd() const { return impl_->CanEnd(); }

}  // namespace lamina::engine
