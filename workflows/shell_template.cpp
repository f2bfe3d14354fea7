// The lexer behind rewrite_shell_interpolations().
//
// Safety does not rest on the lexer being perfect: a value never enters the
// script text, only a variable reference does, so whatever the lexer decides,
// the shell cannot run the value as code (outside the arithmetic contexts
// below). What the lexer decides is how the reference is quoted, so that the
// value stays one word and arrives verbatim. It follows bash's rules for:
//   '...', "...", $'...', $"...", backslash escapes, comments, $( ) and
//   ( ) with `case` patterns, backticks (their body is unescaped and lexed
//   again, as bash does, so nesting works), ${ ... }, heredocs (<<, <<-,
//   quoted or not, several on one line, bodies read after the line ends).
// Refused, with the line and column:
//   - an interpolation in a quoted heredoc body or in a heredoc delimiter;
//   - an interpolation where bash evaluates the *value* as arithmetic or code
//     (shell_contexts.h): $(( )), (( )), $[ ], ${name[ ]} and ${s:off:len}
//     are found while lexing; the arguments of commands ([[ x -eq y ]], let,
//     declare -i, a[i]=v, eval, bash -c, ...) once each simple command's words
//     are read. A Frame holds those words for each script being read ($( )
//     and backticks nest); an interpolation counts for every enclosing
//     command, since `eval "$(echo ${{ x }})"` evaluates the value too.
//     Interpolations the caller marks as integers are exempt;
//   - a `\` or `$` right before `${{`, which would combine with the reference;
//   - unterminated quotes and substitutions, and heredocs without their
//     delimiter line (bash would refuse or warn; the lexer would lose track).
// $'...' is handled like '...': the reference closes it and reopens it
// ('"${V}"$'), so escapes after it keep working.
#include "workflows/shell_template.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "workflows/shell_contexts.h"

namespace hearth::workflows {
namespace {

using Spans = std::vector<std::pair<size_t, size_t>>;

constexpr int kMaxNesting = 64;

// Where an interpolation sits; decides how its variable reference is written.
enum class Quoting { bare, double_quoted, single_quoted, ansi_c, heredoc, comment };

std::string reference(Quoting q, const std::string& var) {
  switch (q) {
    case Quoting::bare:
    case Quoting::comment: return "\"${" + var + "}\"";
    case Quoting::double_quoted:
    case Quoting::heredoc: return "${" + var + "}";
    case Quoting::single_quoted: return "'\"${" + var + "}\"'";
    case Quoting::ansi_c: return "'\"${" + var + "}\"$'";
  }
  return "";
}

// An interpolation in the text a Lexer reads; `index` is its place in the script.
struct Span {
  size_t begin, end, index;
};

// What starts a backtick body decides which backslashes bash removes from it.
enum class BacktickIn { bare, double_quoted, heredoc };

struct Heredoc {
  std::string delimiter;
  bool strip_tabs = false;  // <<-
  bool quoted = false;      // any part of the word quoted: the body is literal
  size_t at = 0;            // the operator's position, for messages
};

// Tracks words in a bare context: comments start at a word, and `case`/`esac`
// count only where a command may start (so `)` of a pattern does not end $( )).
struct Words {
  size_t begin = std::string_view::npos;
  bool command = true;  // the next word is in command position
  bool word_is_command = false;
  int cases = 0;        // `case` ... `esac` open here

  bool in_word() const { return begin != std::string_view::npos; }
  void start(size_t pos) {
    if (in_word()) return;
    begin = pos;
    word_is_command = command;
    command = false;
  }
  void end(std::string_view text, size_t pos) {
    if (!in_word()) return;
    std::string_view w = text.substr(begin, pos - begin);
    begin = std::string_view::npos;
    if (!word_is_command) return;
    if (w == "case") ++cases;
    else if (w == "esac" && cases > 0) --cases;
    else if (w == "if" || w == "then" || w == "else" || w == "elif" || w == "while" || w == "until" || w == "do" ||
             w == "{" || w == "!" || w == "time")
      command = true;
  }
};

// The simple command being read by one scan_bare, and the interpolations in
// it (directly or inside its substitutions). Positions are script offsets.
struct Frame {
  struct Use {
    size_t span;  // index of the interpolation
    size_t word;  // the word of this command that holds it
    size_t at;    // the interpolation's script offset
  };
  std::vector<std::pair<size_t, size_t>> words;  // [begin, end) of each word read
  std::vector<Use> uses;
  bool in_heredoc_body = false;  // bodies belong to the command before, not this one
  // Inside [[ ]], && || ( ) do not end the command.
  bool in_double_brackets(std::string_view script) const {
    if (words.empty()) return false;
    auto [b, e] = words.front();
    if (script.substr(b, e - b) != "[[") return false;
    auto [lb, le] = words.back();
    return words.size() == 1 || script.substr(lb, le - lb) != "]]";
  }
};

// Decides the Quoting of every span in one text: the script, or the unescaped
// body of a backtick substitution (then `origin_` maps back to the script).
class Lexer {
 public:
  /// REQUIRES: `script` and `out` outlive the Lexer; spans ascending, within `text`.
  /// `frames` is the stack of commands being read (shared with nested Lexers);
  /// `integer[i]`: interpolation i is known to be an integer (may be empty).
  Lexer(std::string_view script, std::string_view text, std::vector<Span> spans, std::vector<size_t> origin,
        int depth, const char* arithmetic, std::vector<Frame*>& frames, const std::vector<bool>& integer,
        std::vector<std::optional<Quoting>>& out)
      : script_(script), text_(text), spans_(std::move(spans)), origin_(std::move(origin)), end_(text.size()),
        depth_(depth), arithmetic_(arithmetic), frames_(frames), integer_(integer), out_(out) {}

  /// Reads the whole text as a script.
  Status run() {
    scan_bare(false, 0);
    if (error_) return *error_;
    return {};
  }

 private:
  // --- Primitives -------------------------------------------------------------
  bool done() const { return error_.has_value() || pos_ >= end_; }
  char at(size_t k = 0) const { return pos_ + k < end_ ? text_[pos_ + k] : '\0'; }
  bool at_span(size_t pos) const { return next_ < spans_.size() && spans_[next_].begin == pos; }
  bool at_span() const { return at_span(pos_); }
  size_t original(size_t pos) const { return origin_.empty() ? pos : origin_[pos]; }

  void fail(size_t pos, const std::string& what) { fail_at_script(original(pos), what); }
  void fail_at_script(size_t off, const std::string& what) {
    if (error_) return;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < off && i < script_.size(); ++i) {
      col = script_[i] == '\n' ? 1 : col + 1;
      line += script_[i] == '\n';
    }
    error_ = Error{"line " + std::to_string(line) + ", column " + std::to_string(col) + ": " + what};
  }

  // Records the span at pos_ and steps over it.
  void take_span(Quoting q) {
    bool live = q == Quoting::bare || q == Quoting::double_quoted || q == Quoting::heredoc;
    bool integer = spans_[next_].index < integer_.size() && integer_[spans_[next_].index];
    if (arithmetic_ && q != Quoting::comment && !integer) {
      Evaluation e = arithmetic_evaluation(arithmetic_);
      return fail(pos_, "interpolation in " + e.context + "; " + e.advice);
    }
    if (live && pos_ > 0 && text_[pos_ - 1] == '$')
      return fail(pos_ - 1, "a '$' right before ${{ would change how the variable that replaces it expands");
    if (q != Quoting::comment && !integer) {
      for (Frame* f : frames_)
        if (!f->in_heredoc_body) f->uses.push_back({spans_[next_].index, f->words.size(), original(pos_)});
    }
    out_[spans_[next_].index] = q;
    pos_ = spans_[next_].end;
    ++next_;
  }

  // Steps over a backslash and the character it escapes.
  void escape() {
    if (at_span(pos_ + 1))
      return fail(pos_, "a backslash right before ${{ would escape the variable that replaces it");
    pos_ += pos_ + 1 < end_ ? 2 : 1;
  }

  void unterminated(size_t opener, const char* what) {
    if (!error_) fail(opener, std::string("unterminated ") + what);
  }

  // Bounds recursion for the scan_* that nest: a script nested deeper than
  // kMaxNesting is refused. Usage: `Nested nested(*this); if (!nested) return;`
  class Nested {
   public:
    explicit Nested(Lexer& l) : l_(l) {
      if (++l_.depth_ > kMaxNesting) l_.fail(l_.pos_, "nesting deeper than " + std::to_string(kMaxNesting) + " levels");
    }
    ~Nested() { --l_.depth_; }
    Nested(const Nested&) = delete;
    Nested& operator=(const Nested&) = delete;
    explicit operator bool() const { return !l_.error_; }

   private:
    Lexer& l_;
  };

  // --- Contexts ---------------------------------------------------------------
  // Each scan_* starts at its opener and returns after its closer (or on error).

  // A script: the whole text, or the inside of $( ) / ( ) when `in_parens`.
  void scan_bare(bool in_parens, size_t opener);
  void scan_single();
  void scan_ansi_c();
  void scan_double();
  void scan_comment();
  void scan_dollar(bool quoted);
  void scan_brace(bool quoted);
  void scan_arithmetic(char open, char close, size_t skip, const char* context);
  void close_word(Words& words, Frame& frame);
  void end_command(Frame& frame);
  void scan_backticks(BacktickIn where);
  void scan_heredoc_operator(std::vector<Heredoc>& pending);
  void read_heredoc_bodies(std::vector<Heredoc>& pending);
  void scan_heredoc_body(size_t body_end);
  void bare_separator(char c, int& parens, Words& words, Frame& frame, std::vector<Heredoc>& heredocs);

  std::string_view script_;
  std::string_view text_;
  std::vector<Span> spans_;
  std::vector<size_t> origin_;  // text_ position -> script_ position; empty when text_ is the script
  size_t pos_ = 0;
  size_t next_ = 0;             // first span not yet taken
  size_t end_;                  // where reading stops: text_.size(), or a heredoc body's end
  int depth_;
  const char* arithmetic_;      // the arithmetic context being read, or null
  std::vector<Frame*>& frames_;
  const std::vector<bool>& integer_;
  std::optional<Error> error_;
  std::vector<std::optional<Quoting>>& out_;
};

bool is_separator(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == ';' || c == '&' || c == '|' || c == '(' || c == ')' ||
         c == '<' || c == '>';
}

void Lexer::scan_bare(bool in_parens, size_t opener) {
  Nested nested(*this);
  if (!nested) return;
  Words words;
  Frame frame;
  frames_.push_back(&frame);
  struct Pop {
    std::vector<Frame*>& frames;
    ~Pop() { frames.pop_back(); }
  } pop{frames_};
  int parens = 0;
  std::vector<Heredoc> heredocs;
  while (!done()) {
    if (at_span()) {
      words.start(pos_);
      take_span(Quoting::bare);
      continue;
    }
    char c = at();
    if (c == '#' && !words.in_word()) {
      scan_comment();
      continue;
    }
    if (is_separator(c)) {
      close_word(words, frame);
      if (c == ')' && in_parens && parens == 0 && words.cases == 0 && !frame.in_double_brackets(script_)) {
        if (!heredocs.empty()) return fail(heredocs.front().at, "heredoc <<" + heredocs.front().delimiter +
                                                                    " has no body before the ) that ends its $( )");
        end_command(frame);
        ++pos_;
        return;
      }
      bare_separator(c, parens, words, frame, heredocs);
      continue;
    }
    words.start(pos_);
    switch (c) {
      case '\\': escape(); break;
      case '\'': scan_single(); break;
      case '"': scan_double(); break;
      case '$': scan_dollar(false); break;
      case '`': scan_backticks(BacktickIn::bare); break;
      default: ++pos_;
    }
  }
  close_word(words, frame);
  end_command(frame);
  if (in_parens) return unterminated(opener, "$( or (");
  if (!heredocs.empty())
    fail(heredocs.front().at, "heredoc <<" + heredocs.front().delimiter + " has no body: the script ends");
}

// Ends the word being read, if any; a keyword that leads a command (`if`,
// `then`, `!`, ...) ends the command too, so that the next word is its name.
void Lexer::close_word(Words& words, Frame& frame) {
  if (!words.in_word()) return;
  bool was_command = words.word_is_command;
  frame.words.emplace_back(original(words.begin), original(pos_));
  words.end(text_, pos_);
  if (was_command && words.command) end_command(frame);
}

// Decides, now that its words are known, whether the command evaluates an
// interpolation in it (shell_contexts.h), then starts a new command.
void Lexer::end_command(Frame& frame) {
  std::vector<std::string_view> words;
  for (auto [b, e] : frame.words) words.push_back(script_.substr(b, e - b));
  for (const Frame::Use& u : frame.uses) {
    if (u.word >= words.size()) continue;  // the command ended inside its last word: an error is reported
    if (auto e = evaluation_context(words, u.word, u.at - frame.words[u.word].first))
      return fail_at_script(u.at, "interpolation in " + e->context + "; " + e->advice);
  }
  frame.words.clear();
  frame.uses.clear();
}

// A blank or metacharacter in scan_bare (except the `)` that ends it).
void Lexer::bare_separator(char c, int& parens, Words& words, Frame& frame, std::vector<Heredoc>& heredocs) {
  bool brackets = frame.in_double_brackets(script_);  // [[ ]] spans && || ( ) and lines
  switch (c) {
    case '\n':
      ++pos_;
      if (brackets) return;
      end_command(frame);
      words.command = true;
      frame.in_heredoc_body = true;
      read_heredoc_bodies(heredocs);
      frame.in_heredoc_body = false;
      return;
    case '(':
      if (at(1) == '(' && !brackets) return scan_arithmetic('(', ')', 2, kArithmeticCommand);  // (( ... ))
      ++parens;
      break;
    case ')':
      if (parens > 0) --parens;  // else a `case` pattern's )
      break;
    case '<':
      if (at(1) == '<' && at(2) == '<') {  // a here-string: an ordinary word follows
        pos_ += 3;
        return;
      }
      if (at(1) == '<') return scan_heredoc_operator(heredocs);
      ++pos_;
      return;
    case '>':
    case ' ':
    case '\t': ++pos_; return;
    default: break;  // ; & |
  }
  ++pos_;
  if (brackets) return;
  end_command(frame);
  words.command = true;
}

void Lexer::scan_single() {
  size_t opener = pos_++;
  while (!done()) {
    if (at_span()) take_span(Quoting::single_quoted);
    else if (text_[pos_++] == '\'') return;
  }
  unterminated(opener, "single quote");
}

void Lexer::scan_ansi_c() {
  size_t opener = pos_;
  pos_ += 2;  // $'
  while (!done()) {
    if (at_span()) take_span(Quoting::ansi_c);
    else if (at() == '\\') escape();
    else if (text_[pos_++] == '\'') return;
  }
  unterminated(opener, "$'");
}

void Lexer::scan_double() {
  Nested nested(*this);
  if (!nested) return;
  size_t opener = pos_++;
  while (!done()) {
    if (at_span()) {
      take_span(Quoting::double_quoted);
      continue;
    }
    switch (at()) {
      case '"': ++pos_; return;
      case '\\': escape(); break;
      case '$': scan_dollar(true); break;
      case '`': scan_backticks(BacktickIn::double_quoted); break;
      default: ++pos_;
    }
  }
  unterminated(opener, "double quote");
}

// From `#` at the start of a word to the end of the line (not included).
void Lexer::scan_comment() {
  while (!done() && at() != '\n') {
    if (at_span()) take_span(Quoting::comment);
    else ++pos_;
  }
}

// At `$`. `quoted`: inside "...", a heredoc body or "${...}", where $'
// and $" are not quotes.
void Lexer::scan_dollar(bool quoted) {
  char c = at(1);
  if (c == '(' && at(2) == '(') return scan_arithmetic('(', ')', 3, kArithmeticExpansion);
  if (c == '(') {
    size_t opener = pos_;
    pos_ += 2;
    return scan_bare(true, opener);
  }
  if (c == '[') return scan_arithmetic('[', ']', 2, kArithmeticExpansion);
  if (c == '{') return scan_brace(quoted);
  if (c == '\'' && !quoted) return scan_ansi_c();
  ++pos_;
  if (c == '"' && !quoted) scan_double();  // $"..." (a translated string)
}

// At `${`. Interpolations inside are written in the bare form, which bash
// reads the same inside a quoted "${x:-...}" (inner quotes nest there).
void Lexer::scan_brace(bool quoted) {
  Nested nested(*this);
  if (!nested) return;
  size_t opener = pos_;
  pos_ += 2;
  if (at() == '#' || at() == '!') ++pos_;
  size_t name = pos_;
  while (!done() && !at_span() && (std::isalnum(static_cast<unsigned char>(at())) || at() == '_')) ++pos_;
  if (pos_ == name && !done() && std::string_view("@*?$!-#").find(at()) != std::string_view::npos) ++pos_;
  if (!done() && at() == '[') scan_arithmetic('[', ']', 1, kSubscriptExpansion);  // an index is arithmetic
  // ${s:offset} and ${s:offset:length} (not ${s:-x} ${s:=x} ${s:?x} ${s:+x}): both are arithmetic.
  const char* outer = arithmetic_;
  if (!done() && at() == ':' && std::string_view("-=?+").find(at(1)) == std::string_view::npos)
    arithmetic_ = kSubstringOffset;
  while (!done()) {
    if (at_span()) {
      take_span(Quoting::bare);
      continue;
    }
    switch (at()) {
      case '}':
        ++pos_;
        arithmetic_ = outer;
        return;
      case '\\': escape(); break;
      case '"': scan_double(); break;
      case '\'':
        if (quoted) ++pos_;  // literal in "${x:-'a'}"
        else scan_single();
        break;
      case '$': scan_dollar(quoted); break;
      case '`': scan_backticks(quoted ? BacktickIn::double_quoted : BacktickIn::bare); break;
      default: ++pos_;
    }
  }
  unterminated(opener, "${");
}

// After skipping `skip` opener bytes ("$((", "((", "$[", "["), reads to the
// matching close ("))" for parentheses). A lone ")" at depth 0 means the
// opener was "$( (" or "( (": the rest is a subshell, read as a script.
void Lexer::scan_arithmetic(char open, char close, size_t skip, const char* context) {
  Nested nested(*this);
  if (!nested) return;
  size_t opener = pos_;
  pos_ += skip;
  const char* outer = arithmetic_;
  arithmetic_ = context;
  int depth = 0;
  while (!done()) {
    if (at_span()) {
      take_span(Quoting::bare);  // fails unless the value is an integer
      continue;
    }
    char c = at();
    if (c == open) {
      ++depth;
      ++pos_;
    } else if (c == close && depth > 0) {
      --depth;
      ++pos_;
    } else if (c == close) {
      arithmetic_ = outer;
      if (close == ']' || at(1) == ')') {
        pos_ += close == ']' ? 1 : 2;
        return;
      }
      ++pos_;
      return scan_bare(true, opener);
    } else if (c == '\\') {
      escape();
    } else if (c == '\'') {
      scan_single();
    } else if (c == '"') {
      scan_double();
    } else if (c == '$') {
      scan_dollar(false);
    } else if (c == '`') {
      scan_backticks(BacktickIn::bare);
    } else {
      ++pos_;
    }
  }
  unterminated(opener, open == '[' ? "$[ or [" : "$(( or ((");
}

// At a backtick. Bash ends the body at the first unescaped backtick, removes
// the backslash from \$ \` \\ (and \" inside "..."), then reads the result as a
// script. So does this: the unescaped body goes to a nested Lexer.
void Lexer::scan_backticks(BacktickIn where) {
  size_t opener = pos_++;
  std::string body;
  std::vector<size_t> origin;
  std::vector<Span> spans;
  auto keep = [&](size_t p) {
    body += text_[p];
    origin.push_back(original(p));
  };
  while (!done() && at() != '`') {
    if (at_span()) {
      const Span& s = spans_[next_];
      spans.push_back({body.size(), body.size() + (s.end - s.begin), s.index});
      for (size_t i = s.begin; i < s.end; ++i) keep(i);
      pos_ = s.end;
      ++next_;
      continue;
    }
    if (at() == '\\' && pos_ + 1 < end_) {
      char n = at(1);
      if (at_span(pos_ + 1))
        return fail(pos_, "a backslash right before ${{ would escape the variable that replaces it");
      bool removed = n == '$' || n == '`' || n == '\\' || (n == '"' && where == BacktickIn::double_quoted);
      if (!removed) keep(pos_);
      keep(pos_ + 1);  // even a backtick: escaped, it does not end the body
      pos_ += 2;
      continue;
    }
    keep(pos_++);
  }
  if (done()) return unterminated(opener, "backtick");
  origin.push_back(original(pos_));  // end of body: the closing backtick
  ++pos_;
  Lexer inner(script_, body, std::move(spans), std::move(origin), depth_ + 1, arithmetic_, frames_, integer_, out_);
  if (auto s = inner.run(); !s) error_ = Error{s.message()};
}

// At `<<` (not `<<<`): reads the delimiter word and queues the heredoc; its
// body is read after the end of the line (read_heredoc_bodies).
void Lexer::scan_heredoc_operator(std::vector<Heredoc>& pending) {
  Heredoc h;
  h.at = pos_;
  pos_ += 2;
  if (at() == '-') {
    h.strip_tabs = true;
    ++pos_;
  }
  while (at() == ' ' || at() == '\t') ++pos_;
  char quote = 0;  // the quote the word is inside, if any
  while (!done()) {
    if (at_span()) return fail(pos_, "interpolation in a heredoc delimiter: the delimiter must be literal text");
    char c = at();
    if (quote == 0 && is_separator(c)) break;
    ++pos_;
    if (quote != 0 && c == quote) {
      quote = 0;
    } else if (quote == 0 && (c == '\'' || c == '"')) {
      quote = c;
      h.quoted = true;
    } else if (c == '\\' && quote != '\'' && !done()) {
      if (at_span()) continue;  // refused on the next turn
      h.quoted = true;
      h.delimiter += at();
      ++pos_;
    } else {
      h.delimiter += c;
    }
  }
  if (error_) return;
  if (quote != 0) return unterminated(h.at, "quote in a heredoc delimiter");
  if (h.delimiter.empty() && !h.quoted) return fail(h.at, "<< needs a delimiter word");
  pending.push_back(std::move(h));
}

// Right after a newline: reads the bodies of the heredocs queued on that line.
void Lexer::read_heredoc_bodies(std::vector<Heredoc>& pending) {
  for (const Heredoc& h : pending) {
    size_t body_end = std::string_view::npos, after = 0;
    size_t span = next_;
    for (size_t line = pos_; line < end_ && body_end == std::string_view::npos;) {
      size_t i = line;  // find the line's end, stepping over interpolations
      while (i < end_ && text_[i] != '\n') {
        while (span < spans_.size() && spans_[span].begin < i) ++span;
        i = span < spans_.size() && spans_[span].begin == i ? spans_[span].end : i + 1;
      }
      std::string_view content = text_.substr(line, std::min(i, end_) - line);
      if (h.strip_tabs) content.remove_prefix(std::min(content.find_first_not_of('\t'), content.size()));
      if (content == h.delimiter) {
        body_end = line;
        after = std::min(i + 1, end_);
      }
      line = i + 1;
    }
    const std::string op = "<<" + std::string(h.strip_tabs ? "-" : "") + (h.quoted ? "'" : "") + h.delimiter +
                           (h.quoted ? "'" : "");
    if (body_end == std::string_view::npos)
      return fail(h.at, "the heredoc " + op + " never ends: no line reads exactly '" + h.delimiter + "'");
    if (h.quoted && next_ < spans_.size() && spans_[next_].begin < body_end) {
      size_t heredoc_line = 1;
      for (size_t i = 0; i < original(h.at); ++i) heredoc_line += script_[i] == '\n';
      return fail(spans_[next_].begin, "interpolation inside the quoted heredoc started on line " +
                                           std::to_string(heredoc_line) + " (" + op +
                                           "): the shell expands nothing there; use an unquoted delimiter");
    }
    if (!h.quoted) scan_heredoc_body(body_end);
    if (error_) return;
    pos_ = after;
  }
  pending.clear();
}

// An unquoted heredoc body: like "..." except that quotes are plain text.
void Lexer::scan_heredoc_body(size_t body_end) {
  size_t saved_end = end_;
  end_ = body_end;
  while (!done()) {
    if (at_span()) {
      take_span(Quoting::heredoc);
      continue;
    }
    switch (at()) {
      case '\\': escape(); break;
      case '$': scan_dollar(true); break;
      case '`': scan_backticks(BacktickIn::heredoc); break;
      default: ++pos_;
    }
  }
  end_ = saved_end;
}

// Spans must be well-formed `${{ ... }}` ranges in order; anything else is a
// bug in the caller, reported as such.
Status check_spans(std::string_view script, const Spans& spans) {
  size_t last_end = 0;
  for (size_t i = 0; i < spans.size(); ++i) {
    auto [b, e] = spans[i];
    bool ok = b >= last_end && b + 5 <= e && e <= script.size() && script.substr(b, 3) == "${{" &&
              script.substr(e - 2, 2) == "}}";
    if (!ok)
      return Error{"bug: interpolation " + std::to_string(i + 1) + " [" + std::to_string(b) + ", " +
                   std::to_string(e) + ") is not a ${{ }} range in order within the script"};
    last_end = e;
  }
  return {};
}

}  // namespace

Result<ShellScript> rewrite_shell_interpolations(std::string_view script, const Spans& spans,
                                                 const std::vector<bool>& integer) {
  if (auto s = check_spans(script, spans); !s) return Error{s.message()};
  std::vector<Span> lexer_spans;
  for (size_t i = 0; i < spans.size(); ++i) lexer_spans.push_back({spans[i].first, spans[i].second, i});
  std::vector<std::optional<Quoting>> quoting(spans.size());
  std::vector<Frame*> frames;
  Lexer lexer(script, script, std::move(lexer_spans), {}, 0, nullptr, frames, integer, quoting);
  if (auto s = lexer.run(); !s) return Error{s.message()};

  ShellScript result;
  size_t copied = 0;
  for (size_t i = 0; i < spans.size(); ++i) {
    if (!quoting[i]) return Error{"bug: the shell lexer skipped interpolation " + std::to_string(i + 1)};
    std::string var = "HEARTH_EXPR_" + std::to_string(i + 1);
    result.text.append(script.substr(copied, spans[i].first - copied));
    result.text += reference(*quoting[i], var);
    result.slots.push_back({spans[i].first, std::move(var)});
    copied = spans[i].second;
  }
  result.text.append(script.substr(copied));
  return result;
}

}  // namespace hearth::workflows
