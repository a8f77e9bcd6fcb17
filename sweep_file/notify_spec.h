// Webhook URLs: the `notify:` section of a sweep file, and the parsing the coordinator's
// --notify-url and --notify-allow share with it (docs/deploy.md, "Notifications").
//
//   notify: ["https://hooks.slack.com/services/T0/B0/XXXX"]   # at most 4 URLs
//
// The coordinator POSTs this sweep's events (it finished, jobs failed for good, a health rule
// fired, no worker heard from) to each URL, as well as to its own --notify-url. A URL is http or
// https with a host, an optional port and path; no user:password part, no spaces or control
// characters, at most 2048 bytes. A sweep file may not make the coordinator call any address: the
// coordinator accepts a sweep's URL only when its origin (scheme, host and port) is one of its
// --notify-allow origins, and refuses the sweep otherwise (server/api/sweep_service.cpp).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trainer_core/config/train_config.h"

namespace sweep_file {

struct WebhookUrl {
  bool https = false;
  std::string host;            // lowercased; an IPv6 literal keeps its brackets
  int port = 0;                // the scheme's default when the URL names none
  std::string target = "/";    // path and query, as given
  std::string origin() const;  // "https://host:443"
};

// The parsed URL, or nullopt with what is wrong in `problem`.
std::optional<WebhookUrl> parse_webhook_url(std::string_view url, std::string& problem);

// doc["notify"] (absent: none); problems under "notify" and "notify[i]".
std::vector<std::string> read_notify_urls(const nlohmann::json& doc,
                                          std::vector<trainer_core::ConfigProblem>& problems);

}  // namespace sweep_file
