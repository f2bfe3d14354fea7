// The PostgreSQL store's connection, schema and transactions (pg_store.h).

#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>

#include "agent/tool_support.h"
#include "engine/pg_sql.h"

namespace hearth::engine {

namespace {

constexpr int kSchemaVersion = 2;
// Every hearth migrating a database takes this lock first (the engine's
// schema and every part's tables): one migrates, the others wait and then
// see what it wrote. The number is "hearth" in ASCII.
const char* const kLockSql = "SELECT pg_advisory_xact_lock(114276735923304)";

// The same tables and meaning as the SQLite schema at its version 8
// (store.cpp), in PostgreSQL's types: integers are bigint, bytes bytea.
// runs.ordinal is the insertion order SQLite's rowid gave.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE runs (
  id              TEXT PRIMARY KEY,
  workflow        TEXT NOT NULL,
  workflow_path   TEXT NOT NULL,
  workflow_hash   TEXT NOT NULL,
  workflow_text   TEXT NOT NULL,
  payload         TEXT NOT NULL,
  repo            TEXT NOT NULL,
  status          TEXT NOT NULL,
  created_at      BIGINT NOT NULL,
  finished_at     BIGINT,
  error           TEXT NOT NULL DEFAULT '',
  lease_owner     TEXT NOT NULL DEFAULT '',
  lease_heartbeat BIGINT NOT NULL DEFAULT 0,
  ordinal         BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX runs_by_created ON runs(created_at);
CREATE INDEX runs_by_status ON runs(status);
CREATE TABLE steps (
  run_id        TEXT NOT NULL REFERENCES runs(id),
  step_id       TEXT NOT NULL,
  position      BIGINT NOT NULL,
  status        TEXT NOT NULL,
  attempts      BIGINT NOT NULL DEFAULT 0,
  exit_code     BIGINT,
  started_at    BIGINT,
  finished_at   BIGINT,
  outputs       TEXT NOT NULL DEFAULT '{}',
  reason        TEXT NOT NULL DEFAULT '',
  retry_at      BIGINT,
  failures      BIGINT NOT NULL DEFAULT 0,
  interruptions BIGINT NOT NULL DEFAULT 0,
  result        TEXT,
  PRIMARY KEY (run_id, step_id)
);
CREATE TABLE attempts (
  run_id       TEXT NOT NULL,
  step_id      TEXT NOT NULL,
  number       BIGINT NOT NULL,
  started_at   BIGINT NOT NULL,
  finished_at  BIGINT,
  exit_code    BIGINT,
  signal       BIGINT NOT NULL DEFAULT 0,
  reason       TEXT NOT NULL DEFAULT '',
  output_tail  BYTEA NOT NULL DEFAULT '',
  output_bytes BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, step_id, number),
  FOREIGN KEY (run_id, step_id) REFERENCES steps(run_id, step_id)
);
CREATE TABLE events (
  run_id  TEXT NOT NULL REFERENCES runs(id),
  seq     BIGINT NOT NULL,
  at      BIGINT NOT NULL,
  type    TEXT NOT NULL,
  step_id TEXT NOT NULL DEFAULT '',
  data    TEXT NOT NULL DEFAULT '{}',
  PRIMARY KEY (run_id, seq)
);
CREATE TABLE command_calls (
  run_id        TEXT NOT NULL,
  step_id       TEXT NOT NULL,
  attempt       BIGINT NOT NULL,
  sequence      BIGINT NOT NULL,
  command       TEXT NOT NULL,
  argv          TEXT NOT NULL,
  cwd           TEXT NOT NULL,
  started_at    BIGINT NOT NULL,
  allowed       BIGINT NOT NULL,
  rule          TEXT NOT NULL DEFAULT '',
  finished_at   BIGINT,
  outcome       TEXT NOT NULL DEFAULT 'running',
  exit_code     BIGINT,
  output_bytes  BIGINT NOT NULL DEFAULT 0,
  output_sha256 TEXT NOT NULL DEFAULT '',
  output_tail   BYTEA NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, step_id, attempt, sequence)
);
CREATE TABLE agent_checkpoints (
  run_id   TEXT NOT NULL,
  step_id  TEXT NOT NULL,
  attempt  BIGINT NOT NULL,
  turns    BIGINT NOT NULL,
  state    TEXT NOT NULL,
  saved_at BIGINT NOT NULL,
  PRIMARY KEY (run_id, step_id, attempt)
);
CREATE TABLE agent_messages (
  run_id   TEXT NOT NULL,
  step_id  TEXT NOT NULL,
  attempt  BIGINT NOT NULL,
  seq      BIGINT NOT NULL,
  message  TEXT NOT NULL,
  PRIMARY KEY (run_id, step_id, attempt, seq)
);
CREATE TABLE part_versions (
  part    TEXT PRIMARY KEY,
  version BIGINT NOT NULL
);
)sql",
    // Each store's last commit number, written by every commit that writes
    // (pg_store_pipeline.cpp); `at`, ms since the epoch, lets the rows of
    // stores gone for a week be removed.
    R"sql(
CREATE TABLE commit_marks (
  token TEXT PRIMARY KEY,
  seq   BIGINT NOT NULL,
  at    BIGINT NOT NULL
);
-- The fence a transaction passes before it writes a leased run's rows: the
-- run must still be the writing engine's, and stays so until the
-- transaction ends (a takeover's UPDATE waits for the row's lock).
CREATE FUNCTION hearth_fence(fenced TEXT, holder TEXT) RETURNS void LANGUAGE plpgsql AS $fence$
BEGIN
  PERFORM 1 FROM runs WHERE id = fenced AND lease_owner = holder FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'run % is no longer leased to this engine (another engine took it over while this one stalled for the lease timeout): what this engine did in it since is not saved', fenced;
  END IF;
END
$fence$;
)sql",
};
static_assert(sizeof kMigrations / sizeof kMigrations[0] == kSchemaVersion);

std::string trimmed(const char* message) {
  std::string s = message ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  if (s.rfind("ERROR:  ", 0) == 0) s.erase(0, 8);
  return s;
}

// The password's spellings in `url`: after the user in the authority, and
// as a password= parameter, as written (percent-encoded or not).
std::vector<std::string> passwords_in(const std::string& url) {
  std::vector<std::string> out;
  auto scheme = url.find("://");
  if (scheme == std::string::npos) return out;
  auto start = scheme + 3;
  auto end = url.find_first_of("/?", start);
  std::string authority = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (auto at = authority.rfind('@'); at != std::string::npos) {
    if (auto colon = authority.find(':'); colon != std::string::npos && colon < at)
      out.push_back(authority.substr(colon + 1, at - colon - 1));
  }
  if (auto q = url.find('?'); q != std::string::npos) {
    for (size_t p = q + 1; p < url.size();) {
      auto amp = url.find('&', p);
      std::string pair = url.substr(p, amp == std::string::npos ? std::string::npos : amp - p);
      if (pair.rfind("password=", 0) == 0) out.push_back(pair.substr(9));
      if (amp == std::string::npos) break;
      p = amp + 1;
    }
  }
  return out;
}

// `text` with every spelling of `url`'s password (and its decoded form,
// which libpq may echo) replaced.
std::string without_password(std::string text, const std::string& url) {
  auto secrets = passwords_in(url);
  PQconninfoOption* parsed = PQconninfoParse(url.c_str(), nullptr);
  for (auto* o = parsed; o && o->keyword; ++o)
    if (std::string(o->keyword) == "password" && o->val && *o->val) secrets.push_back(o->val);
  PQconninfoFree(parsed);
  for (const auto& s : secrets) {
    if (s.empty()) continue;
    for (size_t at; (at = text.find(s)) != std::string::npos;) text.replace(at, s.size(), "***");
  }
  return text;
}

void no_notices(void*, const char*) noexcept {}

// This store's name in commit_marks: 16 random bytes in hex.
std::string commit_token() {
  unsigned char bytes[16] = {};
  if (getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) {
    // Without the kernel's randomness: the pid, the time and an address.
    auto t = std::chrono::steady_clock::now().time_since_epoch().count();
    std::memcpy(bytes, &t, sizeof t);
    pid_t pid = getpid();
    std::memcpy(bytes + 8, &pid, sizeof pid);
    auto where = reinterpret_cast<uintptr_t>(&t);
    std::memcpy(bytes + 12, &where, 4);
  }
  static const char* const hex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) out += hex[b >> 4], out += hex[b & 15];
  return out;
}

}  // namespace

namespace pg {

std::string valid_text(std::string_view s) {
  bool plain = true;
  for (unsigned char c : s) plain = plain && c != 0 && c < 0x80;
  if (plain) return std::string(s);
  std::string out = agent::detail::valid_utf8(s);
  std::erase(out, '\0');
  return out;
}

std::string cell(const PGresult* r, int row, int col) {
  const char* v = PQgetvalue(r, row, col);
  if (PQftype(r, col) != 17 /* bytea */ || PQgetisnull(r, row, col))
    return std::string(v, static_cast<size_t>(PQgetlength(r, row, col)));
  size_t n = 0;
  unsigned char* bytes = PQunescapeBytea(reinterpret_cast<const unsigned char*>(v), &n);
  std::string out(reinterpret_cast<const char*>(bytes), bytes ? n : 0);
  PQfreemem(bytes);
  return out;
}

}  // namespace pg

bool is_postgres_location(const std::string& location) {
  return location.rfind("postgres://", 0) == 0 || location.rfind("postgresql://", 0) == 0;
}

std::string redact_url(const std::string& url) { return without_password(url, url); }

std::string redact_password(const std::string& text, const std::string& url) { return without_password(text, url); }

int PgStore::schema_version() { return kSchemaVersion; }

Result<std::unique_ptr<Store>> PgStore::open(const std::string& url, const std::string& local_dir) {
  std::unique_ptr<PgStore> store(new PgStore(redact_url(url), local_dir));
  std::error_code ec;
  std::filesystem::create_directories(local_dir, ec);
  if (ec) return Error{"cannot create the directory for the engine's files " + local_dir + ": " + ec.message()};
  store->conn_ = PQconnectdb(url.c_str());
  if (!store->conn_ || PQstatus(store->conn_) != CONNECTION_OK)
    return Error{"cannot connect to the state database " + store->shown_ + ": " +
                 without_password(trimmed(store->conn_ ? PQerrorMessage(store->conn_) : "out of memory"), url)};
  // CREATE ... IF NOT EXISTS and the like say NOTICEs on stderr otherwise.
  PQsetNoticeProcessor(store->conn_, no_notices, nullptr);
  if (auto s = store->note_session(); !s.ok()) return s.error();
  store->token_ = commit_token();
  if (auto s = store->migrate(); !s.ok()) return s.error();
  if (auto s = store->write("DELETE FROM commit_marks WHERE at < (EXTRACT(EPOCH FROM now()) * 1000)::bigint - 604800000",
                            "cannot clear old commit marks");
      !s.ok())
    return s.error();
  return std::unique_ptr<Store>(std::move(store));
}

PgStore::~PgStore() {
  detach();
  if (!conn_) return;
  if (mark_ > 0 && !in_transaction_ && !lost())
    pg::ResultPtr(PQexecParams(conn_, "DELETE FROM commit_marks WHERE token=$1", 1, nullptr,
                               std::array<const char*, 1>{token_.c_str()}.data(), nullptr, nullptr, 0),
                  PQclear);
  PQfinish(conn_);
}

Status PgStore::note_session() {
  pg::ResultPtr r(PQexec(conn_, "SELECT " HEARTH_PG_SESSION_START " FROM pg_stat_activity WHERE pid=pg_backend_pid()"),
                  PQclear);
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1)
    return fail("cannot read the session's start");
  session_ = Session{PQbackendPID(conn_), pg::cell(r.get(), 0, 0)};
  return {};
}

Status PgStore::fail(const char* what) {
  std::string cause = trimmed(PQerrorMessage(conn_));
  if (PQstatus(conn_) == CONNECTION_BAD) cause += " (the connection to the database is lost)";
  if (sticky_.ok()) sticky_ = Error{"state database " + shown_ + ": " + what + ": " + cause};
  return sticky_;
}

Status PgStore::exec(const char* sql, const char* what) {
  settle();
  if (in_transaction_) {
    // What the transaction holds back goes first.
    if (!server_open_ || !pending_.empty())
      if (auto r = flush(nullptr, false, what); !r) return r.error();
    writes_ = true;
  }
  pg::ResultPtr r(PQexec(conn_, sql), PQclear);
  auto st = PQresultStatus(r.get());
  if (!r || (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)) return fail(what);
  return {};
}

bool PgStore::lost() const { return PQstatus(conn_) == CONNECTION_BAD; }

pg::ResultPtr PgStore::prepare(const char* sql, const std::string*& name) {
  for (auto& [key, n] : prepared_)
    if (key == sql) return name = &n, pg::ResultPtr(nullptr, PQclear);
  std::string fresh = "h" + std::to_string(prepared_.size());
  pg::ResultPtr p(PQprepare(conn_, fresh.c_str(), sql, 0, nullptr), PQclear);
  if (PQresultStatus(p.get()) != PGRES_COMMAND_OK)
    return p ? std::move(p) : pg::ResultPtr(PQmakeEmptyPGresult(conn_, PGRES_FATAL_ERROR), PQclear);
  name = &prepared_.emplace_back(sql, std::move(fresh)).second;
  return pg::ResultPtr(nullptr, PQclear);
}

pg::ResultPtr PgStore::send(const char* sql, const std::vector<pg::Param>& params) {
  const std::string* name = nullptr;
  if (pg::ResultPtr failed = prepare(sql, name)) return failed;
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  for (const auto& p : params) {
    values.push_back(p.value ? p.value->data() : nullptr);
    lengths.push_back(p.value ? static_cast<int>(p.value->size()) : 0);
    formats.push_back(p.binary ? 1 : 0);
  }
  return pg::ResultPtr(PQexecPrepared(conn_, name->c_str(), static_cast<int>(params.size()), values.data(),
                                      lengths.data(), formats.data(), 0),
                       PQclear);
}

// A statement that fails because the connection is gone is sent again once
// the connection (and the transaction so far) is back: recover(). In a
// transaction it goes with the writes held back (flush).
Result<pg::ResultPtr> PgStore::run(const char* sql, const std::vector<pg::Param>& params, const char* what) {
  settle();
  if (in_transaction_) {
    if (!sticky_.ok()) return sticky_.error();
    Sent last{sql, {}, {}, what};
    for (const auto& p : params) last.values.push_back(p.value), last.binary.push_back(p.binary);
    return flush(&last, false, what);
  }
  for (;;) {
    pg::ResultPtr r = send(sql, params);
    auto st = PQresultStatus(r.get());
    if (r && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)) {
      noted_ok();
      return r;
    }
    if (!lost() || !sticky_.ok()) return fail(what).error();
    if (auto s = recover(what); !s.ok()) return s.error();
  }
}

Status PgStore::begin_locked() {
  if (auto s = begin(); !s.ok()) return s;
  if (auto s = exec(kLockSql, "cannot lock the schema for migration"); !s.ok()) {
    rollback();
    return s;
  }
  return {};
}

// One transaction, under the advisory lock: the version table made if
// missing, read, and every step from there applied.
Status PgStore::migrate() {
  if (auto s = begin_locked(); !s.ok()) return s;
  auto done = [&](Status s) {
    if (!s.ok()) rollback();
    return s;
  };
  if (auto s = exec("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)",
                    "cannot read the schema version");
      !s.ok())
    return done(s);
  int64_t version = 0;
  bool found = false;
  if (auto s = rows("SELECT version FROM schema_version", "cannot read the schema version",
                    [&](const PGresult* r, int i) { version = pg::cell_int(r, i, 0), found = true; });
      !s.ok())
    return done(s);
  if (version > kSchemaVersion)
    return done(Error{"state database " + shown_ + " has schema version " + std::to_string(version) +
                      ", newer than this hearth understands (" + std::to_string(kSchemaVersion) + "): upgrade hearth"});
  for (; version < kSchemaVersion; ++version)
    if (auto s = exec(kMigrations[version], "cannot migrate the schema"); !s.ok()) return done(s);
  const char* set = found ? "UPDATE schema_version SET version=$1" : "INSERT INTO schema_version (version) VALUES ($1)";
  if (auto s = write(set, "cannot record the schema version", int64_t{kSchemaVersion}); !s.ok()) return done(s);
  return commit();
}

// BEGIN is held back too: it goes with the transaction's first statement
// that is sent (pg_store_pipeline.cpp).
Status PgStore::begin() {
  settle();
  if (!sticky_.ok()) return sticky_;
  begun_ = std::chrono::steady_clock::now();
  journal_.clear();
  pending_.clear();
  fences_.clear();
  in_transaction_ = true;
  server_open_ = false;
  writes_ = false;
  return {};
}

// The held-back writes, the commit mark and COMMIT in one round trip
// (finish_commit; attached, pg_store_async.cpp sends it and reads its answers later).
// A COMMIT that fails with the connection up did not happen (the server
// rolled it back); one whose connection went away meanwhile may or may not
// have: resolve_commit() finds out. A transaction that wrote nothing has
// nothing to save: its COMMIT's answer does not matter.
void PgStore::rollback() {
  settle();
  abandon();
}

void PgStore::abandon() {
  if (!in_transaction_) return;
  if (server_open_ && !lost()) pg::ResultPtr(PQexec(conn_, "ROLLBACK"), PQclear);
  in_transaction_ = server_open_ = writes_ = false;
  journal_.clear();
  pending_.clear();
  fences_.clear();
}


}  // namespace hearth::engine
