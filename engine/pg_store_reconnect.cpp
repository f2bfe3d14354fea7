// The PostgreSQL store after a lost connection (pg_store.h, "Failures"):
// the connection made again with capped exponential backoff, the open
// transaction sent again, and a COMMIT whose answer was lost looked up.
//
// The rule for a commit of unknown outcome: the transaction's id was read at
// BEGIN; on the new connection txid_status(id) says what happened to it.
//   committed    it is saved: the commit succeeded.
//   aborted, or  it is not saved (the server rolled it back, or has
//   unknown      forgotten an id that old, which only a transaction that
//                never committed can be after a restart): it is made
//                again from its statements and committed again.
//   in progress  the old session is still ending: asked again after a wait.
// A transaction made again must do what it did (each statement the same
// number of rows); when the database changed meanwhile so that it does not,
// the store fails (sticky) rather than save something else.
#include <chrono>
#include <iostream>
#include <thread>

#include "engine/pg_sql.h"

namespace hearth::engine {

namespace {

using Clock = std::chrono::steady_clock;

std::string trimmed_error(const PGconn* conn) {
  std::string s = PQerrorMessage(conn);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

Status PgStore::recover(const char* what) {
  if (!outage_since_) {
    outage_since_ = Clock::now();
    std::cerr << "hearth: state database " << shown_ << ": the connection is lost (" << trimmed_error(conn_)
              << "); reconnecting\n";
  }
  auto delay = std::chrono::milliseconds(50);
  for (;;) {
    PQreset(conn_);
    if (!lost()) {
      ++reconnects_;
      prepared_.clear();  // a new session has none of them
      if (!in_transaction_) return {};
      switch (replay()) {
        case Replayed::ok: return {};
        case Replayed::lost: break;  // lost again: wait and retry
        case Replayed::differs:
          if (sticky_.ok())
            sticky_ = Error{"state database " + shown_ + ": " + what +
                            ": the connection was lost during a transaction, and sent again on a new connection it "
                            "no longer does the same (another engine changed those rows meanwhile): nothing of it is "
                            "saved"};
          return sticky_;
      }
    }
    auto waited = Clock::now() - *outage_since_;
    if (waited >= std::chrono::milliseconds(kReconnectForMs)) {
      if (sticky_.ok())
        sticky_ = Error{"state database " + shown_ + ": " + what + ": the connection is lost and could not be made "
                        "again for " + std::to_string(kReconnectForMs / 1000) + " s (" + trimmed_error(conn_) + ")"};
      return sticky_;
    }
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(2000));
  }
}

PgStore::Replayed PgStore::replay() {
  pg::ResultPtr r = send_begin();
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) return lost() ? Replayed::lost : Replayed::differs;
  for (const auto& sent : journal_) {
    std::vector<pg::Param> params;
    for (size_t i = 0; i < sent.values.size(); ++i) params.push_back(pg::Param{sent.values[i], sent.binary[i] != 0});
    pg::ResultPtr again = send(sent.sql, params);
    auto st = PQresultStatus(again.get());
    if (!again || (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)) {
      if (lost()) return Replayed::lost;
      pg::ResultPtr(PQexec(conn_, "ROLLBACK"), PQclear);
      return Replayed::differs;
    }
    if (PQntuples(again.get()) != sent.tuples || sent.affected != PQcmdTuples(again.get())) {
      pg::ResultPtr(PQexec(conn_, "ROLLBACK"), PQclear);
      return Replayed::differs;
    }
  }
  return Replayed::ok;
}

// Called with the COMMIT's answer lost; in_transaction_ still set, so that
// recover() sends the transaction again if it has to be made again.
Status PgStore::resolve_commit() {
  const char* what = "cannot commit";
  std::string xid = xid_;
  for (;;) {
    // A new connection, without the transaction (it is over, one way or the other).
    in_transaction_ = false;
    if (lost())
      if (auto s = recover(what); !s.ok()) return s;
    pg::ResultPtr r = send("SELECT txid_status($1::bigint)", {pg::Param{xid, false}});
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
      if (lost()) continue;
      return fail(what);
    }
    std::string status = PQgetisnull(r.get(), 0, 0) ? "" : pg::cell(r.get(), 0, 0);
    if (status == "committed") return {};
    if (status == "in progress") {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    // Not saved: made again on this connection, then committed.
    in_transaction_ = true;
    switch (replay()) {
      case Replayed::lost: continue;
      case Replayed::differs:
        if (sticky_.ok())
          sticky_ = Error{"state database " + shown_ + ": the connection was lost during COMMIT and the transaction "
                          "was not saved; sent again, it no longer does the same (another engine changed those rows "
                          "meanwhile): nothing of it is saved"};
        return sticky_;
      case Replayed::ok: break;
    }
    pg::ResultPtr c(PQexec(conn_, "COMMIT"), PQclear);
    if (PQresultStatus(c.get()) == PGRES_COMMAND_OK) return {};
    if (!lost()) return fail(what);
    xid = xid_;  // the new attempt's id
  }
}

}  // namespace hearth::engine
