#include "server/api/curve_pack.h"

#include <cstring>
#include <limits>
#include <stdexcept>

namespace server {

namespace pb = orchestrator::v1;

namespace {

template <typename T>
void put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));  // little-endian hosts only (x86-64, arm64)
  out.append(bytes, sizeof(T));
}

// n values of 4 bytes as 4 planes.
template <typename Get>
void put_planes(std::string& out, size_t n, Get get) {
  const size_t at = out.size();
  out.resize(at + 4 * n);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t word = get(i);
    for (size_t b = 0; b < 4; ++b) out[at + b * n + i] = char((word >> (8 * b)) & 0xff);
  }
}

template <typename Steps>
void put_steps(std::string& out, const Steps& steps) {
  put<uint32_t>(out, uint32_t(steps.size()));
  bool small = true;
  int64_t previous = 0;
  for (int64_t s : steps) {
    const int64_t d = s - previous;
    small = small && d >= 0 && d <= int64_t(std::numeric_limits<uint32_t>::max());
    previous = s;
  }
  put<uint8_t>(out, small ? 0 : 1);
  if (!small) {
    for (int64_t s : steps) put<double>(out, double(s));
    return;
  }
  put_planes(out, size_t(steps.size()),
             [&](size_t i) { return uint32_t(steps[int(i)] - (i == 0 ? 0 : steps[int(i) - 1])); });
}

template <typename Values>
void put_floats(std::string& out, const Values& values) {
  put_planes(out, size_t(values.size()), [&](size_t i) {
    const float f = float(values[int(i)]);
    uint32_t word;
    std::memcpy(&word, &f, 4);
    return word;
  });
}

}  // namespace

std::string pack_curves(const pb::SweepCurvesResponse& curves) {
  std::string out = "SWC1";
  put<uint32_t>(out, uint32_t(curves.jobs_size()));
  for (const pb::RunCurves& run : curves.jobs()) {
    put<double>(out, double(run.job_id()));
    put_steps(out, run.train().step());
    put_floats(out, run.train().min());
    put_floats(out, run.train().max());
    put_floats(out, run.train().mean());
    put_steps(out, run.train().spike_steps());
    put_steps(out, run.val().step());
    put_floats(out, run.val().val_loss());
  }
  return out;
}

}  // namespace server
