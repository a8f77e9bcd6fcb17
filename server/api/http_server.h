// The coordinator's HTTP port: Prometheus metrics (/metrics), a health check (/healthz), and
// the dashboard: its JSON API (/api/...) and page (/).
#pragma once

#include <functional>
#include <string>

#include "http_door/http_door.h"
#include "server/api/gate.h"
#include "server/provisioning/provisioner.h"
#include "server/storage/store.h"

namespace server {

class HttpServer {
 public:
  // points_ingested: a live counter owned by the worker service.
  // provisioner: null when the coordinator provisions no workers.
  // insecure_plaintext: --insecure-plaintext was given (sweep_insecure_plaintext on /metrics).
  // limits: the door's bounds (http_door.h).
  HttpServer(Store& store, Gate& gate, std::function<int64_t()> points_ingested,
             const Provisioner* provisioner = nullptr, bool insecure_plaintext = false,
             const http_door::Limits& limits = {});
  ~HttpServer();
  // Binds host:port (port 0 picks one) and serves, over TLS when `tls` has a certificate;
  // returns the port.
  int start(const std::string& host, int port, const http_door::Tls& tls = {});
  void stop();

 private:
  Store& store_;
  Gate& gate_;
  std::function<int64_t()> points_ingested_;
  const Provisioner* provisioner_;
  bool insecure_plaintext_;
  http_door::Door door_;
};

}  // namespace server
