#include "server/access/listen_policy.h"

#include <stdexcept>

namespace server {

std::pair<std::string, int> split_host_port(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0)
    throw std::invalid_argument("address '" + address + "' is not host:port");
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  int port = -1;
  try {
    size_t used = 0;
    port = std::stoi(address.substr(colon + 1), &used);
    if (used != address.size() - colon - 1) port = -1;
  } catch (...) {
  }
  if (port < 0 || port > 65535)
    throw std::invalid_argument("address '" + address + "' has no valid port");
  return {host, port};
}

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

std::string listen_problem(const std::string& address, const Door& door, bool authenticated,
                           bool plaintext_allowed) {
  const auto [host, port] = split_host_port(address);
  if (is_loopback_host(host)) return "";
  if (!authenticated)
    return "refusing to listen on " + address +
           " beyond loopback without a token (--token, --token-file, SWEEP_TOKEN or --users-file)";
  if (!door.encrypted && !plaintext_allowed)
    return "refusing to listen on " + address + " (" + door.flag +
           ") beyond loopback in plaintext: every token and answer would cross the network in "
           "clear; " +
           door.remedy + ", or give --insecure-plaintext (warned at every start, on /metrics)";
  return "";
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

}  // namespace server
