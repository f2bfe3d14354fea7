// The PostgreSQL backend of the run store (private to engine/), over libpq:
// one database shared by whoever points at it (`postgres://` or
// `postgresql://` URL). The same tables and meaning as the SQLite backend
// (sqlite_store.h): runs, steps, attempts, events (pg_store.cpp),
// command_calls and the agent checkpoints (pg_store_journal.cpp),
// part_versions for the parts that keep tables here (pg_store_tables.cpp).
// The engine's schema version is the one row of schema_version; migrations
// run once, under an advisory lock, and a newer schema is refused.
//
// Driven on the owner's thread. In a transaction, BEGIN and the writes are
// held back and sent, in libpq's pipeline mode, with the next statement
// whose rows are wanted or with the commit (pg_store_pipeline.cpp): a step's
// checkpoint is one round trip. Unattached, commit() returns once the server
// has made the transaction durable (synchronous_commit on: its WAL is
// flushed before it answers). Attached to a loop, a commit that writes is
// sent and commit() returns; a uv_poll on the socket reads the answers as
// they come, and when_durable() calls back on the loop once the server has
// answered (pg_store_async.cpp; a lost connection's recovery runs on libuv's
// threadpool). Any other call of the store waits for the commit in flight
// first (settle()). docs/architecture.md, "Decisions", has the figures.
//
// Failures: a failed statement is sticky, as on SQLite; a held-back write's
// failure is reported where it is sent (the next read, or commit()). A lost
// connection (the database restarted, the network dropped) is not sticky,
// at first: the store reconnects with capped exponential backoff
// (pg_store_reconnect.cpp), blocking its caller meanwhile, and carries on
// where it was. The open transaction died with the connection: its
// statements, kept since BEGIN, are sent again on the new one and must have
// the same effect (the same row counts), else the transaction fails
// (sticky). A commit whose answer was lost is resolved by re-reading: each
// commit that writes also writes this store's commit mark (commit_marks,
// a number new for each commit); the old session is ended and waited for,
// then the mark read: its number is success, any other means the commit was
// not saved and it is made again. Only when the database stays out of reach
// for kReconnectForMs does the failure become sticky.
//
// Shared: several engines on several machines use one database; a run's
// lease is written and tested with the database's clock (pg_store_lease.cpp).
//
// The URL may carry a password: path() and every error show it redacted.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/store.h"
#include "engine/store_tables.h"

struct pg_conn;
struct pg_result;

namespace hearth::engine {

/// True when `location` names a PostgreSQL database (a postgres:// or
/// postgresql:// URL) rather than a SQLite file.
bool is_postgres_location(const std::string& location);
/// `url` with any password (in the user part or a password= parameter)
/// replaced by "***".
std::string redact_url(const std::string& url);
/// `text` (a message from libpq about `url`) with the URL's password, in any
/// spelling, replaced by "***".
std::string redact_password(const std::string& text, const std::string& url);

namespace pg {
struct Param;
using ResultPtr = std::unique_ptr<pg_result, void (*)(pg_result*)>;
}  // namespace pg

class PgStore final : public Store, private StoreTables {
 public:
  /// Connects to `url`, migrates its schema. `local_dir` is this machine's
  /// directory for the engine's files (created if missing).
  static Result<std::unique_ptr<Store>> open(const std::string& url, const std::string& local_dir);
  /// The schema version this build writes (the row of schema_version).
  static int schema_version();
  ~PgStore() override;

  const std::string& path() const override { return shown_; }
  const std::string& local_dir() const override { return local_dir_; }
  Status health() const override;

  Status begin() override;
  Status commit() override;
  void rollback() override;
  Status insert_run(const RunRecord& run) override;
  Status insert_step(const std::string& run_id, const StepRecord& step) override;
  Status update_run(const std::string& run_id, RunStatus status, std::optional<int64_t> finished_at,
                    const std::string& error) override;
  Status update_step(const std::string& run_id, const StepRecord& step) override;
  Status insert_attempt(const std::string& run_id, const AttemptRecord& a) override;
  Status finish_attempt(const std::string& run_id, const AttemptRecord& a) override;
  Status insert_event(const EventRecord& e) override;
  Status set_lease(const std::string& run_id, const std::string& owner, int64_t heartbeat) override;
  Result<std::string> take_lease(const std::string& run_id, const std::string& owner, int64_t now,
                                 int64_t stale_ms) override;
  Status renew_lease(const std::string& run_id, const std::string& owner, int64_t now) override;
  bool shared() const override { return true; }
  int64_t reconnects() const override;
  /// How long the store keeps trying to reconnect before its failure is
  /// sticky; the wait between tries doubles from 50 ms up to 2 s.
  static constexpr int64_t kReconnectForMs = 60000;
  Status update_snapshot(const std::string& run_id, const std::string& path, const std::string& hash,
                         const std::string& text) override;

  Status insert_call(const std::string& run_id, const std::string& step_id, int attempt, const CallRecord& c) override;
  Status finish_call(const std::string& run_id, const std::string& step_id, int attempt, const CallRecord& c) override;
  Result<std::vector<CallRecord>> settle_unfinished_calls(const std::string& run_id, const std::string& step_id,
                                                          int attempt, int64_t now) override;
  Result<std::vector<CallRecord>> load_calls(const std::string& run_id) override;

  Status save_checkpoint(const std::string& run_id, const std::string& step_id, int attempt, int turns,
                         const nlohmann::json& state) override;
  Status append_checkpoint(const std::string& run_id, const std::string& step_id, int attempt, int turns,
                           const nlohmann::json& header, const nlohmann::json& messages, size_t first) override;
  Result<size_t> checkpoint_messages(const std::string& run_id, const std::string& step_id, int attempt) override;
  Result<std::optional<nlohmann::json>> load_checkpoint(const std::string& run_id, const std::string& step_id,
                                                        int attempt) override;
  Result<std::vector<Checkpoint>> load_checkpoints(const std::string& run_id) override;

  Result<bool> run_exists(const std::string& run_id) override;
  Result<std::vector<std::string>> interrupted_runs() override;
  Result<std::vector<RunRecord>> list_runs(int limit, const std::string& workflow_filter) override;
  Result<RunRecord> load_run(const std::string& run_id) override;
  Result<std::vector<StepRecord>> load_steps(const std::string& run_id) override;
  Result<int64_t> last_event_seq(const std::string& run_id) override;
  Result<std::vector<EventRecord>> load_events(const std::string& run_id, int64_t after_seq) override;

  StoreTables& tables() override { return *this; }

  // Commits off the loop (pg_store_async.cpp).
  Status attach(uv_loop_s* loop) override;
  void when_durable(const void* owner, std::function<void(const Status&)> fn) override;
  void forget(const void* owner) override;
  void detach() override;

  int64_t commits() const override;
  int64_t syncs() const override { return commits(); }
  std::chrono::nanoseconds commit_time() const override;

 private:
  PgStore(std::string shown, std::string local_dir) : shown_(std::move(shown)), local_dir_(std::move(local_dir)) {}

  // StoreTables (pg_store_tables.cpp).
  std::string_view dialect() const override { return "postgres"; }
  Status migrate(std::string_view part, std::span<const Migration> steps) override;
  Status execute(const char* sql, std::initializer_list<SqlParam> params, const char* what) override;
  Result<std::vector<SqlRow>> query(const char* sql, std::initializer_list<SqlParam> params,
                                    const char* what) override;

  Status migrate();
  // Commits off the loop (pg_store_async.cpp).
  struct Flight;
  Flight* flight_ = nullptr;  // while attached; a detached one is deleted by its last callback
  /// Waits until no commit is in flight (its answers read, or its recovery
  /// on the pool done): every entry point that uses the connection or the
  /// transaction's state calls it first. Cheap when nothing is in flight.
  void settle();
  void settle() const { const_cast<PgStore*>(this)->settle(); }
  /// The COMMIT of the open transaction, sent and answered here, and what
  /// follows it.
  Status finish_commit();
  /// What follows a commit, saved (`s` ok) or not; `sent`: it went to the
  /// server (else there was nothing to send, and it is not counted).
  void end_commit(Status s, bool sent = true);
  /// An attached commit's answers: read as they come (or, `block`, all),
  /// and once all are in, answered().
  void read_answers(bool block);
  /// An attached commit whose answers are in: ended on the loop, or on the
  /// pool when the connection was lost.
  void answered();
  /// rollback() without settle(), for the pool's thread.
  void abandon();
  /// The waiters whose commits are answered, on the loop.
  void dispatch();
  /// A StoreTables statement in $N spelling, kept for the store's life.
  const char* spelt(const char* sql);
  /// Runs `sql` with `params` ($1..$N); the result, or the sticky failure
  /// naming `what`. `sql` is prepared once and cached by its address.
  Result<pg::ResultPtr> run(const char* sql, const std::vector<pg::Param>& params, const char* what);
  /// A statement without parameters, not cached (BEGIN, COMMIT, DDL).
  Status exec(const char* sql, const char* what);
  template <class... V>
  Status write(const char* sql, const char* what, const V&... values);
  template <class Row, class... V>
  Status rows(const char* sql, const char* what, Row&& row, const V&... values);
  Status fail(const char* what);
  /// `sql` prepared (once per connection) and run; no recovery.
  pg::ResultPtr send(const char* sql, const std::vector<pg::Param>& params);
  /// Prepares `sql` on this connection unless it is already: its statement
  /// name in `name`, or the failed result.
  pg::ResultPtr prepare(const char* sql, const std::string*& name);
  // Pipelining (pg_store_pipeline.cpp). In a transaction, a write waits in
  // pending_ and goes with the next statement whose rows are wanted, or with
  // the COMMIT: BEGIN, the writes, that statement, one round trip.
  struct Sent;
  Status defer(const char* sql, std::vector<pg::Param> params, const char* what);
  struct Piped;
  struct Answered;
  /// Sends BEGIN (unless the server has it), pending_, then `last` or, for a
  /// commit, the commit mark and COMMIT; recovers from a lost connection.
  /// The result of `last` (or of the COMMIT). With `answered`, the pipeline
  /// was sent and answered already (an attached commit): its outcome is
  /// taken as the first try's.
  Result<pg::ResultPtr> flush(const Sent* last, bool commit, const char* what, Answered* answered = nullptr);
  Piped pipeline(const Sent* last, bool commit);
  struct Piping;
  /// Prepares what is new and queues the pipeline; an outcome only when it
  /// could not be sent.
  std::optional<Piped> pipe_send(const Sent* last, bool commit, Piping& pp);
  /// Reads the answers to `pp` from `next` (libpq's results in order, the
  /// nulls between them included).
  Piped pipe_answer(Piping& pp, const std::function<pg::ResultPtr()>& next);
  // A connection's session on the server.
  struct Session {
    int pid = 0;
    std::string start;  // HEARTH_PG_SESSION_START
  };
  /// Reads the new connection's Session into session_.
  Status note_session();
  /// Whether this store's last commit (numbered mark_) is saved, after its
  /// answer was lost with session `old`: ends that session and waits for it
  /// to be gone, then reads the commit mark.
  Result<bool> committed(const Session& old);
  bool lost() const;
  // Reconnection (pg_store_reconnect.cpp). The connection is made again,
  // waiting between tries; in a transaction, BEGIN and its statements are
  // sent again. A sticky failure once kReconnectForMs have passed, or when
  // the statements sent again do not do what they did.
  Status recover(const char* what);
  enum class Replayed { ok, lost, differs };
  Replayed replay();
  /// After a COMMIT whose answer was lost: found saved, or made again.
  Status resolve_commit(Session old);
  void noted_ok() { outage_since_.reset(); }
  /// Starts a transaction serialised with every other hearth migrating this
  /// database (pg_advisory_xact_lock).
  Status begin_locked();
  /// Called before a write of `run_id`'s rows: in a transaction, the first
  /// for a run whose lease this engine holds sends its fence first.
  void touch(const std::string& run_id);
  Result<nlohmann::json> assemble_checkpoint(const std::string& run_id, const std::string& step_id, int attempt,
                                             nlohmann::json row);

  std::string shown_;      // the URL, password redacted
  std::string local_dir_;
  pg_conn* conn_ = nullptr;
  // sql address -> statement name; a deque, so that a name stays where it is.
  std::deque<std::pair<const char*, std::string>> prepared_;
  // StoreTables' ?N text -> its $N text, whose address prepared_ keys on:
  // a deque, so that adding one never moves the others.
  std::deque<std::pair<const char*, std::string>> translated_;
  Status sticky_;
  bool in_transaction_ = false;
  bool server_open_ = false;  // the server has this transaction's BEGIN
  bool writes_ = false;       // the open transaction writes something
  Session session_;
  // A statement of the open transaction: waiting to be sent (pending_), or
  // sent and answered (journal_), to be sent again on a new connection.
  struct Sent {
    const char* sql;
    std::vector<std::optional<std::string>> values;
    std::vector<char> binary;
    const char* what;      // the failure's wording
    int tuples = 0;        // rows returned
    std::string affected;  // rows changed (PQcmdTuples)
  };
  // A pipeline between its sending and its answers.
  struct Piping {
    std::vector<const Sent*> batch;
    Sent mark;  // the commit mark's statement, when batch holds it
    const Sent* last = nullptr;
    bool commit = false, opens = false, whole = false;
  };
  std::vector<Sent> pending_;
  std::vector<Sent> journal_;
  // Fencing: the runs this engine holds the lease of (their owner string),
  // and those the open transaction has fenced: before its first write of
  // such a run's rows, the transaction checks (hearth_fence) that the run
  // is still this engine's, and locks its row until it ends.
  std::unordered_map<std::string, std::string> held_;
  std::vector<std::string> fences_;
  // Commit marks: every commit also writes (token_, its number) to
  // commit_marks, so that one whose answer is lost can be looked up.
  std::string token_;
  int64_t mark_ = 0;
  int64_t reconnects_ = 0;
  std::optional<std::chrono::steady_clock::time_point> outage_since_;
  int64_t commits_ = 0;
  std::chrono::nanoseconds commit_time_{0};
  std::chrono::steady_clock::time_point begun_;
};

}  // namespace hearth::engine
