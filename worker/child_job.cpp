#include "child_job.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>

#include "trainer_core/config/json_reader.h"
#include "trainer_core/train/exit_codes.h"
#include "trainer_core/train/run_records.h"
#include "trainer_core/train/trainer.h"

namespace worker {

namespace {
std::atomic<bool> g_stop{false};
void on_term(int) { g_stop = true; }
}  // namespace

int run_child_job(const std::string& config_path, int metrics_fd) {
  std::signal(SIGTERM, on_term);
  std::signal(SIGINT, on_term);
  std::FILE* out = fdopen(metrics_fd, "w");
  if (!out) {
    std::perror("run-job: metrics fd");
    return trainer_core::kExitError;
  }
  return trainer_core::exit_code_of([&] {
    const auto config = trainer_core::load_train_config(config_path);
    trainer_core::RunRecordWriter writer(out);
    trainer_core::Trainer trainer(config, &writer);
    const auto summary = trainer.run(&g_stop);
    std::fclose(out);
    return int(trainer_core::exit_code_of(summary.outcome));
  });
}

}  // namespace worker
