// The PostgreSQL store's pipelining (pg_store.h): a transaction's writes are
// held back and sent together, in libpq's pipeline mode, with whatever needs
// an answer next. A step checkpoint (BEGIN, its rows, COMMIT) is one round
// trip to the server, not one per statement.
//
// A held-back write cannot fail where it is made: its failure (a constraint,
// a type) is reported by the statement that sends it, or by commit(), with
// the write's own wording, and it is sticky as every failure is.
//
// A commit whose answer is lost: every commit that writes also writes this
// store's commit mark, (token_, a number new for each try), in the same
// transaction. On a new connection the old session is waited for (ended, if
// it lingers) and the mark read: the number there tells whether the commit
// was saved. The same rule as before pipelining (pg_store_reconnect.cpp),
// without needing an answer from the lost round trip.
#include <algorithm>
#include <chrono>
#include <thread>

#include "engine/pg_sql.h"

namespace hearth::engine {

namespace {

using Clock = std::chrono::steady_clock;

const char* const kMarkSql =
    "INSERT INTO commit_marks (token, seq, at) VALUES ($1, $2, (EXTRACT(EPOCH FROM now()) * 1000)::bigint) "
    "ON CONFLICT (token) DO UPDATE SET seq = EXCLUDED.seq, at = EXCLUDED.at";

// The schema's hearth_fence (pg_store.cpp): fails unless the run is leased
// to the owner given, and locks its row.
const char* const kFenceSql = "SELECT hearth_fence($1, $2)";

std::string result_error(const PGresult* r) {
  std::string s = r ? PQresultErrorMessage(r) : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  if (s.rfind("ERROR:  ", 0) == 0) s.erase(0, 8);
  return s;
}

// A statement's parameters as libpq takes them.
struct Bound {
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  Bound(const std::vector<std::optional<std::string>>& given, const std::vector<char>& binary) {
    for (size_t i = 0; i < given.size(); ++i) {
      values.push_back(given[i] ? given[i]->data() : nullptr);
      lengths.push_back(given[i] ? static_cast<int>(given[i]->size()) : 0);
      formats.push_back(binary[i] ? 1 : 0);
    }
  }
};

}  // namespace

void PgStore::touch(const std::string& run_id) {
  settle();
  if (!in_transaction_) return;
  auto held = held_.find(run_id);
  if (held == held_.end() || std::find(fences_.begin(), fences_.end(), run_id) != fences_.end()) return;
  fences_.push_back(run_id);
  pending_.push_back(Sent{kFenceSql, {run_id, held->second}, {0, 0}, "cannot save what this engine did in a run"});
}

Status PgStore::defer(const char* sql, std::vector<pg::Param> params, const char* what) {
  settle();
  if (!sticky_.ok()) return sticky_;
  Sent& s = pending_.emplace_back(Sent{sql, {}, {}, what});
  for (auto& p : params) s.values.push_back(std::move(p.value)), s.binary.push_back(p.binary);
  writes_ = true;
  return {};
}

PgStore::Piped PgStore::pipeline(const Sent* last, bool commit) {
  Piping pp;
  if (auto early = pipe_send(last, commit, pp)) return std::move(*early);
  return pipe_answer(pp, [this] { return pg::ResultPtr(PQgetResult(conn_), PQclear); });
}

std::optional<PgStore::Piped> PgStore::pipe_send(const Sent* last, bool commit, Piping& pp) {
  pp.last = last;
  pp.commit = commit;
  for (const auto& s : pending_) pp.batch.push_back(&s);
  if (last) pp.batch.push_back(last);
  pp.mark = Sent{kMarkSql, {token_, std::to_string(mark_ + 1)}, {0, 0}, "cannot commit"};
  if (commit && writes_) pp.batch.push_back(&pp.mark), ++mark_;
  // Statements new to this connection are prepared first, a round trip
  // each, once per connection.
  std::vector<const std::string*> names;
  for (const Sent* s : pp.batch) {
    const std::string* name = nullptr;
    if (pg::ResultPtr failed = prepare(s->sql, name)) {
      if (lost()) return Piped{Piped::lost, {nullptr, PQclear}, {}};
      return Piped{Piped::failed, {nullptr, PQclear}, std::string(s->what) + ": " + result_error(failed.get())};
    }
    names.push_back(name);
  }
  if (!PQenterPipelineMode(conn_)) return Piped{Piped::lost, {nullptr, PQclear}, {}};
  // A transaction sent whole, in one pipeline, needs neither BEGIN nor
  // COMMIT: statements up to a Sync are one implicit transaction, which the
  // Sync commits (or, after a failure, rolls back).
  pp.whole = commit && !server_open_;
  pp.opens = !server_open_ && !pp.whole;
  bool queued = !pp.opens || PQsendQueryParams(conn_, "BEGIN", 0, nullptr, nullptr, nullptr, nullptr, 0);
  for (size_t i = 0; queued && i < pp.batch.size(); ++i) {
    Bound b(pp.batch[i]->values, pp.batch[i]->binary);
    queued = PQsendQueryPrepared(conn_, names[i]->c_str(), static_cast<int>(b.values.size()), b.values.data(),
                                 b.lengths.data(), b.formats.data(), 0);
  }
  if (queued && commit && !pp.whole)
    queued = PQsendQueryParams(conn_, "COMMIT", 0, nullptr, nullptr, nullptr, nullptr, 0);
  if (queued) queued = PQpipelineSync(conn_);
  if (!queued) return Piped{Piped::lost, {nullptr, PQclear}, {}};  // only a broken connection refuses to queue
  server_open_ = !pp.whole;
  return std::nullopt;
}

PgStore::Piped PgStore::pipe_answer(Piping& pp, const std::function<pg::ResultPtr()>& next) {
  Piped out;
  const Sent* last = pp.last;
  // The answers, in order: one result per statement, then a null.
  auto answer = [&](const char* what, const Sent* sent) {
    pg::ResultPtr r = next();
    if (r) (void)next();
    auto st = PQresultStatus(r.get());
    if (!r || (st == PGRES_FATAL_ERROR && lost())) {
      out.how = Piped::lost;
      return r;
    }
    if (st == PGRES_PIPELINE_ABORTED) return r;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      if (out.how == Piped::ok) out.how = Piped::failed, out.cause = std::string(what) + ": " + result_error(r.get());
      return r;
    }
    if (sent && sent != &pp.mark && sent != last) {
      auto* kept = const_cast<Sent*>(sent);
      kept->tuples = PQntuples(r.get());
      kept->affected = PQcmdTuples(r.get());
    }
    return r;
  };
  if (pp.opens) answer("cannot begin a transaction", nullptr);
  for (size_t i = 0; i < pp.batch.size() && out.how != Piped::lost; ++i) {
    pg::ResultPtr r = answer(pp.batch[i]->what, pp.batch[i]);
    if (pp.batch[i] == last && out.how == Piped::ok) out.last = std::move(r);
  }
  if (pp.commit && !pp.whole && out.how != Piped::lost) {
    pg::ResultPtr r = answer("cannot commit", nullptr);
    if (out.how == Piped::ok) out.last = std::move(r);
  }
  if (out.how != Piped::lost) {
    pg::ResultPtr sync = next();
    if (PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC) out.how = Piped::lost;
  }
  if (out.how == Piped::lost || !PQexitPipelineMode(conn_)) {
    if (lost()) return {Piped::lost, {nullptr, PQclear}, {}};
    // Answers out of step with what was sent, on a connection still up:
    // nothing can be told about this transaction any more.
    return {Piped::failed, {nullptr, PQclear},
            "the database's answers to a pipeline did not match what was sent: " + std::string(PQerrorMessage(conn_))};
  }
  if (out.how != Piped::ok) return out;
  // Answered: the writes join what a new connection would send again.
  for (auto& s : pending_) journal_.push_back(std::move(s));
  pending_.clear();
  if (last) {
    Sent kept = *last;
    kept.tuples = PQntuples(out.last.get());
    kept.affected = PQcmdTuples(out.last.get());
    if (std::string_view(PQcmdStatus(out.last.get())).rfind("SELECT", 0) != 0) writes_ = true;
    journal_.push_back(std::move(kept));
  }
  return out;
}

Result<pg::ResultPtr> PgStore::flush(const Sent* last, bool commit, const char* what, Answered* answered) {
  if (!sticky_.ok()) return sticky_.error();
  for (;;) {
    Session before = answered ? answered->sent_on : session_;
    Piped p = answered ? std::move(answered->piped) : pipeline(last, commit);
    answered = nullptr;
    if (p.how == Piped::ok) {
      noted_ok();
      return std::move(p.last);
    }
    if (p.how == Piped::failed) {
      if (sticky_.ok()) sticky_ = Error{"state database " + shown_ + ": " + p.cause};
      return sticky_.error();
    }
    if (commit && !writes_) {  // nothing to save: whichever way it went
      if (auto s = recover(what); !s.ok()) return s.error();
      return pg::ResultPtr(nullptr, PQclear);
    }
    if (commit) {
      if (auto s = resolve_commit(before); !s.ok()) return s.error();
      return pg::ResultPtr(nullptr, PQclear);
    }
    // BEGIN and what was answered are sent again on a new connection; the
    // held-back writes go with the next try.
    if (auto s = recover(what); !s.ok()) return s.error();
  }
}

Result<bool> PgStore::committed(const Session& old) {
  // The old session may not know yet that its client is gone, and while it
  // lives its COMMIT may still happen: it is ended, and waited for.
  auto since = Clock::now();
  for (bool asked = false;;) {
    pg::ResultPtr r = send(asked ? "SELECT 1 FROM pg_stat_activity WHERE pid=$1 AND " HEARTH_PG_SESSION_START "=$2"
                                 : "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                   "WHERE pid=$1 AND " HEARTH_PG_SESSION_START "=$2",
                           {pg::param(int64_t{old.pid}), pg::param(old.start)});
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) return fail("cannot learn whether a commit was saved").error();
    if (PQntuples(r.get()) == 0) break;
    asked = true;
    if (Clock::now() - since >= std::chrono::milliseconds(kReconnectForMs))
      return Error{"state database " + shown_ + ": the session whose COMMIT got no answer has not ended in " +
                   std::to_string(kReconnectForMs / 1000) + " s, so whether it was saved is unknown"};
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pg::ResultPtr r = send("SELECT seq FROM commit_marks WHERE token=$1", {pg::param(token_)});
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) return fail("cannot learn whether a commit was saved").error();
  return PQntuples(r.get()) == 1 && pg::cell_int(r.get(), 0, 0) == mark_;
}

}  // namespace hearth::engine
