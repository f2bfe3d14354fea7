// Tests of migrations: SQL that turns a freshly opened store's empty steps,
// attempts and events into the tables schema 9 kept (every attempt a row
// with its output tail; events keyed by run id and sequence; no run numbers).
// Tests that relabel a store as an older version start from it, so the
// migrations after that version see the layout they were written for.
#pragma once

namespace hearth::testing {

inline constexpr const char kToSchema9[] = R"sql(
DROP INDEX runs_by_number; DROP INDEX runs_number_of_id; ALTER TABLE runs DROP COLUMN number;
DROP TABLE attempt_tails; DROP TABLE attempts; DROP TABLE events; DROP TABLE steps;
CREATE TABLE steps (run_id TEXT NOT NULL REFERENCES runs(id), step_id TEXT NOT NULL, position INTEGER NOT NULL,
  status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, exit_code INTEGER, started_at INTEGER,
  finished_at INTEGER, outputs TEXT NOT NULL DEFAULT '{}', reason TEXT NOT NULL DEFAULT '', retry_at INTEGER,
  failures INTEGER NOT NULL DEFAULT 0, interruptions INTEGER NOT NULL DEFAULT 0, result TEXT,
  PRIMARY KEY (run_id, step_id)) WITHOUT ROWID;
CREATE TABLE attempts (run_id TEXT NOT NULL, step_id TEXT NOT NULL, number INTEGER NOT NULL,
  started_at INTEGER NOT NULL, finished_at INTEGER, exit_code INTEGER, signal INTEGER NOT NULL DEFAULT 0,
  reason TEXT NOT NULL DEFAULT '', output_tail BLOB NOT NULL DEFAULT x'', output_bytes INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, step_id, number), FOREIGN KEY (run_id, step_id) REFERENCES steps(run_id, step_id))
  WITHOUT ROWID;
CREATE TABLE events (run_id TEXT NOT NULL REFERENCES runs(id), seq INTEGER NOT NULL, at INTEGER NOT NULL,
  type TEXT NOT NULL, step_id TEXT NOT NULL DEFAULT '', data TEXT NOT NULL DEFAULT '{}',
  PRIMARY KEY (run_id, seq)) WITHOUT ROWID;
PRAGMA user_version=9;
)sql";

}  // namespace hearth::testing
