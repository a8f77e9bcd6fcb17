// Deterministic random numbers whose streams depend only on their seeds (never on the standard
// library's distribution implementations), so results reproduce across machines and resumes.
#pragma once

#include <cmath>
#include <cstdint>

namespace trainer_core {

inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Mixes several integers (seed, step, rank, ...) into one stream seed.
inline uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c = 0) {
  uint64_t s = a;
  uint64_t h = splitmix64(s) ^ b;
  h = splitmix64(h) ^ c;
  return splitmix64(h);
}

class UniformRng {
 public:
  explicit UniformRng(uint64_t seed) : state_(seed) {}
  uint64_t next_u64() { return splitmix64(state_); }
  double next_double() { return double(next_u64() >> 11) * 0x1.0p-53; }  // [0, 1)
  uint64_t below(uint64_t bound) { return next_u64() % bound; }

 private:
  uint64_t state_;
};

// Standard normal samples by Box-Muller.
class NormalRng {
 public:
  explicit NormalRng(uint64_t seed) : uniform_(seed) {}
  double next() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = 1.0 - uniform_.next_double(), u2 = uniform_.next_double();
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = r * std::sin(2.0 * M_PI * u2);
    has_spare_ = true;
    return r * std::cos(2.0 * M_PI * u2);
  }

 private:
  UniformRng uniform_;
  double spare_ = 0;
  bool has_spare_ = false;
};

}  // namespace trainer_core
