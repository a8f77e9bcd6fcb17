// A hostile YAML document for the parser-bound tests: "billion laughs", anchors of ten aliases
// of the previous anchor, nine levels deep, so under 1 KB of text expands to 10^9 nodes.
#pragma once

#include <string>

namespace test_documents {

inline std::string yaml_alias_bomb(const std::string& first_line = "") {
  std::string bomb = first_line + "l0: &l0 [a, a, a, a, a, a, a, a, a, a]\n";
  for (int i = 1; i < 10; ++i) {
    const std::string prev = "*l" + std::to_string(i - 1);
    bomb += "l" + std::to_string(i) + ": &l" + std::to_string(i) + " [" + prev;
    for (int k = 1; k < 10; ++k) bomb += ", " + prev;
    bomb += "]\n";
  }
  return bomb;
}

}  // namespace test_documents
