// The PostgreSQL store after a lost connection (pg_store.h, "Failures"):
// the connection made again with capped exponential backoff, the open
// transaction sent again, and a COMMIT whose answer was lost looked up.
//
// The rule for a commit of unknown outcome: the commit wrote this store's
// commit mark with a number of its own (pg_store_pipeline.cpp). On the new
// connection the old session is ended and waited for, then the mark read:
//   that number  it is saved: the commit succeeded.
//   any other    it is not saved (the server rolled it back): it is made
//                again from its statements and committed again.
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
      server_open_ = false;
      if (auto s = note_session(); !s.ok()) {
        if (lost()) continue;
        return s;
      }
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
  pg::ResultPtr r(PQexec(conn_, "BEGIN"), PQclear);
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) return lost() ? Replayed::lost : Replayed::differs;
  server_open_ = true;
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

// Called with the COMMIT's answer lost; pending_ and journal_ still hold the
// transaction, to be made again if it was not saved.
Status PgStore::resolve_commit(Session old) {
  const char* what = "cannot commit";
  for (;;) {
    // A new connection, without the transaction (it is over, one way or the other).
    in_transaction_ = false;
    if (lost())
      if (auto s = recover(what); !s.ok()) return s;
    auto saved = committed(old);
    if (!saved) {
      if (lost()) continue;
      return saved.status();
    }
    if (*saved) return {};
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
    old = session_;
    Piped p = pipeline(nullptr, true);
    if (p.how == Piped::ok) return {};
    if (p.how == Piped::failed) {
      if (sticky_.ok()) sticky_ = Error{"state database " + shown_ + ": " + p.cause};
      return sticky_;
    }
  }
}

}  // namespace hearth::engine
