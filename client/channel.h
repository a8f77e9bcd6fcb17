// How sweepctl and the worker reach the coordinator: one channel (TLS when a CA file is given)
// and per-call metadata carrying the bearer token and a deadline.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

namespace orchestrator_client {

struct Endpoint {
  std::string address;  // host:port
  std::string token;    // empty: none
  std::string
      tls_ca;  // PEM file of the CA that signed the coordinator's certificate; empty: plaintext
};

// Message-size limits, the same on both sides: what a client may send (a sweep file, a batch of
// metrics: the worker's batches stay far below) and what it may receive (a sweep's job list,
// results). The coordinator receives at most kMaxRequestBytes and sends at most kMaxReplyBytes.
constexpr int kMaxRequestBytes = 16 << 20;
constexpr int kMaxReplyBytes = 64 << 20;

std::shared_ptr<grpc::Channel> make_channel(const Endpoint& endpoint);

// A failed call's status in words a user can act on: the limit that was hit, the deadline that
// passed, or gRPC's own message.
std::string describe(const grpc::Status& status, const Endpoint& endpoint);

// A ClientContext with the token attached and a deadline `timeout` from now.
std::unique_ptr<grpc::ClientContext> make_context(const Endpoint& endpoint,
                                                  std::chrono::milliseconds timeout);

}  // namespace orchestrator_client
