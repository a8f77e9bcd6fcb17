// The coordinator's HTTP port: Prometheus metrics (/metrics), a health check (/healthz), and
// the dashboard: its JSON API (/api/...) and page (/).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "server/api/gate.h"
#include "server/provisioning/provisioner.h"
#include "server/storage/store.h"

namespace httplib {
class Server;
}

namespace server {

class HttpServer {
 public:
  // points_ingested: a live counter owned by the worker service.
  // provisioner: null when the coordinator provisions no workers.
  // insecure_plaintext: --insecure-plaintext was given (sweep_insecure_plaintext on /metrics).
  HttpServer(Store& store, Gate& gate, std::function<int64_t()> points_ingested,
             const Provisioner* provisioner = nullptr, bool insecure_plaintext = false);
  ~HttpServer();
  // Binds host:port (port 0 picks one) and serves on a background thread; returns the port.
  int start(const std::string& host, int port);
  void stop();

 private:
  Store& store_;
  Gate& gate_;
  std::function<int64_t()> points_ingested_;
  const Provisioner* provisioner_;
  bool insecure_plaintext_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace server
