#include "engine/leftovers.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <iterator>

namespace hearth::engine {

namespace {

// Whether the NUL-separated environment block holds `entry` exactly.
bool has_entry(const std::string& block, const std::string& entry) {
  size_t pos = 0;
  while (pos < block.size()) {
    size_t end = block.find('\0', pos);
    if (end == std::string::npos) end = block.size();
    if (block.compare(pos, end - pos, entry) == 0) return true;
    pos = end + 1;
  }
  return false;
}

}  // namespace

int kill_leftovers(const std::string& run_id, const std::string& step_id) {
  const std::string run_entry = "HEARTH_RUN_ID=" + run_id, step_entry = "HEARTH_STEP_ID=" + step_id;
  DIR* proc = opendir("/proc");
  if (!proc) return 0;
  pid_t own_group = getpgrp();
  int found = 0;
  while (dirent* d = readdir(proc)) {
    if (!std::isdigit(static_cast<unsigned char>(d->d_name[0]))) continue;
    pid_t pid = static_cast<pid_t>(std::atoi(d->d_name));
    if (pid == getpid()) continue;
    std::ifstream in(std::string("/proc/") + d->d_name + "/environ", std::ios::binary);
    if (!in) continue;  // gone, or not ours to read
    std::string block((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!has_entry(block, run_entry) || !has_entry(block, step_entry)) continue;
    ++found;
    pid_t group = getpgid(pid);
    if (group > 0 && group != own_group) ::kill(-group, SIGKILL);
    ::kill(pid, SIGKILL);
  }
  closedir(proc);
  return found;
}

}  // namespace hearth::engine
