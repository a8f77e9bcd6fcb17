// Training throughput of the CPU backend: tokens/s, achieved GFLOP/s (model FLOPs from the
// docs/science.md formula) and that rate as a fraction of this machine's sgemm rate.
//   build/bench/train_bench [--quick] [--threads N]
// Prints figures only; it never fails on a time.
#include <cblas.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
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

// Returns ms per step. With `diagnostics`, every step also computes the optimizer diagnostics
// (metrics.diagnostics_every = 1, the most expensive cadence).
double run_case(Backend& backend, const Case& c, const std::string& optimizer, int steps,
                double sgemm_gflops, bool diagnostics = false) {
  Gpt model(c.model, backend);
  model.init_weights(1);
  OptimizerConfig oc;
  oc.name = *parse_name<OptimizerKind>(optimizer);
  Optimizer opt(oc, model.params(), model.weights(), model.grads(), backend);
  const size_t tokens = size_t(c.batch) * c.model.seq_len;
  const RandomBatch batch = random_batch(tokens, c.model.vocab_size);
  const std::vector<int32_t>& inputs = batch.inputs;
  const std::vector<int32_t>& targets = batch.targets;
  auto step = [&] {
    model.zero_grads();
    model.forward_backward(inputs.data(), targets.data(), c.batch, 1.0f);
    clip_by_global_norm(backend, model.grads(), model.num_params(), 1.0);
    std::vector<NamedValue> values;
    opt.step(1e-3f, diagnostics ? &values : nullptr);
  };
  step();  // warm-up: allocations, page faults, OpenBLAS buffers
  const auto start = Clock::now();
  for (int s = 0; s < steps; ++s) step();
  const double elapsed = seconds_since(start);
  const double tok_s = double(tokens) * steps / elapsed;
  const double gflops = tok_s * flops_per_token(c.model).train_per_token / 1e9;
  std::printf("%-34s %-6s %5d x %-4d %10.0f tok/s %8.1f GFLOP/s %6.1f%% of sgemm  %7.1f ms/step\n",
              (c.label + (diagnostics ? " +diag" : "")).c_str(), optimizer.c_str(), c.batch,
              c.model.seq_len, tok_s, gflops, 100.0 * gflops / sgemm_gflops,
              1000.0 * elapsed / steps);
  std::fflush(stdout);
  return 1000.0 * elapsed / steps;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
    } else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: train_bench [--quick] [--threads N]\n");
      return 2;
    }
  }
  auto backend = make_backend("cpu", threads);
  const double sgemm = sgemm_rate(quick ? 0.3 : 2.0);
  std::printf("sgemm rate (OpenBLAS, 1024^3): %.1f GFLOP/s\n", sgemm);
  std::printf(
      "model FLOPs per token = 6 N_active + 6 seq sum(n_head (d_qk + d_v)) (docs/science.md)\n\n");

  const ModelConfig tiny = find_preset("tiny")->model;
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
  for (const auto& c : cases)
    for (const char* opt : {"adamw", "muon"}) run_case(*backend, c, opt, steps, sgemm);
  // What optimizer diagnostics cost on the steps that compute them (metrics.diagnostics_every):
  // a copy of the weights, three reductions per parameter and one Gram matrix.
  std::printf(
      "\noptimizer diagnostics on every step (cost on a diagnostics step; divide by the "
      "cadence):\n");
  for (const char* opt : {"adamw", "muon"}) {
    const Case& c = cases[2];
    const double plain = run_case(*backend, c, opt, steps, sgemm),
                 with = run_case(*backend, c, opt, steps, sgemm, true);
    std::printf("  %-6s %+.1f%% per diagnostics step\n", opt, 100.0 * (with - plain) / plain);
  }
  return 0;
}
