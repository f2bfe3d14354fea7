#include "model/cassette.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "model/wire.h"
#include "util/safe_open.h"

namespace hearth::model {

using nlohmann::json;

namespace {

bool is_redacted(const std::string& secret) { return secret.size() >= 4; }

bool has_secret(std::string_view s, const std::vector<std::string>& secrets) {
  for (const auto& secret : secrets)
    if (is_redacted(secret) && s.find(secret) != std::string_view::npos) return true;
  return false;
}

void scrub(std::string& s, const std::vector<std::string>& secrets) {
  for (const auto& secret : secrets) {
    if (!is_redacted(secret)) continue;
    for (size_t at = s.find(secret); at != std::string::npos; at = s.find(secret, at + 3))
      s.replace(at, secret.size(), "***");
  }
}

// In place: a string is rewritten only where a secret occurs, and an object
// is rebuilt only when one of its keys holds one.
void redact_in_place(json& j, const std::vector<std::string>& secrets) {
  if (j.is_string()) {
    auto& s = j.get_ref<std::string&>();
    if (has_secret(s, secrets)) scrub(s, secrets);
  } else if (j.is_array()) {
    for (auto& v : j) redact_in_place(v, secrets);
  } else if (j.is_object()) {
    bool keys = false;
    for (auto& [k, v] : j.items()) {
      redact_in_place(v, secrets);
      keys = keys || has_secret(k, secrets);
    }
    if (!keys) return;
    json out = json::object();
    for (auto& [k, v] : j.items()) {
      std::string key = k;
      scrub(key, secrets);
      out[key] = std::move(v);
    }
    j = std::move(out);
  }
}

}  // namespace

void redact(json& j, const std::vector<std::string>& secrets) {
  if (std::any_of(secrets.begin(), secrets.end(), is_redacted)) redact_in_place(j, secrets);
}

namespace {

std::string clip(const json& j) {
  std::string s = dump(j);
  return s.size() > 240 ? s.substr(0, 240) + "…" : s;
}

const json& none() {
  static const json kNone;
  return kNone;
}

// The member `key` of `j`, or null: without the copy json::value makes.
const json& member(const json& j, const char* key) {
  if (!j.is_object()) return none();
  auto it = j.find(key);
  return it == j.end() ? none() : *it;
}

json tool_signature(const json& request) {
  json out = json::array();
  const json& tools = member(request, "tools");
  if (!tools.is_array()) return out;
  for (const auto& t : tools) {
    auto schema = t.find("input_schema");
    out.push_back({{"name", t.value("name", "")}, {"input_schema", schema == t.end() ? json::object() : *schema}});
  }
  return out;
}

}  // namespace

std::string replay_difference(const json& recorded, const json& now) {
  std::string want_model = recorded.value("model", ""), have_model = now.value("model", "");
  if (!have_model.empty() && have_model != want_model) {
    return "the model differs: recorded '" + want_model + "', now '" + have_model + "'";
  }
  json want_tools = tool_signature(recorded), have_tools = tool_signature(now);
  if (want_tools != have_tools) {
    std::vector<std::string> want_names, have_names;
    for (const auto& t : want_tools) want_names.push_back(t["name"]);
    for (const auto& t : have_tools) have_names.push_back(t["name"]);
    if (want_names != have_names) {
      return "the tools differ: recorded " + json(want_names).dump() + ", now " + json(have_names).dump();
    }
    for (size_t i = 0; i < want_tools.size(); ++i) {
      if (want_tools[i] != have_tools[i]) {
        return "the input schema of tool '" + want_names[i] + "' differs: recorded " +
               clip(want_tools[i]["input_schema"]) + ", now " + clip(have_tools[i]["input_schema"]);
      }
    }
  }
  const json &wm = member(recorded, "messages"), &hm = member(now, "messages");
  const json& want_last = wm.is_array() && !wm.empty() ? wm.back() : none();
  const json& have_last = hm.is_array() && !hm.empty() ? hm.back() : none();
  if (want_last != have_last) {
    return "the last message differs: recorded " + clip(want_last) + ", now " + clip(have_last);
  }
  return "";
}

namespace {

struct Interaction {
  json request;
  std::optional<Response> response;
  ModelError error;
  int line = 0;
  bool used = false;
};

class ReplayClient;

struct ReplayCall {
  ReplayClient* client;
  RequestId id;
  Stream stream;
  Outcome outcome;
  uv_timer_t timer{};
};

class ReplayClient final : public Client {
 public:
  ReplayClient(uv_loop_t* loop, std::string spec, std::string path, std::vector<Interaction> tape,
               std::vector<std::string> secrets)
      : loop_(loop), spec_(std::move(spec)), path_(std::move(path)), tape_(std::move(tape)),
        secrets_(std::move(secrets)) {}

  ~ReplayClient() override {
    for (auto& [id, call] : calls_) close(call);
  }

  RequestId send(Request request, Stream stream) override {
    auto* call = new ReplayCall{this, next_id_++, std::move(stream), {}};
    json req = to_json(request);
    redact(req, secrets_);
    call->outcome = play(req);
    uv_timer_init(loop_, &call->timer);
    call->timer.data = call;
    uv_timer_start(&call->timer, &ReplayClient::on_timer, 0, 0);
    calls_.emplace(call->id, call);
    return call->id;
  }

  bool cancel(RequestId id) override {
    auto it = calls_.find(id);
    if (it == calls_.end()) return false;
    ReplayCall* call = it->second;
    calls_.erase(it);
    auto done = std::move(call->stream.on_done);
    close(call);
    if (done) done(Outcome{ModelError{ErrorKind::cancelled, 0, "", "the request was cancelled"}, {}});
    return true;
  }

  const std::string& spec() const override { return spec_; }
  size_t active() const override { return calls_.size(); }

 private:
  Outcome play(const json& request) {
    ++requests_;
    Interaction* next_unused = nullptr;
    for (auto& it : tape_) {
      if (it.used) continue;
      if (!next_unused) next_unused = &it;
      if (!replay_difference(it.request, request).empty()) continue;
      it.used = true;
      if (!it.response) return Outcome{it.error, {}};
      return Outcome{std::nullopt, *it.response};
    }
    ModelError e{ErrorKind::replay_mismatch, 0, "", ""};
    if (!next_unused) {
      e.message = path_ + ": request " + std::to_string(requests_) + " has no recorded answer: all " +
                  std::to_string(tape_.size()) + " interactions of the cassette are used (record it again)";
    } else {
      e.message = path_ + ":" + std::to_string(next_unused->line) + ": request " + std::to_string(requests_) +
                  " does not match the cassette: " + replay_difference(next_unused->request, request) +
                  " (the workflow changed since it was recorded; record it again)";
    }
    return Outcome{std::move(e), {}};
  }

  static void on_timer(uv_timer_t* t) noexcept {
    auto* call = static_cast<ReplayCall*>(t->data);
    ReplayClient* self = call->client;
    if (!self->calls_.count(call->id)) return;
    const Stream& s = call->stream;
    const Response& r = call->outcome.response;
    size_t tool = 0;
    for (const auto& b : r.message.content) {
      if (!self->calls_.count(call->id)) return;  // cancelled from a callback
      if (b.type == Block::Type::text && s.on_text) s.on_text(b.text);
      if (b.type == Block::Type::tool_use) {
        if (s.on_tool_start) s.on_tool_start(tool, b.id, b.name);
        if (s.on_tool_delta && self->calls_.count(call->id)) s.on_tool_delta(tool, dump(b.input));
        ++tool;
      }
    }
    if (!self->calls_.count(call->id)) return;
    self->calls_.erase(call->id);
    auto done = std::move(call->stream.on_done);
    Outcome out = std::move(call->outcome);
    close(call);
    if (done) done(std::move(out));  // last: it may destroy the client
  }

  static void close(ReplayCall* call) {
    uv_timer_stop(&call->timer);
    uv_close(reinterpret_cast<uv_handle_t*>(&call->timer),
             [](uv_handle_t* h) { delete static_cast<ReplayCall*>(h->data); });
  }

  uv_loop_t* loop_;
  std::string spec_, path_;
  std::vector<Interaction> tape_;
  std::vector<std::string> secrets_;
  std::map<RequestId, ReplayCall*> calls_;
  RequestId next_id_ = 1;
  int requests_ = 0;
};

ErrorKind kind_from_string(const std::string& s) {
  for (int k = 0; k <= static_cast<int>(ErrorKind::config); ++k) {
    if (s == to_string(static_cast<ErrorKind>(k))) return static_cast<ErrorKind>(k);
  }
  return ErrorKind::http_status;
}

class RecordingClient final : public Client {
 public:
  RecordingClient(std::unique_ptr<Client> live, std::shared_ptr<std::ofstream> out, std::vector<std::string> secrets)
      : live_(std::move(live)), out_(std::move(out)), secrets_(std::move(secrets)) {}

  RequestId send(Request request, Stream stream) override {
    json req = to_json(request);
    if (req["model"] == "") req["model"] = live_->spec().substr(live_->spec().find('/') + 1);
    auto done = std::move(stream.on_done);
    stream.on_done = [out = out_, secrets = secrets_, req = std::move(req), done = std::move(done)](Outcome o) {
      json line = {{"request", req}};
      if (o.ok()) {
        line["response"] = to_json(o.response);
      } else {
        line["error"] = {{"kind", to_string(o.error->kind)},
                         {"http_status", o.error->http_status},
                         {"message", o.error->message}};
      }
      if (o.ok() || o.error->kind != ErrorKind::cancelled) {
        redact(line, secrets);
        *out << dump(line) << '\n';
        out->flush();
      }
      if (done) done(std::move(o));
    };
    return live_->send(std::move(request), std::move(stream));
  }

  bool cancel(RequestId id) override { return live_->cancel(id); }
  const std::string& spec() const override { return live_->spec(); }
  size_t active() const override { return live_->active(); }

 private:
  std::unique_ptr<Client> live_;
  std::shared_ptr<std::ofstream> out_;
  std::vector<std::string> secrets_;
};

// The cassette's text. Beneath `root` when given (the repository, which a
// step can write: no symlink, no "..", nothing outside it); else `path` as the
// operator gave it, its last component not followed. A regular file of its
// own, at most kMaxCassetteBytes (util/safe_open.h).
Result<std::string> read_cassette(const std::string& root, const std::string& path) {
  std::filesystem::path given(path);
  std::string dir = root, name = path, shown = root.empty() ? path : (std::filesystem::path(root) / path).string();
  if (root.empty()) {
    dir = given.has_parent_path() ? given.parent_path().string() : ".";
    name = given.filename().string();
  }
  UniqueFd dir_fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd) return Error{"cannot read cassette " + shown + ": " + dir + ": " + std::strerror(errno)};
  auto text = read_regular_beneath(dir_fd.get(), name, kMaxCassetteBytes);
  if (!text) return Error{"cannot read cassette " + shown + ": refused: " + text.message()};
  if (!*text) return Error{"cannot read cassette " + shown + ": no such file"};
  return std::move(**text);
}

}  // namespace

Result<std::unique_ptr<Client>> make_replay_client(uv_loop_t* loop, std::string spec, const std::string& path,
                                                   std::vector<std::string> secrets, const std::string& root) {
  auto content = read_cassette(root, path);
  if (!content) return Error{"model '" + spec + "': " + content.message()};
  std::istringstream in(std::move(*content));
  std::vector<Interaction> tape;
  std::string text;
  int line = 0;
  while (std::getline(in, text)) {
    ++line;
    if (text.empty()) continue;
    std::string why;
    auto j = parse_json(text, &why);
    std::string where = path + ":" + std::to_string(line) + ": ";
    if (!j || !j->is_object()) return Error{where + "not a JSON object (" + why + ")"};
    if (line == 1) {
      if (!j->contains("hearth_cassette")) return Error{where + "not a Hearth cassette (no hearth_cassette header)"};
      if ((*j)["hearth_cassette"] != 1) return Error{where + "unsupported cassette version " + (*j)["hearth_cassette"].dump()};
      continue;
    }
    Interaction it;
    it.line = line;
    if (!j->contains("request") || !(*j)["request"].is_object()) return Error{where + "no \"request\" object"};
    auto req = request_from_json((*j)["request"]);
    if (!req) return Error{where + req.message()};
    it.request = std::move((*j)["request"]);
    if (j->contains("response")) {
      auto r = response_from_json((*j)["response"]);
      if (!r) return Error{where + r.message()};
      it.response = std::move(*r);
    } else if (j->contains("error") && (*j)["error"].is_object()) {
      const json& e = (*j)["error"];
      it.error = ModelError{kind_from_string(e.value("kind", "")), e.value("http_status", 0), "",
                            "(replayed) " + e.value("message", "")};
    } else {
      return Error{where + "neither \"response\" nor \"error\""};
    }
    tape.push_back(std::move(it));
  }
  if (line == 0) return Error{"model '" + spec + "': cassette " + path + " is empty"};
  return std::unique_ptr<Client>(new ReplayClient(loop, std::move(spec), path, std::move(tape), std::move(secrets)));
}

Result<std::unique_ptr<Client>> make_recording_client(std::unique_ptr<Client> live, const std::string& path,
                                                      std::vector<std::string> secrets) {
  auto out = std::make_shared<std::ofstream>(path, std::ios::trunc);
  if (!*out) return Error{"cannot write cassette " + path};
  json header = {{"hearth_cassette", 1}, {"model", live->spec()}};
  *out << header.dump() << '\n';
  out->flush();
  return std::unique_ptr<Client>(new RecordingClient(std::move(live), std::move(out), std::move(secrets)));
}

}  // namespace hearth::model
