// Health rules (sweep_file/health_spec.h) on a real coordinator, worker and trainer: a run whose
// val loss stops improving is stopped by its sweep's rule well before its budget, ends STOPPED
// with the rule as its message, and the firing is in the audit trail; a run of the same sweep
// that keeps improving runs to its end. A run far slower than its row (a worker by hand reports
// the training times a slow node would) is stopped; its row mates are not. A run whose val loss
// stalls after its first evaluations is rewound: stopped, and forked from its last rewind point
// at or before its best evaluation with a tenth of its lr. A run that diverges is told about
// when it ends so, in the dashboard's list of every sweep's events. A run that spikes again and
// again is stopped.
#include "orchestration_cluster.h"

namespace orchestration_test {
namespace {

TEST(Orchestration, AHealthRuleStopsARunThatNoLongerImprovesAndSaysWhy) {
  Cluster c("health");
  c.start_coordinator();
  c.start_worker("w1");
  // lr 1e-9 cannot move the val loss by 1e-4 of itself: no improvement after the first
  // evaluation, so the rule holds at the third (step 15 of a budget it would take minutes to
  // finish). The baseline, at lr 3e-3 for 40 steps, improves at every evaluation.
  const int64_t sweep = c.submit(R"(name: health
base:
  model: {preset: micro}
  optimizer: {lr: 3.0e-3}
  training: {max_steps: 40, batch_tokens: 256, micro_batch: 8, eval_every: 5, eval_tokens: 512}
  data: {corpus: gcide, max_corpus_bytes: 1000000, cache_dir: )" +
                                 c.cache() + R"(}
ablations:
  - {label: stalled, set: {optimizer.lr: 1.0e-9, training.max_steps: 20000}}
health:
  - {when: {no_val_improvement_evals: 2}, do: stop}
)");
  ASSERT_GT(sweep, 0);
  ASSERT_TRUE(c.wait_finished(sweep, 300s)) << c.diagnostics();
  const pb::GetSweepResponse s = c.get(sweep);
  ASSERT_EQ(s.jobs_size(), 2);
  for (const auto& j : s.jobs()) {
    if (j.label() == "stalled") {
      EXPECT_EQ(j.state(), pb::STOPPED) << j.message();
      // The count is what the coordinator had stored when it judged (a report may carry several
      // evaluations): 2 or more.
      EXPECT_NE(j.message().find("health rule no_val_improvement_evals 2: stop: no val-loss "
                                 "improvement in the last "),
                std::string::npos)
          << j.message();
      EXPECT_LT(j.step(), j.max_steps()) << "stopped before its budget";
    } else {
      EXPECT_EQ(j.state(), pb::SUCCEEDED) << j.label() << ": " << j.message();
    }
  }
  const auto [stops, details] = c.audit_after_stop("action = 'health-stop'");
  EXPECT_EQ(stops, 1) << details;
  EXPECT_NE(details.find("no_val_improvement_evals 2"), std::string::npos) << details;
}

// Pace is timing: a worker by hand (real gRPC to a real coordinator) reports the evaluations of
// three seeds of one row, two at 25,600 tokens per training second and one at a third of that,
// so the rule's arithmetic, not the machine's load, decides.
TEST(Orchestration, AHealthRuleStopsARunFarSlowerThanItsRow) {
  Cluster c("pace");
  c.start_coordinator();
  const int64_t sweep = c.submit(sweep_yaml(
      "pace", c.cache(), 100,
      "seeds: [1, 2, 3]\nhealth:\n  - {when: {tokens_per_second_below_row_median: 0.5}, do: "
      "stop}\n"));
  ASSERT_GT(sweep, 0);
  HandWorker w(c.endpoint(), "by-hand", 3);
  ASSERT_TRUE(w.register_worker().ok());
  std::vector<pb::Lease> leases;
  for (int i = 0; i < 3; ++i) {
    pb::AcquireJobRequest poll;
    poll.set_worker_id("by-hand");
    poll.set_free_slots(3 - i);
    poll.set_wait_ms(5000);
    pb::AcquireJobResponse got;
    ASSERT_TRUE(w.call(&pb::WorkerService::Stub::AcquireJob, poll, got).ok());
    ASSERT_TRUE(got.has_job());
    leases.push_back(got.lease());
  }
  // Evaluations at steps 0, 20 and 40 of 512-token batches; the slow run (the last) takes three
  // times as long per step. Its pace, 8,533 tokens/s, is under half the others' median.
  const auto report = [&](const pb::Lease& lease, double seconds_per_step) {
    pb::ReportMetricsRequest req;
    req.set_job_id(lease.job_id());
    req.set_attempt(lease.attempt());
    req.set_resumed_from_step(-1);
    for (int64_t step : {0, 20, 40}) {
      pb::EvalPoint* e = req.add_evals();
      e->set_step(step);
      e->set_val_loss(7.0 - 0.01 * double(step));
      e->set_tokens(double(step * 512));
      e->set_elapsed_s(double(step) * seconds_per_step * 1.5);
      e->mutable_train_s()->set_value(double(step) * seconds_per_step);
    }
    pb::ReportMetricsResponse stored;
    return w.call(&pb::WorkerService::Stub::ReportMetrics, req, stored);
  };
  ASSERT_TRUE(report(leases[0], 0.02).ok());
  ASSERT_TRUE(report(leases[1], 0.02).ok());
  ASSERT_TRUE(report(leases[2], 0.06).ok());
  pb::HeartbeatRequest beat;
  beat.set_worker_id("by-hand");
  for (const pb::Lease& l : leases) {
    pb::JobProgress* j = beat.add_jobs();
    j->set_job_id(l.job_id());
    j->set_attempt(l.attempt());
    j->set_step(40);
  }
  pb::HeartbeatResponse heard;
  ASSERT_TRUE(w.call(&pb::WorkerService::Stub::Heartbeat, beat, heard).ok());
  ASSERT_EQ(heard.cancel_size(), 1) << "only the slow run is asked to stop";
  EXPECT_EQ(heard.cancel(0).job_id(), leases[2].job_id());
  pb::CompleteJobRequest stopped;
  stopped.set_job_id(leases[2].job_id());
  stopped.set_attempt(leases[2].attempt());
  stopped.set_state(pb::CANCELLED);
  pb::CompleteJobResponse done;
  ASSERT_TRUE(w.call(&pb::WorkerService::Stub::CompleteJob, stopped, done).ok());
  const pb::GetSweepResponse after = c.get(sweep);
  for (const auto& j : after.jobs())
    if (j.job_id() == leases[2].job_id()) {
      EXPECT_EQ(j.state(), pb::STOPPED) << j.message();
      EXPECT_EQ(j.message(),
                "health rule tokens_per_second_below_row_median 0.5: stop: 8533 tokens/s against "
                "its row's median 25600 over 2 other runs");
    } else {
      EXPECT_EQ(j.state(), pb::RUNNING);
    }
}

// Warming up to an lr of 3.0, the micro model's val loss improves for its first few dozen steps
// and then blows up and stays above its best: the rule holds soon after warm-up, long before the
// run's end (it is judged at the run's first report, a second in). Under a rewind rule the run
// keeps every checkpoint of its cadence, here 5 steps (200 KB each), and a rewind starts at the
// last kept at or before the best evaluation.
TEST(Orchestration, AHealthRuleRewindsAStalledRunFromBeforeItsTroubleAtALowerLr) {
  Cluster c("rewind");
  c.start_coordinator();
  c.start_worker("w1");
  const int64_t sweep = c.submit(R"(name: rewind
base:
  model: {preset: micro}
  optimizer: {lr: 3.0}
  schedule: {kind: constant, warmup_steps: 50}
  training: {max_steps: 1000, batch_tokens: 256, micro_batch: 8, eval_every: 5, eval_tokens: 512,
             checkpoint_every: 5}
  data: {corpus: gcide, max_corpus_bytes: 1000000, cache_dir: )" +
                                 c.cache() + R"(}
health:
  - {when: {no_val_improvement_evals: 4}, do: {rewind: {lr_scale: 0.1, times: 1}}}
)");
  ASSERT_GT(sweep, 0);
  ASSERT_TRUE(c.wait_finished(sweep, 300s)) << c.diagnostics();
  const pb::GetSweepResponse s = c.get(sweep);
  ASSERT_EQ(s.jobs_size(), 2) << "the run and its rewind\n" << c.diagnostics();
  const pb::JobInfo& run = s.jobs(0);
  const pb::JobInfo& rewound = s.jobs(1);
  ASSERT_TRUE(rewound.has_fork());
  const int64_t from = rewound.fork().branch_step();
  EXPECT_TRUE(from > 0 && from % 5 == 0 && from <= 100) << from;
  const std::string label = "baseline/rewind1@" + std::to_string(from * 256);
  EXPECT_EQ(run.state(), pb::STOPPED) << run.message();
  EXPECT_EQ(run.message().rfind("health rule no_val_improvement_evals 4: rewind (lr x0.1, at most "
                                "1): no val-loss improvement in the last ",
                                0),
            0u)
      << run.message();
  EXPECT_NE(run.message().find(": rewound as job " + std::to_string(rewound.job_id()) + " (" +
                               label + ") from step " + std::to_string(from)),
            std::string::npos)
      << run.message();
  EXPECT_EQ(rewound.label(), label);
  EXPECT_EQ(rewound.role(), pb::ROLE_REWIND);
  EXPECT_EQ(rewound.seed(), run.seed());
  EXPECT_EQ(rewound.fork().parent_job_id(), run.job_id());
  // The lr a tenth of the run's (an AdamW run's adamw_lr follows its lr, and says so).
  std::map<std::string, double> changes;
  for (const auto& change : rewound.fork().changes())
    changes[change.path()] = change.value().number_value();
  EXPECT_NEAR(changes["optimizer.lr"], 0.3, 1e-12) << rewound.fork().DebugString();
  EXPECT_EQ(changes.size(), 2u) << rewound.fork().DebugString();
  EXPECT_EQ(std::get<1>(c.curve(rewound.job_id())), from + 1) << "its own steps follow the branch";
  EXPECT_NE(rewound.reason().find("no_val_improvement_evals 4: rewind"), std::string::npos);
  // The rewind is judged on its own steps; should it stall too, its lineage has had its one
  // rewind, so the rule stops it and says so.
  if (rewound.state() == pb::STOPPED)
    EXPECT_NE(rewound.message().find(": rewound 1 time(s) already; stopped"), std::string::npos)
        << rewound.message();
  else
    EXPECT_EQ(rewound.state(), pb::SUCCEEDED) << rewound.message();

  // The results leave the rewind out and say so; the run it rewound counts as stopped.
  const pb::GetResultsResponse results = c.results(sweep);
  std::string notes;
  for (const auto& n : results.notes()) notes += n + "\n";
  EXPECT_NE(notes.find("1 rewound run(s) (a health rule's fork at a lower lr) left out"),
            std::string::npos)
      << notes;

  const auto [rewinds, details] = c.audit_after_stop("action = 'health-rewind'");
  EXPECT_GE(rewinds, 1) << details;
  EXPECT_NE(details.find("rewound as job " + std::to_string(rewound.job_id())), std::string::npos)
      << details;
}

TEST(Orchestration, AHealthRuleTellsWhenARunDivergesAndTheEventsListShowsIt) {
  Cluster c("diverged");
  c.start_coordinator();
  c.start_worker("w1");
  const int64_t sweep =
      c.submit(sweep_yaml("diverged", c.cache(), 20,
                          "ablations:\n  - {label: hot, set: {optimizer.lr: "
                          "1.0e+30}}\nhealth:\n  - {when: diverged, do: notify}\n"));
  ASSERT_GT(sweep, 0);
  ASSERT_TRUE(c.wait_finished(sweep, 300s)) << c.diagnostics();
  // Events are written when the run ends, and the sweep's end within about 2 s.
  httplib::Client http("127.0.0.1", c.http_port());
  nlohmann::json feed;
  ASSERT_TRUE(wait_until(
      [&] {
        const auto answer = http.Get("/api/events?limit=10");
        feed = answer ? nlohmann::json::parse(answer->body) : nlohmann::json();
        return feed.contains("events") && feed["events"].size() >= 2;
      },
      30s))
      << feed.dump();
  ASSERT_EQ(feed["events"].size(), 2u) << feed.dump();
  EXPECT_EQ(feed["events"][0]["kind"], "EVENT_SWEEP_FINISHED") << "newest first";
  EXPECT_EQ(feed["events"][1]["kind"], "EVENT_HEALTH_RULE");
  const std::string text = feed["events"][1]["text"];
  EXPECT_NE(text.find("hot"), std::string::npos) << text;
  EXPECT_NE(text.find("health rule diverged: notify: diverged at step "), std::string::npos)
      << text;
  EXPECT_EQ(feed["events"][1]["sweep_id"], sweep);
  // Paged: the one before the newest.
  const auto older = http.Get("/api/events?limit=5&before=" +
                              std::to_string(feed["events"][0]["event_id"].get<int64_t>()));
  ASSERT_TRUE(older);
  EXPECT_EQ(nlohmann::json::parse(older->body)["events"].size(), 1u) << older->body;
}

// Warming up to an lr of 3.0 the micro model's loss jumps again and again once warm-up ends (7
// loss-spike events in 300 steps on this trainer): the rule stops it long before its budget.
TEST(Orchestration, AHealthRuleStopsARunThatSpikesAgainAndAgain) {
  Cluster c("spikes");
  c.start_coordinator();
  c.start_worker("w1");
  const int64_t sweep = c.submit(R"(name: spikes
base:
  model: {preset: micro}
  optimizer: {lr: 3.0}
  schedule: {kind: constant, warmup_steps: 50}
  training: {max_steps: 3000, batch_tokens: 256, micro_batch: 8, eval_every: 5, eval_tokens: 512}
  data: {corpus: gcide, max_corpus_bytes: 1000000, cache_dir: )" +
                                 c.cache() + R"(}
health:
  - {when: {loss_spikes_over: 1}, do: stop}
)");
  ASSERT_GT(sweep, 0);
  ASSERT_TRUE(c.wait_finished(sweep, 300s)) << c.diagnostics();
  const pb::JobInfo run = c.get(sweep).jobs(0);
  EXPECT_EQ(run.state(), pb::STOPPED) << run.message();
  EXPECT_EQ(run.message().rfind("health rule loss_spikes_over 1: stop: ", 0), 0u) << run.message();
  EXPECT_NE(run.message().find(" loss-spike events"), std::string::npos) << run.message();
  EXPECT_GE(run.spikes(), 2) << "what the rule counted is what the job shows";
  EXPECT_LT(run.step(), run.max_steps());
}

}  // namespace
}  // namespace orchestration_test
