#include "server/events/notify_flags.h"

#include <stdexcept>

#include "sweep_file/notify_spec.h"

namespace server {

namespace {

sweep_file::WebhookUrl checked(const std::string& flag, const std::string& value) {
  std::string problem;
  const auto url = sweep_file::parse_webhook_url(value, problem);
  if (!url) throw std::invalid_argument(flag + " '" + value.substr(0, 200) + "': " + problem);
  return *url;
}

}  // namespace

void add_notify_flags(CLI::App& app, NotifyFlags& f) {
  app.add_option("--notify-url", f.urls,
                 "POST every event (a sweep finished, jobs failed for good, a health rule fired, "
                 "no worker heard from) as JSON with a Slack-compatible text field to this "
                 "http(s) URL; repeatable")
      ->group("Notifications");
  app.add_option("--notify-allow", f.allow,
                 "an origin (https://host[:port]) a sweep file's notify: URLs may name; "
                 "repeatable. Without it a sweep may name none")
      ->group("Notifications");
  app.add_option("--notify-no-worker-seconds", f.no_worker_seconds,
                 "announce when jobs wait and no worker was heard from for this long (default "
                 "600; 0: never)")
      ->check(CLI::Range(int64_t(0), int64_t(7) * 86400))
      ->group("Notifications");
  app.add_option("--notify-retry-ms", f.retry_ms, "tests only: the first retry's delay")
      ->check(CLI::Range(int64_t(10), int64_t(3600000)))
      ->group("");  // hidden from --help
}

NotifySettings finish_notify_flags(const NotifyFlags& f) {
  NotifySettings out;
  for (const std::string& u : f.urls) {
    checked("--notify-url", u);
    out.notifier.urls.push_back(u);
  }
  for (const std::string& a : f.allow) {
    const sweep_file::WebhookUrl url = checked("--notify-allow", a);
    if (url.target != "/")
      throw std::invalid_argument("--notify-allow '" + a.substr(0, 200) +
                                  "': give an origin (scheme, host and port), not a path");
    out.allow_origins.push_back(url.origin());
  }
  out.notifier.base_retry_ms = f.retry_ms;
  out.no_worker_after_ms = f.no_worker_seconds * 1000;
  return out;
}

}  // namespace server
