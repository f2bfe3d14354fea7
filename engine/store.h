// The run store: what the engine keeps of runs, steps, attempts, events,
// the command journal and agent checkpoints. `Store` is the interface, with
// two backends opened by Store::open: SQLite (sqlite_store.h: one database
// per project, .hearth/state.db, WAL mode), the default, and PostgreSQL
// (pg_store.h: a database over the network, named by a postgres:// URL).
// The contract below is what both keep (docs/architecture.md, "The store's
// contract"; tests/engine/store_contract_test.cpp runs it on both).
//
// Writes are staged inside begin()/commit(): the engine gathers every state
// change of one scheduling pass into one transaction (group commit), commits,
// and acts once when_durable() says the commit is safe. A failed write is
// sticky: every later write returns the same error until the store is
// reopened, so nothing carries on as if unsaved state were saved; a commit
// whose outcome is unknown (a connection lost during COMMIT) is such a
// failure: whoever reopens the store re-reads what it holds.
//
// Parts outside the engine keep tables of their own in the same database and
// transactions through tables() (store_tables.h), without the engine knowing
// them: the webhook delivery queue of `hearth serve` (ci/delivery_queue.h).
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

class StoreTables;

/// The store's interface. Every call is made on the loop thread of whoever
/// owns the store (the engine's), or on one thread when there is no loop.
///
/// Asynchrony, named so that a backend over the network fits behind it:
/// - a write only stages: it joins the open transaction (or is one of its
///   own outside begin()/commit()) and reports a failure it already knows;
/// - commit() returns once the transaction is visible to this store's reads,
///   or with a failure it already knows. Unattached, it is durable by then.
///   Attached to a loop, it may return before the transaction is written
///   (SQLite runs it on libuv's threadpool, PostgreSQL sends it and reads the
///   answer when it comes), and a failure found later reaches the waiters of
///   when_durable() and every later call, as a sticky failure;
/// - when_durable() is the completion: it calls back once every commit made
///   so far survives a power loss (or has failed); nothing that leaves the
///   engine (a process start, a 202, an event, a result) goes before it;
/// - reads return at once (a local file on SQLite). A backend whose reads are
///   remote answers the start-up and resume reads synchronously and the
///   ones on a hot path through the owner's own callbacks (the delivery
///   queue's look_up and claim).
class Store {
 public:
  /// Opens the store at `location` and migrates it to the current schema; a
  /// newer schema than this build knows is refused. A `postgres://` or
  /// `postgresql://` URL is a PostgreSQL database (its password never shown:
  /// path() and errors redact it); anything else is the path of a SQLite
  /// file, created if needed with its parent directories.
  /// `vfs` names a registered SQLite VFS to use instead of the default one
  /// (the tests' fault-injecting twin). `local_dir` is where the engine
  /// keeps its files on this machine (local_dir()); empty: the SQLite
  /// file's directory, or .hearth in the current directory for PostgreSQL.
  static Result<std::unique_ptr<Store>> open(const std::string& location, const char* vfs = nullptr,
                                             const std::string& local_dir = {});
  virtual ~Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  /// Where the state lives, for messages: a file path, or a URL without
  /// its password.
  virtual const std::string& path() const = 0;
  /// The directory on this machine for the engine's files beside the store
  /// (scratch tmp/, workspaces/, grants/).
  virtual const std::string& local_dir() const = 0;
  /// The sticky error, if a write has failed.
  virtual Status health() const = 0;

  // --- writes: between begin() and commit() ---
  virtual Status begin() = 0;
  virtual Status commit() = 0;
  /// Abandons the open transaction (after a failed write).
  virtual void rollback() = 0;
  virtual Status insert_run(const RunRecord& run) = 0;
  virtual Status insert_step(const std::string& run_id, const StepRecord& step) = 0;
  virtual Status update_run(const std::string& run_id, RunStatus status, std::optional<int64_t> finished_at,
                            const std::string& error) = 0;
  virtual Status update_step(const std::string& run_id, const StepRecord& step) = 0;
  virtual Status insert_attempt(const std::string& run_id, const AttemptRecord& a) = 0;
  virtual Status finish_attempt(const std::string& run_id, const AttemptRecord& a) = 0;
  virtual Status insert_event(const EventRecord& e) = 0;
  /// Records who runs the run (empty `owner` releases it).
  virtual Status set_lease(const std::string& run_id, const std::string& owner, int64_t heartbeat) = 0;
  /// Takes the run's lease for `owner` inside the open transaction, unless
  /// a live engine holds it (lease.h): its heartbeat is younger than
  /// `stale_ms`, or it is a process of this machine that still exists.
  /// Returns the holder when the lease is not taken, empty when it is. Two
  /// engines never both take it: on a shared store the row stays locked
  /// until the transaction ends, and the other's test sees the new owner.
  /// `now` is this engine's clock; a shared store uses its own.
  virtual Result<std::string> take_lease(const std::string& run_id, const std::string& owner, int64_t now,
                                         int64_t stale_ms);
  /// Renews `owner`'s heartbeat on the run. An Error (not sticky) when
  /// another engine has taken the run over meanwhile: the caller stops it.
  virtual Status renew_lease(const std::string& run_id, const std::string& owner, int64_t now) {
    return set_lease(run_id, owner, now);
  }
  /// Whether several engines on several machines may share this store
  /// (leases by the database's clock, deliveries claimed by workers).
  virtual bool shared() const { return false; }
  /// How often the connection was lost and made again (a shared store
  /// reconnects; 0 for a local one). What this process claimed before a
  /// reconnect whose outcome it could not see is re-read by the caller.
  virtual int64_t reconnects() const { return 0; }
  /// Replaces the workflow snapshot a run resumes with.
  virtual Status update_snapshot(const std::string& run_id, const std::string& path, const std::string& hash,
                                 const std::string& text) = 0;

  /// The journal of granted-command calls (store_calls.cpp). A call is
  /// recorded (and committed) before its program starts, and finished after.
  virtual Status insert_call(const std::string& run_id, const std::string& step_id, int attempt,
                             const CallRecord& c) = 0;
  virtual Status finish_call(const std::string& run_id, const std::string& step_id, int attempt,
                             const CallRecord& c) = 0;
  /// Calls of this attempt that started and never finished (a crash), marked
  /// outcome "unknown" and returned.
  virtual Result<std::vector<CallRecord>> settle_unfinished_calls(const std::string& run_id,
                                                                  const std::string& step_id, int attempt,
                                                                  int64_t now) = 0;
  virtual Result<std::vector<CallRecord>> load_calls(const std::string& run_id) = 0;

  /// The conversation of a skill or prompt step's attempt, as last
  /// checkpointed (store_agent.cpp): the whole state, every message written.
  virtual Status save_checkpoint(const std::string& run_id, const std::string& step_id, int attempt, int turns,
                                 const nlohmann::json& state) = 0;
  /// The same, writing only `messages` (the state's messages from index
  /// `first` on: the earlier ones are stored already) and the rest of the
  /// state (`header`, without "messages").
  virtual Status append_checkpoint(const std::string& run_id, const std::string& step_id, int attempt, int turns,
                                   const nlohmann::json& header, const nlohmann::json& messages, size_t first) = 0;
  /// How many leading messages of the attempt's conversation are stored.
  virtual Result<size_t> checkpoint_messages(const std::string& run_id, const std::string& step_id, int attempt) = 0;
  /// nullopt when the attempt has no checkpoint.
  virtual Result<std::optional<nlohmann::json>> load_checkpoint(const std::string& run_id,
                                                                const std::string& step_id, int attempt) = 0;
  struct Checkpoint {
    std::string step_id;
    int attempt = 0;
    int turns = 0;
    int64_t saved_at = 0;
    nlohmann::json state;
  };
  /// Every checkpoint of the run, by step then attempt.
  virtual Result<std::vector<Checkpoint>> load_checkpoints(const std::string& run_id) = 0;

  // --- reads ---
  virtual Result<bool> run_exists(const std::string& run_id) = 0;
  /// Ids of runs recorded as running: interrupted by a crash, or running now
  /// in another process (see the lease). Oldest first.
  virtual Result<std::vector<std::string>> interrupted_runs() = 0;
  /// Newest first.
  virtual Result<std::vector<RunRecord>> list_runs(int limit, const std::string& workflow_filter = "") = 0;
  /// The run, or an Error naming the id when there is none.
  virtual Result<RunRecord> load_run(const std::string& run_id) = 0;
  /// Steps in workflow order, each with its attempts.
  virtual Result<std::vector<StepRecord>> load_steps(const std::string& run_id) = 0;
  /// What a resume reads: the steps, in any order (each names its step and
  /// its position), each with at least its last attempt; earlier attempts
  /// and output tails may be left out. By default load_steps.
  virtual Result<std::vector<StepRecord>> load_steps_to_resume(const std::string& run_id) { return load_steps(run_id); }
  /// The highest event sequence number of the run; 0 when it has none.
  virtual Result<int64_t> last_event_seq(const std::string& run_id) = 0;
  virtual Result<std::vector<EventRecord>> load_events(const std::string& run_id, int64_t after_seq = 0) = 0;

  /// The narrow door for parts outside the engine: their own tables, their
  /// own schema versions, statements in this store's transactions
  /// (store_tables.h). Lives as long as the store.
  virtual StoreTables& tables() = 0;

  // --- durability ---
  /// Binds the store's asynchronous work to `loop`: from now on commit()
  /// hands the transaction over and returns (on SQLite: synchronous=NORMAL;
  /// the staged writes, their COMMIT and one fsync of the write-ahead log
  /// run on the loop's threadpool, one batch at a time, each batch holding
  /// every commit made while the last one ran; checkpoints of the log move
  /// there too). A read waits for what is in flight. Without attach() every
  /// commit is durable when it returns, as a CLI query needs. REQUIRES:
  /// `loop` outlives the store's pending work (the engine's loop runs until
  /// its requests are done). Attaching again to the same loop does nothing.
  virtual Status attach(uv_loop_s* loop) = 0;
  /// Calls `fn` on the loop thread once every commit made so far would
  /// survive a power loss: at once (inside this call) when nothing is
  /// waiting, else once the work that covers it is done, in the order
  /// registered. `fn` gets that work's failure, which is sticky like a failed
  /// write; it is called exactly once unless forget() or detach() drops it.
  /// `owner` names who registered it, for forget().
  virtual void when_durable(const void* owner, std::function<void(const Status&)> fn) = 0;
  /// Drops what `owner` registered and has not been called (it is going).
  virtual void forget(const void* owner) = 0;
  /// Undoes attach(): what is committed is made durable here, waiters are
  /// dropped, and every later commit is durable when it returns again. For
  /// whoever attached, before its loop goes away.
  virtual void detach() = 0;

  // --- figures for bench/ ---
  virtual int64_t commits() const = 0;
  /// Durability work done off the loop (SQLite: fsyncs of the log, each
  /// covering every commit before it).
  virtual int64_t syncs() const = 0;
  virtual std::chrono::nanoseconds commit_time() const = 0;

 protected:
  Store() = default;
};

}  // namespace hearth::engine
