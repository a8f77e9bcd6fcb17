#include "child_job.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "trainer_core/backend/backend.h"
#include "trainer_core/config/json_reader.h"
#include "trainer_core/train/exit_codes.h"
#include "trainer_core/train/trainer.h"

namespace worker {

namespace {

std::atomic<bool> g_stop{false};
void on_term(int) { g_stop = true; }

class PipeWriter : public trainer_core::TrainObserver {
 public:
  explicit PipeWriter(std::FILE* out) : out_(out) {}
  void on_start(const trainer_core::RunInfo& info) override {
    write({{"type", "start"}, {"start_step", info.start_step}, {"max_steps", info.max_steps}});
  }
  void on_step(const trainer_core::StepMetrics& m) override { write(to_json(m)); }
  void on_eval(const trainer_core::EvalMetrics& m) override { write(to_json(m)); }
  void on_checkpoint(int64_t step, const std::string& path) override {
    write({{"type", "checkpoint"}, {"step", step}, {"path", path}});
  }
  void on_finish(const trainer_core::RunSummary& s) override { write(to_json(s)); }

 private:
  void write(const nlohmann::json& j) {
    std::fprintf(out_, "%s\n", j.dump().c_str());
    std::fflush(out_);  // the daemon streams these lines as they come
  }
  std::FILE* out_;
};

}  // namespace

int run_child_job(const std::string& config_path, int metrics_fd) {
  std::signal(SIGTERM, on_term);
  std::signal(SIGINT, on_term);
  std::FILE* out = fdopen(metrics_fd, "w");
  if (!out) {
    std::perror("run-job: metrics fd");
    return 1;
  }
  try {
    const auto config = trainer_core::load_train_config(config_path);
    PipeWriter writer(out);
    trainer_core::Trainer trainer(config, &writer);
    const auto summary = trainer.run(&g_stop);
    std::fclose(out);
    if (summary.status == "diverged") return trainer_core::kExitDiverged;
    if (summary.status == "stopped") return trainer_core::kExitStopped;
    return trainer_core::kExitSucceeded;
  } catch (const trainer_core::ConfigError& e) {
    std::fprintf(stderr, "invalid config:\n%s\n", e.what());
    return trainer_core::kExitBadConfig;
  } catch (const trainer_core::OutOfMemory& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return trainer_core::kExitOutOfMemory;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return trainer_core::kExitError;
  }
}

}  // namespace worker
