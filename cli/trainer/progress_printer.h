// Observers used by the trainer command: a progress bar (redrawn in place on a terminal, a line
// per 10% otherwise) and a JSON-lines metrics writer.
#pragma once

#include <chrono>
#include <cstdio>
#include <memory>
#include <vector>

#include "trainer_core/train/observer.h"

namespace trainer_cli {

class ProgressPrinter : public trainer_core::TrainObserver {
 public:
  ProgressPrinter(std::FILE* out, bool interactive) : out_(out), interactive_(interactive) {}
  void on_start(const trainer_core::RunInfo& info) override;
  void on_step(const trainer_core::StepMetrics& m) override;
  void on_eval(const trainer_core::EvalMetrics& m) override;
  void on_checkpoint(int64_t step, const std::string& path) override;
  void on_finish(const trainer_core::RunSummary& s) override;

 private:
  void draw(const trainer_core::StepMetrics& m);
  std::FILE* out_;
  bool interactive_;
  int64_t max_steps_ = 0, start_step_ = 0, last_line_step_ = 0;
  double last_val_ = -1;
  std::chrono::steady_clock::time_point started_;
};

class ObserverList : public trainer_core::TrainObserver {
 public:
  void add(trainer_core::TrainObserver* o) { observers_.push_back(o); }
  void on_start(const trainer_core::RunInfo& i) override {
    for (auto* o : observers_) o->on_start(i);
  }
  void on_step(const trainer_core::StepMetrics& m) override {
    for (auto* o : observers_) o->on_step(m);
  }
  void on_eval(const trainer_core::EvalMetrics& m) override {
    for (auto* o : observers_) o->on_eval(m);
  }
  void on_checkpoint(int64_t s, const std::string& p) override {
    for (auto* o : observers_) o->on_checkpoint(s, p);
  }
  void on_finish(const trainer_core::RunSummary& s) override {
    for (auto* o : observers_) o->on_finish(s);
  }

 private:
  std::vector<trainer_core::TrainObserver*> observers_;
};

}  // namespace trainer_cli
