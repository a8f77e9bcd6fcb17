// A coordinator a team shares: users and roles from a users file, every rule through both doors
// (gRPC and HTTP), the worker tokens' limits, the audit trail of every change and refusal, and a
// reload of the users on SIGHUP that drops no connection.
#include "orchestration_cluster.h"

namespace orchestration_test {
namespace {

// The tokens of the test's users (the file holds only their SHA-256, from `coordinator
// hash-token` as docs/deploy.md shows).
const std::map<std::string, std::string> kTokens = {
    {"alice", "alice-t0ken"}, {"bob", "bob-t0ken"},   {"vic", "vic-t0ken"},
    {"wendy", "wendy-t0ken"}, {"walt", "walt-t0ken"}, {"carol", "carol-t0ken"}};

std::string hash_of(const std::string& dir, const std::string& token) {
  std::ofstream(dir + "/token.in") << token << "\n";
  const auto [code, out] = test_process::run_command(
      {"sh", "-c", std::string(COORDINATOR_BINARY) + " hash-token < " + dir + "/token.in"});
  EXPECT_EQ(code, 0) << out;
  return out.substr(0, out.find('\n'));
}

void write_users(const std::string& dir,
                 const std::vector<std::pair<std::string, std::string>>& users) {
  std::string text = "users:\n";
  for (const auto& [name, role] : users)
    text += "  - {name: " + name + ", role: " + role +
            ", token_sha256: " + hash_of(dir, kTokens.at(name)) + "}\n";
  std::ofstream(dir + "/users.yaml") << text;
}

struct As {
  orchestrator_client::Endpoint endpoint;
  std::unique_ptr<pb::SweepService::Stub> sweeps;
  std::unique_ptr<pb::WorkerService::Stub> workers;
  As(const orchestrator_client::Endpoint& base, const std::string& token) : endpoint(base) {
    endpoint.token = token;
    auto channel = orchestrator_client::make_channel(endpoint);
    sweeps = pb::SweepService::NewStub(channel);
    workers = pb::WorkerService::NewStub(channel);
  }
  std::unique_ptr<grpc::ClientContext> ctx() {
    return orchestrator_client::make_context(endpoint, 10s);
  }
  grpc::Status submit(const std::string& yaml, int64_t* id = nullptr) {
    pb::SubmitSweepRequest req;
    req.set_spec(yaml);
    pb::SubmitSweepResponse resp;
    const auto s = sweeps->SubmitSweep(ctx().get(), req, &resp);
    if (id) *id = resp.sweep_id();
    return s;
  }
  grpc::Status cancel(int64_t id) {
    pb::SweepRef ref;
    ref.set_sweep_id(id);
    pb::CancelSweepResponse resp;
    return sweeps->CancelSweep(ctx().get(), ref, &resp);
  }
  grpc::Status retry(int64_t id) {
    pb::SweepRef ref;
    ref.set_sweep_id(id);
    pb::RetryFailedResponse resp;
    return sweeps->RetryFailed(ctx().get(), ref, &resp);
  }
  grpc::Status fork(int64_t job_id, int64_t at_step) {
    pb::ForkJobRequest req;
    req.set_job_id(job_id);
    req.set_at_step(at_step);
    pb::ForkJobResponse resp;
    return sweeps->ForkJob(ctx().get(), req, &resp);
  }
  grpc::Status get(int64_t id) {
    pb::SweepRef ref;
    ref.set_sweep_id(id);
    pb::GetSweepResponse resp;
    return sweeps->GetSweep(ctx().get(), ref, &resp);
  }
  grpc::Status list() {
    pb::ListSweepsResponse resp;
    return sweeps->ListSweeps(ctx().get(), pb::ListSweepsRequest(), &resp);
  }
  grpc::Status results(int64_t id) {
    pb::SweepRef ref;
    ref.set_sweep_id(id);
    pb::GetResultsResponse resp;
    return sweeps->GetResults(ctx().get(), ref, &resp);
  }
  grpc::Status export_summaries(int64_t id) {
    pb::ExportSweepRequest req;
    req.set_sweep_id(id);
    req.set_table(pb::EXPORT_SUMMARIES);
    auto context = ctx();
    auto reader = sweeps->ExportSweep(context.get(), req);
    pb::ExportChunk chunk;
    while (reader->Read(&chunk)) {
    }
    return reader->Finish();
  }
  grpc::Status list_workers() {
    pb::ListWorkersResponse resp;
    return sweeps->ListWorkers(ctx().get(), pb::ListWorkersRequest(), &resp);
  }
  grpc::Status drain(const std::string& worker) {
    pb::DrainWorkerRequest req;
    req.set_worker_id(worker);
    pb::DrainWorkerResponse resp;
    return sweeps->DrainWorker(ctx().get(), req, &resp);
  }
  grpc::Status audit(pb::ListAuditResponse* out) {
    pb::ListAuditRequest req;
    req.set_limit(100000);
    return sweeps->ListAudit(ctx().get(), req, out);
  }
  grpc::Status register_worker(const std::string& id) {
    pb::RegisterWorkerRequest req;
    req.set_worker_id(id);
    req.set_hostname("h");
    req.set_backend("cpu");
    req.set_slots(1);
    pb::RegisterWorkerResponse resp;
    return workers->RegisterWorker(ctx().get(), req, &resp);
  }
  grpc::Status heartbeat(const std::string& id) {
    pb::HeartbeatRequest req;
    req.set_worker_id(id);
    pb::HeartbeatResponse resp;
    return workers->Heartbeat(ctx().get(), req, &resp);
  }
};

std::string code_name(const grpc::Status& s) {
  switch (s.error_code()) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    default:
      return "code " + std::to_string(int(s.error_code())) + ": " + s.error_message();
  }
}

TEST(Orchestration, EveryRoleMayDoWhatTheTableSaysThroughGrpcAndHttpAndTheAuditShowsIt) {
  Cluster c("team", "root-t0ken");  // --token: the admin
  write_users(c.dir(), {{"alice", "researcher"},
                        {"bob", "researcher"},
                        {"vic", "viewer"},
                        {"wendy", "worker"},
                        {"walt", "worker"}});
  c.start_coordinator(3000, {"--users-file", c.dir() + "/users.yaml"});
  As admin(c.endpoint(), "root-t0ken"), alice(c.endpoint(), kTokens.at("alice")),
      bob(c.endpoint(), kTokens.at("bob")), vic(c.endpoint(), kTokens.at("vic")),
      wendy(c.endpoint(), kTokens.at("wendy")), walt(c.endpoint(), kTokens.at("walt")),
      nobody(c.endpoint(), "");
  const std::string yaml = sweep_yaml("team", c.cache(), 10, "seeds: [1]\n");
  int64_t alices = 0, bobs = 0;
  // Submit.
  ASSERT_TRUE(alice.submit(yaml, &alices).ok());
  ASSERT_TRUE(bob.submit(yaml, &bobs).ok());
  EXPECT_EQ(code_name(admin.submit(yaml)), "OK");
  EXPECT_EQ(code_name(vic.submit(yaml)), "PERMISSION_DENIED");
  EXPECT_EQ(code_name(wendy.submit(yaml)), "PERMISSION_DENIED");
  EXPECT_EQ(code_name(nobody.submit(yaml)), "UNAUTHENTICATED");
  // Read: everyone but a worker token.
  for (As* reader : {&admin, &alice, &bob, &vic}) {
    EXPECT_EQ(code_name(reader->list()), "OK");
    EXPECT_EQ(code_name(reader->get(bobs)), "OK");
    EXPECT_EQ(code_name(reader->results(bobs)), "OK");
    EXPECT_EQ(code_name(reader->list_workers()), "OK");
    EXPECT_EQ(code_name(reader->export_summaries(bobs)), "OK");
  }
  EXPECT_EQ(code_name(wendy.export_summaries(bobs)), "PERMISSION_DENIED");
  EXPECT_EQ(code_name(wendy.list()), "PERMISSION_DENIED");
  EXPECT_EQ(code_name(wendy.get(alices)), "PERMISSION_DENIED");
  EXPECT_EQ(code_name(wendy.list_workers()), "PERMISSION_DENIED");
  // Change: a researcher only their own sweep; the refusal names the rule.
  const grpc::Status not_hers = alice.cancel(bobs);
  EXPECT_EQ(code_name(not_hers), "PERMISSION_DENIED");
  EXPECT_NE(not_hers.error_message().find("only their own sweeps; this one belongs to bob"),
            std::string::npos)
      << not_hers.error_message();
  EXPECT_EQ(code_name(alice.retry(bobs)), "PERMISSION_DENIED");
  EXPECT_EQ(code_name(vic.cancel(alices)), "PERMISSION_DENIED");
  EXPECT_EQ(code_name(wendy.cancel(alices)), "PERMISSION_DENIED");
  EXPECT_EQ(code_name(alice.retry(alices)), "OK");
  EXPECT_EQ(code_name(alice.cancel(alices)), "OK");
  EXPECT_EQ(code_name(admin.cancel(bobs)), "OK");  // an admin, anyone's
  // Workers: only worker (or admin) tokens, and only for the ids they registered.
  EXPECT_EQ(code_name(wendy.register_worker("w-wendy")), "OK");
  EXPECT_EQ(code_name(wendy.heartbeat("w-wendy")), "OK");
  const grpc::Status hijack = walt.register_worker("w-wendy");
  EXPECT_EQ(code_name(hijack), "PERMISSION_DENIED");
  EXPECT_NE(hijack.error_message().find("was registered by wendy"), std::string::npos)
      << hijack.error_message();
  EXPECT_EQ(code_name(walt.heartbeat("w-wendy")), "PERMISSION_DENIED");
  EXPECT_EQ(code_name(alice.register_worker("w-alice")), "PERMISSION_DENIED");
  EXPECT_EQ(code_name(vic.heartbeat("w-wendy")), "PERMISSION_DENIED");
  EXPECT_EQ(code_name(alice.drain("w-wendy")), "PERMISSION_DENIED");
  EXPECT_EQ(code_name(vic.drain("w-wendy")), "PERMISSION_DENIED");
  EXPECT_EQ(code_name(admin.drain("w-wendy")), "OK");
  // A real worker with a worker token runs bob's next sweep: its lease and completion are audited.
  int64_t run_by_pool = 0;
  ASSERT_TRUE(bob.submit(yaml, &run_by_pool).ok());
  c.start_worker("w-pool", 1, kTokens.at("wendy"));
  ASSERT_TRUE(c.wait_finished(run_by_pool, 120s)) << c.diagnostics();
  // Forking a job adds a job to its sweep: the owner's (or an admin's) to do.
  pb::GetSweepResponse pool_sweep;
  {
    pb::SweepRef ref;
    ref.set_sweep_id(run_by_pool);
    ASSERT_TRUE(admin.sweeps->GetSweep(admin.ctx().get(), ref, &pool_sweep).ok());
  }
  const int64_t bobs_job = pool_sweep.jobs(0).job_id();
  const grpc::Status fork_refused = alice.fork(bobs_job, 5);
  EXPECT_EQ(code_name(fork_refused), "PERMISSION_DENIED");
  EXPECT_NE(fork_refused.error_message().find("researchers may fork only their own sweeps"),
            std::string::npos)
      << fork_refused.error_message();
  EXPECT_EQ(code_name(vic.fork(bobs_job, 5)), "PERMISSION_DENIED");
  EXPECT_EQ(code_name(wendy.fork(bobs_job, 5)), "PERMISSION_DENIED");
  EXPECT_EQ(code_name(nobody.fork(bobs_job, 5)), "UNAUTHENTICATED");
  // The audit trail: admins only.
  pb::ListAuditResponse trail;
  EXPECT_EQ(code_name(alice.audit(&trail)), "PERMISSION_DENIED");
  EXPECT_EQ(code_name(vic.audit(&trail)), "PERMISSION_DENIED");
  EXPECT_EQ(code_name(wendy.audit(&trail)), "PERMISSION_DENIED");

  // The HTTP door, the same rules: reads for admin, researcher and viewer; 403 with the rule for a
  // worker token; 401 without a token; the audit for admins only.
  httplib::Client http("127.0.0.1", c.http_port());
  const auto get = [&](const std::string& path, const std::string& token) {
    const auto res =
        token.empty() ? http.Get(path) : http.Get(path, {{"Authorization", "Bearer " + token}});
    return res ? res->status : -1;
  };
  for (const std::string& path : std::vector<std::string>{
           "/api/sweeps", "/api/sweeps/" + std::to_string(alices), "/api/sweeps/1/results",
           "/api/sweeps/1/export?table=summaries", "/api/workers", "/api/runs/1/log", "/metrics"}) {
    for (const char* reader : {"root-t0ken", "alice-t0ken", "vic-t0ken"})
      EXPECT_EQ(get(path, reader), 200) << path << " " << reader;
    EXPECT_EQ(get(path, "wendy-t0ken"), 403) << path;
    EXPECT_EQ(get(path, ""), 401) << path;
    EXPECT_EQ(get(path, "guess"), 401) << path;
  }
  const auto refused = http.Get("/api/sweeps", {{"Authorization", "Bearer wendy-t0ken"}});
  EXPECT_NE(refused->body.find("worker tokens may only use the worker API"), std::string::npos)
      << refused->body;
  EXPECT_EQ(get("/api/audit", "root-t0ken"), 200);
  EXPECT_EQ(get("/api/audit", "alice-t0ken"), 403);
  EXPECT_EQ(get("/api/audit", "vic-t0ken"), 403);
  const auto whoami = http.Get("/api/whoami", {{"Authorization", "Bearer vic-t0ken"}});
  EXPECT_EQ(nlohmann::json::parse(whoami->body),
            (nlohmann::json{{"user", "vic"}, {"role", "viewer"}}));
  // sweepctl shows who owns what.
  const auto [listed, list_out] = test_process::run_command(
      {SWEEPCTL_BINARY, "--coordinator", c.endpoint().address, "--token", "vic-t0ken", "list"});
  EXPECT_EQ(listed, 0);
  EXPECT_NE(list_out.find("alice"), std::string::npos) << list_out;
  EXPECT_NE(list_out.find("bob"), std::string::npos) << list_out;

  // Every change to alice's sweep and every refusal is in the trail, with who, what and from where.
  ASSERT_EQ(code_name(admin.audit(&trail)), "OK");
  const auto has = [&](const std::string& user, const std::string& action,
                       const std::string& target, bool allowed,
                       const std::string& detail_part = "") {
    for (const auto& e : trail.entries())
      if (e.user() == user && e.action() == action && e.target() == target &&
          e.allowed() == allowed && e.detail().find(detail_part) != std::string::npos &&
          e.peer().find("127.0.0.1") != std::string::npos)
        return true;
    return false;
  };
  const std::string a = "sweep " + std::to_string(alices), b = "sweep " + std::to_string(bobs);
  EXPECT_TRUE(has("alice", "submit", a, true));
  EXPECT_TRUE(has("alice", "retry", a, true));
  EXPECT_TRUE(has("alice", "cancel", a, true));
  EXPECT_TRUE(has("alice", "cancel", b, false, "belongs to bob"));
  EXPECT_TRUE(
      has("alice", "fork", "sweep " + std::to_string(run_by_pool), false, "belongs to bob"));
  EXPECT_TRUE(has("vic", "submit", "", false, "viewers may read"));
  EXPECT_TRUE(has("", "submit", "", false, "no bearer token"));
  EXPECT_TRUE(has("walt", "worker-api", "worker w-wendy", false, "registered by wendy"));
  EXPECT_TRUE(has("wendy", "register", "worker w-wendy", true));
  EXPECT_TRUE(has("admin", "drain", "worker w-wendy", true));
  EXPECT_TRUE(has("wendy", "read", "http /api/sweeps", false));
  EXPECT_TRUE(has("alice", "read-audit", "http /api/audit", false));
  // Every state change of bob's run: submitted, leased to the pool's worker, completed.
  pb::GetSweepResponse ran;
  {
    pb::SweepRef ref;
    ref.set_sweep_id(run_by_pool);
    ASSERT_TRUE(admin.sweeps->GetSweep(admin.ctx().get(), ref, &ran).ok());
  }
  const std::string job = "job " + std::to_string(ran.jobs(0).job_id());
  EXPECT_TRUE(has("bob", "submit", "sweep " + std::to_string(run_by_pool), true));
  EXPECT_TRUE(has("wendy", "register", "worker w-pool", true));
  EXPECT_TRUE(has("wendy", "lease", job, true, "to worker w-pool"));
  EXPECT_TRUE(has("wendy", "complete", job, true, "SUCCEEDED"));
  const auto [audited, audit_out] =
      test_process::run_command({SWEEPCTL_BINARY, "--coordinator", c.endpoint().address, "--token",
                                 "root-t0ken", "audit", "--user", "alice", "--since", "1h"});
  EXPECT_EQ(audited, 0) << audit_out;
  EXPECT_NE(audit_out.find("DENIED"), std::string::npos) << audit_out;
  std::istringstream lines(audit_out);
  int alice_lines = 0;
  for (std::string line; std::getline(lines, line);) {
    EXPECT_NE(line.find("  alice  "), std::string::npos) << "only alice's entries: " << line;
    ++alice_lines;
  }
  EXPECT_GE(alice_lines, 6) << audit_out;

  // SIGHUP reloads the users: carol comes, vic goes, and the connections already open stay.
  write_users(c.dir(), {{"alice", "researcher"},
                        {"bob", "researcher"},
                        {"carol", "researcher"},
                        {"wendy", "worker"},
                        {"walt", "worker"}});
  As carol(c.endpoint(), kTokens.at("carol"));
  EXPECT_EQ(code_name(carol.list()), "UNAUTHENTICATED");
  const auto reloaded_log = [&] { return test_process::read_text(c.dir() + "/coordinator.log"); };
  c.signal_coordinator(SIGHUP);
  ASSERT_TRUE(wait_until([&] { return reloaded_log().find("reloaded") != std::string::npos; }, 10s))
      << reloaded_log();
  EXPECT_EQ(code_name(carol.list()), "OK");
  EXPECT_EQ(code_name(vic.list()), "UNAUTHENTICATED");
  EXPECT_EQ(code_name(alice.list()), "OK");  // alice's channel, opened before the reload
}

}  // namespace
}  // namespace orchestration_test
