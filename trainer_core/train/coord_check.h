// Coordinate check (Tensor Programs V, section 6; the mup package's coord_check): train the same
// model at several widths for a few steps and see how the size of each layer's activations and
// of its update's effect grows with width. Under muP they stay flat (log-log slope near 0);
// in the standard parametrization they grow with width, which is why its optimal lr drifts.
//
// At each width the model is config.model made that wide as telescoping makes it
// (sweep_file::at_width): hidden = width, the head size kept (n_head = width / head size), every
// other width-sized dimension (ffn_hidden, explicit latent and expert widths) scaled alike; under
// muP the base width is model.mup_base_hidden, or the first width when that is 0. Precision is
// fp32 (ΔW·x is read against the initial weights in fp32). Each seed trains `steps` steps of
// the optimizer at its peak lr (no warm-up, no clipping, no schedule), on the training batches
// the dataset gives step by step; then one forward pass over the first validation batch reads,
// for every projection y = W x (and the logits, after the output multiplier):
//   output  RMS(y)                 the activation's coordinate size
//   update  RMS(y − W₀ x) = ΔW·x   what the training so far changed in it, x the current input
// Each figure is the mean over seeds; the slope is the least-squares slope of log(figure)
// against log(width).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer_core/config/train_config.h"
#include "trainer_core/data/token_dataset.h"

namespace trainer_core {

enum class CoordQuantity { kOutput, kUpdate };
const char* coord_quantity_name(CoordQuantity q);

struct CoordCheckOptions {
  std::vector<int> widths;  // at least 2, increasing
  int steps = 5;
  int seeds = 3;  // seeds config.seed, config.seed + 1, ...
};

struct CoordSeries {
  std::string projection;  // a parameter name ("blocks.0.attn.wq"), or "logits"
  CoordQuantity quantity;
  std::vector<double> rms;  // per width, mean over seeds
  double slope = 0;         // d log(rms) / d log(width)
};

struct CoordCheckResult {
  std::vector<int> widths;
  int steps = 0;
  int seeds = 0;
  std::vector<CoordSeries> series;  // per projection in forward order, output then update
};

// config.model at `width` (see above); base_width: the muP base when mup_base_hidden is 0.
// Throws std::invalid_argument when the width is not a multiple of the head size.
ModelConfig model_at_width(ModelConfig model, int width, int base_width);

// What is wrong with `options` (fewer than 2 widths, not increasing, steps or seeds below 1),
// naming the flag; empty when nothing is.
std::string coord_check_options_problem(const CoordCheckOptions& options);

// Throws std::invalid_argument on bad options (coord_check_options_problem) and ConfigError when
// a width's config does not validate.
CoordCheckResult run_coord_check(const TrainConfig& config, const TokenDataset& dataset,
                                 const CoordCheckOptions& options);

// The least-squares slope of log(y) against log(x).
double log_log_slope(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace trainer_core
