// The doors: tokens on gRPC and HTTP, TLS, where the coordinator may listen, and sweepctl's
// answers to a bad sweep file with and without a coordinator.
#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/generic_stub.h>

#include "orchestration_cluster.h"

namespace orchestration_test {
namespace {

TEST(Orchestration, CallsWithoutTheTokenAreRefused) {
  Cluster c("token", "s3cret");
  c.start_coordinator();
  // sweepctl without the token: one clear line, non-zero exit.
  const std::string out = c.dir() + "/sweepctl.out";
  ChildProcess anonymous(
      {SWEEPCTL_BINARY, "--coordinator", c.endpoint().address, "--token", "", "list"}, out);
  const auto code = anonymous.wait_for_exit(20s);
  ASSERT_TRUE(code);
  EXPECT_EQ(WEXITSTATUS(*code), 1);
  EXPECT_NE(test_process::read_text(out).find("missing or wrong bearer token"), std::string::npos)
      << test_process::read_text(out);
  ChildProcess with_token(
      {SWEEPCTL_BINARY, "--coordinator", c.endpoint().address, "--token", "s3cret", "list"},
      c.dir() + "/ok.out");
  EXPECT_EQ(WEXITSTATUS(*with_token.wait_for_exit(20s)), 0);
  // A worker with a wrong token never registers.
  c.start_worker("intruder", 1, "guess");
  std::this_thread::sleep_for(1500ms);
  auto stub = pb::SweepService::NewStub(orchestrator_client::make_channel(c.endpoint()));
  pb::ListWorkersResponse workers;
  auto ctx = orchestrator_client::make_context(c.endpoint(), 5s);
  ASSERT_TRUE(stub->ListWorkers(ctx.get(), pb::ListWorkersRequest(), &workers).ok());
  EXPECT_EQ(workers.workers_size(), 0);
  // RFC 7235: the scheme name in any case, at the gRPC door (a client sending "bearer").
  {
    grpc::ClientContext lower_case;
    lower_case.AddMetadata("authorization", "bearer s3cret");
    lower_case.set_deadline(std::chrono::system_clock::now() + 5s);
    pb::ListSweepsResponse sweeps;
    const grpc::Status listed = stub->ListSweeps(&lower_case, pb::ListSweepsRequest(), &sweeps);
    EXPECT_TRUE(listed.ok()) << listed.error_message();
  }
  // A token file written by an editor (trailing space, CRLF) still works, as the coordinator's
  // does.
  std::ofstream(c.dir() + "/token") << "  s3cret \r\n";
  ChildProcess from_file(
      {WORKER_BINARY, "--coordinator", c.endpoint().address, "--worker-id", "from-file",
       "--token-file", c.dir() + "/token", "--work-dir", c.dir() + "/from-file"},
      c.dir() + "/from-file.log");
  for (int i = 0; i < 100 && workers.workers_size() == 0; ++i) {
    std::this_thread::sleep_for(100ms);
    auto list_ctx = orchestrator_client::make_context(c.endpoint(), 5s);
    ASSERT_TRUE(stub->ListWorkers(list_ctx.get(), pb::ListWorkersRequest(), &workers).ok());
  }
  ASSERT_EQ(workers.workers_size(), 1) << test_process::read_text(c.dir() + "/from-file.log");
  EXPECT_EQ(workers.workers(0).worker_id(), "from-file");
  // The metrics page wants the token too.
  httplib::Client http("127.0.0.1", c.http_port());
  EXPECT_EQ(http.Get("/metrics")->status, 401);
  EXPECT_EQ(http.Get("/metrics", {{"Authorization", "Bearer s3cret"}})->status, 200);
  EXPECT_EQ(http.Get("/api/sweeps")->status, 401);  // the dashboard's API too, every route
  for (const char* path : {"/api/sweeps/1", "/api/sweeps/1/results", "/api/sweeps/1/export",
                           "/api/runs/1", "/api/compare?runs=1", "/api/workers", "/api/nothing"})
    EXPECT_EQ(http.Get(path)->status, 401) << path;
  EXPECT_EQ(http.Get("/api/sweeps", {{"Authorization", "Bearer s3cret"}})->status, 200);
  // Every answer carries the headers a browser needs to keep it to itself: the page and the API,
  // refused or not.
  for (const auto& [path, token] : {std::pair{"/", ""}, std::pair{"/api/sweeps", "Bearer s3cret"},
                                    std::pair{"/api/sweeps", ""}}) {
    const auto r = http.Get(path, {{"Authorization", token}});
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff") << path;
    EXPECT_EQ(r->get_header_value("Referrer-Policy"), "no-referrer") << path;
    EXPECT_EQ(r->get_header_value("X-Frame-Options"), "DENY") << path;
  }
  EXPECT_NE(
      http.Get("/")->get_header_value("Content-Security-Policy").find("frame-ancestors 'none'"),
      std::string::npos);
  // RFC 7235: the scheme in any case, at the HTTP door (the gRPC door: below).
  EXPECT_EQ(http.Get("/api/sweeps", {{"Authorization", "bearer s3cret"}})->status, 200);
  // And nobody may listen beyond loopback without a token.
  ChildProcess open_port({COORDINATOR_BINARY, "--listen", "0.0.0.0:50999", "--check"},
                         c.dir() + "/check.out");
  EXPECT_NE(WEXITSTATUS(*open_port.wait_for_exit(10s)), 0);
  EXPECT_NE(
      test_process::read_text(c.dir() + "/check.out").find("refusing to listen on 0.0.0.0:50999"),
      std::string::npos);
}

// Beyond loopback with a token, neither door listens in clear unless --insecure-plaintext says
// so; the override is warned about at start and shown on /metrics.
TEST(Orchestration, PlaintextBeyondLoopbackWithATokenIsRefusedWithoutTheOverride) {
  Cluster c("plaintext", "s3cret");
  auto check = [&](std::vector<std::string> args, const std::string& name) {
    args.insert(args.begin(),
                {COORDINATOR_BINARY, "--token", "s3cret", "--db", c.dir() + "/" + name + ".db"});
    args.push_back("--check");
    ChildProcess p(args, c.dir() + "/" + name + ".out");
    const auto code = p.wait_for_exit(10s);
    return std::pair{code ? WEXITSTATUS(*code) : -1,
                     test_process::read_text(c.dir() + "/" + name + ".out")};
  };
  const auto grpc = check({"--listen", "0.0.0.0:50997", "--http", "127.0.0.1:0"}, "grpc");
  EXPECT_NE(grpc.first, 0);
  EXPECT_NE(grpc.second.find("refusing to listen on 0.0.0.0:50997 (--listen) beyond loopback in "
                             "plaintext"),
            std::string::npos)
      << grpc.second;
  EXPECT_NE(grpc.second.find("--tls-cert"), std::string::npos) << "it says how to encrypt";
  const auto http = check({"--listen", "127.0.0.1:0", "--http", "0.0.0.0:50996"}, "http");
  EXPECT_NE(http.first, 0);
  EXPECT_NE(http.second.find("(--http) beyond loopback in plaintext"), std::string::npos)
      << http.second;
  const auto with_tls = check({"--listen", "0.0.0.0:50997", "--http", "0.0.0.0:50996", "--tls-cert",
                               "c.pem", "--tls-key", "c.key"},
                              "tls");
  EXPECT_EQ(with_tls.first, 0) << "TLS on both doors: " << with_tls.second;
  const auto allowed = check(
      {"--listen", "0.0.0.0:50997", "--http", "0.0.0.0:50996", "--insecure-plaintext"}, "allowed");
  EXPECT_EQ(allowed.first, 0) << allowed.second;
  EXPECT_NE(allowed.second.find("--insecure-plaintext: --http 0.0.0.0:50996 listens beyond "
                                "loopback without TLS"),
            std::string::npos)
      << allowed.second;
  // The override shows on /metrics (here on loopback, where it changes nothing else).
  c.start_coordinator(3000, {"--insecure-plaintext"});
  httplib::Client metrics_client("127.0.0.1", c.http_port());
  const auto page = metrics_client.Get("/metrics", {{"Authorization", "Bearer s3cret"}});
  ASSERT_TRUE(page);
  EXPECT_NE(page->body.find("sweep_insecure_plaintext 1"), std::string::npos) << page->body;
}

// A client without a token that floods both doors adds a few audit rows, not one per call, and
// is rate-limited (429 with Retry-After, RESOURCE_EXHAUSTED) while callers with the token are
// served; the summary of the flood is in the trail after the coordinator stops.
TEST(Orchestration, AFloodWithoutATokenAddsAFewAuditRowsAndIsRateLimited) {
  Cluster c("flood", "s3cret");
  c.start_coordinator(3000, {"--auth-failures-per-minute", "50"});
  httplib::Client http("127.0.0.1", c.http_port());
  int refused = 0, limited = 0;
  std::string retry_after;
  for (int i = 0; i < 600; ++i) {
    const auto r = http.Get("/api/sweeps");
    ASSERT_TRUE(r);
    if (r->status == 401) ++refused;
    if (r->status == 429) ++limited, retry_after = r->get_header_value("Retry-After");
  }
  // 50 a minute, twice if the flood crossed into the next minute.
  EXPECT_GE(refused, 50);
  EXPECT_LE(refused, 100);
  EXPECT_EQ(refused + limited, 600);
  EXPECT_GT(std::stoi(retry_after), 0);
  EXPECT_LE(std::stoi(retry_after), 60);
  EXPECT_EQ(http.Get("/api/sweeps", {{"Authorization", "Bearer s3cret"}})->status, 200)
      << "the token's holder is served during the flood";
  orchestrator_client::Endpoint anonymous = c.endpoint();
  anonymous.token.clear();
  auto stub = pb::SweepService::NewStub(orchestrator_client::make_channel(anonymous));
  int exhausted = 0;
  for (int i = 0; i < 200; ++i) {
    auto ctx = orchestrator_client::make_context(anonymous, 5s);
    pb::ListSweepsResponse out;
    exhausted += stub->ListSweeps(ctx.get(), pb::ListSweepsRequest(), &out).error_code() ==
                 grpc::StatusCode::RESOURCE_EXHAUSTED;
  }
  EXPECT_GE(exhausted, 100) << "the gRPC door counts the same address";
  const auto [refusals, details] = c.audit_after_stop("user = '' AND allowed = 0");
  // 800 refusals: per minute touched, the first row and one summary.
  EXPECT_GE(refusals, 2);
  EXPECT_LE(refusals, 4) << details;
  EXPECT_NE(details.find("rate-limited after 50 a minute"), std::string::npos) << details;
}

// Every method of both services, called without the token, is refused before its handler runs:
// a handler added later cannot forget the check.
TEST(Orchestration, EveryGrpcMethodRefusesACallWithoutTheToken) {
  Cluster c("every_method", "s3cret");
  c.start_coordinator();
  orchestrator_client::Endpoint anonymous = c.endpoint();
  anonymous.token.clear();
  grpc::GenericStub stub(orchestrator_client::make_channel(anonymous));
  grpc::CompletionQueue queue;
  int methods = 0;
  for (const std::string service_name :
       {pb::SweepService::service_full_name(), pb::WorkerService::service_full_name()}) {
    const auto* service =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service_name);
    ASSERT_NE(service, nullptr) << service_name;
    for (int i = 0; i < service->method_count(); ++i, ++methods) {
      const std::string path = "/" + service_name + "/" + service->method(i)->name();
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + 10s);
      grpc::Slice empty("");
      const grpc::ByteBuffer request(&empty, 1);  // every field at its default
      auto call = stub.PrepareUnaryCall(&context, path, request, &queue);
      call->StartCall();
      grpc::ByteBuffer response;
      grpc::Status status;
      call->Finish(&response, &status, &status);
      void* tag = nullptr;
      bool ok = false;
      ASSERT_TRUE(queue.Next(&tag, &ok));
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << path << ": " << status.error_message();
    }
  }
  EXPECT_EQ(methods, 21);  // SweepService 15, WorkerService 6
  queue.Shutdown();
}

TEST(Orchestration, TlsCoordinatorServesClientsThatTrustItsCa) {
  // The certificate set-up of docs/deploy.md, with openssl, then a TLS coordinator on loopback.
  const auto dir =
      std::filesystem::temp_directory_path() / ("orch_tls_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string d = dir.string();
  for (const std::string& cmd :
       {"openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout " + d +
            "/ca.key -out " + d + "/ca.pem",
        "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout " + d + "/c.key -out " +
            d + "/c.csr",
        "printf 'subjectAltName=DNS:localhost\\n' > " + d + "/san.ext",
        "openssl x509 -req -in " + d + "/c.csr -CA " + d + "/ca.pem -CAkey " + d +
            "/ca.key -CAcreateserial -days 2 -extfile " + d + "/san.ext -out " + d + "/c.pem"})
    ASSERT_EQ(std::system((cmd + " > /dev/null 2>&1").c_str()), 0) << cmd;
  const int port = test_process::free_port();
  const std::string address = "localhost:" + std::to_string(port);
  ChildProcess coordinator(
      {COORDINATOR_BINARY, "--listen", "127.0.0.1:" + std::to_string(port), "--http", "127.0.0.1:0",
       "--db", d + "/s.db", "--tls-cert", d + "/c.pem", "--tls-key", d + "/c.key", "--ports-file",
       d + "/ports.json"},
      d + "/coordinator.log");
  ASSERT_TRUE(wait_until(
      [&] {
        return test_process::run_command(
                   {SWEEPCTL_BINARY, "--coordinator", address, "--tls-ca", d + "/ca.pem", "list"})
                   .exit_code == 0;
      },
      20s))
      << test_process::read_text(d + "/coordinator.log");
  // A plaintext client, or one that does not trust the CA, cannot talk to it.
  EXPECT_EQ(
      test_process::run_command({SWEEPCTL_BINARY, "--coordinator", address, "list"}).exit_code, 3);
  std::system(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other -keyout " + d +
               "/o.key -out " + d + "/other.pem > /dev/null 2>&1")
                  .c_str());
  EXPECT_EQ(test_process::run_command(
                {SWEEPCTL_BINARY, "--coordinator", address, "--tls-ca", d + "/other.pem", "list"})
                .exit_code,
            3);
  // The HTTP door serves HTTPS with the same pair, with HSTS, and nothing in clear.
  ASSERT_TRUE(wait_until([&] { return std::filesystem::exists(d + "/ports.json"); }, 20s));
  const int http_port = test_process::bound_port(d + "/ports.json", "http");
  auto https_client = [&](const std::string& ca) {
    auto client = std::make_unique<httplib::SSLClient>("localhost", http_port);
    client->set_ca_cert_path(ca.c_str());
    client->enable_server_certificate_verification(true);
    client->set_connection_timeout(5);
    client->set_read_timeout(5);
    return client;
  };
  const auto https = https_client(d + "/ca.pem");
  const auto page = https->Get("/");
  ASSERT_TRUE(page) << httplib::to_string(page.error());
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Strict-Transport-Security"), "max-age=31536000");
  const auto api = https->Get("/api/sweeps");
  ASSERT_TRUE(api) << httplib::to_string(api.error());
  EXPECT_EQ(api->status, 200);
  const auto untrusted = https_client(d + "/other.pem")->Get("/");
  EXPECT_EQ(untrusted.error(), httplib::Error::SSLServerVerification)
      << "a client that does not trust the CA refuses the door: "
      << httplib::to_string(untrusted.error());
  httplib::Client plain("127.0.0.1", http_port);
  plain.set_read_timeout(3);
  EXPECT_FALSE(plain.Get("/healthz")) << "no plaintext answer on the HTTPS door";
  std::filesystem::remove_all(dir);
}

// With no coordinator named (no --coordinator, no SWEEP_COORDINATOR), validate checks the file
// here instead of failing to connect.
TEST(Orchestration, SweepctlValidatesLocallyWhenNoCoordinatorIsNamed) {
  const auto good = test_process::run_command(
      {SWEEPCTL_BINARY, "validate", std::string(SOURCE_DIR) + "/examples/quick_cpu_sweep.yaml"});
  EXPECT_EQ(good.exit_code, 0) << good.out;
  EXPECT_NE(good.out.find("is valid: 16 jobs (checked locally"), std::string::npos) << good.out;
  const std::string bad =
      std::filesystem::temp_directory_path() / ("bad_local_" + std::to_string(getpid()) + ".yaml");
  std::ofstream(bad) << "name: x\nbase: {optimizer: {name: lion}}\n";
  const auto refused = test_process::run_command({SWEEPCTL_BINARY, "validate", bad});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.out.find("optimizer.name: must be one of adamw, muon, got 'lion'"),
            std::string::npos)
      << refused.out;
  std::filesystem::remove(bad);
}

TEST(Orchestration, SweepctlNamesEveryProblemOfABadSweepFile) {
  Cluster c("badfile");
  c.start_coordinator();
  const std::string file = c.dir() + "/bad.yaml";
  std::ofstream(file) << sweep_yaml("bad", c.cache(), 10, R"(
ablations:
  - {label: fast, set: {optimizer.lr: -1.0}}
grid:
  optimizer.name: [adamw, lion]
)");
  const std::string out = c.dir() + "/validate.out";
  ChildProcess validate({SWEEPCTL_BINARY, "--coordinator", c.endpoint().address, "validate", file},
                        out);
  EXPECT_EQ(WEXITSTATUS(*validate.wait_for_exit(20s)), 2);
  const std::string text = test_process::read_text(out);
  EXPECT_NE(text.find("ablations[0].set.optimizer.lr: must be > 0"), std::string::npos) << text;
  EXPECT_NE(text.find("grid.optimizer.name[1]: must be one of adamw, muon, got 'lion'"),
            std::string::npos)
      << text;
  ChildProcess submit({SWEEPCTL_BINARY, "--coordinator", c.endpoint().address, "submit", file},
                      c.dir() + "/submit.out");
  EXPECT_EQ(WEXITSTATUS(*submit.wait_for_exit(20s)), 2);

  // A YAML alias bomb (under 1 KB, 10^9 nodes expanded) is refused with the limit named, and the
  // coordinator goes on answering.
  std::ofstream(c.dir() + "/bomb.yaml") << test_documents::yaml_alias_bomb("name: bomb\n");
  ChildProcess refused(
      {SWEEPCTL_BINARY, "--coordinator", c.endpoint().address, "submit", c.dir() + "/bomb.yaml"},
      c.dir() + "/bomb.out");
  EXPECT_EQ(WEXITSTATUS(*refused.wait_for_exit(20s)), 2);
  EXPECT_NE(test_process::read_text(c.dir() + "/bomb.out").find("refused: more than 100000 nodes"),
            std::string::npos)
      << test_process::read_text(c.dir() + "/bomb.out");
  ChildProcess list({SWEEPCTL_BINARY, "--coordinator", c.endpoint().address, "list"},
                    c.dir() + "/list.out");
  EXPECT_EQ(WEXITSTATUS(*list.wait_for_exit(20s)), 0);

  // Size limits, named: a 2 MiB sweep file passes gRPC but not the document limit; a 20 MiB one
  // does not pass gRPC's request limit.
  for (const auto& [mib, expected] : std::vector<std::pair<int, std::string>>{
           {2, "larger than the limit of 1048576 bytes"},
           {20, "message too large for gRPC's limits (requests 16 MiB"}}) {
    const std::string big = c.dir() + "/big" + std::to_string(mib) + ".yaml";
    std::ofstream(big) << "name: big\n# " << std::string(size_t(mib) << 20, 'x') << "\n";
    const auto r = test_process::run_command(
        {SWEEPCTL_BINARY, "--coordinator", c.endpoint().address, "submit", big});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.out.find(expected), std::string::npos) << r.out.substr(0, 400);
  }
}

}  // namespace
}  // namespace orchestration_test
