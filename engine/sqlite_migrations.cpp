#include "engine/sqlite_migrations.h"

namespace hearth::engine {

// Each entry migrates from version (index) to index + 1.
const char* const kSqliteMigrations[kSqliteSchemaVersion] = {
    R"sql(
CREATE TABLE runs (
  id            TEXT PRIMARY KEY,
  workflow      TEXT NOT NULL,
  workflow_path TEXT NOT NULL,
  workflow_hash TEXT NOT NULL,
  workflow_text TEXT NOT NULL,
  payload       TEXT NOT NULL,
  repo          TEXT NOT NULL,
  status        TEXT NOT NULL,
  created_at    INTEGER NOT NULL,
  finished_at   INTEGER,
  error         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_by_created ON runs(created_at);
CREATE TABLE steps (
  run_id      TEXT NOT NULL REFERENCES runs(id),
  step_id     TEXT NOT NULL,
  position    INTEGER NOT NULL,
  status      TEXT NOT NULL,
  attempts    INTEGER NOT NULL DEFAULT 0,
  exit_code   INTEGER,
  started_at  INTEGER,
  finished_at INTEGER,
  outputs     TEXT NOT NULL DEFAULT '{}',
  reason      TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, step_id)
);
CREATE TABLE attempts (
  run_id       TEXT NOT NULL,
  step_id      TEXT NOT NULL,
  number       INTEGER NOT NULL,
  started_at   INTEGER NOT NULL,
  finished_at  INTEGER,
  exit_code    INTEGER,
  signal       INTEGER NOT NULL DEFAULT 0,
  reason       TEXT NOT NULL DEFAULT '',
  output_tail  BLOB NOT NULL DEFAULT x'',
  output_bytes INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, step_id, number),
  FOREIGN KEY (run_id, step_id) REFERENCES steps(run_id, step_id)
);
CREATE TABLE events (
  run_id  TEXT NOT NULL REFERENCES runs(id),
  seq     INTEGER NOT NULL,
  at      INTEGER NOT NULL,
  type    TEXT NOT NULL,
  step_id TEXT NOT NULL DEFAULT '',
  data    TEXT NOT NULL DEFAULT '{}',
  PRIMARY KEY (run_id, seq)
);
)sql",
    // 2: retries wait durably; a run is leased to one engine process at a time.
    R"sql(
ALTER TABLE steps ADD COLUMN retry_at INTEGER;
ALTER TABLE steps ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE steps ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN lease_heartbeat INTEGER NOT NULL DEFAULT 0;
CREATE INDEX runs_by_status ON runs(status);
)sql",
    // 3: created the webhook queue of `hearth serve`, whose tables are now
    // its own (ci/delivery_queue.cpp: it adopts a table this step made).
    "",
    // 4: the journal of granted-command calls (store_calls.cpp).
    R"sql(
CREATE TABLE command_calls (
  run_id        TEXT NOT NULL,
  step_id       TEXT NOT NULL,
  attempt       INTEGER NOT NULL,
  sequence      INTEGER NOT NULL,
  command       TEXT NOT NULL,
  argv          TEXT NOT NULL,
  cwd           TEXT NOT NULL,
  started_at    INTEGER NOT NULL,
  allowed       INTEGER NOT NULL,
  rule          TEXT NOT NULL DEFAULT '',
  finished_at   INTEGER,
  outcome       TEXT NOT NULL DEFAULT 'running',
  exit_code     INTEGER,
  output_bytes  INTEGER NOT NULL DEFAULT 0,
  output_sha256 TEXT NOT NULL DEFAULT '',
  output_tail   BLOB NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, step_id, attempt, sequence)
);
)sql",
    // 5: skill and prompt steps: the validated result, and each attempt's
    // conversation as last checkpointed (store_agent.cpp).
    R"sql(
ALTER TABLE steps ADD COLUMN result TEXT;
CREATE TABLE agent_checkpoints (
  run_id   TEXT NOT NULL,
  step_id  TEXT NOT NULL,
  attempt  INTEGER NOT NULL,
  turns    INTEGER NOT NULL,
  state    TEXT NOT NULL,
  saved_at INTEGER NOT NULL,
  PRIMARY KEY (run_id, step_id, attempt)
);
)sql",
    // 6: a checkpoint appends the conversation's new messages instead of
    // rewriting all of them: the row keeps the rest of the state and
    // messages_count; the messages are rows of their own.
    R"sql(
CREATE TABLE agent_messages (
  run_id   TEXT NOT NULL,
  step_id  TEXT NOT NULL,
  attempt  INTEGER NOT NULL,
  seq      INTEGER NOT NULL,
  message  TEXT NOT NULL,
  PRIMARY KEY (run_id, step_id, attempt, seq)
) WITHOUT ROWID;
INSERT INTO agent_messages (run_id, step_id, attempt, seq, message)
  SELECT c.run_id, c.step_id, c.attempt, CAST(m.key AS INTEGER), m.value
  FROM agent_checkpoints c, json_each(c.state, '$.messages') m;
UPDATE agent_checkpoints
  SET state = json_set(json_remove(state, '$.messages'), '$.messages_count',
                       COALESCE(json_array_length(state, '$.messages'), 0));
)sql",
    // 7: added the queue's crash counter; the queue's own now (see 3).
    "",
    // 8: the schema versions of the parts outside the engine that keep
    // tables here (StoreTables::migrate).
    R"sql(
CREATE TABLE part_versions (
  part    TEXT PRIMARY KEY,
  version INTEGER NOT NULL
);
)sql",
    // 9: the rows a step's checkpoint touches live in their key's b-tree
    // (WITHOUT ROWID): one page each of steps, attempts and events goes to
    // the log per checkpoint, not a table page and an index page of each.
    R"sql(
CREATE TABLE steps_v9 (
  run_id        TEXT NOT NULL REFERENCES runs(id),
  step_id       TEXT NOT NULL,
  position      INTEGER NOT NULL,
  status        TEXT NOT NULL,
  attempts      INTEGER NOT NULL DEFAULT 0,
  exit_code     INTEGER,
  started_at    INTEGER,
  finished_at   INTEGER,
  outputs       TEXT NOT NULL DEFAULT '{}',
  reason        TEXT NOT NULL DEFAULT '',
  retry_at      INTEGER,
  failures      INTEGER NOT NULL DEFAULT 0,
  interruptions INTEGER NOT NULL DEFAULT 0,
  result        TEXT,
  PRIMARY KEY (run_id, step_id)
) WITHOUT ROWID;
INSERT INTO steps_v9 (run_id, step_id, position, status, attempts, exit_code, started_at, finished_at, outputs,
                      reason, retry_at, failures, interruptions, result)
  SELECT run_id, step_id, position, status, attempts, exit_code, started_at, finished_at, outputs,
         reason, retry_at, failures, interruptions, result FROM steps;
CREATE TABLE attempts_v9 (
  run_id       TEXT NOT NULL,
  step_id      TEXT NOT NULL,
  number       INTEGER NOT NULL,
  started_at   INTEGER NOT NULL,
  finished_at  INTEGER,
  exit_code    INTEGER,
  signal       INTEGER NOT NULL DEFAULT 0,
  reason       TEXT NOT NULL DEFAULT '',
  output_tail  BLOB NOT NULL DEFAULT x'',
  output_bytes INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, step_id, number),
  FOREIGN KEY (run_id, step_id) REFERENCES steps_v9(run_id, step_id)
) WITHOUT ROWID;
INSERT INTO attempts_v9 (run_id, step_id, number, started_at, finished_at, exit_code, signal, reason, output_tail,
                         output_bytes)
  SELECT run_id, step_id, number, started_at, finished_at, exit_code, signal, reason, output_tail, output_bytes
  FROM attempts;
CREATE TABLE events_v9 (
  run_id  TEXT NOT NULL REFERENCES runs(id),
  seq     INTEGER NOT NULL,
  at      INTEGER NOT NULL,
  type    TEXT NOT NULL,
  step_id TEXT NOT NULL DEFAULT '',
  data    TEXT NOT NULL DEFAULT '{}',
  PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
INSERT INTO events_v9 (run_id, seq, at, type, step_id, data) SELECT run_id, seq, at, type, step_id, data FROM events;
DROP TABLE attempts;
DROP TABLE events;
DROP TABLE steps;
ALTER TABLE steps_v9 RENAME TO steps;
ALTER TABLE attempts_v9 RENAME TO attempts;
ALTER TABLE events_v9 RENAME TO events;
)sql",
    // 10: a chain step's checkpoint (one step finished, the next started,
    // their events) dirties two pages: the steps leaf holding both steps and
    // the last page of events. A step's last attempt lives in its step row
    // (attempts keeps the earlier ones, output tails their own table, written
    // only when not empty), and events are a rowid table keyed by the run's
    // number and the sequence (number * 2^32 + seq), so appending to the
    // newest run fills its last page instead of rebalancing three. A step
    // row is written with `slack` bytes that its start and its end give
    // back as its times and reason arrive (store_steps.cpp), so rows do not
    // outgrow their page while a run goes on: that would rewrite three.
    R"sql(
ALTER TABLE runs ADD COLUMN number INTEGER;
UPDATE runs SET number = rowid;
CREATE UNIQUE INDEX runs_by_number ON runs(number);
CREATE UNIQUE INDEX runs_number_of_id ON runs(id, number);
CREATE TABLE steps_v10 (
  run_id               TEXT NOT NULL REFERENCES runs(id),
  step_id              TEXT NOT NULL,
  position             INTEGER NOT NULL,
  status               TEXT NOT NULL,
  attempts             INTEGER NOT NULL DEFAULT 0,
  exit_code            INTEGER,
  started_at           INTEGER,
  finished_at          INTEGER,
  outputs              TEXT NOT NULL DEFAULT '{}',
  reason               TEXT NOT NULL DEFAULT '',
  retry_at             INTEGER,
  failures             INTEGER NOT NULL DEFAULT 0,
  interruptions        INTEGER NOT NULL DEFAULT 0,
  result               TEXT,
  attempt              INTEGER NOT NULL DEFAULT 0,
  attempt_started_at   INTEGER,
  attempt_finished_at  INTEGER,
  attempt_exit_code    INTEGER,
  attempt_signal       INTEGER NOT NULL DEFAULT 0,
  attempt_reason       TEXT NOT NULL DEFAULT '',
  attempt_output_bytes INTEGER NOT NULL DEFAULT 0,
  slack                BLOB,
  PRIMARY KEY (run_id, step_id)
) WITHOUT ROWID;
INSERT INTO steps_v10 (run_id, step_id, position, status, attempts, exit_code, started_at, finished_at, outputs,
                       reason, retry_at, failures, interruptions, result, attempt, attempt_started_at,
                       attempt_finished_at, attempt_exit_code, attempt_signal, attempt_reason, attempt_output_bytes)
  SELECT s.run_id, s.step_id, s.position, s.status, s.attempts, s.exit_code, s.started_at, s.finished_at, s.outputs,
         s.reason, s.retry_at, s.failures, s.interruptions, s.result, COALESCE(a.number, 0), a.started_at,
         a.finished_at, a.exit_code, COALESCE(a.signal, 0), COALESCE(a.reason, ''), COALESCE(a.output_bytes, 0)
  FROM steps s LEFT JOIN attempts a ON a.run_id = s.run_id AND a.step_id = s.step_id
    AND a.number = (SELECT MAX(number) FROM attempts m WHERE m.run_id = s.run_id AND m.step_id = s.step_id);
CREATE TABLE attempts_v10 (
  run_id       TEXT NOT NULL,
  step_id      TEXT NOT NULL,
  number       INTEGER NOT NULL,
  started_at   INTEGER NOT NULL,
  finished_at  INTEGER,
  exit_code    INTEGER,
  signal       INTEGER NOT NULL DEFAULT 0,
  reason       TEXT NOT NULL DEFAULT '',
  output_bytes INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, step_id, number),
  FOREIGN KEY (run_id, step_id) REFERENCES steps_v10(run_id, step_id)
) WITHOUT ROWID;
INSERT INTO attempts_v10 (run_id, step_id, number, started_at, finished_at, exit_code, signal, reason, output_bytes)
  SELECT run_id, step_id, number, started_at, finished_at, exit_code, signal, reason, output_bytes FROM attempts a
  WHERE number < (SELECT MAX(number) FROM attempts m WHERE m.run_id = a.run_id AND m.step_id = a.step_id);
CREATE TABLE attempt_tails (
  run_id  TEXT NOT NULL,
  step_id TEXT NOT NULL,
  number  INTEGER NOT NULL,
  tail    BLOB NOT NULL,
  PRIMARY KEY (run_id, step_id, number),
  FOREIGN KEY (run_id, step_id) REFERENCES steps_v10(run_id, step_id)
) WITHOUT ROWID;
INSERT INTO attempt_tails (run_id, step_id, number, tail)
  SELECT run_id, step_id, number, output_tail FROM attempts WHERE length(output_tail) > 0;
CREATE TABLE events_v10 (
  key     INTEGER PRIMARY KEY,
  at      INTEGER NOT NULL,
  type    TEXT NOT NULL,
  step_id TEXT NOT NULL DEFAULT '',
  data    TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO events_v10 (key, at, type, step_id, data)
  SELECT r.number * 4294967296 + e.seq, e.at, e.type, e.step_id, e.data FROM events e JOIN runs r ON r.id = e.run_id;
DROP TABLE attempts;
DROP TABLE events;
DROP TABLE steps;
ALTER TABLE steps_v10 RENAME TO steps;
ALTER TABLE attempts_v10 RENAME TO attempts;
ALTER TABLE events_v10 RENAME TO events;
)sql",
};

}  // namespace hearth::engine
