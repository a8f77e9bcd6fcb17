// Delivers events to webhook URLs (docs/deploy.md, "Notifications"): every event gets a delivery
// to each --notify-url and to its sweep's own notify: URLs (storage/event_store.h), POSTed as
// JSON (event_text.h's webhook_body) on a thread of its own, so a slow or dead receiver never
// holds up scheduling. A delivery that fails (no answer within the timeout, a connection refused,
// a status other than 2xx) is retried after base_retry_ms x 2^attempts (at most max_retry_ms),
// and given up after max_attempts with its reason logged and kept. Delivery is at least once:
// a coordinator killed after a POST and before recording it posts again after its restart.
// Redirects are not followed.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/storage/event_store.h"

namespace server {

struct NotifierSettings {
  std::vector<std::string> urls;  // --notify-url (validated by the caller)
  int64_t base_retry_ms = 2000;
  int64_t max_retry_ms = 300000;
  int max_attempts = 8;
  int64_t timeout_ms = 5000;  // connect, send and receive, each
};

// The wait before attempt `attempts` + 1 after `attempts` failed ones, or -1: give up.
int64_t retry_delay_ms(const NotifierSettings& settings, int attempts);

class Notifier {
 public:
  Notifier(EventStore& events, NotifierSettings settings);
  ~Notifier();  // stops the thread
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  void start();
  void stop();
  void wake();  // an event was written: look now rather than at the next second

 private:
  void run();
  void deliver(const DueDelivery& delivery);

  EventStore& events_;
  const NotifierSettings settings_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace server
