// A sweep file as the coordinator receives it: parse, validate, expand. Any input must end in a
// plan or a list of problems, never a crash, and within the document bounds.
#include <cstddef>
#include <cstdint>
#include <string>

#include "sweep_file/sweep_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)sweep_file::plan_sweep(text, "fuzz.yaml", 200);
  (void)sweep_file::plan_sweep(text, "fuzz.json", 200);
  return 0;
}
