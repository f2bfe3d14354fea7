#include "engine/write_turns.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <utility>

namespace hearth::engine {

std::shared_ptr<WriteTurns> WriteTurns::of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return nullptr;
  static std::mutex registry_mu;
  static auto* registry = new std::map<std::pair<dev_t, ino_t>, std::weak_ptr<WriteTurns>>;  // never destroyed
  std::lock_guard lock(registry_mu);
  for (auto it = registry->begin(); it != registry->end();)
    it = it->second.expired() ? registry->erase(it) : std::next(it);
  auto& slot = (*registry)[{st.st_dev, st.st_ino}];
  auto turns = slot.lock();
  if (!turns) slot = turns = std::make_shared<WriteTurns>();
  return turns;
}

bool WriteTurns::take(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  uint64_t ticket = next_++;
  waiting_.push_back(ticket);
  bool mine = cv_.wait_until(lock, deadline, [&] { return !held_ && waiting_.front() == ticket; });
  if (!mine) {
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), ticket));
    cv_.notify_all();  // the one behind may be first now
    return false;
  }
  waiting_.pop_front();
  held_ = true;
  return true;
}

void WriteTurns::give() {
  {
    std::lock_guard lock(mu_);
    held_ = false;
  }
  cv_.notify_all();
}

size_t WriteTurns::waiting() const {
  std::lock_guard lock(mu_);
  return waiting_.size();
}

}  // namespace hearth::engine
