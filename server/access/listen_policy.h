// Where the coordinator may listen: beyond loopback only with a token (docs/architecture.md,
// contracts).
#pragma once

#include <string>
#include <utility>

namespace server {

std::pair<std::string, int> split_host_port(const std::string& address);  // throws on bad input
bool is_loopback_host(const std::string& host);
// Empty when the address is acceptable; otherwise the reason, naming the address. authenticated:
// callers need a token (--token, or a users file).
std::string listen_problem(const std::string& address, bool authenticated);
std::string trim(const std::string& s);

}  // namespace server
