#include "server/api/change_notifier.h"

#include <chrono>

namespace server {

void ChangeNotifier::notify(Change kind) {
  {
    std::lock_guard lock(mu_);
    ++progress_;
    if (kind == Change::kScheduling) ++scheduling_;
  }
  cv_.notify_all();
}

uint64_t ChangeNotifier::wait(Change kind, uint64_t seen, int timeout_ms) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
               [&] { return closed_ || counter(kind) != seen; });
  return counter(kind);
}

void ChangeNotifier::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

bool ChangeNotifier::closed() {
  std::lock_guard lock(mu_);
  return closed_;
}

uint64_t ChangeNotifier::version(Change kind) {
  std::lock_guard lock(mu_);
  return counter(kind);
}

}  // namespace server
