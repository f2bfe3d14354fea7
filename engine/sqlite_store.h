// The SQLite backend of the run store (private to engine/): one database per
// project (.hearth/state.db), WAL mode; synchronous=FULL on its own. Once
// attach()ed to a loop, synchronous=NORMAL, and the connection is the
// threadpool's while it writes: a transaction's writes are staged on the
// loop and run, with their COMMIT and the log's fsync, on libuv's threadpool
// (store_durable.cpp), so the loop waits neither for the write lock nor for
// the disk. A read first waits for the writes in flight (settle()), and a
// read inside an open transaction runs that transaction's staged writes on
// the loop first (it becomes "live", and only its COMMIT goes to the pool).
// The process's writers of one file take turns at its write lock
// (write_turns.h). Tables: runs (store.cpp), steps, attempts, attempt_tails,
// events (store_steps.cpp), command_calls (store_calls.cpp),
// agent_checkpoints and agent_messages (store_agent.cpp), part_versions (the
// schema versions of the parts that keep tables here through StoreTables).
// The engine's schema version is PRAGMA user_version; migrations run on open.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "engine/store.h"
#include "engine/store_tables.h"
#include "engine/write_turns.h"

struct sqlite3;
struct sqlite3_stmt;

namespace hearth::engine {

/// The busy handler of every connection to a state database
/// (sqlite3_busy_handler): sleeps 50 us, doubling up to 1 ms, until another
/// connection's lock is free, for 5 s in all. `deadline_ns` is an int64_t
/// of the connection's, which the handler keeps while it waits.
int wait_for_lock(void* deadline_ns, int count) noexcept;

class SqliteStore final : public Store, private StoreTables {
 public:
  static Result<std::unique_ptr<Store>> open(const std::string& path, const char* vfs, std::string local_dir);
  /// Makes a new state database in `file` (which must not exist) by SQL:
  /// what a new store is without the build's image (store_image.h), and how
  /// the build makes that image. Neither journaled nor synced: the caller
  /// syncs it and renames it into place.
  static Status build_new_file(const std::string& file, const char* vfs);
  /// The schema version this build writes (PRAGMA user_version).
  static int schema_version();
  ~SqliteStore() override;

  const std::string& path() const override { return path_; }
  const std::string& local_dir() const override { return local_dir_; }
  Status health() const override {
    const_cast<SqliteStore*>(this)->settle();
    return sticky_;
  }

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
  Result<std::vector<StepRecord>> load_steps_to_resume(const std::string& run_id) override;
  Result<int64_t> last_event_seq(const std::string& run_id) override;
  Result<std::vector<EventRecord>> load_events(const std::string& run_id, int64_t after_seq) override;

  StoreTables& tables() override { return *this; }

  Status attach(uv_loop_s* loop) override;
  void when_durable(const void* owner, std::function<void(const Status&)> fn) override;
  void forget(const void* owner) override;
  void detach() override;

  int64_t commits() const override { return commits_; }
  int64_t syncs() const override;
  std::chrono::nanoseconds commit_time() const override { return commit_time_; }
  /// For bench/, attached: how long waiters waited, from one registered with
  /// nothing else pending until the completion of the fsync that followed
  /// reached the loop (the part of a commit that is not the loop's).
  std::chrono::nanoseconds durable_wait() const { return durable_wait_; }

 private:
  explicit SqliteStore(std::string path) : path_(std::move(path)) {}
  /// Puts a new, complete state database at `path` unless a file is
  /// already there (store.cpp).
  static Status make_new_file(const std::string& path, const char* vfs);

  // StoreTables (store_tables.cpp).
  std::string_view dialect() const override { return "sqlite"; }
  Status migrate(std::string_view part, std::span<const Migration> steps) override;
  Status execute(const char* sql, std::initializer_list<SqlParam> params, const char* what) override;
  Result<std::vector<SqlRow>> query(const char* sql, std::initializer_list<SqlParam> params,
                                    const char* what) override;

  // Steps, attempts and events (store_steps.cpp).
  /// The run's number, which keys its events; nullopt when the run is not
  /// recorded.
  Result<std::optional<int64_t>> run_number(const std::string& run_id, const char* what);
  /// Runs `body` in the open transaction, or in one of its own.
  Status in_transaction(const std::function<Status()>& body);
  /// Steps in workflow order (`in_order`) or in key order (step id, no
  /// sort), each with its last attempt (no tail) when it has one.
  Result<std::vector<StepRecord>> read_steps(const std::string& run_id, bool in_order);
  // The bodies of the writes whose statements depend on each other.
  Status insert_attempt_now(const std::string& run_id, const AttemptRecord& a);
  Status finish_attempt_now(const std::string& run_id, const AttemptRecord& a);
  Status insert_event_now(const EventRecord& e);
  Status append_checkpoint_now(const std::string& run_id, const std::string& step_id, int attempt, int turns,
                               const nlohmann::json& header, const nlohmann::json& messages, size_t first);

  Status exec(const char* sql);
  /// BEGIN IMMEDIATE, after this process's turn at the file (write_turns.h).
  Status begin_write();
  /// Gives the turn back once the transaction has ended (COMMIT or ROLLBACK
  /// done); inside one it waits for the ROLLBACK that follows. Any thread.
  void end_write();
  Status migrate();

  // Attached: staged transactions (store_durable.cpp).
  /// Runs the write `body` now, or (attached, on the loop, in a transaction
  /// not yet live) keeps it for the threadpool; outside a transaction it is
  /// a transaction of its own. A copy of everything it needs is in `body`.
  template <class F>
  Status stage(F body);
  bool staging() const;
  /// Waits until the threadpool has let go of the connection, then runs
  /// the transactions committed since on this thread: afterwards every
  /// commit is visible to this connection's reads. No-op on the pool.
  void settle();
  /// Before a read on the loop: settle(), and inside a transaction whose
  /// writes are staged, BEGIN here and run them (the transaction is live).
  Status before_read();
  /// The failure that stops a write: on the threadpool the batch's, else
  /// the sticky one.
  Status failure() const;
  /// A commit made on this thread outside begin()/commit().
  void counted_commit();
  Result<nlohmann::json> assemble_checkpoint(const std::string& run_id, const std::string& step_id, int attempt,
                                             nlohmann::json row);
  sqlite3_stmt* prepare(const char* sql);  // cached; null after recording an error
  Status step_done(sqlite3_stmt* st, const char* what);
  /// The body of every write: prepares (cached) `sql`, binds `values` to
  /// ?1..?N in order, steps it; sticky errors short-circuit (store_sql.h).
  template <class... V>
  Status write(const char* sql, const char* what, const V&... values);
  /// The body of every read: prepares (cached) `sql`, binds `values`, calls
  /// `row(st)` for each row; an Error naming `what` if stepping fails.
  template <class Row, class... V>
  Status rows(const char* sql, const char* what, Row&& row, const V&... values);
  Status fail(const std::string& what);
  Status fail_with(const std::string& message);  // sticky, without SQLite's last error
  Status fail_with_message(std::string message);  // the whole message; the batch's on the pool
  /// Attached: hands the open transaction to the threadpool (store_durable.cpp).
  Status commit_later();

  std::string path_;
  std::string local_dir_;
  sqlite3* db_ = nullptr;
  int64_t lock_deadline_ns_ = 0;  // the busy handler's, while a lock is waited for
  std::shared_ptr<WriteTurns> turns_;  // this process's writers of the file take turns; null if not found
  bool has_turn_ = false;  // the thread holding the connection holds a turn (from begin_write)
  std::vector<std::pair<const char*, sqlite3_stmt*>> statements_;
  Status sticky_;
  bool in_transaction_ = false;
  int64_t commits_ = 0;
  std::chrono::nanoseconds commit_time_{0};
  std::chrono::nanoseconds durable_wait_{0};
  std::chrono::steady_clock::time_point begun_;
  struct Durability;
  struct Batch;
  Durability* durability_ = nullptr;  // owned; outlives the store while an fsync runs
  bool custom_vfs_ = false;
  std::vector<std::function<Status()>> staged_;  // the open transaction's writes, attached
  bool live_ = false;  // attached: the open transaction has begun on the connection (a read in it)
  /// Set while a thread runs committed transactions as the pool does: on a
  /// threadpool thread for its batch, and on the loop in settle() for what
  /// was queued behind it. Failures go to that batch, and nothing of the
  /// loop's is touched meanwhile.
  static thread_local Batch* on_pool_;
};

}  // namespace hearth::engine
