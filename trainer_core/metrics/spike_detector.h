// Loss-spike detection (docs/science.md): step t after warm-up is flagged when, over the last W
// unflagged values (at least min_history of them) with mean μ and standard deviation σ,
// (x_t − μ)/σ > k and x_t > (1 + δ)·μ. Consecutive flagged steps form one spike: "loss spikes"
// everywhere in the product (jobs table, summaries, tables) counts these events, not steps.
// A spike's recovery step is the first step after it whose value is back at or below (1 + δ)·μ of
// the window before the spike began (-1 while not recovered).
//
// Flagged values stay out of the window, so a spike does not inflate σ and mask the next one for
// W steps. An excursion that lasts longer than W/2 steps is a change of level, not a spike: from
// then on its values enter the window, which takes the new level in.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

namespace trainer_core {

struct Spike {
  int64_t start_step = 0;
  int64_t peak_step = 0;
  double peak_value = 0;
  int64_t recovery_step = -1;
  double baseline_mean = 0;  // μ of the window before the spike
};

class SpikeDetector {
 public:
  SpikeDetector(int window, double zscore, double min_relative, int64_t warmup_steps,
                int min_history);
  // Feeds the value of `step`; returns true when this step is flagged.
  bool add(int64_t step, double value);
  const std::vector<Spike>& spikes() const { return spikes_; }
  double last_zscore() const { return last_zscore_; }

  // Checkpoint support: the window and the open spike state.
  struct State {
    std::vector<double> window;
    std::vector<Spike> spikes;
    bool in_spike = false;
  };
  State state() const;
  void restore(const State& s);

 private:
  int window_;
  double zscore_, min_relative_;
  int64_t warmup_;
  int min_history_;
  std::deque<double> values_;
  std::vector<Spike> spikes_;
  bool in_spike_ = false;
  double last_zscore_ = 0;
};

}  // namespace trainer_core
