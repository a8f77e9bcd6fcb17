#include "trainer_core/train/coord_check.h"

#include <cmath>
#include <map>
#include <memory>
#include <stdexcept>

#include "trainer_core/backend/backend.h"
#include "trainer_core/model/gpt.h"
#include "trainer_core/optim/optimizer.h"

namespace trainer_core {

const char* coord_quantity_name(CoordQuantity q) {
  return q == CoordQuantity::kOutput ? "output" : "update";
}

ModelConfig model_at_width(ModelConfig m, int width, int base_width) {
  const int head_dim = m.head_dim();
  if (width <= 0 || width % head_dim != 0)
    throw std::invalid_argument("width " + std::to_string(width) +
                                " is not a multiple of the head size " + std::to_string(head_dim));
  const double scale = double(width) / m.hidden;
  auto scaled = [&](int dim) { return dim > 0 ? std::max(1, int(std::lround(dim * scale))) : 0; };
  m.ffn_hidden = scaled(m.ffn_hidden);
  m.kv_latent_dim = scaled(m.kv_latent_dim);
  m.q_latent_dim = scaled(m.q_latent_dim);
  m.expert_ffn_hidden = scaled(m.expert_ffn_hidden);
  m.hidden = width;
  m.n_head = width / head_dim;
  if (m.parametrization == Parametrization::kMup && m.mup_base_hidden == 0)
    m.mup_base_hidden = base_width;
  return m;
}

double log_log_slope(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n = x.size();
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) mx += std::log(x[i]), my += std::log(y[i]);
  mx /= double(n), my /= double(n);
  double sxy = 0, sxx = 0;
  for (size_t i = 0; i < n; ++i) {
    const double dx = std::log(x[i]) - mx;
    sxy += dx * (std::log(y[i]) - my);
    sxx += dx * dx;
  }
  return sxx > 0 ? sxy / sxx : 0.0;
}

namespace {

// RMS of y (n rows of `out`, ld floats apart) and of y − y0 (y0 dense), times `multiplier`.
struct Rms {
  double output = 0, update = 0;
};
Rms rms_of(const std::vector<float>& y, const std::vector<float>& y0, size_t n, int out, int ld,
           double multiplier) {
  double ss = 0, ds = 0;
  for (size_t r = 0; r < n; ++r)
    for (int c = 0; c < out; ++c) {
      const double v = y[r * ld + c], v0 = y0[r * out + c];
      ss += v * v;
      ds += (v - v0) * (v - v0);
    }
  const double count = double(n) * out;
  return {multiplier * std::sqrt(ss / count), multiplier * std::sqrt(ds / count)};
}

// One seed at one width: train, then read every projection once on the probe batch.
std::vector<std::pair<std::string, Rms>> measure(const TrainConfig& config,
                                                 const TokenDataset& dataset, int steps,
                                                 uint64_t seed) {
  auto backend = make_backend(config.backend, config.threads);
  Gpt model(config.model, *backend), initial(config.model, *backend);
  model.init_weights(seed);
  initial.init_weights(seed);
  Optimizer optimizer(config.optimizer, model.params(), model.weights(), model.grads(), *backend);
  const int seq = config.model.seq_len, batch = config.training.micro_batch;
  std::vector<int32_t> inputs(size_t(batch) * seq), targets(inputs.size());
  for (int step = 0; step < steps; ++step) {
    model.zero_grads();
    dataset.sample_train(seed, step, 0, 0, batch, seq, inputs.data(), targets.data());
    model.forward_backward(inputs.data(), targets.data(), batch, 1.0f);
    optimizer.step(float(config.optimizer.lr));
  }
  std::vector<std::pair<std::string, Rms>> read;
  const std::string head = head_param_name(config.model);
  model.set_projection_probe([&](const std::string& name, GemmInput x, size_t n, int in, int out,
                                 const float* y, int ld_y) {
    Tensor y0(*backend, n * out);
    initial.project(x, name, n, in, out, y0.data());
    std::vector<float> host_y((n - 1) * ld_y + out), host_y0(n * out);
    backend->download(host_y.data(), y, host_y.size());
    backend->download(host_y0.data(), y0.data(), host_y0.size());
    const bool logits = name == head && out == config.model.vocab_size;
    read.emplace_back(logits ? "logits" : name, rms_of(host_y, host_y0, n, out, ld_y,
                                                       logits ? model.logit_multiplier() : 1.0));
  });
  dataset.val_batch(0, batch, seq, inputs.data(), targets.data());
  model.forward_loss(inputs.data(), targets.data(), batch);
  return read;
}

}  // namespace

std::string coord_check_options_problem(const CoordCheckOptions& options) {
  const auto& widths = options.widths;
  if (widths.size() < 2) return "--widths: give at least two widths";
  for (size_t i = 1; i < widths.size(); ++i)
    if (widths[i] <= widths[i - 1]) return "--widths: widths must increase";
  if (options.steps < 1) return "--steps: must be at least 1";
  if (options.seeds < 1) return "--seeds: must be at least 1";
  return "";
}

CoordCheckResult run_coord_check(const TrainConfig& config, const TokenDataset& dataset,
                                 const CoordCheckOptions& options) {
  if (const std::string problem = coord_check_options_problem(options); !problem.empty())
    throw std::invalid_argument(problem);
  const auto& widths = options.widths;

  CoordCheckResult result{widths, options.steps, options.seeds, {}};
  std::map<std::pair<std::string, CoordQuantity>, size_t> index;
  for (size_t w = 0; w < widths.size(); ++w) {
    TrainConfig c = config;
    c.model = model_at_width(config.model, widths[w], widths[0]);
    c.model.precision = Precision::kFp32;
    if (auto problems = validate(c); !problems.empty()) throw ConfigError(problems);
    for (int s = 0; s < options.seeds; ++s) {
      for (const auto& [name, rms] : measure(c, dataset, options.steps, c.seed + uint64_t(s))) {
        for (CoordQuantity q : {CoordQuantity::kOutput, CoordQuantity::kUpdate}) {
          auto [it, added] = index.emplace(std::pair{name, q}, result.series.size());
          if (added)
            result.series.push_back({name, q, std::vector<double>(widths.size(), 0.0), 0.0});
          const double v = q == CoordQuantity::kOutput ? rms.output : rms.update;
          result.series[it->second].rms[w] += v / options.seeds;
        }
      }
    }
  }
  const std::vector<double> x(widths.begin(), widths.end());
  for (CoordSeries& s : result.series) s.slope = log_log_slope(x, s.rms);
  return result;
}

}  // namespace trainer_core
