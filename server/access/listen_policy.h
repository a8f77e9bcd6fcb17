// Where the coordinator may listen: beyond loopback only with a token (docs/architecture.md,
// contracts).
#pragma once

#include <string>
#include <utility>

namespace server {

std::pair<std::string, int> split_host_port(const std::string& address);  // throws on bad input
bool is_loopback_host(const std::string& host);
// One of the coordinator's doors: its flag and whether it can encrypt.
struct Door {
  const char* flag;    // "--listen", "--http"
  bool encrypted;      // gRPC with --tls-cert; the HTTP door has no TLS yet
  const char* remedy;  // what encrypts it, for the refusal
};
// Empty when the door may listen at `address`; otherwise the reason, naming the address and
// the flag. Beyond loopback a door needs a token (authenticated: --token, or a users file), and
// with one it must not carry it in clear: encrypted, or plaintext_allowed (--insecure-plaintext).
std::string listen_problem(const std::string& address, const Door& door, bool authenticated,
                           bool plaintext_allowed);
std::string trim(const std::string& s);

}  // namespace server
