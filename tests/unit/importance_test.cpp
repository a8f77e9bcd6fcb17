// Which settings matter (server/results/importance.h): on a synthetic sweep where the lr moves
// final val loss by 0.5 nats and the weight decay by nothing, over three seeds of noise, the lr
// ranks first with nearly all of the variance and the weight decay last with almost none; an
// unbalanced design says so; failed runs are counted as left out.
#include "server/results/importance.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

namespace {

using server::JobRow;
using server::JobState;
using server::Run;

struct Synthetic {
  std::vector<JobRow> jobs;
  std::vector<trainer_core::RunSummary> summaries;
  std::vector<Run> runs;
  // Runs point into jobs and summaries: fill those first, then call link().
  void add(double lr, double wd, int seed, double loss, JobState state = JobState::kSucceeded) {
    JobRow j;
    j.id = int64_t(jobs.size()) + 1;
    j.seed = seed;
    j.state = state;
    j.config =
        nlohmann::json{{"optimizer", {{"lr", lr}, {"weight_decay", wd}}}, {"seed", seed}}.dump();
    jobs.push_back(j);
    trainer_core::RunSummary s;
    s.final_val_loss = loss;
    summaries.push_back(s);
  }
  void link() {
    for (size_t i = 0; i < jobs.size(); ++i) {
      Run r;
      r.job = &jobs[i];
      r.summary = jobs[i].state == JobState::kSucceeded ? &summaries[i] : nullptr;
      runs.push_back(r);
    }
  }
};

TEST(Importance, ADominantSettingRanksFirstAndANullOneLast) {
  Synthetic s;
  const double lrs[] = {1e-3, 3e-3, 1e-2};
  const double effect[] = {0.5, 0.0, 0.3};  // the loss above the best, by lr
  int k = 0;
  for (int l = 0; l < 3; ++l)
    for (double wd : {0.0, 0.1})
      for (int seed = 1; seed <= 3; ++seed)
        s.add(lrs[l], wd, seed, 2.0 + effect[l] + 0.01 * std::sin(double(++k)));  // seed noise
  s.link();
  const auto imp = server::setting_importance(s.jobs, s.runs);
  ASSERT_TRUE(imp);
  ASSERT_EQ(imp->settings.size(), 2u) << "the seed is replication, not a setting";
  EXPECT_EQ(imp->settings[0].path, "optimizer.lr");
  EXPECT_GT(imp->settings[0].share, 0.99);
  EXPECT_EQ(imp->settings[1].path, "optimizer.weight_decay");
  EXPECT_LT(imp->settings[1].share, 0.01);
  EXPECT_TRUE(imp->balanced);
  EXPECT_NEAR(imp->settings[0].share + imp->settings[1].share + imp->residual_share, 1.0, 1e-9);
  ASSERT_EQ(imp->settings[0].levels.size(), 3u);
  EXPECT_NEAR(imp->settings[0].levels[1].mean_final_val_loss, 2.0, 0.02) << "lr 3e-3's mean";
  EXPECT_EQ(imp->settings[0].levels[1].runs, 6);
  EXPECT_EQ(imp->runs_used, 18);
  EXPECT_NE(imp->note.find("balanced"), std::string::npos);
}

TEST(Importance, AnUnbalancedDesignAndLeftOutRunsAreSaid) {
  Synthetic s;
  s.add(1e-3, 0.0, 1, 2.5);
  s.add(1e-3, 0.1, 1, 2.5);
  s.add(3e-3, 0.0, 1, 2.0);
  s.add(3e-3, 0.0, 2, 2.01);  // two seeds in one cell only
  s.add(3e-3, 0.1, 1, 2.0);
  s.add(1e-2, 0.1, 1, NAN, JobState::kFailed);
  s.link();
  const auto imp = server::setting_importance(s.jobs, s.runs);
  ASSERT_TRUE(imp);
  EXPECT_FALSE(imp->balanced);
  EXPECT_EQ(imp->runs_used, 5);
  EXPECT_EQ(imp->runs_left_out, 1);
  EXPECT_EQ(imp->settings[0].path, "optimizer.lr");
  EXPECT_NE(imp->note.find("not balanced"), std::string::npos);
  EXPECT_NE(imp->note.find("1 left out"), std::string::npos);

  // Each optimizer with its own lr: the two settings are one row, not two that each take the
  // whole credit.
  Synthetic tied;
  for (int seed = 1; seed <= 2; ++seed)
    for (double wd : {0.0, 0.1}) {
      tied.add(1e-3, wd, seed, 2.5 + 0.01 * seed);
      tied.add(3e-3, wd, seed, 2.0 + 0.01 * seed);
    }
  for (size_t i = 0; i < tied.jobs.size(); ++i) {
    auto config = nlohmann::json::parse(tied.jobs[i].config);
    config["optimizer"]["name"] = config["optimizer"]["lr"] == 1e-3 ? "adamw" : "muon";
    tied.jobs[i].config = config.dump();
  }
  tied.link();
  const auto both = server::setting_importance(tied.jobs, tied.runs);
  ASSERT_TRUE(both);
  ASSERT_EQ(both->settings.size(), 2u);
  EXPECT_EQ(both->settings[0].path, "optimizer.lr + optimizer.name");
  EXPECT_EQ(both->settings[0].levels[0].value, "0.001 + \"adamw\"");
  EXPECT_GT(both->settings[0].share, 0.99);
  EXPECT_TRUE(both->balanced);
  EXPECT_NE(both->note.find("one row (a + b)"), std::string::npos);

  Synthetic flat;  // losses that do not vary: nothing to explain
  for (int seed = 1; seed <= 3; ++seed) flat.add(1e-3 * seed, 0.0, seed, 2.0);
  flat.link();
  EXPECT_FALSE(server::setting_importance(flat.jobs, flat.runs));
}

}  // namespace
