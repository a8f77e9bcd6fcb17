// Events on a real coordinator, worker and trainer (docs/deploy.md, "Notifications"): a job
// that fails for good, a health rule that notifies and one that stops, and the sweep's end reach
// the coordinator's --notify-url (a receiver that answers 500 first: retried) and the sweep's own
// allowed URL; sweepctl watch prints them; a sweep naming a URL the coordinator does not allow is
// refused with its path.
#include <fstream>

#include "orchestration_cluster.h"
#include "webhook_receiver.h"

namespace orchestration_test {
namespace {

std::vector<std::string> kinds_of(const std::vector<nlohmann::json>& bodies) {
  std::vector<std::string> out;
  for (const auto& b : bodies) out.push_back(b.value("kind", std::string("?")));
  return out;
}

TEST(Orchestration, EventsReachWebhooksWithRetriesAndSweepctlWatchPrintsThem) {
  test_webhook::Receiver operator_hook(/*fail_first=*/1), sweep_hook;
  Cluster c("events");
  c.start_coordinator(
      3000, {"--notify-url", operator_hook.url(), "--notify-retry-ms", "100", "--notify-allow",
             "http://127.0.0.1:" + std::to_string(sweep_hook.port())});
  c.start_worker("w1");
  // stalled (lr 1e-9) never improves its val loss: the notify rule tells at its third evaluation
  // and lets it run; the stop rule ends it at its fifth. broken names shards nobody has: it fails
  // for good on its one attempt. The baseline trains to its end.
  const std::string missing = c.cache() + "/nowhere";
  const int64_t sweep = c.submit(R"(name: events
base:
  model: {preset: micro}
  optimizer: {lr: 3.0e-3}
  training: {max_steps: 20, batch_tokens: 256, micro_batch: 8, eval_every: 5, eval_tokens: 512}
  data: {corpus: gcide, max_corpus_bytes: 1000000, cache_dir: )" +
                                 c.cache() + R"(}
max_attempts: 1
ablations:
  - {label: stalled, set: {optimizer.lr: 1.0e-9, training.max_steps: 20000}}
  - {label: broken, set: {data: {train: ')" +
                                 missing + R"(/train_*.bin', val: ')" + missing +
                                 R"(/val.bin'}}}
health:
  - {when: {no_val_improvement_evals: 2}, do: notify}
  - {when: {no_val_improvement_evals: 4}, do: stop}
notify: [')" + sweep_hook.url("/sweep") +
                                 R"(']
)");
  ASSERT_GT(sweep, 0);
  ASSERT_TRUE(c.wait_finished(sweep, 300s)) << c.diagnostics();
  // Events are written within about 2 s of what they tell, then delivered.
  ASSERT_TRUE(wait_until([&] { return operator_hook.bodies().size() >= 4; }, 30s))
      << c.diagnostics();
  ASSERT_TRUE(wait_until([&] { return sweep_hook.bodies().size() >= 4; }, 30s));
  std::vector<std::string> kinds = kinds_of(operator_hook.bodies());
  std::sort(kinds.begin(), kinds.end());
  EXPECT_EQ(kinds, (std::vector<std::string>{"health-rule", "health-rule", "jobs-failed",
                                             "sweep-finished"}));
  EXPECT_EQ(operator_hook.requests(), 5) << "the first answer was a 500: that event came again";
  EXPECT_EQ(kinds_of(sweep_hook.bodies()).size(), 4u);
  std::string texts;
  for (const auto& b : operator_hook.bodies()) texts += b["text"].get<std::string>() + "\n";
  EXPECT_NE(texts.find("health rule no_val_improvement_evals 2: notify: "), std::string::npos)
      << texts;
  EXPECT_NE(texts.find("health rule no_val_improvement_evals 4: stop: "), std::string::npos)
      << texts;
  EXPECT_NE(texts.find("1 job(s) of sweep " + std::to_string(sweep) + " failed for good: job "),
            std::string::npos)
      << texts;
  EXPECT_NE(texts.find("no token shard matches"), std::string::npos) << texts;
  EXPECT_NE(texts.find("finished: 1 SUCCEEDED, 1 FAILED, 1 STOPPED"), std::string::npos) << texts;

  // The notify rule let the run go on; the stop rule ended it.
  const pb::GetSweepResponse done = c.get(sweep);
  for (const auto& j : done.jobs())
    if (j.label() == "stalled") {
      EXPECT_EQ(j.state(), pb::STOPPED) << j.message();
      EXPECT_NE(j.message().find("no_val_improvement_evals 4: stop"), std::string::npos);
    }

  // sweepctl watch (not a terminal): one line per event.
  const auto watch = test_process::run_command(
      {SWEEPCTL_BINARY, "--coordinator", c.endpoint().address, "watch", std::to_string(sweep)});
  EXPECT_EQ(watch.exit_code, 0) << watch.out;
  EXPECT_NE(watch.out.find("sweep " + std::to_string(sweep) + ": event "), std::string::npos)
      << watch.out;
  EXPECT_NE(watch.out.find("no_val_improvement_evals 2: notify"), std::string::npos) << watch.out;
  EXPECT_NE(watch.out.find("failed for good"), std::string::npos) << watch.out;

  // The dashboard's API carries them too.
  httplib::Client http("127.0.0.1", c.http_port());
  const auto page = http.Get("/api/sweeps/" + std::to_string(sweep));
  ASSERT_TRUE(page);
  const nlohmann::json detail = nlohmann::json::parse(page->body);
  ASSERT_EQ(detail["events"].size(), 4u) << page->body.substr(0, 2000);
  EXPECT_EQ(detail["events"][3]["kind"], "EVENT_SWEEP_FINISHED");

  // A sweep may name only allowed origins: refused with its path, before any job exists.
  const std::string file = c.dir() + "/elsewhere.yaml";
  std::ofstream(file) << sweep_yaml("elsewhere", c.cache(), 5,
                                    "notify: ['http://127.0.0.1:9/x']\n");
  const auto refused = test_process::run_command(
      {SWEEPCTL_BINARY, "--coordinator", c.endpoint().address, "submit", file});
  EXPECT_NE(refused.exit_code, 0) << refused.out;
  EXPECT_NE(refused.out.find("notify[0]: http://127.0.0.1:9 is not among this coordinator's "
                             "--notify-allow origins"),
            std::string::npos)
      << refused.out;
}

}  // namespace
}  // namespace orchestration_test
