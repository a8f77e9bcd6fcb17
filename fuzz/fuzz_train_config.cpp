// A trainer config (YAML or JSON): a parsed config or a ConfigError, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "trainer_core/config/json_reader.h"
#include "trainer_core/config/train_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (const bool yaml : {true, false}) {
    try {
      const auto doc = yaml ? trainer_core::yaml_to_json(text, "fuzz.yaml")
                            : trainer_core::parse_json_document(text, "fuzz.json");
      const auto config = trainer_core::train_config_from_json(doc);
      (void)trainer_core::to_json(config);
    } catch (const trainer_core::ConfigError&) {
    }
  }
  return 0;
}
