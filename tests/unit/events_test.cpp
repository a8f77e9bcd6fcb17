// Events and webhooks (server/events/, storage/event_store.h) on a real SQLite file and real HTTP
// receivers on loopback: news becomes an event once (a flood of failures is one event), across a
// restart too; the queue and the event log stay bounded; no-worker is told once per outage;
// deliveries are retried with backoff against a receiver that answers 500, is down or is slow,
// and given up with their reason; webhook URLs are refused with their path.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <thread>

#include "../integration/webhook_receiver.h"
#include "scratch_dir.h"
#include "server/events/event_text.h"
#include "server/events/event_watch.h"
#include "server/events/notifier.h"
#include "server/events/notify_flags.h"
#include "server/storage/store.h"
#include "sweep_file/sweep_spec.h"

using namespace server;
using namespace std::chrono_literals;

namespace {

bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

class EventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fresh_test_dir("events_test");
    store_ = std::make_unique<Store>(path());
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string path() const { return (dir_ / "s.db").string(); }
  int64_t submit(int seeds, const std::string& extra = "") {
    std::string spec =
        "name: t\nbase: {model: {preset: micro}, training: {max_steps: 10, batch_tokens: 256, "
        "micro_batch: 8}}\nseeds: [";
    for (int i = 1; i <= seeds; ++i) spec += (i > 1 ? ", " : "") + std::to_string(i);
    const sweep_file::SweepPlan plan =
        sweep_file::plan_sweep(spec + "]\n" + extra, "t.yaml", 20000);
    EXPECT_TRUE(plan.problems.empty()) << plan.problems[0].to_string();
    return store_->sweeps.create_sweep(plan, spec, 1000);
  }
  // Sets jobs' states as the store's transitions would leave them (a second connection: WAL).
  void sql(const std::string& statement) {
    Database db(path());
    db.exec(statement);
  }
  std::vector<EventRow> events(int64_t sweep) { return store_->events.for_sweep(sweep, 0, 100000); }

  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(EventsTest, AFloodOfFailuresIsOneEventWrittenOnceAcrossARestart) {
  const int64_t sweep = submit(2000);
  EventWatch watch(store_->events, 0);
  EXPECT_EQ(watch.look(5000), 0) << "nothing happened yet";
  sql("UPDATE jobs SET state = 'FAILED', updated_ms = 2000, message = 'no token shard matches x'");
  EXPECT_EQ(watch.look(5000), 2) << "one jobs-failed and one sweep-finished event";
  std::vector<EventRow> e = events(sweep);
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].kind, EventKind::kJobsFailed);
  EXPECT_NE(
      e[0].text.find("2000 job(s) of sweep " + std::to_string(sweep) + " failed for good: job "),
      std::string::npos)
      << e[0].text;
  EXPECT_NE(e[0].text.find("no token shard matches x; "), std::string::npos) << e[0].text;
  EXPECT_NE(e[0].text.find("and 1997 more"), std::string::npos) << e[0].text;
  const nlohmann::json detail = nlohmann::json::parse(e[0].detail_json);
  EXPECT_EQ(detail["failed_jobs"], 2000);
  EXPECT_EQ(detail["job_ids"].size(), kFailedJobsInDetail);
  EXPECT_EQ(e[1].kind, EventKind::kSweepFinished);
  EXPECT_NE(e[1].text.find("finished: 2000 FAILED"), std::string::npos) << e[1].text;

  // Announced once, also by a coordinator started again on the same file.
  EXPECT_EQ(watch.look(6000), 0);
  store_ = std::make_unique<Store>(path());
  EventWatch again(store_->events, 0);
  EXPECT_EQ(again.look(7000), 0);
  // A retried job that fails again is news again, and its sweep finishes again.
  sql("UPDATE jobs SET updated_ms = 8000 WHERE idx = 0");
  EXPECT_EQ(again.look(9000), 2);
  e = events(sweep);
  ASSERT_EQ(e.size(), 4u);
  EXPECT_NE(e[2].text.find("1 job(s)"), std::string::npos) << e[2].text;
}

TEST_F(EventsTest, TheLogAndTheDeliveryQueueStayBounded) {
  const int64_t sweep = submit(1);
  std::vector<EventRow> many;
  for (int i = 0; i < EventStore::kMaxEvents + 5; ++i)
    many.push_back({0, 1000 + i, EventKind::kHealthRule, sweep, "e" + std::to_string(i), "{}"});
  store_->events.announce({}, many);
  std::vector<EventRow> kept = events(sweep);
  ASSERT_EQ(kept.size(), size_t(EventStore::kMaxEvents));
  EXPECT_EQ(kept.front().text, "e5") << "the oldest went";
  // Every kept event is queued for the URL; beyond kMaxPendingPerUrl the oldest are given up.
  EXPECT_EQ(store_->events.queue_deliveries({"http://127.0.0.1:9/x"}, 2000),
            EventStore::kMaxEvents);
  auto counts = store_->events.delivery_counts();
  EXPECT_EQ(counts[DeliveryState::kPending], EventStore::kMaxPendingPerUrl);
  EXPECT_EQ(counts[DeliveryState::kGivenUp],
            EventStore::kMaxEvents - EventStore::kMaxPendingPerUrl);
  EXPECT_EQ(store_->events.queue_deliveries({"http://127.0.0.1:9/x"}, 2000), 0)
      << "each event is queued once";
  const std::vector<DueDelivery> due = store_->events.due_deliveries(2000, 5);
  ASSERT_EQ(due.size(), 5u);
  EXPECT_EQ(due[0].event.text,
            "e" + std::to_string(EventStore::kMaxEvents + 5 - EventStore::kMaxPendingPerUrl))
      << "the newest thousand wait";
}

TEST_F(EventsTest, NoWorkerIsToldOncePerOutage) {
  submit(1);  // one job pending since 1000
  EventWatch watch(store_->events, 60000);
  EXPECT_EQ(watch.look(50000), 0) << "waiting 49 s is no outage yet";
  EXPECT_EQ(watch.look(61000), 1);
  EXPECT_EQ(watch.look(200000), 0) << "the same outage";
  std::vector<EventRow> e = store_->events.for_sweep(1, 0, 10);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, EventKind::kNoWorker);
  EXPECT_FALSE(e[0].sweep_id);
  EXPECT_NE(e[0].text.find("no worker has been heard from for 1 minute(s)"), std::string::npos)
      << e[0].text;
  // A worker heard from at 300 s, then silent: a new outage, told 60 s later.
  WorkerRow w;
  w.id = "w1";
  w.hostname = "h";
  w.backend = "cpu";
  w.slots = 1;
  w.devices_json = "[]";
  store_->workers.register_worker(w, {}, 300000, 5000);
  EXPECT_EQ(watch.look(330000), 0);
  EXPECT_EQ(watch.look(361000), 1);
  // With no job waiting there is nothing to tell.
  sql("UPDATE jobs SET state = 'CANCELLED'");
  sql("UPDATE workers SET last_heartbeat_ms = 400000");
  EXPECT_EQ(watch.look(900000), 1) << "only the sweep's end";
}

// A delivery per URL: webhook_body's fields, and the sweep's own URLs beside --notify-url.
TEST_F(EventsTest, DeliveriesRetryWithBackoffAndGiveUpWithTheirReason) {
  test_webhook::Receiver flaky(/*fail_first=*/2), own(0);
  test_webhook::Receiver slow(0, 1500ms);
  const int64_t sweep = submit(1, "notify: ['" + own.url("/own") + "']\n");
  ASSERT_TRUE(store_->events.append(
      {0, 1000, EventKind::kHealthRule, sweep, "rule fired", "{\"job_id\": 3}"}));
  // The down receiver: a port nobody listens on (a receiver started and stopped).
  int down_port = 0;
  {
    test_webhook::Receiver gone;
    down_port = gone.port();
  }
  NotifierSettings settings;
  settings.urls = {flaky.url(), slow.url(), "http://127.0.0.1:" + std::to_string(down_port) + "/x"};
  settings.base_retry_ms = 50;
  settings.max_retry_ms = 200;
  settings.max_attempts = 3;
  settings.timeout_ms = 500;
  EXPECT_EQ(retry_delay_ms(settings, 1), 50);
  EXPECT_EQ(retry_delay_ms(settings, 2), 100);
  EXPECT_EQ(retry_delay_ms(settings, 3), -1) << "given up after max_attempts";
  {
    Notifier notifier(store_->events, settings);
    notifier.start();
    // Four deliveries (three --notify-url, the sweep's own), each delivered or given up.
    ASSERT_TRUE(wait_for(
        [&] {
          auto counts = store_->events.delivery_counts();
          return counts[DeliveryState::kDelivered] + counts[DeliveryState::kGivenUp] == 4;
        },
        20s));
  }
  ASSERT_EQ(flaky.bodies().size(), 1u);
  EXPECT_EQ(flaky.requests(), 3) << "two 500s, then delivered";
  const nlohmann::json body = flaky.bodies()[0];
  EXPECT_EQ(body["text"], "rule fired");
  EXPECT_EQ(body["kind"], "health-rule");
  EXPECT_EQ(body["sweep_id"], sweep);
  EXPECT_EQ(body["detail"]["job_id"], 3);
  EXPECT_GT(body["event_id"].get<int64_t>(), 0);
  ASSERT_EQ(own.bodies().size(), 1u) << "the sweep's own URL";
  EXPECT_EQ(own.paths()[0], "/own");
  auto counts = store_->events.delivery_counts();
  EXPECT_EQ(counts[DeliveryState::kDelivered], 2);
  EXPECT_EQ(counts[DeliveryState::kGivenUp], 2) << "the slow one and the down one";
  Database db(path());
  Statement q(db.handle(),
              "SELECT url, attempts, last_error FROM event_deliveries WHERE state = 'given-up' "
              "ORDER BY url");
  std::vector<std::string> errors;
  while (q.step()) {
    EXPECT_EQ(q.int64(1), 3) << q.text(0);
    errors.push_back(q.text(0) + ": " + q.text(2));
  }
  ASSERT_EQ(errors.size(), 2u);
  for (const std::string& e : errors) EXPECT_NE(e.find("no answer: "), std::string::npos) << e;
  EXPECT_GE(slow.requests(), 1) << "the slow receiver was called and timed out";
}

TEST(NotifySpec, WebhookUrlsAreParsedAndRefusedWithTheirPath) {
  std::string problem;
  const auto u =
      sweep_file::parse_webhook_url("https://Hooks.Example.com/services/T0?x=1", problem);
  ASSERT_TRUE(u) << problem;
  EXPECT_EQ(u->origin(), "https://hooks.example.com:443");
  EXPECT_EQ(u->target, "/services/T0?x=1");
  EXPECT_EQ(sweep_file::parse_webhook_url("http://[::1]:8080", problem)->origin(),
            "http://[::1]:8080");
  for (const auto& [url, why] : std::vector<std::pair<std::string, std::string>>{
           {"ftp://h/x", "must start with http:// or https://"},
           {"http://user:pw@h/x",
            "must not carry a user or password (put a secret in the path, as Slack does)"},
           {"http://h:99999/x", "has a port outside 1..65535"},
           {"http://h:x/", "has a port that is not a number"},
           {"http:///x", "has no valid host"},
           {"http://h/a b", "holds a space or control character"},
           {"http://h/x#frag", "must not carry a #fragment"},
           {"http://h" + std::string(3000, 'a'), "is longer than 2048 bytes"}}) {
    EXPECT_FALSE(sweep_file::parse_webhook_url(url, problem)) << url;
    EXPECT_EQ(problem, why) << url;
  }
  const auto problems_of = [](const std::string& notify) {
    std::string out;
    for (const auto& p :
         sweep_file::plan_sweep("name: t\nbase: {model: {preset: micro}, training: {max_steps: 10, "
                                "batch_tokens: 256, micro_batch: 8}}\n" +
                                    notify,
                                "t.yaml", 100)
             .problems)
      out += p.to_string() + "\n";
    return out;
  };
  EXPECT_EQ(problems_of("notify: ['https://h/x']\n"), "");
  EXPECT_EQ(problems_of("notify: ['https://h/x', 'gopher://h']\n"),
            "notify[1]: must start with http:// or https://\n");
  EXPECT_EQ(problems_of("notify: https://h/x\n"), "notify: must be a list of http(s) URLs\n");
  EXPECT_EQ(problems_of("notify: [a, b, c, d, e]\n"), "notify: lists more than 4 URLs\n");

  NotifyFlags flags;
  flags.urls = {"mailto:me@example.com"};
  EXPECT_THROW(finish_notify_flags(flags), std::invalid_argument);
  flags.urls = {"https://h/x"};
  flags.allow = {"https://h/path"};
  try {
    finish_notify_flags(flags);
    ADD_FAILURE() << "an allowed origin with a path";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--notify-allow"), std::string::npos) << e.what();
  }
  flags.allow = {"https://h"};
  EXPECT_EQ(finish_notify_flags(flags).allow_origins, std::vector<std::string>{"https://h:443"});
}

}  // namespace
