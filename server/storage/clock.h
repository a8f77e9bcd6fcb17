// Wall-clock milliseconds since the epoch: the time the store stamps rows with and leases are
// measured in, for the coordinator and whatever writes a database beside it (migrations, tests).
#pragma once

#include <chrono>
#include <cstdint>

namespace server {

inline int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace server
