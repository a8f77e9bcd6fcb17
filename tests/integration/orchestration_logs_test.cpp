// Run logs on a real coordinator, worker and external trainer (storage/log_store.h): `sweepctl
// logs --follow` follows a running job's output line by line and ends with the attempt; the log
// is kept byte for byte, invalid UTF-8 and a last line without a newline included, and printed
// to a terminal without its control characters; the dashboard's API serves the same bytes.
#include <fstream>

#include "orchestration_cluster.h"

namespace orchestration_test {
namespace {

std::string base64_decode(const std::string& in) {
  static const std::string chars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int value = 0, bits = -8;
  for (char c : in) {
    const size_t i = chars.find(c);
    if (i == std::string::npos) break;  // '=' padding ends it
    value = (value << 6) + int(i);
    bits += 6;
    if (bits >= 0) {
      out.push_back(char((value >> bits) & 0xff));
      bits -= 8;
    }
  }
  return out;
}

TEST(Orchestration, SweepctlLogsFollowsARunningJobAndKeepsItsBytes) {
  Cluster c("logs");
  c.start_coordinator();
  c.start_worker("w1");
  // A program that writes a line every 0.2 s, then bytes that are not UTF-8, an escape sequence
  // and no final newline, and fails.
  const std::string script = c.dir() + "/talker.py";
  std::ofstream(script)
      << "import sys, time\n"
         "for i in range(15):\n"
         "    print(f'line {i}', flush=True)\n"
         "    time.sleep(0.2)\n"
         "sys.stdout.buffer.write(b'bad \\xff\\xfe bytes \\x1b[31m red, no newline')\n"
         "sys.stdout.flush()\n"
         "sys.exit(1)\n";
  const int64_t sweep = c.submit("name: logs\nbase:\n  command: [/usr/bin/python3, " + script +
                                 "]\n  optimizer: {name: sgd, lr: 1.0}\n  training: {max_steps: "
                                 "10, batch_tokens: 64, eval_every: 50, eval_tokens: 512}\n"
                                 "  data: {max_corpus_bytes: 200000}\nmax_attempts: 1\n");
  ASSERT_GT(sweep, 0);
  int64_t job = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        const auto s = c.get(sweep);
        // ASSIGNED until its first metrics: this program sends none.
        if (s.jobs_size() == 0 ||
            (s.jobs(0).state() != pb::RUNNING && s.jobs(0).state() != pb::ASSIGNED))
          return false;
        job = s.jobs(0).job_id();
        return true;
      },
      60s))
      << c.diagnostics();
  // Started while the job runs: it must print what comes after, and end when the attempt ends.
  const auto follow =
      test_process::run_command({SWEEPCTL_BINARY, "--coordinator", c.endpoint().address, "logs",
                                 std::to_string(job), "--follow"});
  EXPECT_EQ(follow.exit_code, 0) << follow.out;
  for (int i = 0; i < 15; ++i)
    EXPECT_NE(follow.out.find("line " + std::to_string(i) + "\n"), std::string::npos)
        << i << ": " << follow.out;
  EXPECT_NE(follow.out.find("bad \xff\xfe bytes ?[31m red, no newline"), std::string::npos)
      << follow.out;
  EXPECT_EQ(follow.out.find('\x1b'), std::string::npos) << "no escape reaches the terminal";
  ASSERT_TRUE(c.wait_finished(sweep, 60s));
  EXPECT_EQ(c.get(sweep).jobs(0).state(), pb::FAILED);

  // The API keeps the bytes exactly as written.
  std::string expected;
  for (int i = 0; i < 15; ++i) expected += "line " + std::to_string(i) + "\n";
  expected += "bad \xff\xfe bytes \x1b[31m red, no newline";
  httplib::Client http("127.0.0.1", c.http_port());
  const auto res = http.Get("/api/runs/" + std::to_string(job) + "/log");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const nlohmann::json log = nlohmann::json::parse(res->body);
  EXPECT_EQ(base64_decode(log["before_gap"].get<std::string>()), expected);
  EXPECT_EQ(log["omitted_bytes"], 0);
  EXPECT_TRUE(log["finished"].get<bool>());
  // An unknown job is refused by name.
  const auto none = test_process::run_command(
      {SWEEPCTL_BINARY, "--coordinator", c.endpoint().address, "logs", "999"});
  EXPECT_NE(none.exit_code, 0);
  EXPECT_NE(none.out.find("no job 999"), std::string::npos) << none.out;
}

}  // namespace
}  // namespace orchestration_test
