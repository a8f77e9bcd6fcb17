#include "http_server.h"

#include <httplib.h>

#include <sstream>

#include "dashboard_api.h"

namespace server {

HttpServer::HttpServer(Store& store, std::string token, std::function<int64_t()> points_ingested)
    : store_(store),
      token_(std::move(token)),
      points_ingested_(std::move(points_ingested)),
      server_(std::make_unique<httplib::Server>()) {
  server_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  server_->Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
    if (!token_.empty() && req.get_header_value("Authorization") != "Bearer " + token_) {
      res.status = 401;
      res.set_content("missing or wrong bearer token\n", "text/plain");
      return;
    }
    std::ostringstream out;
    out << "# HELP sweep_jobs Jobs by state.\n# TYPE sweep_jobs gauge\n";
    const auto counts = store_.job_counts_by_state();
    for (JobState state : kAllJobStates) {
      const auto it = counts.find(state);
      out << "sweep_jobs{state=\"" << job_state_name(state) << "\"} "
          << (it == counts.end() ? 0 : it->second) << "\n";
    }
    std::map<std::string, int> workers;
    for (const auto& w : store_.workers()) ++workers[w.state];
    out << "# HELP sweep_workers Workers by state.\n# TYPE sweep_workers gauge\n";
    for (const char* state : {"active", "draining", "lost"})
      out << "sweep_workers{state=\"" << state << "\"} " << workers[state] << "\n";
    out << "# HELP sweep_metric_points_ingested_total Metric points received since start.\n"
        << "# TYPE sweep_metric_points_ingested_total counter\n"
        << "sweep_metric_points_ingested_total " << points_ingested_() << "\n";
    res.set_content(out.str(), "text/plain; version=0.0.4");
  });
  register_dashboard(*server_, store_, token_);
}

HttpServer::~HttpServer() { stop(); }

int HttpServer::start(const std::string& host, int port) {
  const int bound =
      port == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, port) ? port : -1);
  if (bound < 0)
    throw std::runtime_error("cannot listen for HTTP on " + host + ":" + std::to_string(port));
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return bound;
}

void HttpServer::stop() {
  if (thread_.joinable()) {
    server_->stop();
    thread_.join();
  }
}

}  // namespace server
