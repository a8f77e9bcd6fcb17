// Where the coordinator may listen: beyond loopback only with a token (docs/architecture.md,
// contracts).
#pragma once

#include <string>
#include <utility>

namespace server {

std::pair<std::string, int> split_host_port(const std::string& address);  // throws on bad input
bool is_loopback_host(const std::string& host);
// Empty when the address is acceptable; otherwise the reason, naming the address.
std::string listen_problem(const std::string& address, const std::string& token);
std::string trim(const std::string& s);

}  // namespace server
