#include "server/events/notifier.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "server/events/event_text.h"
#include "server/storage/clock.h"
#include "sweep_file/notify_spec.h"

namespace server {

namespace {

constexpr int kDeliveriesPerLook = 16;

// "" when delivered, else why not.
std::string post(const sweep_file::WebhookUrl& url, const std::string& body, int64_t timeout_ms) {
  httplib::Client client(url.origin());
  const auto seconds = std::chrono::milliseconds(timeout_ms);
  client.set_connection_timeout(seconds);
  client.set_read_timeout(seconds);
  client.set_write_timeout(seconds);
  client.set_follow_location(false);
  const httplib::Result res = client.Post(url.target, body, "application/json");
  if (!res) return "no answer: " + httplib::to_string(res.error());
  if (res->status < 200 || res->status >= 300) return "HTTP " + std::to_string(res->status);
  return "";
}

}  // namespace

int64_t retry_delay_ms(const NotifierSettings& settings, int attempts) {
  if (attempts >= settings.max_attempts) return -1;
  int64_t delay = settings.base_retry_ms;
  for (int i = 1; i < attempts && delay < settings.max_retry_ms; ++i) delay *= 2;
  return std::min(delay, settings.max_retry_ms);
}

Notifier::Notifier(EventStore& events, NotifierSettings settings)
    : events_(events), settings_(std::move(settings)) {}

Notifier::~Notifier() { stop(); }

void Notifier::start() {
  thread_ = std::thread([this] { run(); });
}

void Notifier::stop() {
  stopping_ = true;
  wake();
  if (thread_.joinable()) thread_.join();
}

void Notifier::wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    woken_ = true;
  }
  cv_.notify_one();
}

void Notifier::deliver(const DueDelivery& d) {
  std::string problem;
  const auto url = sweep_file::parse_webhook_url(d.url, problem);
  const std::string error =
      url ? post(*url, webhook_body(d.event), settings_.timeout_ms) : "bad URL: " + problem;
  const int attempts = d.attempts + 1;
  if (error.empty()) return events_.delivered(d.id, now_ms());
  const int64_t delay = url ? retry_delay_ms(settings_, attempts) : -1;
  // Only the origin is logged: a webhook's path often holds its secret.
  const std::string where = url ? url->origin() : "a bad URL";
  if (delay < 0) {
    spdlog::warn("notifier: gave up event {} to {} after {} attempt(s): {}", d.event.id, where,
                 attempts, error);
    return events_.attempt_failed(d.id, error, std::nullopt);
  }
  spdlog::info("notifier: event {} to {} failed (attempt {}), retried in {} ms: {}", d.event.id,
               where, attempts, delay, error);
  events_.attempt_failed(d.id, error, now_ms() + delay);
}

void Notifier::run() {
  while (!stopping_) {
    try {
      events_.queue_deliveries(settings_.urls, now_ms());
      const std::vector<DueDelivery> due = events_.due_deliveries(now_ms(), kDeliveriesPerLook);
      for (const DueDelivery& d : due) {
        if (stopping_) return;
        deliver(d);
      }
      if (due.size() == size_t(kDeliveriesPerLook)) continue;  // more are due: no pause
    } catch (const std::exception& e) {
      spdlog::warn("notifier: {} (retried in a second)", e.what());
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(1), [&] { return woken_ || stopping_.load(); });
    woken_ = false;
  }
}

}  // namespace server
