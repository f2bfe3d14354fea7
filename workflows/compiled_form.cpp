// The compiled form of a Workflow (compiled_form.h). Every type is walked by
// one fields() function that both the writer and the reader call, so the
// two cannot disagree on what is kept or in which order.
#include "workflows/compiled_form.h"

#include <bit>
#include <charconv>
#include <concepts>
#include <type_traits>

#include "workflows/loader_impl.h"

namespace hearth::workflows {

namespace {

using nlohmann::json;

constexpr std::string_view kMagic = "hearth-workflow ";
constexpr std::string_view kEnd = "end";
constexpr int kMaxJsonDepth = 256;  // deeper than any TOML a loader accepts

// A JSON node's kind as the form writes it: fixed here, not nlohmann's
// enum, whose numbering is the library's to change.
constexpr std::pair<json::value_t, int> kJsonTags[] = {
    {json::value_t::null, 0},   {json::value_t::boolean, 1}, {json::value_t::number_integer, 2},
    {json::value_t::number_unsigned, 3}, {json::value_t::number_float, 4}, {json::value_t::string, 5},
    {json::value_t::array, 6},  {json::value_t::object, 7}};

int tag_of(json::value_t t) {
  for (auto& [type, tag] : kJsonTags)
    if (type == t) return tag;
  return -1;
}

json::value_t type_of(int tag) {
  for (auto& [type, t] : kJsonTags)
    if (t == tag) return type;
  return json::value_t::discarded;
}

// Writes values; `ok` turns false on a value the form cannot hold exactly.
struct Writer {
  std::string out;
  bool ok = true;

  template <std::integral T>
  void operator()(const T& v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, std::conditional_t<std::is_same_v<T, bool>, int, T>(v));
    out.append(buf, r.ptr);
    out += ';';
  }
  void operator()(const double& v) { (*this)(std::bit_cast<uint64_t>(v)); }
  void operator()(const std::chrono::milliseconds& v) { (*this)(static_cast<int64_t>(v.count())); }
  void operator()(const std::string& s) {
    if (s.find('\0') != std::string::npos) ok = false;
    (*this)(s.size());
    out.pop_back();
    out += ':';
    out += s;
  }
  void operator()(const expr::Expression& e) { (*this)(e.text()); }
  void operator()(const proxy::BodyPattern& p) { (*this)(p.text()); }
  void operator()(const expr::Template& t) {
    (*this)(t.parts.size());
    for (auto& p : t.parts) {
      (*this)(p.literal);
      (*this)(p.offset);
      (*this)(p.expr != nullptr);
      if (p.expr) (*this)(*p.expr);
    }
  }
  void operator()(const json& j) { write_json(j, 0); }
  void write_json(const json& j, int depth) {
    if (depth > kMaxJsonDepth) ok = false;
    int tag = tag_of(j.type());
    if (tag < 0) ok = false;  // binary or discarded: never in a loaded workflow
    (*this)(tag);
    switch (j.type()) {
      case json::value_t::boolean: return (*this)(j.get<bool>());
      case json::value_t::number_integer: return (*this)(j.get<int64_t>());
      case json::value_t::number_unsigned: return (*this)(j.get<uint64_t>());
      case json::value_t::number_float: return (*this)(j.get<double>());
      case json::value_t::string: return (*this)(j.get_ref<const std::string&>());
      case json::value_t::array:
        (*this)(j.size());
        for (auto& e : j) write_json(e, depth + 1);
        return;
      case json::value_t::object:
        (*this)(j.size());
        for (auto& [k, v] : j.items()) {
          (*this)(k);
          write_json(v, depth + 1);
        }
        return;
      default: return;  // null; or a kind refused above
    }
  }
  template <class T>
  void operator()(const std::optional<T>& v) {
    (*this)(v.has_value());
    if (v) (*this)(*v);
  }
  template <class T>
  void operator()(const std::vector<T>& v) {
    (*this)(v.size());
    for (auto& e : v) (*this)(e);
  }
  template <class K, class V>
  void operator()(const std::pair<K, V>& p) {
    (*this)(p.first);
    (*this)(p.second);
  }
  template <class V>
  void operator()(const std::map<std::string, V>& m) {
    (*this)(m.size());
    for (auto& [k, v] : m) {
      (*this)(k);
      (*this)(v);
    }
  }
  template <class T>
    requires std::is_class_v<T>
  void operator()(const T& v) {
    fields(*this, const_cast<T&>(v));  // fields() only reads through a Writer
  }
};

// Reads values back; `ok` turns false at the first thing out of place, and
// from then on every read is a no-op (the caller discards the result).
struct Reader {
  std::string_view in;
  size_t pos = 0;
  bool ok = true;

  bool fail() { return ok = false; }
  // How many more elements a count may claim: each takes at least 2 bytes.
  size_t room() const { return (in.size() - pos) / 2; }

  // The number at `pos`, which `end` must follow.
  template <class T>
  void number(T& v, char end) {
    if (!ok) return;
    const char* last = in.data() + in.size();
    auto r = std::from_chars(in.data() + pos, last, v);
    if (r.ec != std::errc{} || r.ptr == last || *r.ptr != end) return void(fail());
    pos = static_cast<size_t>(r.ptr - in.data()) + 1;
  }
  template <std::integral T>
  void operator()(T& v) {
    if constexpr (std::is_same_v<T, bool>) {
      int b = 0;
      number(b, ';');
      if (b != 0 && b != 1) fail();
      v = b == 1;
    } else {
      number(v, ';');
    }
  }
  void operator()(double& v) {
    uint64_t bits = 0;
    (*this)(bits);
    v = std::bit_cast<double>(bits);
  }
  void operator()(std::chrono::milliseconds& v) {
    int64_t n = 0;
    (*this)(n);
    v = std::chrono::milliseconds(n);
  }
  void operator()(std::string& s) {
    size_t n = 0;
    number(n, ':');
    if (!ok || n > in.size() - pos) return void(fail());
    s.assign(in.substr(pos, n));
    pos += n;
  }
  void operator()(expr::Expression& e) {
    std::string text;
    (*this)(text);
    if (!ok) return;
    auto parsed = expr::Expression::parse(text);
    if (!parsed) return void(fail());
    e = std::move(*parsed);
  }
  void operator()(proxy::BodyPattern& p) {
    std::string text;
    (*this)(text);
    if (!ok) return;
    auto compiled = proxy::BodyPattern::compile(text);
    if (!compiled) return void(fail());
    p = std::move(*compiled);
  }
  void operator()(expr::Template& t) {
    size_t n = count();
    t.parts.resize(n);
    for (auto& p : t.parts) {
      (*this)(p.literal);
      (*this)(p.offset);
      bool has = false;
      (*this)(has);
      if (has) {
        p.expr = std::make_shared<expr::Expression>();
        (*this)(*p.expr);
      }
    }
  }
  void operator()(json& j) { read_json(j, 0); }
  void read_json(json& j, int depth) {
    int type = 0;
    (*this)(type);
    if (!ok || depth > kMaxJsonDepth) return void(fail());
    switch (type_of(type)) {
      case json::value_t::null: j = nullptr; return;
      case json::value_t::boolean: return read_as<bool>(j);
      case json::value_t::number_integer: return read_as<int64_t>(j);
      case json::value_t::number_unsigned: return read_as<uint64_t>(j);
      case json::value_t::number_float: return read_as<double>(j);
      case json::value_t::string: return read_as<std::string>(j);
      case json::value_t::array: {
        j = json::array();
        for (size_t i = 0, n = count(); i < n && ok; ++i) read_json(j.emplace_back(), depth + 1);
        return;
      }
      case json::value_t::object: {
        j = json::object();
        for (size_t i = 0, n = count(); i < n && ok; ++i) {
          std::string key;
          (*this)(key);
          read_json(j[key], depth + 1);
        }
        return;
      }
      default: fail();
    }
  }
  template <class T>
  void read_as(json& j) {
    T v{};
    (*this)(v);
    j = std::move(v);
  }
  size_t count() {
    size_t n = 0;
    (*this)(n);
    if (n > room()) fail();
    return ok ? n : 0;
  }
  template <class T>
  void operator()(std::optional<T>& v) {
    bool has = false;
    (*this)(has);
    if (!has || !ok) return v.reset();
    (*this)(v.emplace());
  }
  template <class T>
  void operator()(std::vector<T>& v) {
    v.resize(count());
    for (auto& e : v) (*this)(e);
  }
  template <class K, class V>
  void operator()(std::pair<K, V>& p) {
    (*this)(p.first);
    (*this)(p.second);
  }
  template <class V>
  void operator()(std::map<std::string, V>& m) {
    for (size_t i = 0, n = count(); i < n && ok; ++i) {
      std::string key;
      (*this)(key);
      (*this)(m[key]);
    }
  }
  template <class T>
    requires std::is_class_v<T>
  void operator()(T& v) {
    fields(*this, v);
  }
};

// What each type keeps, in order. A field added to a type in workflow.h or
// proxy/ belongs here too (and kCompiledFormVersion goes up).
template <class A> void fields(A& a, Location& l) { a(l.line), a(l.column); }
template <class A> void fields(A& a, proxy::SourcePos& p) { a(p.line), a(p.column); }
template <class A> void fields(A& a, TemplatedString& t) { a(t.source), a(t.parsed), a(t.location); }
template <class A> void fields(A& a, EnvVar& v) { a(v.name), a(v.value); }
template <class A> void fields(A& a, RetryPolicy& r) {
  a(r.attempts), a(r.exponential), a(r.delay), a(r.max_delay), a(r.jitter), a(r.on_failure), a(r.on_timeout),
      a(r.on_interrupted);
}
template <class A> void fields(A& a, AgentStep& s) {
  a(s.skill), a(s.prompt), a(s.with), a(s.result_schema), a(s.result_file), a(s.result_retries), a(s.max_turns),
      a(s.max_tokens), a(s.model), a(s.tools);
}
template <class A> void fields(A& a, Step& s) {
  a(s.id), a(s.location), a(s.name), a(s.run), a(s.agent), a(s.run_slots), a(s.needs), a(s.if_expr),
      a(s.if_location), a(s.env), a(s.timeout), a(s.working_directory), a(s.continue_on_error), a(s.retry),
      a(s.commands), a(s.proxies), a(s.definition_hash);
}
template <class A> void fields(A& a, CommandDef& c) {
  a(c.name), a(c.location), a(c.exec), a(c.secrets), a(c.env), a(c.allow), a(c.deny), a(c.presets), a(c.timeout),
      a(c.remote), a(c.host);
}
template <class A> void fields(A& a, ToolDef& t) { a(t.name), a(t.location); }
template <class A> void fields(A& a, proxy::EgressTarget& e) { a(e.host), a(e.port), a(e.at); }
template <class A> void fields(A& a, SandboxSettings& s) {
  a(s.kind), a(s.workspace), a(s.ref), a(s.network), a(s.egress), a(s.memory_bytes), a(s.pids), a(s.cpus),
      a(s.location);
}
template <class A> void fields(A& a, ModelSettings& m) { a(m.name), a(m.base_url), a(m.location); }
template <class A> void fields(A& a, proxy::Rate& r) { a(r.count), a(r.per), a(r.text); }
template <class A> void fields(A& a, proxy::Rule& r) {
  a(r.methods), a(r.path), a(r.body_max), a(r.body), a(r.rate), a(r.label), a(r.text), a(r.at);
}
template <class A> void fields(A& a, proxy::HeaderTemplate& h) { a(h.name), a(h.value), a(h.secrets), a(h.at); }
template <class A> void fields(A& a, proxy::PathOptions& p) {
  a(p.case_insensitive), a(p.allow_encoded_slash), a(p.allow_path_params);
}
template <class A> void fields(A& a, proxy::ProxyDef& p) {
  a(p.name), a(p.upstream), a(p.headers), a(p.preset), a(p.allow), a(p.deny), a(p.rate), a(p.max_requests), a(p.paths),
      a(p.at);
}
// path and text are the reader's to give; hash is checked against text.
template <class A> void fields(A& a, Workflow& w) {
  a(w.name), a(w.description), a(w.on_github), a(w.inputs), a(w.env), a(w.commands), a(w.tools), a(w.proxies),
      a(w.sandbox), a(w.model), a(w.steps);
}

}  // namespace

std::optional<std::string> encode_compiled(const Workflow& wf) {
  for (auto& s : wf.steps)
    if (s.agent && !s.agent->result_file.empty()) return std::nullopt;
  Writer w;
  w.out = std::string(kMagic) + std::to_string(kCompiledFormVersion) + "\n";
  w(wf.hash);
  w(wf.path);
  w(wf);
  w.out += kEnd;
  if (!w.ok) return std::nullopt;
  return std::move(w.out);
}

std::optional<Workflow> decode_compiled(std::string_view form, std::string_view text, const std::string& path) {
  std::string header = std::string(kMagic) + std::to_string(kCompiledFormVersion) + "\n";
  if (!form.starts_with(header)) return std::nullopt;
  Reader r{form, header.size()};
  Workflow wf;
  std::string written_path;
  r(wf.hash);
  r(written_path);
  if (!r.ok || written_path != path || wf.hash != sha256_hex(text)) return std::nullopt;
  try {
    r(wf);
  } catch (const std::exception&) {  // bad_alloc from a count the form lied about
    return std::nullopt;
  }
  if (!r.ok || form.substr(r.pos) != kEnd) return std::nullopt;
  wf.path = path;
  wf.text = std::string(text);
  return wf;
}

}  // namespace hearth::workflows
