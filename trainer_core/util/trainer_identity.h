// Which trainer ran a run: the source commit it was built from, whether that tree had
// uncommitted changes, and the SHA-256 of the running binary (which also tells apart builds of
// one commit with other compilers or flags). Every run's summary records it (docs/run-records.md,
// `trainer`), so a result can be traced to the code that produced it.
#pragma once

#include <string>

namespace trainer_core {

struct TrainerIdentity {
  std::string commit;         // 40 hex digits, or "unknown" when built outside a git checkout
  bool dirty = true;          // tracked files differed from the commit at build time (or unknown)
  std::string binary_sha256;  // of /proc/self/exe; empty where it cannot be read
};

// Computed once per process (hashing the binary: a few milliseconds).
const TrainerIdentity& trainer_identity();

}  // namespace trainer_core
