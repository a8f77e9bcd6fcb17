#include "sweep_file/sweep_spec.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "alias_bomb.h"

using namespace sweep_file;
using nlohmann::json;

namespace {

std::vector<double> lrs_of(const std::vector<TunePoint>& points) {
  std::vector<double> out;
  for (const TunePoint& p : points) out.push_back(p.lr);
  return out;
}

// A muP base with a 5-value lr start grid; a test appends the rest of its tune: section.
const char* kMupTuned = R"(
name: t
base:
  model: {preset: micro, parametrization: mup}
  training: {max_steps: 10, batch_tokens: 256, micro_batch: 8}
tune:
  start: [1.0e-3, 2.0e-3, 4.0e-3, 8.0e-3, 1.6e-2]
)";

const char* kBase = R"(
name: t
base:
  model: {preset: micro}
  training: {max_steps: 10, batch_tokens: 256, micro_batch: 8}
)";

std::vector<std::string> problems(const std::string& yaml, size_t max_jobs = 1000) {
  std::vector<std::string> out;
  for (const auto& p : plan_sweep(yaml, "s.yaml", max_jobs).problems) out.push_back(p.to_string());
  return out;
}

bool has(const std::vector<std::string>& v, const std::string& needle) {
  for (const auto& s : v)
    if (s.find(needle) != std::string::npos) return true;
  return false;
}

TEST(SweepSpec, ExpandsBaselineAndAblationsTimesGridTimesSeeds) {
  const SweepPlan p = plan_sweep(std::string(kBase) + R"(
ablations:
  - {label: no_wd, set: {optimizer.weight_decay: 0.0}}
grid:
  optimizer: [{name: adamw, lr: 3.0e-3}, {name: muon, lr: 1.0e-2}]
  training.batch_tokens: [256, 512]
seeds: [1, 2, 3]
targets: [3.0]
)",
                                 "s.yaml", 1000);
  ASSERT_TRUE(p.problems.empty()) << p.problems[0].to_string();
  ASSERT_EQ(p.jobs.size(), 2u * 2 * 2 * 3);
  EXPECT_EQ(p.jobs[0].label, "baseline/optimizer=adamw/batch_tokens=256");
  EXPECT_EQ(p.jobs[0].seed, 1);
  EXPECT_EQ(p.jobs.back().label, "no_wd/optimizer=muon/batch_tokens=512");
  EXPECT_EQ(p.jobs.back().config["optimizer"]["weight_decay"], 0.0);
  EXPECT_EQ(p.jobs.back().config["optimizer"]["lr"], 1.0e-2);
  EXPECT_EQ(p.jobs[0].config["metrics"]["target_losses"], nlohmann::json::array({3.0}));
  // Seeds share a label but not a config hash.
  EXPECT_EQ(p.jobs[0].label, p.jobs[1].label);
  EXPECT_NE(p.jobs[0].config_hash, p.jobs[1].config_hash);
  const auto& adamw = p.jobs[0];
  const auto& muon = p.jobs[6];  // baseline, muon, batch 256, seed 1
  EXPECT_EQ(muon.label, "baseline/optimizer=muon/batch_tokens=256");
  EXPECT_NE(adamw.config_hash, muon.config_hash);
  // Stable: the same file hashes the same way every time.
  EXPECT_EQ(plan_sweep(std::string(kBase), "s.yaml", 10).jobs[0].config_hash,
            plan_sweep(std::string(kBase), "s.yaml", 10).jobs[0].config_hash);
}

// Grid values that would read the same get the leaves they differ in, so labels tell runs apart.
TEST(SweepSpec, LabelsNameWhatTellsGridValuesApart) {
  const SweepPlan p = plan_sweep(std::string(kBase) + R"(
grid:
  optimizer: [{name: adamw, lr: 1.0e-3}, {name: adamw, lr: 3.0e-3}, {name: muon, lr: 0.02}]
)",
                                 "s.yaml", 1000);
  ASSERT_TRUE(p.problems.empty()) << p.problems[0].to_string();
  ASSERT_EQ(p.jobs.size(), 3u);
  EXPECT_EQ(p.jobs[0].label, "baseline/optimizer=adamw/lr=0.001");
  EXPECT_EQ(p.jobs[1].label, "baseline/optimizer=adamw/lr=0.003");
  EXPECT_EQ(p.jobs[2].label, "baseline/optimizer=muon");
  const SweepPlan m = plan_sweep(std::string(kBase) + R"(
grid:
  optimizer: [{name: muon, muon: {ns_steps: 3}}, {name: muon, muon: {ns_steps: 5}}]
)",
                                 "s.yaml", 1000);
  ASSERT_TRUE(m.problems.empty()) << m.problems[0].to_string();
  EXPECT_EQ(m.jobs[0].label, "baseline/optimizer=muon/ns_steps=3");
  EXPECT_EQ(m.jobs[1].label, "baseline/optimizer=muon/ns_steps=5");
}

TEST(SweepSpec, AJobOnSeveralGpusRunsOneDataParallelRankPerGpu) {
  const SweepPlan p =
      plan_sweep(std::string(kBase) + "resources: {backend: cuda, gpus: 4}\n", "s.yaml", 10);
  ASSERT_TRUE(p.problems.empty()) << p.problems[0].to_string();
  EXPECT_EQ(p.jobs[0].config["training"]["data_parallel"], 4);
  EXPECT_EQ(p.jobs[0].config["backend"], "cuda");
  // 8 sequences per micro-batch do not split over 3 GPUs: refused at submission, with the path.
  EXPECT_TRUE(has(problems(std::string(kBase) + "resources: {backend: cuda, gpus: 3}\n"),
                  "base.training.micro_batch: must be a multiple of training.data_parallel"));
}

TEST(SweepSpec, EveryProblemHasTheLayerThatCausedIt) {
  const auto p = problems(std::string(kBase) + R"(
ablations:
  - {label: ok, set: {optimizer.weight_decay: 0.0}}
  - {label: bad, set: {optimizer.muon.ns_steps: 0}}
  - {set: {optimizer.lr: 1.0}}
grid:
  optimizer.name: [adamw, sgd]
)");
  EXPECT_TRUE(has(p, "ablations[2].label: must be a non-empty string"))
      << ::testing::PrintToString(p);
  const auto q = problems(std::string(kBase) + R"(
ablations:
  - {label: ok, set: {optimizer.weight_decay: 0.0}}
  - {label: bad, set: {optimizer.muon.ns_steps: 0}}
grid:
  optimizer.name: [adamw, sgd]
)");
  EXPECT_TRUE(has(q, "ablations[1].set.optimizer.muon.ns_steps: must be >= 1"))
      << ::testing::PrintToString(q);
  EXPECT_TRUE(has(q, "grid.optimizer.name[1]: must be one of adamw, muon"))
      << ::testing::PrintToString(q);
  EXPECT_EQ(q.size(), 2u) << ::testing::PrintToString(q);
}

// A dotted path with an empty key is named as such (sweep-level problems are reported before the
// configs are checked layer by layer).
TEST(SweepSpec, APathWithAnEmptyKeyIsRefusedWithTheOtherProblems) {
  const auto p = problems(std::string(kBase) + R"(
ablations:
  - {label: a, set: {optimizer..lr: 1.0, optimizer.weight_decay: 0.0}}
grid:
  "training.": [1, 2]
  optimizer.name: [adamw, sgd]
)");
  EXPECT_TRUE(has(p, "ablations[0].set.optimizer..lr: an empty key in a dotted path"))
      << ::testing::PrintToString(p);
  EXPECT_TRUE(has(p, "grid.training.: an empty key in a dotted path"))
      << ::testing::PrintToString(p);
  EXPECT_EQ(p.size(), 2u) << ::testing::PrintToString(p);
}

TEST(SweepSpec, BaseProblemsAndUnknownKeys) {
  const auto p = problems("name: t\nbase: {optimizer: {lr: -1}}\nseedz: [1]\n");
  EXPECT_TRUE(has(p, "seedz: unknown key")) << ::testing::PrintToString(p);
  const auto q = problems("name: t\nbase: {optimizer: {lr: -1}}\n");
  EXPECT_TRUE(has(q, "base.optimizer.lr: must be > 0")) << ::testing::PrintToString(q);
  const auto r = problems("base: {}\nresources: {backend: tpu}\nmax_attempts: 0\n");
  EXPECT_TRUE(has(r, "name: must be a non-empty string"));
  EXPECT_TRUE(has(r, "resources.backend: must be one of cpu, cuda"));
  EXPECT_TRUE(has(r, "max_attempts: must be >= 1"));
  const auto syntax = problems("name: [unclosed\n");
  EXPECT_TRUE(has(syntax, "s.yaml: YAML syntax error at line")) << ::testing::PrintToString(syntax);
}

// A few hundred bytes of YAML aliases must not expand into gigabytes inside the coordinator.
TEST(SweepSpec, AnAliasBombIsRefused) {
  const auto p = problems(test_documents::yaml_alias_bomb("name: bomb\n"));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("refused: more than 100000 nodes"), std::string::npos) << p[0];
}

// Found by fuzzing: a base that is not a map is a problem, not an exception.
TEST(SweepSpec, ABaseThatIsNotAMapIsAProblem) {
  EXPECT_TRUE(has(problems("name: x\nbase: just text\n"), "base: must be a map"));
}

TEST(SweepSpec, RefusesExpansionsBeyondTheJobLimit) {
  const auto p =
      problems(std::string(kBase) + "grid: {seed_unused.x: [1, 2, 3]}\nseeds: [1, 2, 3, 4]\n", 10);
  EXPECT_TRUE(has(p, "grid: expands to 12 jobs, more than the limit of 10"))
      << ::testing::PrintToString(p);
}

// `exclude:` drops grid combinations: here each batch size keeps one Muon lr (the one bracketed
// for it), so every row has its own pre-registered lr and no row is an "edge" of a 2-lr grid.
TEST(SweepSpec, ExcludedGridCombinationsAreNotRun) {
  const SweepPlan p = plan_sweep(std::string(kBase) + R"(
grid:
  optimizer: [{name: adamw, lr: 3.0e-3}, {name: muon, lr: 1.2e-2}, {name: muon, lr: 2.4e-2}]
  training.batch_tokens: [256, 512]
exclude:
  - {optimizer: {lr: 2.4e-2, name: muon}, training.batch_tokens: 256}
  - {optimizer: {name: muon, lr: 1.2e-2}, training.batch_tokens: 512.0}
seeds: [1, 2]
)",
                                 "s.yaml", 8);
  ASSERT_TRUE(p.problems.empty()) << p.problems[0].to_string();
  std::multiset<std::pair<std::string, double>> runs;
  for (const auto& j : p.jobs)
    runs.insert({j.label + "@" + j.config["training"]["batch_tokens"].dump(),
                 j.config["optimizer"]["lr"].get<double>()});
  const std::multiset<std::pair<std::string, double>> expected = {
      {"baseline/optimizer=adamw/batch_tokens=256@256", 3.0e-3},
      {"baseline/optimizer=adamw/batch_tokens=256@256", 3.0e-3},
      {"baseline/optimizer=muon/lr=0.012/batch_tokens=256@256", 1.2e-2},
      {"baseline/optimizer=muon/lr=0.012/batch_tokens=256@256", 1.2e-2},
      {"baseline/optimizer=adamw/batch_tokens=512@512", 3.0e-3},
      {"baseline/optimizer=adamw/batch_tokens=512@512", 3.0e-3},
      {"baseline/optimizer=muon/lr=0.024/batch_tokens=512@512", 2.4e-2},
      {"baseline/optimizer=muon/lr=0.024/batch_tokens=512@512", 2.4e-2}};
  EXPECT_EQ(runs, expected);  // 8 jobs: within the limit of 8 that the full grid (12) exceeds
}

TEST(SweepSpec, ExclusionsNameGridPathsAndTheirValues) {
  const auto p = problems(std::string(kBase) + R"(
grid:
  optimizer.name: [adamw, muon]
  training.batch_tokens: [256, 512]
exclude:
  - {optimizer.lr: 1.0e-2}
  - {training.batch_tokens: 1024}
  - {}
)");
  EXPECT_TRUE(has(p, "exclude[0].optimizer.lr: is not a path of grid:"))
      << ::testing::PrintToString(p);
  EXPECT_TRUE(
      has(p, "exclude[1].training.batch_tokens: 1024 is not one of the values grid: gives it"))
      << ::testing::PrintToString(p);
  EXPECT_TRUE(has(p, "exclude[2]: must map grid paths to one of their values"))
      << ::testing::PrintToString(p);
  const auto all = problems(std::string(kBase) + R"(
grid: {optimizer.name: [adamw, muon]}
exclude: [{optimizer.name: adamw}, {optimizer.name: muon}]
)");
  // Bounded time: 101 entries over a million combinations are refused before anything is checked.
  std::string wide = "grid:\n  a.x: [0";
  for (int i = 1; i < 10000; ++i) wide += ", " + std::to_string(i);
  wide += "]\n  b.y: [0";
  for (int i = 1; i < 100; ++i) wide += ", " + std::to_string(i);
  wide += "]\nexclude: [{a.x: 0}";
  for (int i = 1; i < 101; ++i) wide += ", {a.x: " + std::to_string(i) + "}";
  wide += "]\n";
  EXPECT_TRUE(has(problems(std::string(kBase) + wide),
                  "101 entries over a grid of 1000000 "
                  "combinations are too many to check"));
  EXPECT_TRUE(has(all, "exclude: leaves no combination of grid: to run"))
      << ::testing::PrintToString(all);
}

}  // namespace

namespace {

std::string read_example(const std::string& name) {
  std::ifstream in(std::string(SOURCE_DIR) + "/examples/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(SweepSpec, ATunedSweepRunsItsStartGridOnTheTuningSeeds) {
  const SweepPlan p = plan_sweep(std::string(kBase) + R"(
grid: {optimizer.name: [adamw, muon], training.batch_tokens: [256, 512]}
tune:
  start: {adamw: [1.0e-3, 2.0e-3], muon: [4.0e-3, 8.0e-3, 1.6e-2]}
  seeds: [7]
  confirm_seeds: [7, 8, 9]
)",
                                 "s.yaml", 1000);
  ASSERT_TRUE(p.problems.empty()) << p.problems[0].to_string();
  ASSERT_TRUE(p.tune.has_value());
  ASSERT_EQ(p.jobs.size(), 2u * 2 + 2u * 3);  // each optimizer on its own start list, one seed
  EXPECT_EQ(p.jobs[0].label, "baseline/optimizer=adamw/batch_tokens=256/lr=0.001");
  for (const ExpandedJob& job : p.jobs) {
    EXPECT_EQ(job.role, JobRole::kTuning);
    EXPECT_EQ(job.seed, 7);
    EXPECT_EQ(job.reason, "start grid (tune.start)");
    const double lr = job.config["optimizer"]["lr"].get<double>();
    EXPECT_TRUE(job.optimizer == "muon" ? lr >= 4e-3 : lr <= 2e-3) << job.label;
  }
  EXPECT_EQ(p.tune->confirm_seeds, (std::vector<int64_t>{7, 8, 9}));
  // What the store keeps reads back the same.
  const TuneSpec back = tune_spec_from_json(to_json(*p.tune));
  EXPECT_EQ(back.start_for("muon"), (std::vector<double>{4e-3, 8e-3, 1.6e-2}));
  EXPECT_EQ(back.max_extensions, 3);
  EXPECT_EQ(back.factor, 2);
}

TEST(SweepSpec, TelescopingStartsAtTheFirstWidthAndShrinksItsGrids) {
  const SweepPlan p = plan_sweep(std::string(kMupTuned) + R"(
  telescope: {widths: [64, 128, 256], shrink: 2, final_seeds: [1, 2]}
)",
                                 "s.yaml", 1000);
  ASSERT_TRUE(p.problems.empty()) << p.problems[0].to_string();
  ASSERT_EQ(p.jobs.size(), 5u);
  EXPECT_EQ(p.jobs[0].label, "baseline/width=64/lr=0.001");
  EXPECT_EQ(p.jobs[0].config["model"]["hidden"], 64);
  EXPECT_EQ(p.jobs[0].config["model"]["n_head"], 4);  // the micro preset's head size, 16
  EXPECT_EQ(p.jobs[0].config["model"]["ffn_hidden"], 128);
  EXPECT_EQ(p.jobs[0].config["model"]["mup_base_hidden"], 64);
  const TuneSpec back = tune_spec_from_json(to_json(*p.tune));
  ASSERT_TRUE(back.telescope.has_value());
  EXPECT_EQ(back.telescope->widths, (std::vector<int>{64, 128, 256}));
  EXPECT_EQ(back.seeds_at(0), (std::vector<int64_t>{1}));
  EXPECT_EQ(back.seeds_at(1), (std::vector<int64_t>{1, 2})) << "the last two widths";
  EXPECT_EQ(back.seeds_at(2), (std::vector<int64_t>{1, 2}));
  // A stage at an edge seeds the next with stage 0's whole span (2 steps each side).
  EXPECT_EQ(lrs_of(stage_points(back, back.start, 2, {4e-3, 0}, true)),
            (std::vector<double>{1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2}));
  // h0 = 2 steps each side; shrink 2: stage 1 has 1 step each side, and so has stage 2.
  EXPECT_EQ(lrs_of(stage_points(back, back.start, 1, {4e-3, 0})),
            (std::vector<double>{2e-3, 4e-3, 8e-3}));
  EXPECT_EQ(lrs_of(stage_points(back, back.start, 2, {8e-3, 0})),
            (std::vector<double>{4e-3, 8e-3, 1.6e-2}));
  EXPECT_FALSE(to_json(back).contains("weight_decay")) << "a 1-D spec is stored as before";
  EXPECT_FALSE(to_json(back)["telescope"].contains("refine"));
  const json at_256 = at_width(p.jobs[0].config, 256, 64);
  EXPECT_EQ(at_256["model"]["n_head"], 16);
  EXPECT_EQ(at_256["model"]["mup_base_hidden"], 64);

  const auto bad = problems(std::string(kBase) +
                            "tune: {start: [1.0e-3, 2.0e-3], telescope: {widths: [32, 40, 20]}}\n");
  EXPECT_TRUE(has(bad,
                  "tune.telescope.final_seeds: give at least 2 tuning seeds for the last two "
                  "widths"))
      << ::testing::PrintToString(bad);
  EXPECT_TRUE(has(bad, "tune.telescope.widths[2]: must be larger than the width before it"))
      << ::testing::PrintToString(bad);
  const auto heads = problems(std::string(kBase) +
                              "tune: {start: [1.0e-3, 2.0e-3], telescope: {widths: [32, 40], "
                              "final_seeds: [1, 2]}}\n");
  EXPECT_TRUE(
      has(heads, "tune.telescope.widths[1]: width 40 is not a multiple of the head size 16"))
      << ::testing::PrintToString(heads);
}

TEST(SweepSpec, TuningLrAndWeightDecayStartsOnEveryPairAndRefinesItsStages) {
  const SweepPlan p = plan_sweep(std::string(kMupTuned) + R"(
  weight_decay: {start: [0.025, 0.1, 0.4], factor: 4}
  telescope: {widths: [64, 128, 256], shrink: 4, refine: 2, final_seeds: [1, 2]}
)",
                                 "s.yaml", 1000);
  ASSERT_TRUE(p.problems.empty()) << p.problems[0].to_string();
  ASSERT_EQ(p.jobs.size(), 15u) << "stage 0 runs every (lr, weight decay) pair";
  EXPECT_EQ(p.jobs[0].label, "baseline/width=64/lr=0.001/weight_decay=0.025");
  EXPECT_EQ(p.jobs[1].label, "baseline/width=64/lr=0.001/weight_decay=0.1");
  EXPECT_EQ(p.jobs[1].config["optimizer"]["weight_decay"], 0.1);
  EXPECT_EQ(p.jobs[14].config["optimizer"]["lr"], 1.6e-2);
  EXPECT_EQ(p.jobs[14].config["optimizer"]["weight_decay"], 0.4);

  // What the store keeps reads back the same, weight decay and refinement included.
  const TuneSpec back = tune_spec_from_json(to_json(*p.tune));
  EXPECT_EQ(to_json(back), to_json(*p.tune));
  ASSERT_TRUE(back.weight_decay.has_value());
  EXPECT_EQ(back.weight_decay->start, (std::vector<double>{0.025, 0.1, 0.4}));
  EXPECT_EQ(back.weight_decay->factor, 4);
  EXPECT_EQ(back.telescope->refine, 2);

  // The step shrinks with the stage: factor^(1/refine^k) on each axis.
  EXPECT_DOUBLE_EQ(axis_step(back, TuneAxis::kLr, 1), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(axis_step(back, TuneAxis::kWeightDecay, 2), std::sqrt(2.0));
  // Stage 1 around (4e-3, 0.1): h = max(1, round(h0 * (2/4))) = 1 step each side on each axis,
  // in a cross: the centre, its lr line and its weight-decay line.
  const std::vector<TunePoint> s1 = stage_points(back, back.start, 1, {4e-3, 0.1});
  ASSERT_EQ(s1.size(), 5u);
  const std::vector<std::pair<double, double>> expected1 = {
      {rounded_value(4e-3 / std::sqrt(2.0)), 0.1},
      {4e-3, 0.05},
      {4e-3, 0.1},
      {4e-3, 0.2},
      {rounded_value(4e-3 * std::sqrt(2.0)), 0.1}};
  for (size_t i = 0; i < s1.size(); ++i) {
    EXPECT_TRUE(same_point(s1[i], {expected1[i].first, expected1[i].second}))
        << i << ": " << s1[i].lr << ", " << s1[i].wd;
  }
  // Stage 2 is finer still: a fourth-root-of-2 step in lr, a square-root-of-2 one in weight decay.
  const std::vector<TunePoint> s2 = stage_points(back, back.start, 2, {4e-3, 0.1});
  ASSERT_EQ(s2.size(), 5u);
  EXPECT_TRUE(same_point(s2[0], {rounded_value(4e-3 / std::pow(2.0, 0.25)), 0.1}));
  EXPECT_TRUE(same_point(s2[1], {4e-3, rounded_value(0.1 / std::sqrt(2.0))}));
  // A stage that ended at an edge: stage 0's span and step around the choice (5 x 3 cross).
  EXPECT_EQ(stage_points(back, back.start, 2, {4e-3, 0.1}, true).size(), 5u + 2u);
  // The same lr at another weight decay is another grid point.
  EXPECT_FALSE(same_point({4e-3, 0.1}, {4e-3, 0.2}));
  EXPECT_TRUE(same_point({4e-3, 0.1}, {4e-3 * (1 + 1e-9), 0.1}));

  const std::string tuned = "tune: {start: [1.0e-3, 2.0e-3], weight_decay: ";
  EXPECT_TRUE(has(problems(std::string(kBase) + tuned + "{start: [0.1]}}\n"),
                  "tune.weight_decay.start: must be a list of at least 2 numbers"));
  EXPECT_TRUE(has(problems(std::string(kBase) + tuned + "{start: [0.1, 0.2], factor: 1}}\n"),
                  "tune.weight_decay.factor: must be > 1"));
  EXPECT_TRUE(has(problems(std::string(kBase) + tuned + "{start: [0, 0.2]}}\n"),
                  "tune.weight_decay.start[0]: must be a finite number > 0"));
  EXPECT_TRUE(has(problems(std::string(kBase) + tuned +
                           "{start: [0.1, 0.2]}}\ngrid: {optimizer.weight_decay: [0.1, 0.2]}\n"),
                  "grid.optimizer.weight_decay: is tuned"));
  EXPECT_TRUE(has(
      problems(std::string(kBase) + "tune: {start: [1.0e-3, 2.0e-3], telescope: {widths: [32, 64], "
                                    "shrink: 2, refine: 3, final_seeds: [1, 2]}}\n"),
      "tune.telescope.refine: must be at most tune.telescope.shrink"));
  EXPECT_TRUE(
      has(problems(std::string(kBase) +
                   "tune: {start: [1.0e-3, 1.0001e-3], factor: 1.0002, telescope: "
                   "{widths: [32, 64, 128, 256], shrink: 4, refine: 4, final_seeds: [1, 2]}}\n"),
          "tune.telescope.refine: makes the last stage's lr step"));
  // A tuned value set elsewhere would be overwritten by the tuned axes: refused where it is set.
  EXPECT_TRUE(has(problems(std::string(kBase) + tuned +
                           "{start: [0.1, 0.2]}}\nablations: [{label: no_wd, set: "
                           "{optimizer.weight_decay: 0.0}}]\n"),
                  "ablations[0].set.optimizer.weight_decay: sets optimizer.weight_decay, which "
                  "tune: searches"));
  EXPECT_TRUE(has(problems(std::string(kBase) + tuned +
                           "{start: [0.1, 0.2]}}\ngrid: {optimizer: [{name: adamw, "
                           "weight_decay: 0.1}, {name: muon}]}\n"),
                  "grid.optimizer: sets optimizer.weight_decay, which is tuned"));
  EXPECT_TRUE(has(problems(std::string(kBase) +
                           "tune: {start: [1.0e-3, 2.0e-3]}\nablations: [{label: hot, set: "
                           "{optimizer: {lr: 0.1}}}]\n"),
                  "ablations[0].set.optimizer: sets optimizer.lr, which tune: searches"));
  // What the planner may add is bounded per row: 2 rows (the optimizers) of at most 22 jobs
  // (18 start points, 3 extensions, 1 confirmation), not one row per weight decay.
  EXPECT_TRUE(problems(std::string(kBase) +
                           "grid: {optimizer.name: [adamw, muon]}\ntune: {start: [1.0e-3, "
                           "2.0e-3, 4.0e-3, 8.0e-3, 1.6e-2, 3.2e-2], weight_decay: {start: [0.05, "
                           "0.1, 0.2]}}\n",
                       100)
                  .empty());
}

TEST(SweepSpec, TuneProblemsSayWhere) {
  const auto p = problems(std::string(kBase) + R"(
seeds: [1, 2]
grid: {optimizer.lr: [1.0e-3, 2.0e-3]}
tune: {param: optimizer.weight_decay, start: [1.0e-3, -1], factor: 1, max_extensions: 50,
       confirm_seeds: [1, 1], colour: red}
)");
  EXPECT_TRUE(has(p, "tune.param: must be optimizer.lr")) << ::testing::PrintToString(p);
  EXPECT_TRUE(has(p, "tune.start[1]: must be a finite number > 0"));
  EXPECT_TRUE(has(p, "tune.factor: must be > 1"));
  EXPECT_TRUE(has(p, "tune.max_extensions: must be between 0 and 20"));
  EXPECT_TRUE(has(p, "tune.confirm_seeds[1]: seed 1 twice"));
  EXPECT_TRUE(has(p, "tune.colour"));
  const auto q = problems(std::string(kBase) + R"(
seeds: [1, 2]
grid: {optimizer.lr: [1.0e-3, 2.0e-3]}
tune: {start: [1.0e-3, 2.0e-3]}
)");
  EXPECT_TRUE(has(q, "seeds: a tuned sweep names its seeds in tune.seeds"))
      << ::testing::PrintToString(q);
  EXPECT_TRUE(has(q, "grid.optimizer.lr: is tuned"));
  EXPECT_TRUE(has(problems(std::string(kBase) + "tune: {start: [1.0e-3]}\n"),
                  "tune.start: must be a list of at least 2 numbers"));
  EXPECT_TRUE(has(problems(std::string(kBase) + "tune: {factor: 2}\n"), "tune.start: is required"));
  EXPECT_TRUE(has(problems(std::string(kBase) + "tune: [1, 2]\n"), "tune: must be a map"));
  // What the planner could add is bounded at submit, like a grid's expansion.
  EXPECT_TRUE(
      has(problems(std::string(kBase) + "tune: {start: [1.0e-3, 2.0e-3], max_extensions: 20,"
                                        " confirm_seeds: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}\n",
                   20),
          "tune: could grow to 32 jobs, more than the limit of 20"));
  EXPECT_TRUE(has(problems(std::string(kBase) + "tune: {start: [1.0e-9, 1.0], factor: 1.1}\n"),
                  "tune.start: spans more than 40 steps of tune.factor"));
  EXPECT_TRUE(has(problems(std::string(kBase) + "grid: {optimizer.name: [adamw, muon]}\n"
                                                "tune: {start: {adamw: [1.0e-3, 2.0e-3]}}\n"),
                  "tune.start: has no values for optimizer muon"));
  const auto n = problems(std::string(kBase) +
                          "tune: {start: [1.0e-3, 2.0e-3], noise: {sd: 0, seeds: [1, 2, 2]}}\n");
  EXPECT_TRUE(has(n, "tune.noise.sd: must be a seed SD of final val loss in nats, in (0, 10)"))
      << ::testing::PrintToString(n);
  EXPECT_TRUE(has(n, "tune.noise.seeds[2]: seed 2 twice"));
  EXPECT_TRUE(has(n, "tune.noise.seeds: seed 1 is already a tuning seed (tune.seeds)"));
  // Noise seeds count in the bound: 2 values + 3 extensions, each with 1 + 4 seeds, + 1.
  EXPECT_TRUE(has(problems(std::string(kBase) +
                               "tune: {start: [1.0e-3, 2.0e-3], noise: {sd: 0.01, seeds: [2, 3, 4, "
                               "5]}}\n",
                           20),
                  "tune: could grow to 26 jobs, more than the limit of 20"));
}

// The analysis section fixes how R_L(B) chooses its lrs; every mistake in it is named.
TEST(SweepSpec, TheAnalysisSectionNamesTheSelectionRuleAndItsSeeds) {
  const std::string seeds = "seeds: [1, 2, 3, 4]\n";
  EXPECT_EQ(plan_sweep(std::string(kBase) + seeds, "s.yaml", 100).analysis.selection,
            SelectionRule::kTokensToTarget)
      << "the default";
  const SweepPlan held = plan_sweep(
      std::string(kBase) + seeds + "analysis: {selection: held_out_seeds, selection_seeds: [1]}\n",
      "s.yaml", 100);
  ASSERT_TRUE(held.problems.empty()) << held.problems[0].to_string();
  EXPECT_EQ(held.analysis, (AnalysisSpec{SelectionRule::kHeldOutSeeds, {1}}));
  EXPECT_EQ(analysis_spec_from_json(to_json(held.analysis)), held.analysis);
  EXPECT_EQ(analysis_spec_from_json(nlohmann::json("")), AnalysisSpec{})
      << "stored before it existed";
  EXPECT_TRUE(has(problems(std::string(kBase) + seeds + "analysis: {selection: best}\n"),
                  "analysis.selection: must be one of tokens_to_target, final_loss, "
                  "held_out_seeds, got 'best'"));
  EXPECT_TRUE(has(problems(std::string(kBase) + seeds +
                           "analysis: {selection: held_out_seeds, selection_seeds: [7]}\n"),
                  "analysis.selection_seeds[0]: is not one of the sweep's seeds"));
  EXPECT_TRUE(
      has(problems(std::string(kBase) + seeds +
                   "analysis: {selection: held_out_seeds, selection_seeds: [1, 2, 3, 4]}\n"),
          "analysis.selection_seeds: leaves no seed to measure R_L(B) on"));
  EXPECT_TRUE(has(problems(std::string(kBase) + seeds + "analysis: {selection: held_out_seeds}\n"),
                  "analysis.selection_seeds: held_out_seeds needs the seeds that choose"));
  EXPECT_TRUE(has(problems(std::string(kBase) + seeds +
                           "analysis: {selection: final_loss, selection_seeds: [1]}\n"),
                  "analysis.selection_seeds: is read only with selection: held_out_seeds"));
  EXPECT_TRUE(has(problems(std::string(kBase) + "tune: {start: [1.0e-3, 2.0e-3]}\n" +
                           "analysis: {selection: final_loss}\n"),
                  "analysis.selection: a tuned sweep chooses its lr in the planner"));
  // Targets from the data: for any sweep, tuned or not.
  const SweepPlan tuned = plan_sweep(
      std::string(kBase) + "tune: {start: [1.0e-3, 2.0e-3]}\n" + "analysis: {targets: from_data}\n",
      "s.yaml", 100);
  ASSERT_TRUE(tuned.problems.empty()) << tuned.problems[0].to_string();
  EXPECT_EQ(tuned.analysis.targets, TargetRule::kFromData);
  EXPECT_EQ(analysis_spec_from_json(to_json(tuned.analysis)), tuned.analysis);
  EXPECT_TRUE(has(problems(std::string(kBase) + seeds + "analysis: {targets: by_hand}\n"),
                  "analysis.targets: must be one of given, from_data, got 'by_hand'"));
  // The margin of "R does not fall with B", fixed with the sweep.
  const SweepPlan margin =
      plan_sweep(std::string(kBase) + seeds + "analysis: {trend_margin: 0.8}\n", "s.yaml", 100);
  ASSERT_TRUE(margin.problems.empty()) << margin.problems[0].to_string();
  EXPECT_EQ(margin.analysis.trend_margin, 0.8);
  EXPECT_EQ(analysis_spec_from_json(to_json(margin.analysis)), margin.analysis);
  EXPECT_EQ(AnalysisSpec{}.trend_margin, 0.9) << "the default";
  EXPECT_TRUE(has(problems(std::string(kBase) + seeds + "analysis: {trend_margin: 1.5}\n"),
                  "analysis.trend_margin: must be in (0, 1]"));
}

TEST(SweepSpec, ShippedExamplesAreValid) {
  for (const char* name :
       {"quick_cpu_sweep.yaml", "table2_ablation.yaml", "table2_ablation_cpu.yaml",
        "batch_size_ratio.yaml", "batch_size_ratio_cpu.yaml", "batch_size_ratio_tuned_cpu.yaml",
        "table3_architecture.yaml", "table3_architecture_cpu.yaml", "tune_lr_cpu.yaml",
        "telescoping_cpu.yaml", "full_grid_256_cpu.yaml", "external/sweep.yaml"}) {
    const SweepPlan p = plan_sweep(read_example(name), name, 10000);
    EXPECT_TRUE(p.problems.empty())
        << name << ": " << (p.problems.empty() ? "" : p.problems[0].to_string());
    EXPECT_FALSE(p.jobs.empty()) << name;
    for (const auto& job : p.jobs) {
      // "No weight decay" means lambda = 0 for every parameter group, in every example.
      if (job.ablation.find("weight_decay") != std::string::npos) {
        EXPECT_EQ(job.config["optimizer"]["weight_decay"], 0.0) << name << " " << job.label;
      }
      // Batch-size comparisons train equal token budgets and evaluate at the same token
      // positions: an eval interval in tokens, a multiple of the job's batch.
      // (The external program's sweep has one batch size and counts steps.)
      if (std::string(name) != "external/sweep.yaml") {
        EXPECT_GT(job.config["training"]["max_tokens"].get<int64_t>(), 0)
            << name << " " << job.label;
      }
      const int64_t every = job.config["training"].value("eval_every_tokens", int64_t(0));
      EXPECT_GT(every, 0) << name << " " << job.label;
      EXPECT_EQ(every % job.batch_tokens, 0) << name << " " << job.label;
    }
  }
  const SweepPlan t2 = plan_sweep(read_example("table2_ablation.yaml"), "t2", 10000);
  EXPECT_EQ(t2.jobs.size(), 14u * 3 * 3);  // rows x lr grid x seeds
  std::set<int64_t> batches;
  for (const auto& job : t2.jobs) batches.insert(job.batch_tokens);
  EXPECT_EQ(batches.size(), 4u) << "the batch rows differ from the baseline's batch";
  const SweepPlan ratio = plan_sweep(read_example("batch_size_ratio_cpu.yaml"), "r", 10000);
  ASSERT_EQ(ratio.jobs.size(), 6u * 3 * 3);
  EXPECT_EQ(ratio.jobs[0].label, "baseline/optimizer=adamw/lr=0.0015/batch_tokens=1024");
  for (const auto& job : ratio.jobs)
    EXPECT_EQ(job.max_steps * job.batch_tokens, 491520) << job.label;
  const SweepPlan t3 = plan_sweep(read_example("table3_architecture_cpu.yaml"), "t3", 10000);
  // MHA / MLA / MoE-MLA x AdamW / Muon, each row tuning its own lr from 3 start values on seed 1.
  ASSERT_EQ(t3.jobs.size(), 3u * 2 * 3);
  EXPECT_EQ(t3.jobs[0].label, "baseline/model=mha-dense/optimizer=adamw/lr=0.0015");
  EXPECT_EQ(t3.jobs.back().label, "baseline/model=mla-moe/optimizer=muon/lr=0.024");
  // Table 2's rows each tune their own lr too: 13 rows x 3 start values.
  const SweepPlan t2cpu = plan_sweep(read_example("table2_ablation_cpu.yaml"), "t2c", 10000);
  EXPECT_EQ(t2cpu.jobs.size(), 13u * 3);
  ASSERT_TRUE(t2cpu.tune.has_value());
}

}  // namespace
