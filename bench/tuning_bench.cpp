// How long the tuning planner takes per planning of an adaptive sweep, the work it does after
// every completion (and every 5 s while a sweep's planning is open): it reads every job and run
// summary of the sweep, groups them into rows and decides. Prints milliseconds per planning for
// sweeps of growing size, on a real SQLite store.
//   build/bench/tuning_bench            # 300, 3,000 and 12,000 jobs
//   build/bench/tuning_bench --quick    # 300 jobs (CI's smoke run; never fails on a time)
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "server/storage/store.h"
#include "server/tuning/planner.h"
#include "trainer_core/train/run_records.h"

namespace {

using Clock = std::chrono::steady_clock;

// A summary of the size the trainer writes (targets, spikes, FLOPs, dataset).
std::string summary(double loss) {
  trainer_core::RunSummary s;
  s.final_val_loss = loss;
  s.final_val_ppl = std::exp(loss);
  s.tokens_seen = 491520;
  s.flops.train_per_token = 2.5e6;
  for (double target : {3.0, 2.5, 2.4, 2.25})
    s.targets.push_back({target, true, 100, 1e5, 10, 1e11});
  s.dataset_id = std::string(64, 'a');
  s.dataset_source = "gcide (byte)";
  return to_json(s).dump();
}

// A tuned sweep of `rows` rows (a weight-decay axis) on a 3-value start grid, every start run
// finished; returns the milliseconds of one planning that finds every row waiting on a run.
double bench(const std::filesystem::path& dir, int rows) {
  std::filesystem::remove(dir / "tuning.db");
  server::Store store((dir / "tuning.db").string());
  std::string decays;
  for (int r = 0; r < rows; ++r) decays += (r ? ", " : "") + std::to_string(0.001 * r);
  const std::string spec =
      "name: bench\nbase: {model: {preset: micro}, training: {max_steps: 10, batch_tokens: 256, "
      "micro_batch: 8}}\ngrid: {optimizer.weight_decay: [" +
      decays + "]}\ntune: {start: [0.001, 0.002, 0.004], max_extensions: 5}\n";
  const auto plan = sweep_file::plan_sweep(spec, "bench.yaml", 100000);
  if (!plan.problems.empty()) throw std::runtime_error(plan.problems[0].to_string());
  const int64_t sweep = store.sweeps.create_sweep(plan, spec, 1000);
  store.workers.register_worker(
      {"w", "h", "cpu", 0, 1, "[]", server::WorkerState::kActive, 0, {}, "", ""}, {}, 1000,
      3600000);
  int64_t now = 2000;
  while (auto job = store.workers.acquire_job("w", {"cpu", 1, 0}, ++now, 3600000)) {
    const double lr = nlohmann::json::parse(job->config)["optimizer"]["lr"];
    store.workers.complete_job({job->id, job->attempt}, server::JobState::kSucceeded, "",
                               summary(3.0 - lr),
                               ++now);  // best at the largest lr: every row extends
  }
  server::TuningPlanner planner(store.sweeps, store.metrics);
  planner.plan(sweep, ++now);  // adds one extension per row; every row now waits on it
  const int repeats = 5;
  const auto start = Clock::now();
  for (int i = 0; i < repeats; ++i) planner.plan(sweep, ++now);
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count() / repeats;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && !std::strcmp(argv[1], "--quick");
  const auto dir =
      std::filesystem::temp_directory_path() / ("tuning_bench_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::printf("tuning planner: one planning of an adaptive sweep (reads every job and summary)\n");
  for (int rows : quick ? std::vector<int>{75} : std::vector<int>{75, 750, 3000}) {
    const double ms = bench(dir, rows);
    std::printf("  %6d jobs (%5d rows): %8.1f ms per planning\n", rows * 4, rows, ms);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
