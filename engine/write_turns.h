// Turns at a SQLite database's write lock, in order, among this process's
// connections to one file.
//
// SQLite has one write lock per database and no queue: a connection that
// finds it held sleeps in its busy handler and tries again. Two writers of
// one process that commit back to back (the run store's batches on libuv's
// threadpool, the intake's writer of `hearth serve`) would then starve each
// other: one commits again within microseconds of letting go, the other wakes
// up to find the lock held once more, and waits for a whole batch of
// transactions instead of one. Every write transaction of a SqliteStore takes
// a turn here first, so this process's writers get the lock in the order
// they asked for it. Other processes still meet SQLite's lock and the busy
// handler.
//
// A turn is held from BEGIN to the end of the transaction, which for an
// attached store's live transaction (store_durable.cpp) is its COMMIT on
// libuv's threadpool: a writer waiting for a turn may wait for a pool thread
// to be free. A waiter blocks its thread (a pool thread, the intake's, or
// the loop's for a live transaction) for one transaction at most, as SQLite's
// busy handler did, and gives up after the store's 5 s.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

namespace hearth::engine {

class WriteTurns {
 public:
  /// The turns of the file at `path` (by device and inode: two paths of one
  /// file share them); null when the file cannot be found. Shared by every
  /// connection of this process to it, and kept while one holds it.
  static std::shared_ptr<WriteTurns> of(const std::string& path);

  /// Waits for this caller's turn, first come first served, until
  /// `deadline`; false if it passed first (the caller then fails as a
  /// busy lock would). Any thread may give the turn back.
  bool take(std::chrono::steady_clock::time_point deadline);
  void give();
  /// How many callers wait for a turn now (for tests).
  size_t waiting() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  uint64_t next_ = 0;
  std::deque<uint64_t> waiting_;  // tickets in the order they were taken
};

}  // namespace hearth::engine
