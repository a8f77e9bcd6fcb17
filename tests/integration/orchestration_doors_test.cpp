// The HTTP doors against a hostile client (http_door.h): connections one peer holds open delay
// nobody else and no probe, and every bound on a request is answered with its status and the
// bound it broke. The other peer is another loopback address (127.0.0.2), as a second machine.
#include <poll.h>

#include <future>

#include "orchestration_cluster.h"

namespace orchestration_test {
namespace {

// `n` connections from `source` that send the start of a request and never finish it.
std::vector<int> hold_open(const char* source, int port, int n) {
  std::vector<int> held;
  const std::string start = "GET /api/sweeps HTTP/1.1\r\nHost: coordinator\r\n";
  for (int i = 0; i < n; ++i)
    if (const int s = test_process::connect_from(source, port); s >= 0) {
      send(s, start.data(), start.size(), MSG_NOSIGNAL);
      held.push_back(s);
    }
  return held;
}

// How many of `held` the server keeps open: a closed one reads as end of file.
int still_open(const std::vector<int>& held) {
  int open = 0;
  for (const int s : held) {
    pollfd p{s, POLLIN, 0};
    open += poll(&p, 1, 0) == 0;
  }
  return open;
}

void close_all(std::vector<int>& held) {
  for (const int s : held) close(s);
  held.clear();
}

// Milliseconds `path` takes to answer 200 on 127.0.0.1:port; -1 without such an answer in 3 s.
double read_ms(int port, const std::string& path, const std::string& token = "") {
  httplib::Client http("127.0.0.1", port);
  http.set_connection_timeout(3);
  http.set_read_timeout(3);
  const auto start = std::chrono::steady_clock::now();
  const auto r = http.Get(path, {{"Authorization", token.empty() ? "" : "Bearer " + token}});
  if (!r || r->status != 200) return -1;
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

// Before: with 8 such connections an authorized read took 9 s; with 40 none came within 20 s,
// and /healthz, the liveness probe, shared the door.
TEST(Orchestration, ConnectionsOnePeerHoldsOpenDelayNoOtherCallerAndNoProbe) {
  Cluster c("held_open", "s3cret");
  c.start_coordinator(3000, {"--health", "127.0.0.1:0"});
  ASSERT_GT(c.health_port(), 0);
  const auto opened = std::chrono::steady_clock::now();
  std::vector<int> held = hold_open("127.0.0.2", c.http_port(), 300);
  ASSERT_EQ(held.size(), 300u) << "127.0.0.2 must be usable as a second loopback peer";
  // The per-address cap: the rest are closed at accept; the first 32 wait for their headers.
  EXPECT_TRUE(wait_until([&] { return still_open(held) == 32; }, 5s)) << still_open(held);
  for (int i = 0; i < 5; ++i) {
    const double ms = read_ms(c.http_port(), "/api/sweeps", "s3cret");
    EXPECT_GE(ms, 0) << "no answer within 3 s";
    EXPECT_LT(ms, 1000);
  }
  // The probes have a listener of their own. Held open by the same peer, it still answers; and
  // when this address fills the public door, the public /healthz fails while the probe answers.
  std::vector<int> held_probes = hold_open("127.0.0.2", c.health_port(), 100);
  EXPECT_TRUE(wait_until([&] { return still_open(held_probes) == 16; }, 5s));
  EXPECT_GE(read_ms(c.health_port(), "/healthz"), 0);
  EXPECT_GE(read_ms(c.health_port(), "/readyz"), 0);
  std::vector<int> held_here = hold_open("127.0.0.1", c.http_port(), 32);
  EXPECT_TRUE(wait_until([&] { return still_open(held_here) == 32; }, 5s));
  EXPECT_EQ(read_ms(c.http_port(), "/healthz"), -1) << "the public door is full for 127.0.0.1";
  EXPECT_GE(read_ms(c.health_port(), "/healthz"), 0) << "the probe listener is not";
  close_all(held_here);
  // The worker's health port is the same door.
  const int worker_health = test_process::free_port();
  c.start_worker("w1", 1, "-", {"--health", "127.0.0.1:" + std::to_string(worker_health)});
  ASSERT_TRUE(wait_until([&] { return read_ms(worker_health, "/readyz") >= 0; }, 20s))
      << c.diagnostics();
  std::vector<int> held_worker = hold_open("127.0.0.2", worker_health, 100);
  EXPECT_TRUE(wait_until([&] { return still_open(held_worker) == 16; }, 5s))
      << still_open(held_worker);
  EXPECT_GE(read_ms(worker_health, "/healthz"), 0);
  // Idle connections are closed after the door's 10 s, not before.
  std::this_thread::sleep_until(opened + 5s);
  EXPECT_EQ(still_open(held), 32) << "still within the idle timeout";
  EXPECT_TRUE(wait_until([&] { return still_open(held) + still_open(held_worker) == 0; }, 20s));
  close_all(held);
  close_all(held_probes);
  close_all(held_worker);
}

// The whole answer to `request`, sent on a fresh connection (which the request asks to close).
std::string exchange(int port, const std::string& request) {
  const int s = test_process::connect_from("127.0.0.1", port);
  if (s < 0) return "";
  timeval timeout{5, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  send(s, request.data(), request.size(), MSG_NOSIGNAL);
  std::string answer;
  char buffer[4096];
  for (ssize_t n; (n = recv(s, buffer, sizeof buffer, 0)) > 0;) answer.append(buffer, size_t(n));
  close(s);
  return answer;
}

TEST(Orchestration, EachBoundOfTheHttpDoorIsAnsweredWithItsStatus) {
  Cluster c("bounds", "s3cret");
  c.start_coordinator();
  const std::string head = "Host: coordinator\r\nAuthorization: Bearer s3cret\r\n";
  std::string many_params = "p0=0";
  for (int i = 1; i < 100; ++i) many_params += "&p" + std::to_string(i) + "=" + std::to_string(i);
  std::string repeated;  // 20 fields of one name: 18 KB in all, 900 bytes each
  for (int i = 0; i < 20; ++i) repeated += "X-Pad: " + std::string(900, 'a') + "\r\n";
  struct Case {
    const char* bound;
    std::string request;
    int status;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"none broken", "GET /api/sweeps?limit=5 HTTP/1.1\r\n" + head + "\r\n", 200, "sweeps"},
      {"URL length",
       "GET /api/sweeps?pad=" + std::string(5000, 'a') + " HTTP/1.1\r\n" + head + "\r\n", 414,
       "at most 4096"},
      {"query parameters", "GET /api/sweeps?" + many_params + " HTTP/1.1\r\n" + head + "\r\n", 400,
       "the query has 100 parameters; at most 64"},
      {"header size",
       "GET /api/sweeps HTTP/1.1\r\n" + head + "X-Pad: " + std::string(20000, 'a') + "\r\n\r\n",
       431, "at most 16384"},
      {"body size", "GET /api/sweeps HTTP/1.1\r\n" + head + "Content-Length: 5\r\n\r\nhello", 413,
       "body is over 0 bytes"},
      {"header size, one name repeated", "GET /api/sweeps HTTP/1.1\r\n" + head + repeated + "\r\n",
       431, "at most 16384"},
      {"method with a body",
       "POST /api/sweeps HTTP/1.1\r\n" + head + "Content-Length: 5\r\n\r\nhello", 405,
       "only GET and HEAD"},
      {"method", "POST /api/sweeps HTTP/1.1\r\n" + head + "Content-Length: 0\r\n\r\n", 405,
       "only GET and HEAD"},
  };
  for (const Case& k : cases) {
    std::string request = k.request;
    request.insert(request.find("\r\n") + 2, "Connection: close\r\n");
    const std::string answer = exchange(c.http_port(), request);
    ASSERT_GT(answer.size(), 12u) << k.bound << ": no answer";
    EXPECT_EQ(std::stoi(answer.substr(9, 3)), k.status) << k.bound << ":\n"
                                                        << answer.substr(0, 400);
    EXPECT_NE(answer.find(k.says), std::string::npos) << k.bound << ":\n" << answer.substr(0, 400);
  }
}

}  // namespace
}  // namespace orchestration_test

namespace orchestration_test {
namespace {

// A channel with a connection of its own (channels with the same arguments share one).
std::shared_ptr<grpc::Channel> own_connection(const std::string& address, int n) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("test.connection", n);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

// The gRPC door's bounds: 64 streams per connection (a 65th call waits for one of them),
// --max-calls-per-address for all of an address's connections (over it: refused at once), and
// 16 KiB of headers per call (gRPC's own default, 8 KiB, held before too). Message sizes:
// Orchestration.SweepctlNamesEveryProblemOfABadSweepFile (orchestration_access_test.cpp).
TEST(Orchestration, GrpcBoundsStreamsPerConnectionAndCallsPerAddress) {
  Cluster c("grpc_bounds", "s3cret");
  c.start_coordinator(3000, {"--max-calls-per-address", "66"});
  const int64_t sweep = c.submit(sweep_yaml("watched", c.cache(), 5000, ""));  // no worker: stays
  pb::SweepRef ref;
  ref.set_sweep_id(sweep);
  struct Watch {
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<grpc::ClientReader<pb::GetSweepResponse>> reader;
  };
  auto watch = [&](pb::SweepService::Stub& stub) {
    Watch w{orchestrator_client::make_context(c.endpoint(), 120s), nullptr};
    w.reader = stub.WatchSweep(w.context.get(), ref);
    pb::GetSweepResponse first;
    if (!w.reader->Read(&first))
      ADD_FAILURE() << "no first snapshot: " << w.reader->Finish().error_message();
    return w;
  };
  auto list = [&](pb::SweepService::Stub& stub, std::chrono::milliseconds timeout) {
    auto context = orchestrator_client::make_context(c.endpoint(), timeout);
    pb::ListSweepsResponse out;
    return stub.ListSweeps(context.get(), pb::ListSweepsRequest(), &out);
  };
  auto a = pb::SweepService::NewStub(own_connection(c.endpoint().address, 1));
  auto b = pb::SweepService::NewStub(own_connection(c.endpoint().address, 2));
  std::vector<Watch> watches;
  for (int i = 0; i < 64; ++i) watches.push_back(watch(*a));
  EXPECT_EQ(list(*a, 1500ms).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
      << "a 65th stream on the connection waits";
  EXPECT_TRUE(list(*b, 5s).ok()) << "while another connection is served";
  {  // ... and goes through once one of the 64 ends
    auto waiting = std::async(std::launch::async, [&] { return list(*a, 10s); });
    std::this_thread::sleep_for(300ms);
    watches.front().context->TryCancel();
    EXPECT_TRUE(waiting.get().ok()) << "the 65th call, once a stream of its connection ended";
    watches.erase(watches.begin());
    // The cancelled watch's handler notices within its 1 s wait, and gives its place back.
    std::this_thread::sleep_for(2s);
  }
  for (int i = 0; i < 3; ++i) watches.push_back(watch(*b));  // 63 + 3: 66 from 127.0.0.1
  const grpc::Status refused = list(*b, 5s);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(refused.error_message().find("66 calls in progress (--max-calls-per-address)"),
            std::string::npos)
      << refused.error_message();
  watches.back().context->TryCancel();
  EXPECT_TRUE(wait_until([&] { return list(*b, 5s).ok(); }, 10s)) << "a place came free";
  {  // A call's headers over 16 KiB are refused, and the door goes on serving (gRPC may close
     // that connection: the channel connects again).
    auto context = orchestrator_client::make_context(c.endpoint(), 5s);
    context->AddMetadata("x-pad", std::string(32 * 1024, 'a'));
    pb::ListSweepsResponse out;
    EXPECT_FALSE(b->ListSweeps(context.get(), pb::ListSweepsRequest(), &out).ok());
    EXPECT_TRUE(wait_until([&] { return list(*b, 5s).ok(); }, 10s));
  }
  for (Watch& w : watches) w.context->TryCancel();
}

}  // namespace
}  // namespace orchestration_test
