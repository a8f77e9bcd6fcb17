#include "trainer_core/train/fork.h"

#include <nlohmann/json.hpp>

namespace trainer_core {

using nlohmann::json;

namespace {
// The settings of a resume identity a fork keeps (fork.h), as JSON pointers: whole sections or
// single keys.
const char* const kFrozen[] = {
    "/seed",          "/model", "/data", "/training/batch_tokens", "/training/micro_batch",
    "/optimizer/name"};

std::string shown(const json* v) { return v ? v->dump() : "nothing"; }

const json* at(const json& j, const json::json_pointer& pointer) {
  return j.contains(pointer) ? &j.at(pointer) : nullptr;
}

// Every leaf under `path` where the two differ (a key only one side has counts).
void differences(const std::string& path, const json* parent, const json* fork,
                 std::vector<ConfigProblem>& out) {
  if (parent && fork && parent->is_object() && fork->is_object()) {
    for (const auto& [key, value] : parent->items())
      differences(path + "." + key, &value, fork->contains(key) ? &(*fork)[key] : nullptr, out);
    for (const auto& [key, value] : fork->items())
      if (!parent->contains(key)) differences(path + "." + key, nullptr, &value, out);
    return;
  }
  if (parent && fork && *parent == *fork) return;
  out.push_back({path, "the parent has " + shown(parent) + ", this fork " + shown(fork) +
                           "; a fork may not change it"});
}
}  // namespace

std::vector<ConfigProblem> fork_refusals(const std::string& parent_identity,
                                         const std::string& fork_identity) {
  const json parent = json::parse(parent_identity, nullptr, /*allow_exceptions=*/false);
  const json fork = json::parse(fork_identity);
  if (!parent.is_object())
    return {{"training.fork_from", "the parent's checkpoint holds no readable settings"}};
  std::vector<ConfigProblem> out;
  for (const char* frozen : kFrozen) {
    const json::json_pointer pointer(frozen);
    std::string path = frozen + 1;  // "/training/batch_tokens" -> "training.batch_tokens"
    for (char& c : path) c = c == '/' ? '.' : c;
    differences(path, at(parent, pointer), at(fork, pointer), out);
  }
  return out;
}

}  // namespace trainer_core
