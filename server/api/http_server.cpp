#include "server/api/http_server.h"

#include <nlohmann/json.hpp>
#include <sstream>

#include "server/api/dashboard_api.h"

namespace server {

HttpServer::HttpServer(Store& store, Gate& gate, std::function<int64_t()> points_ingested,
                       const Provisioner* provisioner, bool insecure_plaintext,
                       const http_door::Limits& limits)
    : store_(store),
      gate_(gate),
      points_ingested_(std::move(points_ingested)),
      provisioner_(provisioner),
      insecure_plaintext_(insecure_plaintext),
      door_("coordinator http", limits) {
  // Every answer, page or API: no MIME sniffing (a JSON answer is never run as a script), no
  // Referer carrying a URL out, no framing by another site (the page's CSP says it too).
  door_.set_default_headers({{"X-Content-Type-Options", "nosniff"},
                             {"Referrer-Policy", "no-referrer"},
                             {"X-Frame-Options", "DENY"}});
  // The HTTP door's one authorization check, before any route (gate.h, as for gRPC): /api/ (the
  // dashboard's data and the exports) and /metrics answer 401 without a known token and 403 with
  // the rule when the caller's role may not read (a worker token), or, for /api/audit, is not an
  // admin. Every route under them only reads. The page itself and /healthz are open: they hold
  // no data.
  door_.set_guard([this](const http_door::Request& req, http_door::Response& res) {
    const bool guarded = req.path.rfind("/api/", 0) == 0 || req.path == "/metrics";
    if (!guarded) return false;
    const Action action = req.path == "/api/audit"    ? Action::kReadAudit
                          : req.path == "/api/whoami" ? Action::kWhoAmI
                                                      : Action::kRead;
    const auto refuse = [&](int status, const std::string& why) {
      res.status = status;
      res.set_header("Cache-Control", "no-store");
      if (req.path == "/metrics")
        res.set_content(why + "\n", "text/plain");
      else
        res.set_content(nlohmann::json{{"error", why}}.dump(), "application/json");
      return true;
    };
    const bool v6 = req.peer_address.find(':') != std::string::npos;
    const std::string peer = (v6 ? "[" + req.peer_address + "]" : req.peer_address) + ":" +
                             std::to_string(req.peer_port);
    const Identity who =
        gate_.identify(req.header("Authorization"), peer, action, "http " + req.path);
    if (!who.caller && who.retry_after_s > 0) {
      res.set_header("Retry-After", std::to_string(who.retry_after_s));
      return refuse(429, "too many requests without a valid token from this address");
    }
    if (!who.caller) return refuse(401, "missing or wrong bearer token");
    if (const Decision d = gate_.admit(*who.caller, action, "http " + req.path); !d.allowed)
      return refuse(403, d.rule);
    return false;
  });
  door_.get("/healthz", [](const http_door::Request&, http_door::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  door_.get("/metrics", [this](const http_door::Request&, http_door::Response& res) {
    std::ostringstream out;
    out << "# HELP sweep_jobs Jobs by state.\n# TYPE sweep_jobs gauge\n";
    const auto counts = store_.sweeps.job_counts_by_state();
    for (JobState state : kAllJobStates) {
      const auto it = counts.find(state);
      out << "sweep_jobs{state=\"" << job_state_name(state) << "\"} "
          << (it == counts.end() ? 0 : it->second) << "\n";
    }
    std::map<WorkerState, int> workers;
    for (const auto& w : store_.workers.workers()) ++workers[w.state];
    out << "# HELP sweep_workers Workers by state.\n# TYPE sweep_workers gauge\n";
    for (WorkerState state : kAllWorkerStates)
      out << "sweep_workers{state=\"" << worker_state_name(state) << "\"} " << workers[state]
          << "\n";
    out << "# HELP sweep_metric_points_ingested_total Metric points received since start.\n"
        << "# TYPE sweep_metric_points_ingested_total counter\n"
        << "sweep_metric_points_ingested_total " << points_ingested_() << "\n";
    // Workers on demand: allocations by state, and the demand the provisioner last saw.
    std::map<AllocationState, int> allocations;
    for (const AllocationRow& a : store_.allocations.allocations(/*open_only=*/true))
      ++allocations[a.state];
    out << "# HELP sweep_allocations Open allocations asked of the cluster engine, by state.\n"
        << "# TYPE sweep_allocations gauge\n";
    for (AllocationState state : kAllAllocationStates)
      if (is_open(state))
        out << "sweep_allocations{state=\"" << allocation_state_name(state) << "\"} "
            << allocations[state] << "\n";
    const DemandDecision demand = provisioner_ ? provisioner_->last_decision() : DemandDecision{};
    out << "# HELP sweep_provision_waiting_jobs Pending jobs of the provisioned backend that "
           "could start now.\n# TYPE sweep_provision_waiting_jobs gauge\n"
        << "sweep_provision_waiting_jobs " << demand.waiting << "\n"
        << "# HELP sweep_provision_unplaced_jobs Waiting jobs no worker nor open allocation has "
           "room for.\n# TYPE sweep_provision_unplaced_jobs gauge\n"
        << "sweep_provision_unplaced_jobs " << demand.unplaced << "\n"
        << "# HELP sweep_provision_needed_allocations Allocations that would place every "
           "unplaced job.\n# TYPE sweep_provision_needed_allocations gauge\n"
        << "sweep_provision_needed_allocations " << demand.needed << "\n"
        << "# HELP sweep_insecure_plaintext 1 when --insecure-plaintext allows listening beyond "
           "loopback without TLS.\n# TYPE sweep_insecure_plaintext gauge\n"
        << "sweep_insecure_plaintext " << (insecure_plaintext_ ? 1 : 0) << "\n";
    res.set_content(out.str(), "text/plain; version=0.0.4");
  });
  register_dashboard(door_, store_, gate_, provisioner_);
}

HttpServer::~HttpServer() { stop(); }

int HttpServer::start(const std::string& host, int port, const http_door::Tls& tls) {
  return door_.start(host, port, tls);
}

void HttpServer::stop() { door_.stop(); }

}  // namespace server
