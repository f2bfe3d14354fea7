// The run store: one SQLite database per project (.hearth/state.db), WAL
// mode: synchronous=FULL on its own, NORMAL with its fsync on libuv's
// threadpool once attach()ed to a loop (store_durable.cpp). Tables: runs, steps, attempts, events, and the
// webhook queue of `hearth serve` (deliveries, store_deliveries.cpp); the schema
// version is PRAGMA user_version and migrations run on open.
//
// Writes happen inside begin()/commit(): the engine gathers every state
// change of one scheduling pass into one transaction (group commit), commits,
// and only then acts on it. A failed write is sticky: every later write
// returns the same error until the store is reopened, so nothing carries on
// as if unsaved state were saved.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/statuses.h"
#include "util/status.h"

struct sqlite3;
struct sqlite3_stmt;
struct uv_loop_s;

namespace hearth::engine {

/// Milliseconds since the Unix epoch.
int64_t now_ms();

struct RunRecord {
  std::string id;
  std::string workflow;       // name
  std::string workflow_path;
  std::string workflow_hash;
  std::string workflow_text;  // the snapshot the run started with
  nlohmann::json payload;
  std::string repo;           // workspace root
  RunStatus status = RunStatus::running;
  int64_t created_at = 0;
  std::optional<int64_t> finished_at;
  std::string error;          // why the run failed, when it was not a step
  std::string lease_owner;    // "pid@host" of the engine running it; empty when none
  int64_t lease_heartbeat = 0;  // when the owner last said it was alive (ms)
};

struct AttemptRecord {
  std::string step_id;
  int number = 0;
  int64_t started_at = 0;
  std::optional<int64_t> finished_at;
  std::optional<int64_t> exit_code;
  int signal = 0;
  std::string reason;       // exited | timeout | cancelled | spawn-error | output-error | interrupted
  std::string output_tail;  // the last bytes of merged stdout+stderr
  int64_t output_bytes = 0; // total bytes the attempt printed
};

struct StepRecord {
  std::string id;
  int position = 0;
  StepStatus status = StepStatus::pending;
  int attempts = 0;
  std::optional<int64_t> exit_code;
  std::optional<int64_t> started_at, finished_at;
  nlohmann::json outputs = nlohmann::json::object();
  std::string reason;  // why it was skipped, failed or cancelled
  std::optional<int64_t> retry_at;  // status "waiting": when the next attempt starts
  int failures = 0;       // failed attempts counted against the retry policy
  int interruptions = 0;  // attempts in a row cut short by an engine crash
  nlohmann::json result;  // skill/prompt steps: the validated result; null when none
  std::vector<AttemptRecord> attempt_list;  // filled by load_steps
};

struct EventRecord {
  std::string run_id;
  int64_t seq = 0;
  int64_t at = 0;
  std::string type;
  std::string step_id;  // empty for run events
  nlohmann::json data = nlohmann::json::object();
};

/// One webhook delivery received by `hearth serve`: the durable queue entry.
/// States: accepted (committed before the 202; its runs may not exist yet),
/// started (every run it plans has been started or found recorded), done
/// (every run finished, or nothing to run), failed (processing it ended the
/// server twice; `error` says so and its runs are not started again).
/// One call of a granted command, as the journal keeps it. Every string is
/// already redacted.
struct CallRecord {
  std::string step_id;
  int attempt = 0;
  int64_t sequence = 0;
  std::string command;
  std::vector<std::string> argv;  // argv[0] = the command's name
  std::string cwd;                // relative to the workspace
  int64_t started_at = 0;
  bool allowed = false;
  std::string rule;
  std::optional<int64_t> finished_at;
  std::string outcome = "running";  // running | refused | exited | timed-out | abandoned | unknown
  std::optional<int> exit_code;
  int64_t output_bytes = 0;
  std::string output_sha256;
  std::string output_tail;
};

struct DeliveryRecord {
  std::string id;                      // X-GitHub-Delivery
  std::string event;                   // X-GitHub-Event
  std::string action;                  // the payload's "action"; empty when it has none
  std::string payload;                 // the body as received; empty when nothing runs
  std::string digest;                  // hex SHA-256 of the body (replay detection)
  int64_t received_at = 0;             // ms since the epoch
  std::string state;                   // accepted | started | done
  std::vector<std::string> run_ids;    // the runs it starts, one per matching workflow
  std::vector<std::string> workflows;  // the workflow file of each run, same order
  std::string error;                   // why a planned run could not start
  int unended_starts = 0;              // processing began this often and neither finished nor stopped cleanly
};

class Store {
 public:
  /// Opens (creating if needed, with parent directories) the database at
  /// `path` and migrates it to the current schema. A newer schema than this
  /// build knows is refused.
  /// `vfs` names a registered SQLite VFS to use instead of the default one
  /// (the tests' fault-injecting twin).
  static Result<std::unique_ptr<Store>> open(const std::string& path, const char* vfs = nullptr);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const { return path_; }
  /// The sticky error, if a write has failed.
  Status health() const { return sticky_; }

  // --- writes: between begin() and commit() ---
  Status begin();
  Status commit();
  /// Abandons the open transaction (after a failed write).
  void rollback();
  Status insert_run(const RunRecord& run);
  Status insert_step(const std::string& run_id, const StepRecord& step);
  Status update_run(const std::string& run_id, RunStatus status, std::optional<int64_t> finished_at,
                    const std::string& error);
  Status update_step(const std::string& run_id, const StepRecord& step);
  Status insert_attempt(const std::string& run_id, const AttemptRecord& a);
  Status finish_attempt(const std::string& run_id, const AttemptRecord& a);
  Status insert_event(const EventRecord& e);
  /// Records who runs the run (empty `owner` releases it).
  Status set_lease(const std::string& run_id, const std::string& owner, int64_t heartbeat);
  /// Replaces the workflow snapshot a run resumes with.
  Status update_snapshot(const std::string& run_id, const std::string& path, const std::string& hash,
                         const std::string& text);

  /// The journal of granted-command calls (store_calls.cpp). A call is
  /// recorded (and committed) before its program starts, and finished after.
  Status insert_call(const std::string& run_id, const std::string& step_id, int attempt, const CallRecord& c);
  Status finish_call(const std::string& run_id, const std::string& step_id, int attempt, const CallRecord& c);
  /// Calls of this attempt that started and never finished (a crash), marked
  /// outcome "unknown" and returned.
  Result<std::vector<CallRecord>> settle_unfinished_calls(const std::string& run_id, const std::string& step_id,
                                                          int attempt, int64_t now);
  Result<std::vector<CallRecord>> load_calls(const std::string& run_id);

  /// The conversation of a skill or prompt step's attempt, as last
  /// checkpointed (store_agent.cpp): the whole state, every message written.
  Status save_checkpoint(const std::string& run_id, const std::string& step_id, int attempt, int turns,
                         const nlohmann::json& state);
  /// The same, writing only `messages` (the state's messages from index
  /// `first` on: the earlier ones are stored already) and the rest of the
  /// state (`header`, without "messages").
  Status append_checkpoint(const std::string& run_id, const std::string& step_id, int attempt, int turns,
                           const nlohmann::json& header, const nlohmann::json& messages, size_t first);
  /// How many leading messages of the attempt's conversation are stored.
  Result<size_t> checkpoint_messages(const std::string& run_id, const std::string& step_id, int attempt);
  /// nullopt when the attempt has no checkpoint.
  Result<std::optional<nlohmann::json>> load_checkpoint(const std::string& run_id, const std::string& step_id,
                                                        int attempt);
  struct Checkpoint {
    std::string step_id;
    int attempt = 0;
    int turns = 0;
    int64_t saved_at = 0;
    nlohmann::json state;
  };
  /// Every checkpoint of the run, by step then attempt.
  Result<std::vector<Checkpoint>> load_checkpoints(const std::string& run_id);

  /// Queues a delivery (store_deliveries.cpp). Fails if its id is taken.
  Status insert_delivery(const DeliveryRecord& d);
  /// Sets the state and error. Entering done or failed also zeroes
  /// unended_starts.
  Status update_delivery(const std::string& id, const std::string& state, const std::string& error);
  /// Counts one more start of processing the delivery. Commit it before the
  /// processing begins: a crash during it then leaves the count raised.
  Status count_delivery_start(const std::string& id);
  /// Processing stopped cleanly without finishing (a graceful shutdown):
  /// unended_starts back to 0.
  Status clear_delivery_starts(const std::string& id);

  // --- reads ---
  Result<bool> run_exists(const std::string& run_id);
  /// Ids of runs recorded as running: interrupted by a crash, or running now
  /// in another process (see the lease). Oldest first.
  Result<std::vector<std::string>> interrupted_runs();
  /// Newest first.
  Result<std::vector<RunRecord>> list_runs(int limit, const std::string& workflow_filter = "");
  /// The run, or an Error naming the id when there is none.
  Result<RunRecord> load_run(const std::string& run_id);
  /// Steps in workflow order, each with its attempts.
  Result<std::vector<StepRecord>> load_steps(const std::string& run_id);
  /// The highest event sequence number of the run; 0 when it has none.
  Result<int64_t> last_event_seq(const std::string& run_id);
  Result<std::vector<EventRecord>> load_events(const std::string& run_id, int64_t after_seq = 0);

  /// The delivery with this id, with its payload; nullopt when there is none.
  Result<std::optional<DeliveryRecord>> find_delivery(const std::string& id);
  /// The id of a delivery whose body had this digest; nullopt when none.
  Result<std::optional<std::string>> delivery_with_digest(const std::string& digest);
  /// Deliveries neither done nor failed, oldest first, without their payloads.
  Result<std::vector<DeliveryRecord>> unfinished_deliveries();
  /// How many deliveries are in each state.
  Result<std::vector<std::pair<std::string, int64_t>>> delivery_counts();

  // --- durability (store_durable.cpp) ---
  /// Moves the commits' fsync off the caller's thread: from now on commit()
  /// only writes (synchronous=NORMAL: what it returns survives the process
  /// being killed) and the write-ahead log is fsynced on `loop`'s threadpool
  /// (uv_fs_fsync), one fsync for every commit made while the last one ran.
  /// Checkpoints of the log move there too. Without attach() every commit
  /// fsyncs, as a CLI query needs. REQUIRES: `loop` outlives the store's
  /// pending work (the engine's loop runs until its requests are done).
  /// Attaching again to the same loop does nothing.
  Status attach(uv_loop_s* loop);
  /// Calls `fn` on the loop thread once every commit made so far would
  /// survive a power loss: at once (inside this call) when nothing is
  /// waiting, else after the fsync that covers it, in the order registered.
  /// `fn` gets the fsync's failure, which is sticky like a failed write.
  /// `owner` names who registered it, for forget().
  void when_durable(const void* owner, std::function<void(const Status&)> fn);
  /// Drops what `owner` registered and has not been called (it is going).
  void forget(const void* owner);
  /// Undoes attach(): what is committed is fsynced here, waiters are
  /// dropped, and every later commit fsyncs again (synchronous=FULL). For
  /// whoever attached, before its loop goes away.
  void detach();

  // --- figures for bench/ ---
  int64_t commits() const { return commits_; }
  /// fsyncs of the log run on the threadpool (each covers every commit before it).
  int64_t syncs() const;
  std::chrono::nanoseconds commit_time() const { return commit_time_; }

 private:
  explicit Store(std::string path) : path_(std::move(path)) {}
  Status exec(const char* sql);
  Status migrate();
  Result<nlohmann::json> assemble_checkpoint(const std::string& run_id, const std::string& step_id, int attempt,
                                             nlohmann::json row);
  sqlite3_stmt* prepare(const char* sql);  // cached; null after recording an error
  Status step_done(sqlite3_stmt* st, const char* what);
  /// The body of every write: prepares (cached) `sql`, binds `values` to
  /// ?1..?N in order, steps it; sticky errors short-circuit (store_sql.h).
  template <class... V>
  Status write(const char* sql, const char* what, const V&... values);
  Status fail(const std::string& what);
  Status fail_with(const std::string& message);  // sticky, without SQLite's last error

  std::string path_;
  sqlite3* db_ = nullptr;
  std::vector<std::pair<const char*, sqlite3_stmt*>> statements_;
  Status sticky_;
  bool in_transaction_ = false;
  int64_t commits_ = 0;
  std::chrono::nanoseconds commit_time_{0};
  std::chrono::steady_clock::time_point begun_;
  struct Durability;
  Durability* durability_ = nullptr;  // owned; outlives the store while an fsync runs
  bool custom_vfs_ = false;
};

}  // namespace hearth::engine
