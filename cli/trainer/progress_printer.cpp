#include "progress_printer.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

namespace trainer_cli {

using namespace trainer_core;

namespace {
std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int s = int(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
  return buf;
}
}  // namespace

void ProgressPrinter::on_start(const RunInfo& info) {
  max_steps_ = info.max_steps;
  start_step_ = last_line_step_ = info.start_step;
  started_ = std::chrono::steady_clock::now();
  std::fprintf(
      out_,
      "run %s: %.2fM parameters, %lld steps of %lld tokens (%d micro-batches), "
      "%.1fM train / %.2fM val tokens, %.3g train FLOPs/token%s\n",
      info.name.c_str(), info.num_params / 1e6, (long long)info.max_steps,
      (long long)info.batch_tokens, info.accumulation_steps, info.train_tokens / 1e6,
      info.val_tokens / 1e6, info.flops.train_per_token,
      info.start_step ? (", resumed at step " + std::to_string(info.start_step)).c_str() : "");
  std::fflush(out_);
}

void ProgressPrinter::draw(const StepMetrics& m) {
  const double done = double(m.step) / double(max_steps_);
  const double spent =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  const double eta = spent / double(m.step - start_step_) * double(max_steps_ - m.step);
  constexpr int kWidth = 24;
  std::string bar(size_t(done * kWidth), '#');
  bar.resize(kWidth, '.');
  char val[32] = "";
  if (last_val_ >= 0) std::snprintf(val, sizeof val, " val %.4f", last_val_);
  std::fprintf(out_, "%s[%s] step %lld/%lld loss %.4f%s lr %.2e %.0f tok/s ETA %s%s",
               interactive_ ? "\r" : "", bar.c_str(), (long long)m.step, (long long)max_steps_,
               m.train_loss, val, m.lr, m.tokens_per_second, format_duration(eta).c_str(),
               interactive_ ? "\x1b[K" : "\n");
  std::fflush(out_);
}

void ProgressPrinter::on_step(const StepMetrics& m) {
  if (m.replayed) return;  // the steps before a resume were shown by the run that made them
  if (interactive_) return draw(m);
  // Not a terminal: one line per 10% of the run, so logs stay readable.
  if (m.step == max_steps_ || (m.step - last_line_step_) * 10 >= max_steps_) {
    last_line_step_ = m.step;
    draw(m);
  }
}

void ProgressPrinter::on_eval(const EvalMetrics& m) { last_val_ = m.val_loss; }

void ProgressPrinter::on_checkpoint(int64_t, const std::string&) {}

void ProgressPrinter::on_finish(const RunSummary& s) {
  if (interactive_) std::fprintf(out_, "\n");
  std::fprintf(out_,
               "%s after %lld steps: train loss %.4f, val loss %.4f (ppl %.2f), %zu loss spikes, "
               "%.0f tok/s (%.1f GFLOP/s), peak memory %.1f MiB%s%s\n",
               outcome_name(s.outcome), (long long)s.steps_completed, s.final_train_loss,
               s.final_val_loss, s.final_val_ppl, s.loss_spikes.size(), s.tokens_per_second,
               s.achieved_gflops, s.peak_memory_bytes / 1048576.0, s.message.empty() ? "" : ": ",
               s.message.c_str());
  for (const auto& t : s.targets) {
    if (t.reached)
      std::fprintf(out_, "  target %.3f reached at step %.1f (%.3g tokens, %.1f s)\n", t.target,
                   t.steps, t.tokens, t.seconds);
    else
      std::fprintf(out_, "  target %.3f not reached\n", t.target);
  }
  std::fflush(out_);
}

}  // namespace trainer_cli
