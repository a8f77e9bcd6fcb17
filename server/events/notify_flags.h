// The coordinator's --notify-* flags (docs/deploy.md, "Notifications"), registered on its
// command line, and the settings they make once checked: a URL that is not http(s) is refused at
// start, naming the flag.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "server/events/notifier.h"

namespace server {

struct NotifyFlags {
  std::vector<std::string> urls;    // --notify-url: every event goes there
  std::vector<std::string> allow;   // --notify-allow: origins a sweep's notify: may name
  int64_t no_worker_seconds = 600;  // --notify-no-worker-seconds (0: never)
  int64_t retry_ms = 2000;          // first retry's delay (hidden: tests shorten it)
};

void add_notify_flags(CLI::App& app, NotifyFlags& flags);

struct NotifySettings {
  NotifierSettings notifier;
  std::vector<std::string> allow_origins;  // WebhookUrl::origin of each --notify-allow
  int64_t no_worker_after_ms = 0;
};
// Throws std::invalid_argument naming the flag and the value's problem.
NotifySettings finish_notify_flags(const NotifyFlags& flags);

}  // namespace server
