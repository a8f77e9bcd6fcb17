#include "trainer_core/metrics/spike_detector.h"

#include <algorithm>
#include <cmath>

namespace trainer_core {

SpikeDetector::SpikeDetector(int window, double zscore, double min_relative, int64_t warmup_steps,
                             int min_history)
    : window_(window),
      zscore_(zscore),
      min_relative_(min_relative),
      warmup_(warmup_steps),
      min_history_(std::clamp(min_history, 2, window)) {}

bool SpikeDetector::add(int64_t step, double value) {
  bool flagged = false;
  last_zscore_ = 0;
  if (int(values_.size()) >= min_history_) {
    const double n = double(values_.size());
    double sum = 0, sq = 0;
    for (double v : values_) sum += v;
    const double mean = sum / n;
    for (double v : values_) sq += (v - mean) * (v - mean);
    const double sd = std::sqrt(sq / n);
    last_zscore_ = sd > 0 ? (value - mean) / sd : 0;
    flagged =
        step >= warmup_ && sd > 0 && last_zscore_ > zscore_ && value > (1.0 + min_relative_) * mean;
    if (flagged && !in_spike_) spikes_.push_back({step, step, value, -1, mean});
    if (flagged && value > spikes_.back().peak_value) {
      spikes_.back().peak_value = value;
      spikes_.back().peak_step = step;
    }
  }
  in_spike_ = flagged;
  if (!flagged && !spikes_.empty() && spikes_.back().recovery_step < 0 &&
      value <= (1.0 + min_relative_) * spikes_.back().baseline_mean)
    spikes_.back().recovery_step = step;
  const bool level_shift = flagged && step - spikes_.back().start_step >= window_ / 2;
  if (!flagged || level_shift) {
    values_.push_back(value);
    if (int(values_.size()) > window_) values_.pop_front();
  }
  return flagged;
}

SpikeDetector::State SpikeDetector::state() const {
  return {std::vector<double>(values_.begin(), values_.end()), spikes_, in_spike_};
}

void SpikeDetector::restore(const State& s) {
  values_.assign(s.window.begin(), s.window.end());
  spikes_ = s.spikes;
  in_spike_ = s.in_spike;
}

}  // namespace trainer_core
