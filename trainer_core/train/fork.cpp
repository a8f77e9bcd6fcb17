#include "trainer_core/train/fork.h"

#include <nlohmann/json.hpp>

namespace trainer_core {

using nlohmann::json;

namespace {
// The parts of a resume identity a fork keeps (fork.h): whole sections, or single keys of one.
const char* const kFrozenSections[] = {"seed", "model", "data"};
const char* const kFrozenTraining[] = {"batch_tokens", "micro_batch"};

std::string shown(const json* v) { return v ? v->dump() : "nothing"; }

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

const json* member(const json& j, const char* key) { return j.contains(key) ? &j[key] : nullptr; }
}  // namespace

std::vector<ConfigProblem> fork_refusals(const std::string& parent_identity,
                                         const std::string& fork_identity) {
  const json parent = json::parse(parent_identity, nullptr, /*allow_exceptions=*/false);
  const json fork = json::parse(fork_identity);
  if (!parent.is_object())
    return {{"training.fork_from", "the parent's checkpoint holds no readable settings"}};
  std::vector<ConfigProblem> out;
  for (const char* section : kFrozenSections)
    differences(section, member(parent, section), member(fork, section), out);
  const json none = json::object();
  const json& parent_training = parent.contains("training") ? parent["training"] : none;
  const json& fork_training = fork.contains("training") ? fork["training"] : none;
  for (const char* key : kFrozenTraining)
    differences(std::string("training.") + key, member(parent_training, key),
                member(fork_training, key), out);
  const json& parent_optimizer = parent.contains("optimizer") ? parent["optimizer"] : none;
  const json& fork_optimizer = fork.contains("optimizer") ? fork["optimizer"] : none;
  differences("optimizer.name", member(parent_optimizer, "name"), member(fork_optimizer, "name"),
              out);
  return out;
}

}  // namespace trainer_core
