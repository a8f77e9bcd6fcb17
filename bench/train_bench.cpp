// Training throughput of the CPU backend: tokens/s, achieved GFLOP/s (model FLOPs from the
// docs/science.md formula) and that rate as a fraction of this machine's sgemm rate; then, where
// Debian's python3-torch is installed, PyTorch eager on the same model and shapes
// (bench/torch_reference.py) alternating with ours, with the ratio, and Muon's step against
// AdamW's.
//   build/bench/train_bench [--quick] [--versus] [--muon-step [--steps S]] [--threads N]
//                           [--python PATH]
// --versus: only the side-by-side part.
// --muon-step: only Muon's step against AdamW's at tiny 16 x 128, one step of each in turn, S
// steps each (default 200): medians of the step and of the optimizer step alone, and the ratio;
// one 10-step run of each is too noisy to read a ratio from (docs/benchmarks.md).
// Prints figures only; it never fails on a time. For the machine's own kernels, unset
// OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE in the benchmark's command (docs/benchmarks.md).
#include <cblas.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench_clock.h"
#include "random_batch.h"
#include "trainer_core/backend/backend.h"
#include "trainer_core/config/presets.h"
#include "trainer_core/metrics/flops.h"
#include "trainer_core/model/gpt.h"
#include "trainer_core/optim/clip.h"
#include "trainer_core/optim/optimizer.h"

using namespace trainer_core;

namespace {

// Peak single-precision GEMM rate of this machine through OpenBLAS (GFLOP/s).
double sgemm_rate(double min_seconds) {
  const int n = 1024;
  std::vector<float> a(size_t(n) * n, 0.5f), b(size_t(n) * n, 0.25f), c(size_t(n) * n);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1, a.data(), n, b.data(), n, 0,
              c.data(), n);
  int calls = 0;
  const auto start = Clock::now();
  while (seconds_since(start) < min_seconds) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1, a.data(), n, b.data(), n, 0,
                c.data(), n);
    ++calls;
  }
  return 2.0 * n * n * n * calls / seconds_since(start) / 1e9;
}

struct Case {
  std::string label;
  ModelConfig model;
  int batch;  // sequences per step (one micro-batch)
};

struct StepTimes {
  double step_ms;       // the whole training step
  double optimizer_ms;  // Optimizer::step alone, within it
};

// A model, its optimizer and one fixed batch, stepped one timed step at a time.
class Trainee {
 public:
  Trainee(Backend& backend, const Case& c, const std::string& optimizer)
      : backend_(backend),
        case_(c),
        model_(c.model, backend),
        optimizer_(config_named(optimizer), model_.params(), model_.weights(), model_.grads(),
                   backend),
        batch_(random_batch(size_t(c.batch) * c.model.seq_len, c.model.vocab_size)) {
    model_.init_weights(1);
  }
  // With `diagnostics`, the step also computes the optimizer diagnostics.
  StepTimes step(bool diagnostics = false) {
    const auto start = Clock::now();
    model_.zero_grads();
    model_.forward_backward(batch_.inputs.data(), batch_.targets.data(), case_.batch, 1.0f);
    clip_by_global_norm(backend_, model_.grads(), model_.num_params(), 1.0);
    std::vector<NamedValue> values;
    const auto optimizer_start = Clock::now();
    optimizer_.step(1e-3f, diagnostics ? &values : nullptr);
    backend_.synchronize();
    return {1000.0 * seconds_since(start), 1000.0 * seconds_since(optimizer_start)};
  }

 private:
  static OptimizerConfig config_named(const std::string& name) {
    OptimizerConfig config;
    config.name = *parse_name<OptimizerKind>(name);
    return config;
  }
  Backend& backend_;
  const Case case_;
  Gpt model_;
  Optimizer optimizer_;
  RandomBatch batch_;
};

// Returns ms per step, and the optimizer's share of them. With `diagnostics`, every step also
// computes the optimizer diagnostics (metrics.diagnostics_every = 1, the most expensive cadence).
StepTimes run_case(Backend& backend, const Case& c, const std::string& optimizer, int steps,
                   double sgemm_gflops, bool diagnostics = false) {
  Trainee trainee(backend, c, optimizer);
  trainee.step(diagnostics);  // warm-up: allocations, page faults, OpenBLAS buffers
  StepTimes total{0, 0};
  for (int s = 0; s < steps; ++s) {
    const StepTimes t = trainee.step(diagnostics);
    total.step_ms += t.step_ms;
    total.optimizer_ms += t.optimizer_ms;
  }
  const double tok_s = double(c.batch) * c.model.seq_len * steps / (total.step_ms / 1000.0);
  const double gflops = tok_s * flops_per_token(c.model).train_per_token / 1e9;
  std::printf("%-34s %-6s %5d x %-4d %10.0f tok/s %8.1f GFLOP/s %6.1f%% of sgemm  %7.1f ms/step\n",
              (c.label + (diagnostics ? " +diag" : "")).c_str(), optimizer.c_str(), c.batch,
              c.model.seq_len, tok_s, gflops, 100.0 * gflops / sgemm_gflops, total.step_ms / steps);
  std::fflush(stdout);
  return {total.step_ms / steps, total.optimizer_ms / steps};
}

// The value below which a fraction q of `values` lies (linear between neighbours).
double quantile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  const double at = q * double(values.size() - 1);
  const size_t below = size_t(at);
  if (below + 1 >= values.size()) return values.back();
  return values[below] + (at - double(below)) * (values[below + 1] - values[below]);
}

// Muon's step against AdamW's on one case: two trainees stepped in turn, one step each, so that
// both see the same machine state even where other programs come and go by the second (a shared
// two-core machine); medians of the per-step times, which a preempted step does not move.
void muon_against_adamw(Backend& backend, const Case& c, int pairs) {
  Trainee adamw(backend, c, "adamw"), muon(backend, c, "muon");
  adamw.step(), muon.step();  // warm-up: allocations, page faults, OpenBLAS buffers
  std::vector<double> adamw_step, muon_step, adamw_opt, muon_opt, ratios;
  for (int i = 0; i < pairs; ++i) {
    const StepTimes a = adamw.step(), m = muon.step();
    adamw_step.push_back(a.step_ms);
    muon_step.push_back(m.step_ms);
    adamw_opt.push_back(a.optimizer_ms);
    muon_opt.push_back(m.optimizer_ms);
    ratios.push_back(m.step_ms / a.step_ms);
  }
  const double adamw_ms = quantile(adamw_step, 0.5), muon_ms = quantile(muon_step, 0.5);
  std::printf(
      "%s %d x %d, AdamW and Muon stepped in turn, %d steps each, medians:\n"
      "  step: AdamW %.2f ms, Muon %.2f ms; Muon's step / AdamW's step %.3f (ratio of one step to "
      "the other's: median %.3f, quartiles %.3f to %.3f)\n"
      "  optimizer step alone: AdamW %.2f ms, Muon %.2f ms\n",
      c.label.c_str(), c.batch, c.model.seq_len, pairs, adamw_ms, muon_ms, muon_ms / adamw_ms,
      quantile(ratios, 0.5), quantile(ratios, 0.25), quantile(ratios, 0.75),
      quantile(adamw_opt, 0.5), quantile(muon_opt, 0.5));
}

// PyTorch eager's tokens/s on one case (bench/torch_reference.py on the CPU, fp32), or NaN when
// it cannot run here (no python3-torch).
double torch_tokens_per_second(const std::string& python, const std::string& preset, int seq,
                               int batch, int steps, int threads) {
  const std::string command =
      python + " " SOURCE_DIR "/bench/torch_reference.py --device cpu " + "--case " + preset + ":" +
      std::to_string(seq) + ":" + std::to_string(batch) + " --steps " + std::to_string(steps) +
      (threads > 0 ? " --threads " + std::to_string(threads) : "") + " 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return NAN;
  double tok_s = NAN;
  char line[1024];
  while (std::fgets(line, sizeof line, pipe))
    if (!std::strncmp(line, "torch ", 6))
      if (const char* at = std::strstr(line, " tok/s")) {
        const char* start = at;  // the number just before " tok/s"
        while (start > line &&
               (std::isdigit(static_cast<unsigned char>(start[-1])) || start[-1] == '.'))
          --start;
        tok_s = std::atof(start);
      }
  return pclose(pipe) == 0 ? tok_s : NAN;
}

// Ours and PyTorch eager on the same AdamW cases, alternating (ours, PyTorch, ours, PyTorch) so
// that both see the same machine state; then Muon's step against AdamW's on the tiny preset.
void side_by_side(Backend& backend, const std::vector<Case>& cases, const std::string& python,
                  int steps, int threads, double sgemm) {
  if (std::isnan(torch_tokens_per_second(python, "tiny", 16, 1, 1, threads))) {
    std::printf("\nPyTorch: not measured (%s cannot import torch; Debian's python3-torch)\n",
                python.c_str());
    return;
  }
  std::printf(
      "\nside by side with PyTorch eager (fp32, %d thread(s) each, bench/torch_reference.py, "
      "same model and shapes), AdamW, alternating:\n",
      threads);
  for (const Case& c : cases) {
    const std::string preset = c.model.vocab_size == 256 ? "tiny" : "XS";
    double ours = 0, theirs = 0;
    std::string figures;
    for (int round = 0; round < 2; ++round) {
      const double o = double(c.batch) * c.model.seq_len * 1000.0 /
                       run_case(backend, c, "adamw", steps, sgemm).step_ms;
      const double t =
          torch_tokens_per_second(python, preset, c.model.seq_len, c.batch, steps, threads);
      ours += o / 2;
      theirs += t / 2;
      figures += (round ? ", " : "") + std::to_string(long(o)) + " vs " + std::to_string(long(t));
    }
    std::printf("  %-32s %3d x %-4d ours %8.0f tok/s, PyTorch %8.0f tok/s: %.2fx (%s)\n",
                c.label.c_str(), c.batch, c.model.seq_len, ours, theirs, ours / theirs,
                figures.c_str());
  }
  const Case& tiny16 = cases.front();
  const double adamw = run_case(backend, tiny16, "adamw", steps, sgemm).step_ms,
               muon = run_case(backend, tiny16, "muon", steps, sgemm).step_ms;
  std::printf("  Muon's step / AdamW's step, %s %d x %d: %.2f\n", tiny16.label.c_str(),
              tiny16.batch, tiny16.model.seq_len, muon / adamw);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, versus_only = false, muon_step_only = false;
  int threads = 0, muon_steps = 200;
  std::string python = "/usr/bin/python3";  // Debian's, where python3-torch installs
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
    } else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--versus")) {
      versus_only = true;
    } else if (!std::strcmp(argv[i], "--muon-step")) {
      muon_step_only = true;
    } else if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) {
      muon_steps = std::max(1, std::atoi(argv[++i]));
    } else if (!std::strcmp(argv[i], "--python") && i + 1 < argc) {
      python = argv[++i];
    } else {
      std::fprintf(
          stderr,
          "usage: train_bench [--quick] [--versus] [--muon-step [--steps S]] [--threads N] "
          "[--python PATH]\n");
      return 2;
    }
  }
  auto backend = make_backend("cpu", threads);
  const double sgemm = sgemm_rate(quick ? 0.3 : 2.0);
  std::printf("sgemm rate (OpenBLAS, 1024^3): %.1f GFLOP/s\n", sgemm);
  std::printf(
      "model FLOPs per token = 6 N_active + 6 seq sum(n_head (d_qk + d_v)) (docs/science.md)\n\n");

  const ModelConfig tiny = find_preset("tiny")->model;
  if (muon_step_only) {
    muon_against_adamw(*backend, {"tiny (byte vocab)", tiny, 16}, muon_steps);
    return 0;
  }
  ModelConfig xs = find_preset("XS")->model;
  ModelConfig xs64 = xs;
  xs64.seq_len = 64;
  std::vector<Case> cases = {
      {"tiny (byte vocab)", tiny, 4},
      {"tiny (byte vocab)", tiny, 16},
      {"XS dims, GPT-2 vocab, seq 64", xs64, 4},
  };
  if (!quick) {
    cases.push_back({"XS dims, GPT-2 vocab, seq 64", xs64, 64});
    cases.push_back({"XS preset, GPT-2 vocab, seq 512", xs, 8});
  }
  // The architectures of Table 3 at the same sizes.
  for (const char* variant : {"-mla", "-moe-mla"}) {
    cases.push_back(
        {std::string("tiny") + variant, find_preset(std::string("tiny") + variant)->model, 16});
    if (!quick) {
      ModelConfig m = find_preset(std::string("XS") + variant)->model;
      m.seq_len = 64;
      cases.push_back({std::string("XS") + variant + " dims, seq 64", m, 64});
    }
  }
  const int steps = quick ? 2 : 10;
  // PyTorch gets the threads ours uses (ours: OpenMP's default, every core, unless --threads);
  // Debian's torch would otherwise take its own default, one thread on some machines.
  const int shared_threads = threads > 0 ? threads : int(std::thread::hardware_concurrency());
  // The cases: tiny 16 x 128 first (Muon against AdamW is read there), then XS.
  std::vector<Case> versus = {{"tiny (byte vocab)", tiny, 16},
                              {"tiny (byte vocab)", tiny, 4},
                              {"XS dims, GPT-2 vocab, seq 64", xs64, 4}};
  if (!quick) versus.push_back({"XS preset, GPT-2 vocab, seq 512", xs, 8});
  if (quick) versus.resize(1);
  if (versus_only) {
    side_by_side(*backend, versus, python, steps, shared_threads, sgemm);
    return 0;
  }
  for (const auto& c : cases)
    for (const char* opt : {"adamw", "muon"}) run_case(*backend, c, opt, steps, sgemm);
  // What optimizer diagnostics cost on the steps that compute them (metrics.diagnostics_every):
  // a copy of the weights, three reductions per parameter and one Gram matrix.
  std::printf(
      "\noptimizer diagnostics on every step (cost on a diagnostics step; divide by the "
      "cadence):\n");
  for (const char* opt : {"adamw", "muon"}) {
    const Case& c = cases[2];
    const double plain = run_case(*backend, c, opt, steps, sgemm).step_ms,
                 with = run_case(*backend, c, opt, steps, sgemm, true).step_ms;
    std::printf("  %-6s %+.1f%% per diagnostics step\n", opt, 100.0 * (with - plain) / plain);
  }
  side_by_side(*backend, versus, python, steps, shared_threads, sgemm);
  return 0;
}
