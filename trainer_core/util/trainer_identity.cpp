#include "trainer_core/util/trainer_identity.h"

#include <stdexcept>

#include "trainer_build_commit.h"  // generated: cmake/write_build_commit.cmake
#include "trainer_core/util/sha256.h"

namespace trainer_core {

const TrainerIdentity& trainer_identity() {
  static const TrainerIdentity identity = [] {
    TrainerIdentity id{TRAINER_BUILD_COMMIT, TRAINER_BUILD_DIRTY != 0, ""};
    try {
      id.binary_sha256 = sha256_file("/proc/self/exe");
    } catch (const std::runtime_error&) {
      // No /proc (not Linux): the commit and the dirty flag still say which source it was.
    }
    return id;
  }();
  return identity;
}

}  // namespace trainer_core
