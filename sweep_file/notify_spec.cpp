#include "sweep_file/notify_spec.h"

#include <algorithm>
#include <cctype>

namespace sweep_file {

namespace {

constexpr size_t kMaxUrlBytes = 2048;
constexpr size_t kMaxSweepUrls = 4;

bool host_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-';
}

// "host", "host:port", "[v6]" or "[v6]:port" into `out`; false with `problem` set.
bool parse_authority(std::string_view authority, WebhookUrl& out, std::string& problem) {
  if (authority.find('@') != std::string_view::npos) {
    problem = "must not carry a user or password (put a secret in the path, as Slack does)";
    return false;
  }
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      problem = "has an unclosed IPv6 literal";
      return false;
    }
    host = authority.substr(0, close + 1);
    const std::string_view rest = authority.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') {
      problem = "has text after its IPv6 literal";
      return false;
    }
    if (!rest.empty()) port = rest.substr(1);
  } else if (const size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (host.empty() || !std::all_of(host.begin(), host.end(), host_char)) {
      problem = "has no valid host";
      return false;
    }
  } else if (host.empty() || !std::all_of(host.begin(), host.end(), host_char)) {
    problem = "has no valid host";
    return false;
  }
  if (authority.find(':') != std::string_view::npos && authority.back() == ':') {
    problem = "has an empty port";
    return false;
  }
  if (!port.empty()) {
    if (port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      problem = "has a port that is not a number";
      return false;
    }
    out.port = std::stoi(std::string(port));
    if (out.port < 1 || out.port > 65535) {
      problem = "has a port outside 1..65535";
      return false;
    }
  }
  out.host.assign(host);
  std::transform(out.host.begin(), out.host.end(), out.host.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return true;
}

}  // namespace

std::string WebhookUrl::origin() const {
  return std::string(https ? "https://" : "http://") + host + ":" + std::to_string(port);
}

std::optional<WebhookUrl> parse_webhook_url(std::string_view url, std::string& problem) {
  if (url.size() > kMaxUrlBytes) {
    problem = "is longer than " + std::to_string(kMaxUrlBytes) + " bytes";
    return std::nullopt;
  }
  for (char c : url)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      problem = "holds a space or control character";
      return std::nullopt;
    }
  WebhookUrl out;
  std::string_view rest;
  if (url.substr(0, 8) == "https://") {
    out.https = true;
    rest = url.substr(8);
  } else if (url.substr(0, 7) == "http://") {
    rest = url.substr(7);
  } else {
    problem = "must start with http:// or https://";
    return std::nullopt;
  }
  const size_t end = rest.find_first_of("/?#");
  if (end != std::string_view::npos && rest[end] == '#') {
    problem = "must not carry a #fragment";
    return std::nullopt;
  }
  if (!parse_authority(rest.substr(0, end), out, problem)) return std::nullopt;
  if (out.port == 0) out.port = out.https ? 443 : 80;
  if (end != std::string_view::npos) {
    out.target.assign(rest.substr(end));
    if (out.target.front() == '?') out.target.insert(0, "/");
    if (out.target.find('#') != std::string::npos) {
      problem = "must not carry a #fragment";
      return std::nullopt;
    }
  }
  return out;
}

std::vector<std::string> read_notify_urls(const nlohmann::json& doc,
                                          std::vector<trainer_core::ConfigProblem>& problems) {
  std::vector<std::string> urls;
  if (!doc.is_object() || !doc.contains("notify")) return urls;
  const nlohmann::json& n = doc["notify"];
  if (!n.is_array()) {
    problems.push_back({"notify", "must be a list of http(s) URLs"});
    return urls;
  }
  if (n.size() > kMaxSweepUrls) {
    problems.push_back({"notify", "lists more than " + std::to_string(kMaxSweepUrls) + " URLs"});
    return urls;
  }
  for (size_t i = 0; i < n.size(); ++i) {
    const std::string path = "notify[" + std::to_string(i) + "]";
    std::string problem;
    if (!n[i].is_string())
      problems.push_back({path, "must be a URL string"});
    else if (!parse_webhook_url(n[i].get<std::string>(), problem))
      problems.push_back({path, problem});
    else
      urls.push_back(n[i].get<std::string>());
  }
  return urls;
}

}  // namespace sweep_file
