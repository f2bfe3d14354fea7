// `hearth serve`: GitHub webhooks in, runs out, events to watchers.
//
// The life of a delivery:
//   1. POST /hooks/github is checked (webhook.h): signature, headers, JSON.
//   2. The workflows whose [on] github match are chosen now; each gets a run
//      id derived from (delivery, workflow file), so starting is idempotent.
//   3. Deliveries received in one loop iteration form a group, handed to
//      the intake's writer (intake_writer.h), which decides every group it
//      finds queued in one transaction on a thread and connection of its own
//      and fsyncs it (group commit). A known X-GitHub-Delivery, or a body
//      already accepted under another id (a replay), is answered 200
//      {"duplicate": true} and starts nothing; the rest are inserted and
//      answered 202 {"delivery", "runs"} (or 200 "no workflow matches"). Every
//      answer waits for the fsync; they are sent on the loop.
//   4. The queue starts their runs in order, at most `jobs` at once; the
//      delivery is claimed first (its crash counter raised and committed),
//      then marked started, then done (count back to 0) when its runs have
//      finished.
// On start, every delivery not done is queued again: a run that exists is
// resumed (or counted, if finished), one that does not is started. One whose
// processing already ended the server twice is marked failed instead, so a
// delivery that crashes the server cannot crash-loop it. The queue itself,
// its tables and its crash counter are DeliveryQueue (delivery_queue.h).
//
// On a shared store (PostgreSQL: store.shared()) several servers share one
// queue (serve_workers.cpp). Step 4 changes: runs are not queued where they
// were accepted: every worker claims deliveries from the database (oldest
// first, FOR UPDATE SKIP LOCKED) on the intake's connection and thread, holds
// them by a heartbeat sent there too, and starts or takes over their runs. A worker that stops
// cleanly gives its deliveries back; one that dies or hangs loses them once
// its heartbeat is lease_timeout old, and another takes its runs over from
// their checkpoints. Roles: `accept` (listen and store deliveries) and
// `work` (claim and run them); one of them at least, by default both.
#pragma once

#include <uv.h>

#include <array>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "http/server.h"
#include "ci/delivery_queue.h"
#include "ci/intake_writer.h"
#include "ci/serve_workflows.h"
#include "engine/engine.h"

namespace hearth::ci {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0: any free port (see address())
  std::string repo;                 // absolute; workflows and workspace
  std::string webhook_secret;       // required, non-empty
  std::string api_token;            // empty: the read endpoints answer 403
  int jobs = 2;                     // runs at once
  int step_jobs = 0;                // steps at once within a run; 0: CPUs
  std::chrono::milliseconds shutdown_grace{10000};  // before running steps are cancelled
  std::chrono::milliseconds keepalive{15000};       // SSE comment interval
  http::HttpLimits limits;
  bool accept = true;               // listen and store deliveries
  bool work = true;                 // run them (a shared store: claim them from the queue)
  std::string store_location;       // the store as opened, a password included; empty: store.path()
};

class EventStreams;

class Server {
 public:
  /// `loop`, `store` and `engine` must outlive the server. REQUIRES at
  /// destruction: shutdown() has completed (its `done` has fired).
  Server(uv_loop_t* loop, engine::Store& store, engine::Engine& engine, ServeOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Queues what an earlier process left (deliveries not done, their
  /// unfinished runs), then listens. The error names the address or the store.
  Status start();
  /// "host:port" as bound.
  std::string address() const;
  /// Whether the store failed while serving (the server then stops itself).
  bool failed() const { return store_failed_; }

  /// Graceful stop: no new connections; answers what was received; stops
  /// starting runs; waits up to shutdown_grace for running ones, then
  /// cancels them (their deliveries stay unfinished and resume on the next
  /// start). `done` (may be empty) fires once everything is closed, with
  /// false if the store failed while serving. Calling it again is harmless.
  void shutdown(std::function<void(bool ok)> done);

 private:
  struct Pending {               // a delivery waiting for its group commit
    DeliveryRecord planned;      // without its payload
    std::string payload;         // until the group goes to the writer
    http::Responder responder;
    std::string peer;
  };
  struct QueuedRun {
    std::string delivery, run_id, workflow;
  };
  struct Progress {              // a delivery whose runs are queued or running
    size_t unstarted = 0, unfinished = 0;
    std::string state;
    std::string errors;
    bool interrupted = false;    // a run was cancelled by shutdown: resume next time
    bool claimed = false;        // its start is counted in the queue (claim)
    std::optional<std::string> stored_payload;  // as claim() returned it, until a run needs it
    std::optional<nlohmann::json> payload;      // parsed when the first new run starts
  };

  // serve.cpp: routing.
  void handle(http::HttpRequest&& req, http::Responder r);
  /// A request's head, before its body: an unsigned delivery is refused at
  /// once; a signed one gets an HMAC computed as its body streams.
  http::HeadDecision check_head(const http::HttpRequest& head);
  bool authorized(const http::HttpRequest& req, http::Responder& r);
  void maybe_finish_shutdown();

  // serve_queue.cpp: the durable queue.
  void accept_delivery(http::HttpRequest&& req, http::Responder r);
  void answer_known(const DeliveryRecord& d, http::Responder r);
  std::string run_id_for(const std::string& delivery, const std::string& workflow_path) const;
  void request_flush();
  static void on_check(uv_check_t* h) noexcept;
  void flush();
  void flush_states();
  /// The writer's report on group `ticket`: answers it.
  void written(uint64_t ticket, const Status& stored, std::vector<Verdict>& verdicts);
  void answer_batch(std::vector<Pending>& batch, const Status& stored, std::vector<Verdict>& verdicts);
  int awaiting_durable_ = 0;  // state commits whose follow-up waits for their fsync
  Status recover();
  void enqueue(const DeliveryRecord& d);
  void end_leftovers(const DeliveryRecord& d);
  void pump();
  void start_run(const QueuedRun& q);
  void start_claimed(const QueuedRun& q);
  void run_done(const QueuedRun& q, const std::string& error, bool interrupted);
  /// Queues a state change for the next group commit; an empty `state`
  /// only zeroes the delivery's unended_starts (a clean stop).
  void set_state(const std::string& delivery, const std::string& state, const std::string& error);
  void store_failure(const Status& s);

  // serve_workers.cpp: several workers on a shared store.
  Status start_worker();
  /// Claims deliveries while this worker has room, and queues their runs.
  void claim_some();
  /// Takes a claimed delivery in: its runs queued, or quarantined.
  void take_claimed(DeliveryRecord d);
  /// Renews the claim on this worker's deliveries; after a reconnect, takes
  /// in those it holds without knowing (a claim whose answer was lost).
  void renew_claims();
  /// What a worker asks of the queue, as one job on the intake's thread
  /// (renewal, claims, a reconnect's re-read), and the answer.
  struct QueueAnswer;
  void ask_queue(bool renew);
  void queue_answered(QueueAnswer& a);
  /// Runs claimed and not started are given back (a clean stop).
  void give_back_queued();
  /// Whether another engine now holds `run_id` (this one's lease expired).
  bool lost_to_another(const std::string& run_id);
  /// Drops a delivery another worker holds now: its queued runs, its progress.
  void forget_delivery(const std::string& delivery);
  /// A run of a claimed delivery could not start or be resumed.
  void start_failed(const QueuedRun& q, const std::string& error);
  int64_t stale_ms() const { return engine_.defaults().lease_timeout.count(); }

  // serve_api.cpp: read endpoints.
  void list_runs(const http::HttpRequest& req, http::Responder r);
  void show_run(const std::string& id, http::Responder r);
  void stream_events(const std::string& id, const http::HttpRequest& req, http::Responder r);

  uv_loop_t* loop_;
  engine::Store& store_;
  engine::Engine& engine_;
  std::unique_ptr<DeliveryQueue> deliveries_;  // opened by start()
  ServeOptions opts_;
  WorkflowSet workflows_;
  http::HttpServer* http_ = nullptr;  // owns itself; null once closed
  std::unique_ptr<EventStreams> streams_;

  IntakeWriter* writer_ = nullptr;  // owns itself; opened by start(), null once closed
  std::vector<Pending> batch_;      // the group being gathered: ticket next_ticket_
  uint64_t next_ticket_ = 1;
  std::unordered_map<uint64_t, std::vector<Pending>> written_;  // groups the writer has
  struct StateWrite {
    std::string delivery, state, error;
  };
  std::vector<StateWrite> state_writes_;
  std::deque<QueuedRun> queue_;
  std::unordered_map<std::string, Progress> progress_;
  std::set<std::string> active_;  // runs the engine is running for us
  int claiming_ = 0;              // claims the queue has not answered yet
  int asked_claims_ = 0;          // shared store: room reserved by queue jobs in flight
  bool asking_ = false;           // shared store: a claiming job is in flight
  bool ask_again_ = false;        // ... and claim_some() was called meanwhile

  uv_check_t check_{};  // group commit after each poll
  uv_idle_t idle_{};    // keeps the poll from blocking while a flush waits
  uv_timer_t grace_{};  // shutdown grace period
  uv_timer_t poll_{};   // shared store: looks for deliveries to claim
  uv_timer_t renew_{};  // shared store: renews the claim on this worker's deliveries
  std::array<uv_handle_t*, 5> own_handles() {
    return {reinterpret_cast<uv_handle_t*>(&check_), reinterpret_cast<uv_handle_t*>(&idle_),
            reinterpret_cast<uv_handle_t*>(&grace_), reinterpret_cast<uv_handle_t*>(&poll_),
            reinterpret_cast<uv_handle_t*>(&renew_)};
  }
  bool shared_ = false;           // store_.shared(), read at construction
  int64_t reconnects_seen_ = 0;   // the intake's connection's reconnects, as last answered
  int64_t accepted_ = 0, commits_ = 0;  // deliveries and groups answered, for the figure printed at shutdown
  int open_handles_ = 0;
  bool store_failed_ = false, stopping_ = false, cancelled_ = false, closed_ = false;
  std::function<void(bool)> on_stopped_;
};

}  // namespace hearth::ci
