#include "sweep_file/fork_spec.h"

#include "trainer_core/config/json_reader.h"

namespace sweep_file {

using nlohmann::json;
using trainer_core::ConfigProblem;

namespace {
// Planned forks a sweep file may list.
constexpr size_t kMaxForkSpecs = 100;
}  // namespace

std::vector<ForkSpec> read_fork_specs(const json& doc, std::vector<ConfigProblem>& problems) {
  std::vector<ForkSpec> out;
  if (!doc.is_object() || !doc.contains("forks")) return out;
  const json& list = doc["forks"];
  if (!list.is_array() || list.size() > kMaxForkSpecs) {
    problems.push_back({"forks", "must be a list of at most " + std::to_string(kMaxForkSpecs) +
                                     " forks {from, at_tokens, label, set}"});
    return out;
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string path = "forks[" + std::to_string(i) + "]";
    if (!list[i].is_object()) {
      problems.push_back({path, "must be a map {from, at_tokens, label, set}"});
      continue;
    }
    const size_t before = problems.size();
    ForkSpec f;
    trainer_core::JsonReader r(list[i], path, problems);
    r.read("from", f.from);
    r.read("at_tokens", f.at_tokens);
    r.read("label", f.label);
    r.claim("set");
    r.finish();
    if (list[i].contains("set")) {
      if (list[i]["set"].is_object())
        f.set = list[i]["set"];
      else
        problems.push_back({path + ".set", "must be a map of dotted paths to values"});
    }
    if (f.from.empty()) problems.push_back({path + ".from", "must name a row's label"});
    if (f.at_tokens <= 0) problems.push_back({path + ".at_tokens", "must be > 0"});
    if (f.label.empty()) f.label = "fork@" + std::to_string(f.at_tokens);
    if (f.label.find('/') != std::string::npos)
      problems.push_back({path + ".label", "may not contain '/'"});
    if (problems.size() == before) out.push_back(std::move(f));
  }
  return out;
}

}  // namespace sweep_file
