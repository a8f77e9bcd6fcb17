// How sweepctl and the worker reach the coordinator: one channel (TLS when a CA file is given)
// and per-call metadata carrying the bearer token and a deadline.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

namespace orchestrator_client {

struct Endpoint {
  std::string address;  // host:port
  std::string token;    // empty: none
  std::string tls_ca;   // PEM file of the CA that signed the coordinator's certificate; empty: plaintext
};

std::shared_ptr<grpc::Channel> make_channel(const Endpoint& endpoint);

// A ClientContext with the token attached and a deadline `timeout` from now.
std::unique_ptr<grpc::ClientContext> make_context(const Endpoint& endpoint, std::chrono::milliseconds timeout);

}  // namespace orchestrator_client
