// Training throughput of the CUDA backend (fp32; for L at 1024 also bf16 model precision, with
// the materialized and the fused flash attention, column "mat."/"flash"):
// tokens/s, MFU against the GPU's dense bf16 peak, and
// Muon's optimizer step as a fraction of the forward+backward time: of one micro-batch, and of a
// 0.5M-token step (the paper's smallest batch, reached by gradient accumulation), since the
// optimizer runs once per step however many micro-batches it accumulates.
//   build/bench/gpu_bench [--quick] [--peak-tflops X]
// MFU = tokens/s × model FLOPs per token (docs/science.md formula) / peak; tokens/s counts one
// optimizer step per micro-batch (conservative: accumulation amortizes it). The peak defaults to
// 989.4 TFLOP/s (H100/H200 SXM, dense bf16) when the device name says H100 or H200 (756 for an
// H100 PCIe); elsewhere pass --peak-tflops. Prints figures only; without a GPU it says so and
// exits 0.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench_clock.h"
#include "random_batch.h"
#include "trainer_core/backend/backend.h"
#include "trainer_core/backend/cuda/cuda_backend.h"
#include "trainer_core/backend/cuda/device_query.h"
#include "trainer_core/config/presets.h"
#include "trainer_core/metrics/flops.h"
#include "trainer_core/model/gpt.h"
#include "trainer_core/optim/clip.h"
#include "trainer_core/optim/optimizer.h"

using namespace trainer_core;

namespace {

double default_peak_tflops(const std::string& device) {
  if (device.find("H100") != std::string::npos && device.find("PCIe") != std::string::npos)
    return 756.0;
  if (device.find("H100") != std::string::npos || device.find("H200") != std::string::npos)
    return 989.4;
  return 0.0;
}

struct Case {
  std::string preset;
  int seq;
  int batch;  // sequences per step
  Precision precision = Precision::kFp32;
  CudaAttention attention = CudaAttention::kMaterialized;
};

void run_case(Backend& backend, const Case& c, const std::string& optimizer, int steps,
              double peak_tflops) {
  ModelConfig m = find_preset(c.preset)->model;
  m.seq_len = c.seq;
  m.precision = c.precision;
  Gpt model(m, backend);
  model.init_weights(1);
  OptimizerConfig oc;
  oc.name = *parse_name<OptimizerKind>(optimizer);
  Optimizer opt(oc, model.params(), model.weights(), model.grads(), backend);
  const size_t tokens = size_t(c.batch) * c.seq;
  const RandomBatch batch = random_batch(tokens, m.vocab_size);
  const std::vector<int32_t>& inputs = batch.inputs;
  const std::vector<int32_t>& targets = batch.targets;
  double forward_backward = 0, update = 0;
  for (int s = -1; s < steps; ++s) {  // step -1 warms up (allocations, cuBLAS heuristics)
    auto t0 = Clock::now();
    model.zero_grads();
    model.forward_backward(inputs.data(), targets.data(), c.batch, 1.0f);
    clip_by_global_norm(backend, model.grads(), model.num_params(), 1.0);
    backend.synchronize();
    const double fb = seconds_since(t0);
    t0 = Clock::now();
    opt.step(1e-3f);
    backend.synchronize();
    if (s >= 0) {
      forward_backward += fb;
      update += seconds_since(t0);
    }
  }
  const double step_s = (forward_backward + update) / steps;
  const double tok_s = double(tokens) / step_s;
  const double tflops = tok_s * flops_per_token(m).train_per_token / 1e12;
  const double micro_batches_per_step = 524288.0 / double(tokens);
  std::printf(
      "%-4s seq %-5d batch %-4d %-4s %-5s %-6s %10.0f tok/s %7.1f TFLOP/s  MFU %5.1f%%  step %7.1f "
      "ms  "
      "optimizer %6.1f%% of one micro-batch's fwd+bwd, %5.2f%% of a 0.5M-token step  "
      "peak mem %6.0f MiB (device)\n",
      c.preset.c_str(), c.seq, c.batch, name_of(c.precision),
      c.attention == CudaAttention::kFused ? "flash" : "mat.", optimizer.c_str(), tok_s, tflops,
      peak_tflops > 0 ? 100.0 * tflops / peak_tflops : 0.0, 1000.0 * step_s,
      100.0 * update / forward_backward,
      100.0 * update / (forward_backward * micro_batches_per_step),
      backend.device_peak_bytes() / 1048576.0);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  double peak = -1;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
    } else if (!std::strcmp(argv[i], "--peak-tflops") && i + 1 < argc) {
      peak = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: gpu_bench [--quick] [--peak-tflops X]\n");
      return 2;
    }
  }
  const auto devices = list_cuda_devices();
  if (devices.empty()) {
    std::printf("gpu_bench: no CUDA device or driver on this machine; nothing measured\n");
    return 0;
  }
  if (peak < 0) peak = default_peak_tflops(devices[0].name);
  std::printf("device: %s, %.0f GiB; MFU against %.1f TFLOP/s dense bf16%s\n",
              devices[0].name.c_str(), devices[0].total_memory_bytes / 1073741824.0, peak,
              peak > 0 ? "" : " (unknown: pass --peak-tflops)");
  std::printf(
      "model FLOPs per token = 6 N_active + 6 seq sum(n_head (d_qk + d_v)) (docs/science.md)\n\n");
  std::vector<Case> cases = {{"XS", 512, quick ? 4 : 64}};
  if (!quick) {
    cases.push_back({"S", 512, 32});
    cases.push_back({"L", 512, 16});
    cases.push_back({"L", 1024, 8});
    cases.push_back({"L", 1024, 8, Precision::kBf16});  // bf16 GEMM operands (model.precision)
    cases.push_back({"L", 1024, 8, Precision::kBf16, CudaAttention::kFused});  // flash attention
  }
  const int steps = quick ? 2 : 10;
  for (const auto& c : cases)
    for (const char* opt : {"adamw", "muon"}) {
      auto backend = make_cuda_backend(0, c.attention);  // fresh per case: its own peak memory
      run_case(*backend, c, opt, steps, peak);
    }
  return 0;
}
