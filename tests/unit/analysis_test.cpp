#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "analysis.h"
#include "results_format.h"

using namespace server;

namespace {

std::string summary(double ppl, double tokens_to_first) {
  nlohmann::json t = nlohmann::json::array();
  t.push_back({{"target", 3.0}, {"reached", tokens_to_first > 0}, {"steps", tokens_to_first / 100}, {"tokens", tokens_to_first}});
  return nlohmann::json{{"final_val_ppl", ppl}, {"loss_spike_count", 1}, {"peak_memory_bytes", 1048576 * 10}, {"targets", t}}.dump();
}

JobRow job(int64_t id, const std::string& label, const std::string& ablation, const std::string& opt, int64_t seed,
           const std::string& pair) {
  JobRow j;
  j.id = id;
  j.label = label;
  j.ablation = ablation;
  j.optimizer = opt;
  j.seed = seed;
  j.pair_key = pair;
  j.batch_tokens = 1024;
  j.state = "SUCCEEDED";
  return j;
}

TEST(Analysis, AblationRowsAndTokenRatioWithBootstrapInterval) {
  SweepRow sweep;
  sweep.baseline = "baseline";
  sweep.targets = {3.0};
  const std::vector<JobRow> jobs = {
      job(1, "baseline/optimizer=adamw", "baseline", "adamw", 1, "p"),
      job(2, "baseline/optimizer=adamw", "baseline", "adamw", 2, "p"),
      job(3, "baseline/optimizer=muon", "baseline", "muon", 1, "p"),
      job(4, "baseline/optimizer=muon", "baseline", "muon", 2, "p"),
      job(5, "nowd/optimizer=adamw", "nowd", "adamw", 1, "q"),
  };
  const std::map<int64_t, std::string> summaries = {
      {1, summary(10, 2000)}, {2, summary(12, 3000)}, {3, summary(8, 1000)}, {4, summary(8, 1000)}, {5, summary(11, 0)}};
  const SweepResults r = analyze_sweep(sweep, jobs, summaries);
  ASSERT_EQ(r.ablation.size(), 3u);
  EXPECT_EQ(r.ablation[0].label, "baseline/optimizer=adamw");
  EXPECT_TRUE(r.ablation[0].baseline);
  EXPECT_DOUBLE_EQ(r.ablation[0].val_ppl.mean, 11.0);
  EXPECT_NEAR(r.ablation[0].val_ppl.std, std::sqrt(2.0), 1e-12);
  EXPECT_DOUBLE_EQ(r.ablation[0].steps_to_target.mean, 25.0);
  EXPECT_DOUBLE_EQ(r.ablation[0].peak_memory_mb.mean, 10.0);
  // "nowd/optimizer=adamw" compares with "baseline/optimizer=adamw".
  EXPECT_TRUE(r.ablation[2].has_delta);
  EXPECT_DOUBLE_EQ(r.ablation[2].delta_val_ppl, 0.0);
  EXPECT_EQ(r.ablation[2].steps_to_target.n, 0);  // never reached the target
  ASSERT_EQ(r.ratios.size(), 1u);  // nowd has no Muon partner
  EXPECT_DOUBLE_EQ(r.ratios[0].mean, 2.5);  // seeds: 2000/1000 and 3000/1000
  EXPECT_EQ(r.ratios[0].group, "baseline");
  EXPECT_EQ(r.ratios[0].pairs, 2);
  EXPECT_GE(r.ratios[0].ci_low, 2.0);
  EXPECT_LE(r.ratios[0].ci_high, 3.0);
  EXPECT_LT(r.ratios[0].ci_low, r.ratios[0].ci_high);
}

TEST(Analysis, ArchitectureTableAppearsWhenTheSweepVariesArchitecture) {
  SweepRow sweep;
  sweep.baseline = "baseline";
  sweep.targets = {3.0};
  auto arch_job = [](int64_t id, const std::string& attention, const std::string& ffn, const std::string& opt) {
    JobRow j = job(id, "baseline/" + attention + "-" + ffn + "/" + opt, "baseline", opt, 1, attention + ffn);
    j.config = nlohmann::json{{"model", {{"attention", attention}, {"ffn", ffn}}}}.dump();
    return j;
  };
  auto summary_with = [](double flops, double seconds, double tok_s) {
    nlohmann::json t = nlohmann::json::array();
    t.push_back({{"target", 3.0}, {"reached", true}, {"steps", 10}, {"tokens", 1000}, {"seconds", seconds}, {"flops", flops}});
    return nlohmann::json{{"final_val_ppl", 10.0}, {"peak_memory_bytes", 1048576}, {"targets", t},
                          {"inference", {{"tokens_per_second", tok_s}}}}.dump();
  };
  const std::vector<JobRow> jobs = {arch_job(1, "mha", "dense", "adamw"), arch_job(2, "mla", "moe", "muon")};
  const SweepResults r = analyze_sweep(sweep, jobs, {{1, summary_with(4e12, 20, 900)}, {2, summary_with(1e12, 8, 1200)}});
  ASSERT_EQ(r.architecture.size(), 2u);
  EXPECT_EQ(r.architecture[1].attention, "mla");
  EXPECT_EQ(r.architecture[1].ffn, "moe");
  EXPECT_DOUBLE_EQ(r.architecture[0].relative_flops_to_target, 1.0);
  EXPECT_DOUBLE_EQ(r.architecture[1].relative_flops_to_target, 0.25);
  EXPECT_DOUBLE_EQ(r.architecture[1].seconds_to_target.mean, 8.0);
  EXPECT_DOUBLE_EQ(r.architecture[1].inference_tokens_per_second.mean, 1200.0);
  // One architecture only: no table.
  EXPECT_TRUE(analyze_sweep(sweep, {arch_job(1, "mha", "dense", "adamw"), arch_job(3, "mha", "dense", "muon")},
                            {}).architecture.empty());
}

TEST(Analysis, BootstrapOfIdenticalValuesIsAPoint) {
  double mean, lo, hi;
  bootstrap_mean_ci({1.5, 1.5, 1.5}, mean, lo, hi);
  EXPECT_DOUBLE_EQ(mean, 1.5);
  EXPECT_DOUBLE_EQ(lo, 1.5);
  EXPECT_DOUBLE_EQ(hi, 1.5);
}

TEST(ResultsFormat, CsvMarkdownAndLatexCarryTheSameRows) {
  orchestrator::v1::GetResultsResponse r;
  r.add_targets(3.0);
  auto* row = r.add_ablation();
  row->set_label("base,\"x\"");
  row->set_runs(2);
  row->mutable_val_ppl()->set_mean(11);
  row->mutable_val_ppl()->set_std(1.5);
  row->mutable_val_ppl()->set_n(2);
  auto* ratio = r.add_ratios();
  ratio->set_group("baseline");
  ratio->set_batch_tokens(1024);
  ratio->set_target(3.0);
  ratio->set_ratio_mean(2.5);
  const std::string csv = sweepctl::format_results(r, sweepctl::Format::kCsv);
  EXPECT_NE(csv.find("\"base,\"\"x\"\"\",2,11.00 +- 1.50"), std::string::npos) << csv;
  EXPECT_NE(csv.find("baseline,1024,3.00,2.500"), std::string::npos) << csv;
  const std::string md = sweepctl::format_results(r, sweepctl::Format::kMarkdown);
  EXPECT_NE(md.find("| base,\"x\""), std::string::npos) << md;
  const std::string tex = sweepctl::format_results(r, sweepctl::Format::kLatex);
  EXPECT_NE(tex.find("11.00 $\\pm$ 1.50"), std::string::npos) << tex;
  EXPECT_THROW(sweepctl::parse_format("xml"), std::invalid_argument);
}

}  // namespace
