#include "engine/remove_later.h"

#include <deque>
#include <mutex>

#include "util/safe_open.h"

namespace hearth::engine {

namespace {

// The process's removals: one job on the pool at a time drains them in
// order, so a tree and one inside it are never walked at once (the outer
// walk would fail where the inner one removed first) and removals never
// take more than one of the pool's threads from the fsyncs and spawns.
struct Removals {
  std::mutex mu;
  std::deque<std::vector<std::string>> queued;
  bool draining = false;
};

Removals& removals() {
  static Removals* r = new Removals;  // never destroyed: a drain may outlive main's statics
  return *r;
}

void drain(uv_work_t*) noexcept {
  Removals& r = removals();
  std::unique_lock lock(r.mu);
  while (!r.queued.empty()) {
    auto trees = std::move(r.queued.front());
    r.queued.pop_front();
    lock.unlock();
    for (auto& t : trees) (void)remove_tree(t);  // best effort, as on the loop before
    lock.lock();
  }
  r.draining = false;
}

}  // namespace

void remove_later(uv_loop_t* loop, std::vector<std::string> trees) {
  std::erase_if(trees, [](const std::string& t) { return t.empty(); });
  if (trees.empty()) return;
  Removals& r = removals();
  std::unique_lock lock(r.mu);
  r.queued.push_back(std::move(trees));
  if (r.draining) return;  // the job on the pool takes it
  r.draining = true;
  lock.unlock();
  auto* req = new uv_work_t;
  if (uv_queue_work(loop, req, &drain, [](uv_work_t* req, int) noexcept { delete req; }) != 0) {
    delete req;
    drain(nullptr);  // where the pool cannot take it: here
  }
}

}  // namespace hearth::engine
