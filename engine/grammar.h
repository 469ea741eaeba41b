// Constrained output: GBNF grammars (llama.cpp's format) compiled once, and a
// matcher that gives, at each step, the set of vocabulary tokens that keep the
// output inside the grammar.
//
// GBNF: `name ::= alternatives` rules (one per line; a rule continues over
// newlines inside parentheses and on a line that starts with `|`), `|`
// alternation, `( )` grouping, postfix `* + ?` and `{m}` `{m,}` `{m,n}` `{,n}`,
// "literals", [character classes] with ranges and `^` negation, `.` (any code
// point), escapes \n \r \t \" \\ \] \[ \- \/ \xHH \uHHHH \UHHHHHHHH, `#`
// comments. Matching is over Unicode code points (UTF-8 text).
//
// Parsing model (as llama.cpp): a set of pushdown stacks of grammar positions.
// Repetitions become right-recursive helper rules; a continuation that would
// only pop its rule is not pushed (tail calls), so x* runs in constant depth.
// Left recursion (a rule that reaches itself without consuming input) cannot
// be run by this model and is refused when compiling, naming the cycle.
//
// Memory is bounded: grammar size, stack depth, stacks per state and the
// interned stack arena all have caps; a grammar that exceeds one is refused
// (at compile time or with an error from the step that would exceed it).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lamina::engine {

/// A compiled grammar (immutable; share it between matchers and threads).
class Grammar {
 public:
  /// Compiles GBNF text; `root` names the start rule ("root" if empty).
  /// nullptr + *err ("grammar line L col C: what", or a named rule) on error.
  static std::shared_ptr<const Grammar> Parse(std::string_view gbnf, std::string_view root,
                                              std::string* err);

  enum Kind : uint8_t { kEnd, kRule, kChars };
  struct Elem {
    Kind kind;
    uint32_t v;  // kRule: rule index; kChars: class index
  };
  struct CharClass {
    bool negated = false;
    std::vector<std::pair<uint32_t, uint32_t>> ranges;  // inclusive [lo, hi]
  };

  bool ClassHas(uint32_t cls, uint32_t cp) const;
  /// Whether some code point in [lo, hi] is in the class.
  bool ClassIntersects(uint32_t cls, uint32_t lo, uint32_t hi) const;
  /// Whether every code point in [lo, hi] is in the class.
  bool ClassCovers(uint32_t cls, uint32_t lo, uint32_t hi) const;

  // Layout: every alternative is a run of elems ending with a kEnd elem;
  // rule_alts[r] lists the first elem of each of rule r's alternatives.
  std::vector<Elem> elems;
  std::vector<std::vector<uint32_t>> rule_alts;
  std::vector<std::string> rule_names;
  std::vector<CharClass> classes;
  uint32_t root = 0;

  bool ClassIntersects(uint32_t cls, uint32_t lo, uint32_t hi, bool complement) const;

  // Caps (why: a grammar is user input; it must not exhaust memory).
  static constexpr size_t kMaxTextBytes = 1 << 20;
  static constexpr size_t kMaxElems = 1 << 20;
  static constexpr uint32_t kMaxRepeat = 10000;  // m, n of {m,n}
};

/// UTF-8 decoding state carried between bytes (and tokens).
struct GrammarUtf8 {
  uint32_t cp = 0;
  uint8_t need = 0;  // continuation bytes still expected
  uint8_t len = 0;   // length of the sequence being decoded
};

/// The vocabulary as a trie over token bytes (built once per model; immutable).
/// Tokens with no bytes (control / special tokens) are never allowed by a
/// grammar; stop tokens are allowed exactly when the grammar can end.
class GrammarVocab {
 public:
  /// token_bytes[id]: the bytes token id adds to the output ("" = never
  /// allowed); stop_ids: tokens that end a generation.
  GrammarVocab(const std::vector<std::string>& token_bytes, std::vector<int32_t> stop_ids);

  struct Node {
    uint32_t child_begin, child_end;  // children: nodes [child_begin, child_end)
    uint32_t tok_begin, tok_end;      // tokens ending here: toks_[tok_begin, tok_end)
    uint8_t byte;                     // edge label from the parent
  };
  int32_t n_vocab() const { return n_vocab_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  const std::vector<int32_t>& toks() const { return toks_; }
  const std::vector<int32_t>& stop_ids() const { return stop_ids_; }
  bool IsStop(int32_t id) const;
  const std::string& bytes(int32_t id) const { return bytes_[id]; }

  /// What the token suffixes below a node hold when UTF-8 decoding starts
  /// fresh at the node: lets a mask walk take a whole subtree at once when the
  /// parser state loops on every character in it (e.g. inside a string).
  struct Summary {
    uint64_t ascii[2] = {0, 0};  // ASCII characters that occur
    bool high = false;           // some non-ASCII character (or an incomplete tail)
    bool bad = false;            // some invalid UTF-8
    uint32_t sub_tok_end = 0;    // the subtree's tokens: toks()[node.tok_begin, sub_tok_end)
  };
  const std::vector<Summary>& summaries() const { return sums_; }

 private:
  void Summarize();
  static void Merge(const Summary& from, Summary* to);
  void Descend(uint32_t x, GrammarUtf8 u, Summary* s);
  void Build(const std::vector<int32_t>& order, size_t lo, size_t hi, size_t depth, uint32_t node);
  int32_t n_vocab_;
  std::vector<std::string> bytes_;
  std::vector<Node> nodes_;  // nodes_[0]: the root (empty prefix)
  std::vector<int32_t> toks_;
  std::vector<int32_t> stop_ids_;
  std::vector<Summary> sums_;
};

/// The incremental parser state of one generation: which tokens may come next,
/// and advancing by the token chosen. One thread at a time.
class GrammarMatcher {
 public:
  GrammarMatcher(std::shared_ptr<const Grammar> g, std::shared_ptr<const GrammarVocab> v);
  ~GrammarMatcher();

  /// Back to the start of the grammar (a new generation).
  void Reset();
  /// Allowed tokens as a bitset over the vocabulary (bit id of word id / 32),
  /// valid until the next call. Returns the number of allowed tokens; 0 means a
  /// dead end (no token of this vocabulary can continue), -1 an error (*err,
  /// e.g. a cap exceeded).
  int ComputeMask(const uint32_t** bits, std::string* err);
  /// Advances by token id (its bytes; a stop token ends the match). False +
  /// *err if the grammar does not allow it (the state is then unchanged).
  bool AcceptToken(int32_t id, std::string* err);
  /// Whether AcceptToken(id) would succeed (the state is not changed): the
  /// token-by-token reference the mask is tested against.
  bool Allows(int32_t id);
  /// Advances by raw bytes (may end inside a UTF-8 sequence). False + *err if
  /// not allowed (state unchanged).
  bool AcceptBytes(std::string_view bytes, std::string* err);
  /// The output so far is a complete match (the grammar may end here).
  bool CanEnd() const;
  /// A stop token was accepted: the match is complete and nothing may follow.
  bool Ended() const { return ended_; }
  const Grammar& grammar() const { return *g_; }

  // Caps (why: bound memory and time on pathological grammars).
  static constexpr size_t kMaxStacks = 4096;     // parser stacks in one state
  static constexpr uint32_t kMaxDepth = 2048;    // positions on one stack
  static constexpr size_t kMaxArena = 1u << 21;  // interned stack nodes
  static constexpr size_t kMaskCacheSize = 64;   // masks remembered per state

 private:
  struct Impl;
  bool TokenStep(int32_t id, bool commit, std::string* err);
  std::shared_ptr<const Grammar> g_;
  std::shared_ptr<const GrammarVocab> v_;
  std::unique_ptr<Impl> impl_;
  bool ended_ = false;
};

}  // namespace lamina::engine
