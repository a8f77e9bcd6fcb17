// dashboard_fill DB RUNS STEPS: writes one finished sweep of RUNS jobs into a coordinator
// database (AdamW and Muon over an lr grid, two batch sizes, seeds), each with STEPS steps of
// trainer-shaped curves, an eval every STEPS/20 steps, two named metrics and a summary that
// follows the run-record contract, through the Store as the coordinator records a real sweep.
// Also two allocations as the Slurm provisioner records them (server/provisioning/), one ended
// by its idle worker and one the engine failed, for the workers page. Prints the sweep id. The
// browser test uses it to time the pages at the size (100 runs x 10k steps) without
// training for an hour; the page under test is the real one.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "server/api/step_series.h"
#include "server/storage/clock.h"
#include "server/storage/store.h"
#include "sweep_file/sweep_spec.h"
#include "trainer_core/train/run_records.h"

namespace {

// Optimizer entries of the grid: five lrs each, so the lr-sensitivity view has a curve per row.
constexpr double kLrs[] = {1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2};

std::string spec(int runs, int steps) {
  std::string grid = "  optimizer: [";
  for (const char* name : {"adamw", "muon"})
    for (double lr : kLrs)
      grid += std::string("{name: ") + name + ", lr: " + std::to_string(lr) + "}, ";
  grid.resize(grid.size() - 2);
  grid += "]\n  training.batch_tokens: [256, 512]\n";
  std::string seeds;
  for (int s = 1; s <= (runs + 19) / 20; ++s) seeds += (s > 1 ? ", " : "") + std::to_string(s);
  return "name: dashboard scale\nbase:\n  model: {preset: micro}\n  training: {max_steps: " +
         std::to_string(steps) + ", batch_tokens: 256, micro_batch: 8}\ngrid:\n" + grid +
         "seeds: [" + seeds + "]\ntargets: [3.0]\n";
}

// Deterministic noise in [-1, 1).
double noise(uint64_t& state) {
  state ^= state << 13, state ^= state >> 7, state ^= state << 17;
  return double(state >> 11) * 0x1.0p-52 - 1.0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: dashboard_fill DB RUNS STEPS\n");
    return 2;
  }
  const int runs = std::atoi(argv[2]), steps = std::atoi(argv[3]);
  server::Store store(argv[1]);
  const auto plan = sweep_file::plan_sweep(spec(runs, steps), "dashboard-scale.yaml", 100000);
  const int64_t sweep = store.sweeps.create_sweep(plan, "", server::now_ms());
  store.workers.register_worker(
      {"fill", "fill", "cpu", 0, runs, "[]", server::WorkerState::kActive, 0, {}, "", ""}, {},
      server::now_ms(), 3600000);
  for (int r = 0; r < runs; ++r) {
    const auto job =
        store.workers.acquire_job("fill", {"cpu", runs - r, 0}, server::now_ms(), 3600000);
    if (!job) break;
    const nlohmann::json config = nlohmann::json::parse(job->config);
    const double lr = config["optimizer"]["lr"];
    const bool muon = config["optimizer"]["name"] == "muon";
    // Loss floor by distance from each optimizer's best lr: the lr curves have a minimum inside.
    const double best = muon ? std::log10(8e-3) : std::log10(2e-3);
    const double floor = 2.5 + 0.3 * std::pow(std::log10(lr) - best, 2) + (muon ? 0.0 : 0.05);
    uint64_t state = uint64_t(job->id) * 0x9E3779B97F4A7C15ull + 1;
    // Muon's curve falls faster, so R_L(B) is above 1 as in the paper.
    const double decay = (muon ? 0.06 : 0.08) * steps;
    auto loss_at = [&](int s) { return floor + 8.0 * std::exp(-double(s) / decay); };
    const double seconds_per_step = 0.05;
    trainer_core::RunSummary summary;
    trainer_core::TargetCrossing crossing{3.0, false, 0, 0, 0, 0};
    for (int first = 1; first <= steps; first += 2000) {
      std::vector<orchestrator::v1::MetricPoint> points;
      std::vector<server::EvalRow> evals;
      server::NamedSeries update_rms{"opt/matrices/update_rms", {}},
          lr_series{"opt/lr/matrices", {}};
      for (int s = first; s < first + 2000 && s <= steps; ++s) {
        const double schedule = 0.5 * (1 + std::cos(3.141592653589793 * s / steps));
        orchestrator::v1::MetricPoint& p = points.emplace_back();
        p.set_step(s);
        p.set_train_loss(loss_at(s) + 0.05 * noise(state));
        p.set_lr(lr * schedule);
        p.set_grad_norm(0.4 + 0.05 * noise(state));
        p.set_tokens(double(s) * double(job->batch_tokens));
        p.set_elapsed_s(s * seconds_per_step);
        if (s % 10 == 0) {
          update_rms.points.push_back({s, lr * schedule * (1 + 0.1 * noise(state)), false});
          lr_series.points.push_back({s, lr * schedule, false});
        }
        if (s % std::max(1, steps / 20) == 0 || s == steps) {
          const double val = loss_at(s) + 0.02;
          evals.push_back({s, val, double(s) * double(job->batch_tokens), s * seconds_per_step});
          if (!crossing.reached && val <= crossing.target)
            crossing = {
                3.0, true, double(s), double(s) * double(job->batch_tokens), s * seconds_per_step,
                0};
          summary.final_val_loss = val;
        }
      }
      summary.final_train_loss = points.back().train_loss();
      std::vector<server::NamedSeries> series = server::step_series(points);
      series.insert(series.end(), {update_rms, lr_series});
      store.metrics.store_metrics({job->id, job->attempt}, series, evals, -1, server::now_ms());
    }
    summary.steps_completed = steps;
    summary.final_val_ppl = std::exp(summary.final_val_loss);
    summary.targets = {crossing};
    summary.tokens_seen = int64_t(steps) * job->batch_tokens;
    summary.train_seconds = summary.elapsed_seconds = steps * seconds_per_step;
    summary.tokens_per_second = double(job->batch_tokens) / seconds_per_step;
    summary.peak_memory_bytes = size_t(48) << 20;
    summary.dataset_id = "synthetic";
    summary.dataset_source = "dashboard_fill";
    store.workers.complete_job({job->id, job->attempt}, server::JobState::kSucceeded, "",
                               trainer_core::to_json(summary).dump(), server::now_ms());
  }
  server::AllocationRow allocation;
  allocation.engine = "slurm";
  allocation.backend = "cpu";
  allocation.slots_per_node = 2;
  allocation.reason = "3 waiting cpu job(s) had no free slot for 30 s";
  const auto ended = store.allocations.begin_allocation(allocation, server::now_ms());
  store.workers.register_worker({"fill-provisioned",
                                 "node7",
                                 "cpu",
                                 0,
                                 2,
                                 "[]",
                                 server::WorkerState::kActive,
                                 0,
                                 {},
                                 ended.name,
                                 "admin"},
                                {}, server::now_ms(), 3600000);
  store.workers.worker_left("fill-provisioned", server::now_ms());
  store.allocations.record_allocation(ended.id, server::AllocationState::kEnded, "4242",
                                      "COMPLETED", server::now_ms());
  const auto failed = store.allocations.begin_allocation(allocation, server::now_ms());
  store.allocations.record_allocation(failed.id, server::AllocationState::kFailed, "4243",
                                      "NODE_FAIL: NodeDown", server::now_ms());
  std::printf("%lld\n", (long long)sweep);
  return 0;
}
