#include "server/provisioning/engine.h"

namespace server {

AllocationRow shaped_allocation(const AllocationShape& shape, const std::string& kind,
                                const std::string& name) {
  AllocationRow a;
  a.engine = kind;
  a.name = name;
  a.backend = shape.backend;
  a.nodes = shape.nodes;
  a.slots_per_node = shape.slots_per_node;
  a.gpus_per_node = shape.gpus_per_node;
  return a;
}

std::string last_lines(const std::string& text, int max_lines) {
  const size_t last = text.find_last_not_of(" \t\r\n");
  if (last == std::string::npos) return "";
  const size_t end = last + 1;
  const size_t floor = end > kEngineOutputLimit ? end - kEngineOutputLimit : 0;
  // `at`: the newline before the oldest line kept so far (end: none kept yet).
  size_t at = end;
  for (int lines = 0; lines < max_lines; ++lines) {
    const size_t newline = at == 0 ? std::string::npos : text.rfind('\n', at - 1);
    if (newline == std::string::npos || newline < floor) {
      // The byte bound (or the text's start) comes first: from the first line start past it,
      // or from the bound itself inside one overlong line.
      if (floor == 0) return text.substr(0, end);
      const size_t next = text.find('\n', floor);
      const size_t start = next != std::string::npos && next + 1 < end ? next + 1 : floor;
      return text.substr(start, end - start);
    }
    at = newline;
  }
  return text.substr(at + 1, end - at - 1);
}

}  // namespace server
