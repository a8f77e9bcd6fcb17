#include "sweep_file/sweep_spec.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "trainer_core/config/json_reader.h"
#include "trainer_core/train/eval_schedule.h"
#include "trainer_core/train/fork.h"

namespace sweep_file {

using nlohmann::json;
using trainer_core::ConfigError;
using trainer_core::ConfigProblem;

std::string json_hash(const json& j) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : j.dump()) h = (h ^ c) * 1099511628211ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)h);
  return buf;
}

std::string config_hash(json config) {
  config.erase("name");
  return json_hash(config);
}

namespace {

using trainer_core::set_dotted_path;

// Whether a dotted path has an empty key ("a..b", ".a", "a."): refused before expansion.
bool has_empty_key(const std::string& path) {
  return path.empty() || path.front() == '.' || path.back() == '.' ||
         path.find("..") != std::string::npos;
}

// A sweep may ask for a checkpoint cadence without a directory: the coordinator gives every job
// its own directory under --checkpoint-root (job_config.h). Validation sees a placeholder there;
// the stored config keeps the directory empty.
constexpr const char* kCoordinatorCheckpointDir = "(set by the coordinator)";
json as_validated(json config) {
  const json& t = config.value("training", json::object());
  if (t.is_object() && t.value("checkpoint_every", 0) > 0 &&
      t.value("checkpoint_dir", std::string()).empty())
    config["training"]["checkpoint_dir"] = kCoordinatorCheckpointDir;
  return config;
}

// A job that names `command` runs that program instead of the built-in trainer (the worker gives
// it the job's config and reads its run records: docs/run-records.md). Its config is its own, so
// only what the service itself needs is checked: the command, and max_steps for progress.
bool is_external(const json& config) { return config.is_object() && config.contains("command"); }

std::vector<ConfigProblem> external_problems(const json& config) {
  std::vector<ConfigProblem> p;
  const json& command = config["command"];
  bool words = command.is_array() && !command.empty();
  for (const json& w : command.is_array() ? command : json::array())
    words = words && w.is_string() && !w.get<std::string>().empty();
  if (!words)
    p.push_back({"command", "must be a non-empty list of non-empty strings (program, args...)"});
  const json training = config.value("training", json::object());
  const json steps = training.is_object() ? training.value("max_steps", json()) : json();
  if (!steps.is_number_integer() || steps.get<int64_t>() < 1)
    p.push_back(
        {"training.max_steps", "must be an integer >= 1 (the service shows progress against it)"});
  return p;
}

std::vector<ConfigProblem> problems_of(const json& config) {
  if (is_external(config)) return external_problems(config);
  try {
    trainer_core::train_config_from_json(as_validated(config));
  } catch (const ConfigError& e) {
    return e.problems;
  }
  return {};
}

// A grid value as a label shows it: strings bare, an object by its "name" when it has one
// ({name: muon, lr: 1e-2} -> muon), else by its values ({attention: mla, ffn: moe} -> mla-moe).
std::string short_value(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("name") && v["name"].is_string())
    return v["name"].get<std::string>();
  if (v.is_object()) {
    std::string out;
    for (const auto& item : v) out += (out.empty() ? "" : "-") + short_value(item);
    return out;
  }
  return v.dump();
}

// "optimizer.name" -> "optimizer", "training.batch_tokens" -> "batch_tokens".
std::string axis_name(const std::string& path) {
  const size_t dot = path.rfind('.');
  std::string last = dot == std::string::npos ? path : path.substr(dot + 1);
  if (last == "name" && dot != std::string::npos) {
    const std::string head = path.substr(0, dot);
    const size_t d2 = head.rfind('.');
    return d2 == std::string::npos ? head : head.substr(d2 + 1);
  }
  return last;
}

void flatten(const json& v, const std::string& prefix, std::map<std::string, json>& out) {
  if (!v.is_object()) {
    out[prefix] = v;
    return;
  }
  for (auto it = v.begin(); it != v.end(); ++it)
    flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
}

// The label part of each value of a grid axis: "optimizer=muon". Values that would read the same
// ({name: adamw, lr: 1e-3} and {name: adamw, lr: 3e-3}) also name every leaf in which they differ
// ("optimizer=adamw/lr=0.001"), so that a label always tells its runs apart; results drop the
// "lr=" part when they pick the best lr of a row.
std::vector<std::string> axis_labels(const std::string& path, const std::vector<json>& values) {
  std::vector<std::string> out;
  std::map<std::string, std::vector<size_t>> same;
  for (size_t i = 0; i < values.size(); ++i) {
    out.push_back(axis_name(path) + "=" + short_value(values[i]));
    same[out.back()].push_back(i);
  }
  for (const auto& [text, members] : same) {
    if (members.size() < 2) continue;
    std::vector<std::map<std::string, json>> leaves(members.size());
    std::set<std::string> keys;
    for (size_t m = 0; m < members.size(); ++m) {
      flatten(values[members[m]], "", leaves[m]);
      for (const auto& [k, v] : leaves[m]) keys.insert(k);
    }
    for (const std::string& key : keys) {
      if (key == "name") continue;
      bool differs = false;
      for (size_t m = 1; m < members.size(); ++m)
        differs = differs || leaves[m][key] != leaves[0][key];
      if (!differs) continue;
      const std::string leaf = key.substr(key.rfind('.') + 1);
      for (size_t m = 0; m < members.size(); ++m) {
        const auto it = leaves[m].find(key);
        out[members[m]] +=
            "/" + leaf + "=" +
            (it == leaves[m].end() ? std::string("default") : short_value(it->second));
      }
    }
  }
  return out;
}

// A telescoping sweep's job at its first width, having checked that the config holds at every
// width (problems under tune.telescope.widths[i], each once). False: the job is left out.
bool scale_to_first_width(const Telescope& tel, json& config, std::set<std::string>& known,
                          std::vector<ConfigProblem>& problems) {
  bool ok = true;
  for (size_t i = 0; i < tel.widths.size(); ++i) {
    const std::string path = "tune.telescope.widths[" + std::to_string(i) + "]";
    try {
      trainer_core::train_config_from_json(
          as_validated(at_width(config, tel.widths[i], tel.widths[0])));
    } catch (const std::invalid_argument& e) {
      if (known.insert(path + e.what()).second) problems.push_back({path, e.what()});
      ok = false;
    } catch (const ConfigError& e) {
      for (const auto& p : e.problems)
        if (known.insert(path + p.to_string()).second)
          problems.push_back({path, p.message + " (" + p.path + ")"});
      ok = false;
    }
  }
  if (ok) config = at_width(config, tel.widths[0], tel.widths[0]);
  return ok;
}

// Whether a tuned sweep's job is at one of its optimizer's start values.
bool in_start(const TuneSpec& tune, const ExpandedJob& job) {
  const json lr = job.config.value("optimizer", json::object()).value("lr", json());
  if (!lr.is_number()) return false;
  for (double v : tune.start_for(job.optimizer))
    if (same_value(v, lr.get<double>())) return true;
  return false;
}

struct Ablation {
  std::string label;
  json set = json::object();
};

// One axis of the grid: a dotted path and the values it takes, in the file's order.
struct GridAxis {
  std::string path;
  std::vector<json> values;
};

// One entry of `exclude:`: a grid combination that takes the value `value` on every listed axis
// is not run (indices into SweepLayers::grid and its axes' values).
struct GridExclusion {
  std::vector<std::pair<size_t, size_t>> axis_value;
};

// What a sweep file layers into its jobs: base, then one ablation, one value per grid axis and
// one seed (SweepPlan holds the rest of the file).
struct SweepLayers {
  json base = json::object();
  std::vector<Ablation> ablations;
  std::vector<GridAxis> grid;  // with `tune:`, the tuned path is the last axis
  std::vector<GridExclusion> exclude;
  std::vector<int64_t> seeds;  // never empty
};

// `config` with every dotted-path override of `set` applied.
json with_overrides(json config, const json& set) {
  for (auto it = set.begin(); it != set.end(); ++it) set_dotted_path(config, it.key(), it.value());
  return config;
}

// The document as JSON (a .json file as JSON, anything else as YAML); nullopt: its problems are
// in `problems`.
std::optional<json> parse_document(const std::string& text, const std::string& source_name,
                                   std::vector<ConfigProblem>& problems) {
  try {
    return source_name.ends_with(".json") ? trainer_core::parse_json_document(text, source_name)
                                          : trainer_core::yaml_to_json(text, source_name);
  } catch (const ConfigError& e) {
    problems = e.problems;
    return std::nullopt;
  }
}

json read_base(const json& doc, trainer_core::JsonReader& r, std::vector<ConfigProblem>& problems) {
  json base = doc.is_object() && doc.contains("base") ? doc["base"] : json::object();
  r.claim("base");          // validated through the expansion (check_each_layer)
  if (!base.is_object()) {  // found by fuzz/fuzz_sweep_spec.cpp
    problems.push_back({"base", "must be a map (a trainer config)"});
    base = json::object();
  }
  return base;
}

// One entry of `ablations:`; a key of its `set` with an empty part is reported and dropped, so
// that expansion never meets it.
Ablation read_ablation(const json& entry, const std::string& path,
                       std::vector<ConfigProblem>& problems) {
  Ablation ab;
  trainer_core::JsonReader ar(entry, path, problems);
  ar.read("label", ab.label);
  ar.child("set");
  ar.finish();
  if (ab.label.empty()) problems.push_back({path + ".label", "must be a non-empty string"});
  if (!entry.is_object() || !entry.contains("set")) return ab;
  if (!entry["set"].is_object())
    problems.push_back({path + ".set", "must be a map of dotted paths to values"});
  else
    ab.set = entry["set"];
  std::vector<std::string> bad;
  for (auto it = ab.set.begin(); it != ab.set.end(); ++it)
    if (has_empty_key(it.key())) bad.push_back(it.key());
  for (const std::string& key : bad) {
    problems.push_back({path + ".set." + key, "an empty key in a dotted path"});
    ab.set.erase(key);
  }
  return ab;
}

std::vector<Ablation> read_ablations(const json& doc, trainer_core::JsonReader& r,
                                     std::vector<ConfigProblem>& problems) {
  std::vector<Ablation> ablations;
  if (!doc.contains("ablations")) return ablations;
  r.claim("ablations");
  const json& a = doc["ablations"];
  if (!a.is_array()) problems.push_back({"ablations", "must be a list"});
  for (size_t i = 0; a.is_array() && i < a.size(); ++i)
    ablations.push_back(read_ablation(a[i], "ablations[" + std::to_string(i) + "]", problems));
  return ablations;
}

// The axes of `grid:` that are valid (the others are reported).
std::vector<GridAxis> read_grid(const json& doc, trainer_core::JsonReader& r,
                                std::vector<ConfigProblem>& problems) {
  std::vector<GridAxis> grid;
  if (!doc.contains("grid")) return grid;
  r.claim("grid");
  const json& g = doc["grid"];
  if (!g.is_object())
    problems.push_back({"grid", "must be a map of dotted paths to lists of values"});
  for (auto it = g.begin(); g.is_object() && it != g.end(); ++it) {
    if (has_empty_key(it.key()))
      problems.push_back({"grid." + it.key(), "an empty key in a dotted path"});
    else if (!it.value().is_array() || it.value().empty())
      problems.push_back({"grid." + it.key(), "must be a non-empty list of values"});
    else
      grid.push_back({it.key(), std::vector<json>(it.value().begin(), it.value().end())});
  }
  return grid;
}

// `exclude:`, a list of maps from grid paths to one of the values the grid gives them (equal as
// JSON: key order and 512 against 512.0 do not matter). Read before the tuned axis is added, so
// the tuned path cannot be excluded (the planner decides which of its values run).
std::vector<GridExclusion> read_grid_exclusions(const json& doc, trainer_core::JsonReader& r,
                                                const std::vector<GridAxis>& grid,
                                                std::vector<ConfigProblem>& problems) {
  std::vector<GridExclusion> out;
  if (!doc.contains("exclude")) return out;
  r.claim("exclude");
  const json& e = doc["exclude"];
  if (!e.is_array() || e.empty()) {
    problems.push_back({"exclude", "must be a non-empty list of maps from grid paths to values"});
    return out;
  }
  for (size_t i = 0; i < e.size(); ++i) {
    const std::string at = "exclude[" + std::to_string(i) + "]";
    if (!e[i].is_object() || e[i].empty()) {
      problems.push_back({at, "must map grid paths to one of their values"});
      continue;
    }
    GridExclusion x;
    for (auto it = e[i].begin(); it != e[i].end(); ++it) {
      const auto axis = std::find_if(grid.begin(), grid.end(),
                                     [&](const GridAxis& a) { return a.path == it.key(); });
      if (axis == grid.end()) {
        problems.push_back({at + "." + it.key(), "is not a path of grid:"});
        continue;
      }
      const auto value = std::find(axis->values.begin(), axis->values.end(), it.value());
      if (value == axis->values.end()) {
        problems.push_back(
            {at + "." + it.key(), it.value().dump() + " is not one of the values grid: gives it"});
        continue;
      }
      x.axis_value.push_back({size_t(axis - grid.begin()), size_t(value - axis->values.begin())});
    }
    if (x.axis_value.size() == e[i].size()) out.push_back(std::move(x));
  }
  return out;
}

// Whether the grid combination `pick` (one value index per axis) is excluded.
bool excluded(const std::vector<GridExclusion>& exclude, const std::vector<size_t>& pick) {
  return std::any_of(exclude.begin(), exclude.end(), [&](const GridExclusion& x) {
    return std::all_of(x.axis_value.begin(), x.axis_value.end(),
                       [&](const auto& av) { return pick[av.first] == av.second; });
  });
}

// Advances `pick` to the next grid combination (odometer order: the last axis changes fastest);
// false, with `pick` back at the first, after the last.
bool next_combination(const std::vector<GridAxis>& grid, std::vector<size_t>& pick) {
  int g = int(grid.size()) - 1;
  while (g >= 0 && ++pick[g] == grid[g].values.size()) pick[g--] = 0;
  return g >= 0;
}

size_t grid_product(const SweepLayers& layers) {
  size_t product = 1;
  for (const auto& axis : layers.grid) product *= axis.values.size();
  return product;
}

// The grid's combinations that `exclude:` leaves in. Counted one by one only up to `cap`
// combinations (bounded time for a hostile file); beyond it, the full product, which the job
// limit refuses anyway.
size_t grid_combinations(const SweepLayers& layers, size_t cap) {
  const size_t product = grid_product(layers);
  if (layers.exclude.empty() || product > cap) return product;
  size_t left = 0;
  std::vector<size_t> pick(layers.grid.size(), 0);
  do left += excluded(layers.exclude, pick) ? 0 : 1;
  while (next_combination(layers.grid, pick));
  return left;
}

constexpr const char* kWeightDecayPath = "optimizer.weight_decay";

// Whether setting `value` at dotted `path` sets `tuned`: the path itself, or a key inside an
// object value ({optimizer: {weight_decay: 0}}).
bool sets_path(const std::string& path, const json& value, const std::string& tuned) {
  if (path == tuned) return true;
  if (!value.is_object() || !tuned.starts_with(path + ".")) return false;
  const std::string rest = tuned.substr(path.size() + 1);
  const std::string key = rest.substr(0, rest.find('.'));
  return value.contains(key) && sets_path(path + "." + key, value[key], tuned);
}

// A tuned sweep's seeds and grid come from `tune:`: refuses `seeds:` and a grid axis on a tuned
// path, and adds those paths as the last axes with their start values.
void add_tuned_axis(const json& doc, const TuneSpec& tune, const std::vector<Ablation>& ablations,
                    std::vector<GridAxis>& grid, std::vector<ConfigProblem>& problems) {
  if (doc.contains("seeds"))
    problems.push_back({"seeds",
                        "a tuned sweep names its seeds in tune.seeds (tuning runs) and "
                        "tune.confirm_seeds (at the chosen value)"});
  // The tuned axes are written last, over whatever an ablation or another grid axis set there:
  // such a setting would be silently lost, so it is refused.
  std::vector<std::pair<std::string, std::string>> tuned = {{tune.param, "tune.start"}};
  if (tune.weight_decay) tuned.push_back({kWeightDecayPath, "tune.weight_decay.start"});
  for (const auto& [path, from] : tuned) {
    for (const auto& [axis, values] : grid)
      for (const json& v : values)
        if (sets_path(axis, v, path)) {
          problems.push_back(
              {"grid." + axis, (axis == path ? "is tuned" : "sets " + path + ", which is tuned") +
                                   std::string(": its values come from ") + from});
          break;
        }
    for (size_t i = 0; i < ablations.size(); ++i)
      for (auto it = ablations[i].set.begin(); it != ablations[i].set.end(); ++it)
        if (sets_path(it.key(), it.value(), path))
          problems.push_back({"ablations[" + std::to_string(i) + "].set." + it.key(),
                              "sets " + path + ", which tune: searches (its values come from " +
                                  from + "): vary it in a sweep without tune:"});
  }
  // The last axis: labels end in "/lr=..." (then "/weight_decay=..." when it is tuned too).
  // Per-optimizer start lists expand to their union, and each job outside its optimizer's list is
  // dropped in expansion.
  const std::vector<double> start = tune.all_start_values();
  grid.push_back({tune.param, std::vector<json>(start.begin(), start.end())});
  if (tune.weight_decay)
    grid.push_back({kWeightDecayPath, std::vector<json>(tune.weight_decay->start.begin(),
                                                        tune.weight_decay->start.end())});
}

// `seeds:` (a tuned sweep: tune.seeds); none given: base's seed, else 1.
std::vector<int64_t> read_sweep_seeds(trainer_core::JsonReader& r,
                                      const std::optional<TuneSpec>& tune, const json& base,
                                      std::vector<ConfigProblem>& problems) {
  std::vector<double> seeds_d;
  if (!tune)
    r.read("seeds", seeds_d);
  else
    r.claim("seeds");  // refused by add_tuned_axis
  for (int64_t s : tune ? tune->seeds_at(0) : std::vector<int64_t>()) seeds_d.push_back(s);
  std::vector<int64_t> seeds;
  for (size_t i = 0; i < seeds_d.size(); ++i) {
    if (seeds_d[i] < 0 || seeds_d[i] != double(int64_t(seeds_d[i])))
      problems.push_back({"seeds[" + std::to_string(i) + "]", "must be a non-negative integer"});
    seeds.push_back(int64_t(seeds_d[i]));
  }
  if (seeds.empty()) seeds.push_back(base.value("seed", 1));
  return seeds;
}

// Every top-level key of the document: the sweep's settings into `plan`, its layers returned.
// Keys are read in this order, which is the order their problems are reported in.
SweepLayers read_sections(const json& doc, SweepPlan& plan) {
  auto& problems = plan.problems;
  SweepLayers layers;
  trainer_core::JsonReader r(doc, "", problems);
  r.read("name", plan.name);
  layers.base = read_base(doc, r, problems);
  layers.ablations = read_ablations(doc, r, problems);
  layers.grid = read_grid(doc, r, problems);
  layers.exclude = read_grid_exclusions(doc, r, layers.grid, problems);
  r.claim("tune");
  plan.tune = read_tune_spec(doc, problems);
  if (plan.tune) add_tuned_axis(doc, *plan.tune, layers.ablations, layers.grid, problems);
  layers.seeds = read_sweep_seeds(r, plan.tune, layers.base, problems);
  r.claim("budgets");
  plan.budgets = read_budget_ladder(doc, problems);
  if (plan.budgets && plan.tune)
    problems.push_back({"budgets",
                        "a tuned sweep (tune:) cannot have budgets yet: tune the lr "
                        "first, then run the ladder at the chosen lrs"});
  r.claim("forks");
  plan.forks = read_fork_specs(doc, problems);
  if (!plan.forks.empty() && plan.tune)
    problems.push_back({"forks", "a tuned sweep (tune:) cannot have forks yet"});
  r.claim("health");
  plan.health = read_health_rules(doc, problems);
  r.claim("notify");
  plan.notify = read_notify_urls(doc, problems);
  r.claim("analysis");
  plan.analysis = read_analysis_spec(doc, layers.seeds, plan.tune.has_value(), problems);
  if (const int64_t at = plan.analysis.tables_at_budget;
      at != 0 && !(plan.budgets &&
                   std::count(plan.budgets->tokens.begin(), plan.budgets->tokens.end(), at) == 1))
    problems.push_back({"analysis.tables_at_budget",
                        std::to_string(at) + " is not one of the sweep's budgets.tokens"});
  if (const int64_t from = plan.analysis.fit_from_tokens; from != 0) {
    const auto& tokens = plan.budgets ? plan.budgets->tokens : std::vector<int64_t>();
    if (std::count(tokens.begin(), tokens.end(), from) != 1)
      problems.push_back({"analysis.fit_from_tokens",
                          std::to_string(from) + " is not one of the sweep's budgets.tokens"});
    else if (std::count_if(tokens.begin(), tokens.end(), [&](int64_t t) { return t >= from; }) < 3)
      problems.push_back(
          {"analysis.fit_from_tokens", "leaves fewer than 3 budgets to fit E + A·D^(−α) to"});
  }
  if (plan.budgets && plan.analysis.targets == TargetRule::kFromData)
    problems.push_back({"analysis.targets",
                        "from_data is not for budget ladders yet: its rule reads every run's "
                        "curve, the smallest rungs' too, and would pick losses the smallest budget "
                        "reaches; give targets"});
  {
    auto res = r.child("resources");
    res.read("backend", plan.backend);
    res.read("gpus", plan.gpus);
    res.finish();
  }
  r.read("priority", plan.priority);
  r.read("max_concurrency", plan.max_concurrency);
  r.read("max_attempts", plan.max_attempts);
  r.read("targets", plan.targets);
  r.read("baseline", plan.baseline);
  r.read("reuse", plan.reuse);
  r.finish();
  return layers;
}

// Rules each job can be judged by (health_spec.h), and rewinds only where a rewound run has a
// place: the tuning planner and a budget ladder read every run of a row as planned.
void check_health(SweepPlan& plan) {
  if (any_rewinds(plan.health) && (plan.tune || plan.budgets))
    plan.problems.push_back(
        {"health", std::string("a ") +
                       (plan.tune ? "tuned sweep (tune:)" : "budget ladder (budgets:)") +
                       " cannot rewind yet: its planning reads every run of a "
                       "row as it planned it; use stop or notify"});
  if (plan.health.empty()) return;
  for (const ExpandedJob& job : plan.jobs) {
    const size_t before = plan.problems.size();
    const std::optional<int64_t> evaluations =
        is_external(job.config)
            ? std::nullopt
            : std::optional<int64_t>(
                  trainer_core::EvalSchedule(
                      trainer_core::train_config_from_json(as_validated(job.config)).training)
                      .count());
    check_rules_for_job(plan.health, evaluations, job.label, plan.problems);
    if (plan.problems.size() != before) return;  // the first job says what to change
  }
}

// Reuse matches a finished run by the trainer that produced it, which a job running its own
// command does not name.
void check_reuse(SweepPlan& plan) {
  if (!plan.reuse) return;
  for (const ExpandedJob& job : plan.jobs)
    if (is_external(job.config)) {
      plan.problems.push_back({"reuse", "needs the built-in trainer: job " + job.label +
                                            " runs its own command, whose results cannot be "
                                            "matched to the code that produced them"});
      return;
    }
}

// The values of the sweep's own settings, and ablation labels unique (the baseline's included).
void check_settings(SweepPlan& plan, const std::vector<Ablation>& ablations) {
  auto& problems = plan.problems;
  if (plan.name.empty()) problems.push_back({"name", "must be a non-empty string"});
  if (plan.backend != "cpu" && plan.backend != "cuda")
    problems.push_back(
        {"resources.backend", "must be one of cpu, cuda, got '" + plan.backend + "'"});
  if (plan.gpus < 0) problems.push_back({"resources.gpus", "must be >= 0"});
  if (plan.backend == "cuda" && plan.gpus < 1)
    problems.push_back({"resources.gpus", "must be >= 1 for backend cuda"});
  if (plan.max_concurrency < 0)
    problems.push_back({"max_concurrency", "must be >= 0 (0 = no limit)"});
  if (plan.max_attempts < 1) problems.push_back({"max_attempts", "must be >= 1"});
  for (size_t i = 0; i < plan.targets.size(); ++i)
    if (!(plan.targets[i] > 0))
      problems.push_back({"targets[" + std::to_string(i) + "]", "must be > 0"});
  std::set<std::string> labels = {plan.baseline};
  for (size_t i = 0; i < ablations.size(); ++i)
    if (!ablations[i].label.empty() && !labels.insert(ablations[i].label).second)
      problems.push_back({"ablations[" + std::to_string(i) + "].label",
                          "'" + ablations[i].label + "' is used twice"});
}

// The expansion, and what a tuning planner may add to it, within `max_jobs`.
void check_job_count(SweepPlan& plan, const SweepLayers& layers, size_t max_jobs) {
  // Checking every combination (of every ablation, at expansion) against every entry must stay
  // cheap whatever the file says.
  constexpr double kMostExclusionChecks = 1e8;
  if (double(layers.ablations.size() + 1) * double(grid_product(layers)) *
          double(layers.exclude.size()) >
      kMostExclusionChecks) {
    plan.problems.push_back({"exclude", std::to_string(layers.exclude.size()) +
                                            " entries over a grid of " +
                                            std::to_string(grid_product(layers)) +
                                            " combinations are too many to check: list fewer"});
    return;
  }
  const size_t combinations = grid_combinations(layers, std::max<size_t>(max_jobs, 1) * 1000);
  if (combinations == 0) {
    plan.problems.push_back({"exclude", "leaves no combination of grid: to run"});
    return;
  }
  size_t total = (layers.ablations.size() + 1) * layers.seeds.size() * combinations;
  if (plan.budgets) total *= plan.budgets->tokens.size();
  if (total > max_jobs) {
    plan.problems.push_back({"grid", "expands to " + std::to_string(total) +
                                         " jobs, more than the limit of " +
                                         std::to_string(max_jobs)});
  } else if (plan.tune) {
    // What the planner may add: per row, every stage's start values and extensions on every
    // tuning seed, then the confirmation seeds. Refused at submit like a grid that is too large.
    size_t tuned_points = 1;  // the tuned axes are the grid's last one or two
    for (size_t a = layers.grid.size() - (plan.tune->weight_decay ? 2 : 1); a < layers.grid.size();
         ++a)
      tuned_points *= layers.grid[a].values.size();
    const size_t rows = total / (layers.seeds.size() * tuned_points);
    const size_t most = rows * max_tuned_jobs_per_row(*plan.tune);
    if (most > max_jobs)
      plan.problems.push_back({"tune", "could grow to " + std::to_string(most) +
                                           " jobs, more than the limit of " +
                                           std::to_string(max_jobs)});
  }
}

// The fields the sweep fills in every job's base config.
void fill_sweep_fields(const SweepPlan& plan, json& base) {
  base["backend"] = plan.backend;
  // A job given N GPUs trains on all of them: one data-parallel rank per GPU.
  if (plan.backend == "cuda" && plan.gpus > 1)
    set_dotted_path(base, "training.data_parallel", plan.gpus);
  if (!plan.targets.empty()) set_dotted_path(base, "metrics.target_losses", plan.targets);
}

// Attributes problems to the layer that introduced them: base first, then each ablation and
// grid value on its own. `known` gets each problem reported (once, at the first layer that shows
// it); whatever only a combination shows is reported per job label in expansion.
void check_each_layer(const SweepLayers& layers, std::set<std::string>& known,
                      std::vector<ConfigProblem>& problems) {
  for (const auto& p : problems_of(layers.base)) {
    problems.push_back({"base." + p.path, p.message});
    known.insert(p.to_string());
  }
  for (size_t i = 0; i < layers.ablations.size(); ++i)
    for (const auto& p : problems_of(with_overrides(layers.base, layers.ablations[i].set)))
      if (known.insert(p.to_string()).second)
        problems.push_back({"ablations[" + std::to_string(i) + "].set." + p.path, p.message});
  for (const auto& [path, values] : layers.grid)
    for (size_t j = 0; j < values.size(); ++j) {
      json c = layers.base;
      set_dotted_path(c, path, values[j]);
      for (const auto& p : problems_of(c))
        if (known.insert(p.to_string()).second)
          problems.push_back(
              {"grid." + path + "[" + std::to_string(j) + "]", p.message + " (" + p.path + ")"});
    }
}

// A job that runs its own `command`: its config as given, after the service's own checks.
std::optional<ExpandedJob> external_job(const json& c, std::vector<ConfigProblem>& problems) {
  if (const auto p = external_problems(c); !p.empty()) {
    for (const auto& q : p)
      problems.push_back({"jobs[" + c["name"].get<std::string>() + "]." + q.path, q.message});
    return std::nullopt;
  }
  ExpandedJob job;
  job.config = c;
  const json optimizer = c.value("optimizer", json::object());
  const json training = c["training"];
  job.optimizer = optimizer.is_object() ? optimizer.value("name", std::string()) : std::string();
  job.batch_tokens = training.value("batch_tokens", json(0)).is_number_integer()
                         ? training["batch_tokens"].get<int64_t>()
                         : 0;
  job.max_steps = training["max_steps"].get<int64_t>();
  return job;
}

// A job of the built-in trainer: its config resolved (and, telescoping, checked at every width and
// set to the first).
std::optional<ExpandedJob> built_in_job(const json& c, const Telescope* telescope,
                                        std::set<std::string>& known,
                                        std::vector<ConfigProblem>& problems) {
  try {
    const auto tc = trainer_core::train_config_from_json(as_validated(c));
    if (tc.reusable_run.job != 0) {
      problems.push_back({"jobs[" + c["name"].get<std::string>() + "].reusable_run.job",
                          "is the coordinator's to offer at lease time; a sweep asks for reuse "
                          "with reuse: true"});
      return std::nullopt;
    }
    ExpandedJob job;
    job.config = trainer_core::to_json(tc);
    if (tc.training.checkpoint_dir == kCoordinatorCheckpointDir)
      job.config["training"]["checkpoint_dir"] = "";
    job.optimizer = trainer_core::name_of(tc.optimizer.name);
    job.batch_tokens = tc.training.batch_tokens;
    job.max_steps = tc.training.max_steps;
    if (telescope && !scale_to_first_width(*telescope, job.config, known, problems))
      return std::nullopt;
    return job;
  } catch (const ConfigError& e) {
    for (const auto& p : e.problems)
      problems.push_back({"jobs[" + c["name"].get<std::string>() + "]." + p.path, p.message});
    return std::nullopt;
  }
}

// The job of one full config (seed and name set); nullopt: left out, its problems reported.
std::optional<ExpandedJob> job_of(const json& c, const std::optional<TuneSpec>& tune,
                                  std::set<std::string>& known,
                                  std::vector<ConfigProblem>& problems) {
  const Telescope* telescope = tune && tune->telescope ? &*tune->telescope : nullptr;
  if (!is_external(c)) return built_in_job(c, telescope, known, problems);
  if (telescope) {
    if (known.insert("telescope-external").second)
      problems.push_back({"tune.telescope",
                          "needs the built-in trainer (a job names a "
                          "command: its widths are its own)"});
    return std::nullopt;
  }
  return external_job(c, problems);
}

// Appends a job of the row `label` (ablation `ablation`) with its position, role and hash.
void add_job(SweepPlan& plan, ExpandedJob job, const std::string& label,
             const std::string& ablation, int64_t seed) {
  job.index = int(plan.jobs.size());
  job.label = label;
  job.ablation = ablation;
  job.seed = seed;
  job.role = plan.tune ? JobRole::kTuning : JobRole::kGrid;
  if (plan.tune) job.reason = "start grid (tune.start)";
  job.config_hash = config_hash(job.config);
  plan.jobs.push_back(std::move(job));
}

// One row and seed's budget ladder (budget_ladder.h): a job per rung, the trunk first and, for
// cooldown, the other rungs forks of it at their decay start.
void add_ladder(SweepPlan& plan, const ExpandedJob& job, const std::string& label,
                const std::string& ablation, int64_t seed, std::set<std::string>& known) {
  const BudgetLadder& ladder = *plan.budgets;
  if (is_external(job.config)) {
    if (known.insert("budgets-external").second)
      plan.problems.push_back({"budgets", "needs the built-in trainer (a job names a command)"});
    return;
  }
  std::vector<trainer_core::TrainConfig> rungs;
  try {
    rungs = rung_configs(trainer_core::train_config_from_json(as_validated(job.config)), ladder);
  } catch (const ConfigError& e) {
    for (const auto& p : e.problems)
      if (known.insert(p.to_string()).second) plan.problems.push_back(p);
    return;
  }
  const int trunk = int(plan.jobs.size());
  for (const trainer_core::TrainConfig& rung : rungs) {
    const std::string rung_label = label + "/tokens=" + std::to_string(rung.training.max_tokens);
    json c = trainer_core::to_json(rung);
    c["name"] = rung_label + "/seed=" + std::to_string(seed);
    std::optional<ExpandedJob> rung_job = job_of(c, plan.tune, known, plan.problems);
    if (!rung_job) continue;
    if (ladder.via == LadderVia::kCooldown && int(plan.jobs.size()) > trunk) {
      const int64_t branch = cooldown_branch_step(rung);
      rung_job->fork = ForkPlan{trunk, branch, branch * rung.training.batch_tokens,
                                config_changes(plan.jobs[size_t(trunk)].config, rung_job->config)};
    }
    add_job(plan, std::move(*rung_job), rung_label, ablation, seed);
  }
}

// Planned forks (fork_spec.h), after the expansion: for each, one fork per run of the row it
// names, labelled <from>/<label>, in the file's order (so a fork may be forked again).
void add_planned_forks(SweepPlan& plan, std::set<std::string>& known) {
  for (size_t i = 0; i < plan.forks.size(); ++i) {
    const ForkSpec& f = plan.forks[i];
    const std::string path = "forks[" + std::to_string(i) + "]";
    std::vector<size_t> parents;
    for (size_t k = 0; k < plan.jobs.size(); ++k)
      if (plan.jobs[k].label == f.from) parents.push_back(k);
    if (parents.empty())
      plan.problems.push_back({path + ".from", "no row is labelled '" + f.from + "'"});
    for (size_t k : parents) {
      const ExpandedJob parent = plan.jobs[k];  // a copy: plan.jobs grows below
      std::optional<ExpandedJob> job = fork_of(parent, f, known, plan.problems, path);
      if (!job) return;
      job->fork->parent_index = int(k);
      job->index = int(plan.jobs.size());  // labelled, hashed and placed in its row by fork_of
      plan.jobs.push_back(std::move(*job));
    }
  }
}

// Expansion: (baseline + ablations) x grid x seeds into plan.jobs, in that order. A tuned sweep
// keeps only the jobs at their optimizer's start values; returned: the optimizers of jobs left
// out because tune.start has no values for them.
std::set<std::string> expand_jobs(SweepPlan& plan, const SweepLayers& layers,
                                  std::set<std::string>& known) {
  const auto& grid = layers.grid;
  std::vector<std::vector<std::string>> value_labels;
  for (const auto& [path, values] : grid) value_labels.push_back(axis_labels(path, values));
  std::vector<Ablation> rows = {{plan.baseline, json::object()}};
  rows.insert(rows.end(), layers.ablations.begin(), layers.ablations.end());
  std::vector<size_t> pick(grid.size(), 0);
  std::set<std::string> without_start;  // optimizers a per-optimizer tune.start leaves out
  for (const Ablation& ab : rows) {
    do {
      if (excluded(layers.exclude, pick)) continue;  // to the next combination
      json config = with_overrides(layers.base, ab.set);
      std::string label = ab.label;
      for (size_t g = 0; g < grid.size(); ++g) {
        set_dotted_path(config, grid[g].path, grid[g].values[pick[g]]);
        if (plan.tune && plan.tune->telescope && grid[g].path == plan.tune->param)
          label += "/width=" + std::to_string(plan.tune->telescope->widths[0]);  // stage 0's
        if (grid[g].values.size() > 1) label += "/" + value_labels[g][pick[g]];
      }
      for (int64_t seed : layers.seeds) {
        json c = config;
        c["seed"] = seed;
        c["name"] = label + "/seed=" + std::to_string(seed);
        std::optional<ExpandedJob> job = job_of(c, plan.tune, known, plan.problems);
        if (!job) continue;
        if (plan.tune && plan.tune->start_for(job->optimizer).empty()) {
          without_start.insert(job->optimizer);
          continue;
        }
        if (plan.tune && !in_start(*plan.tune, *job)) continue;
        if (plan.budgets)
          add_ladder(plan, *job, label, ab.label, seed, known);
        else
          add_job(plan, std::move(*job), label, ab.label, seed);
      }
    } while (next_combination(grid, pick));
  }
  return without_start;
}

// A per-optimizer tune.start names exactly the optimizers the sweep runs: none it does not run,
// and every one it does (`without_start`: those it has no values for).
void check_start_optimizers(SweepPlan& plan, const std::set<std::string>& without_start) {
  if (plan.tune && !plan.tune->start_by_optimizer.empty()) {
    std::set<std::string> optimizers;
    for (const ExpandedJob& job : plan.jobs) optimizers.insert(job.optimizer);
    for (const auto& [name, values] : plan.tune->start_by_optimizer)
      if (!optimizers.count(name))
        plan.problems.push_back(
            {"tune.start." + name, "the sweep runs no job of optimizer " + name});
  }
  for (const std::string& name : without_start)
    plan.problems.push_back(
        {"tune.start", "has no values for optimizer " + name + ", which the sweep runs"});
}

}  // namespace

std::optional<ExpandedJob> fork_of(const ExpandedJob& parent, const ForkSpec& f,
                                   std::set<std::string>& known,
                                   std::vector<ConfigProblem>& problems, const std::string& path) {
  auto refuse = [&](const std::string& where, const std::string& message) {
    problems.push_back({path + where, message});
    return std::nullopt;
  };
  if (is_external(parent.config))
    return refuse("", "needs the built-in trainer (the row runs its own command)");
  if (f.at_tokens <= 0 || f.at_tokens % parent.batch_tokens != 0)
    return refuse(".at_tokens", "must be a positive multiple of the row's training.batch_tokens (" +
                                    std::to_string(parent.batch_tokens) + ")");
  const int64_t branch = f.at_tokens / parent.batch_tokens;
  if (branch > parent.max_steps)
    return refuse(".at_tokens", "is past the row's budget of " +
                                    std::to_string(parent.max_steps * parent.batch_tokens) +
                                    " tokens");
  json c = with_overrides(parent.config, f.set);
  // A new length in one unit: the other follows from it.
  if (f.set.contains("training.max_tokens")) c["training"].erase("max_steps");
  if (f.set.contains("training.max_steps")) c["training"]["max_tokens"] = 0;
  const std::string label = f.from + "/" + f.label;
  c["name"] = label + "/seed=" + std::to_string(parent.seed);
  std::optional<ExpandedJob> job = job_of(c, std::nullopt, known, problems);
  if (!job) return std::nullopt;
  const auto refusals = trainer_core::fork_refusals(parent.config.dump(), job->config.dump());
  for (const auto& p : refusals) problems.push_back({path + ".set." + p.path, p.message});
  if (!refusals.empty()) return std::nullopt;
  if (branch >= job->max_steps)
    return refuse(".at_tokens", "leaves the fork nothing to train: it would start at step " +
                                    std::to_string(branch) + " of its " +
                                    std::to_string(job->max_steps));
  job->label = label;
  job->ablation = parent.ablation;
  job->seed = parent.seed;
  job->role = parent.role;
  job->config_hash = config_hash(job->config);
  job->fork = ForkPlan{-1, branch, f.at_tokens, config_changes(parent.config, job->config)};
  return job;
}

json scaled_lr_settings(const json& job_config, double scale) {
  const trainer_core::OptimizerConfig o =
      trainer_core::train_config_from_json(as_validated(job_config)).optimizer;
  json set = {{"optimizer.lr", o.lr * scale}};
  if (o.name == trainer_core::OptimizerKind::kMuon && o.adamw_lr > 0)
    set["optimizer.adamw_lr"] = o.adamw_lr * scale;
  return set;
}

SweepPlan plan_sweep(const std::string& text, const std::string& source_name, size_t max_jobs) {
  SweepPlan plan;
  const std::optional<json> doc = parse_document(text, source_name, plan.problems);
  if (!doc) return plan;
  SweepLayers layers = read_sections(*doc, plan);
  check_settings(plan, layers.ablations);
  check_job_count(plan, layers, max_jobs);
  if (!plan.problems.empty()) return plan;

  fill_sweep_fields(plan, layers.base);
  std::set<std::string> known;  // problems reported already: each is reported once
  check_each_layer(layers, known, plan.problems);
  if (!plan.problems.empty()) return plan;

  const std::set<std::string> without_start = expand_jobs(plan, layers, known);
  add_planned_forks(plan, known);
  check_start_optimizers(plan, without_start);
  check_reuse(plan);
  check_health(plan);
  return plan;
}

}  // namespace sweep_file
