#include "sweep_file/tune_spec.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "trainer_core/config/json_reader.h"

namespace sweep_file {

using nlohmann::json;
using trainer_core::ConfigProblem;

const char* job_role_name(JobRole role) {
  static const char* const kNames[] = {"grid",         "tuning",     "extension",
                                       "confirmation", "completion", "rewind"};
  return kNames[int(role)];  // in the enum's order
}

std::optional<JobRole> parse_job_role(std::string_view name) {
  for (JobRole r : {JobRole::kGrid, JobRole::kTuning, JobRole::kExtension, JobRole::kConfirmation,
                    JobRole::kCompletion, JobRole::kRewind})
    if (name == job_role_name(r)) return r;
  return std::nullopt;
}

double rounded_value(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return std::strtod(buf, nullptr);
}

bool same_value(double a, double b) {
  return std::fabs(a - b) <= 1e-6 * std::max(std::fabs(a), std::fabs(b));
}

bool same_point(TunePoint a, TunePoint b) {
  return same_value(a.lr, b.lr) && same_value(a.wd, b.wd);
}

std::vector<int64_t> read_seeds(trainer_core::JsonReader& r, const char* key,
                                const std::string& path, std::vector<ConfigProblem>& problems) {
  std::vector<double> raw;
  const size_t before = problems.size();
  r.read(key, raw);
  std::vector<int64_t> seeds;
  if (problems.size() != before) return seeds;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] < 0 || raw[i] != double(int64_t(raw[i])) || raw[i] > 9.0e15)
      problems.push_back({path + "[" + std::to_string(i) + "]", "must be a non-negative integer"});
    else
      seeds.push_back(int64_t(raw[i]));
  }
  for (size_t i = 0; i < seeds.size(); ++i)
    for (size_t k = 0; k < i; ++k)
      if (seeds[i] == seeds[k])
        problems.push_back(
            {path + "[" + std::to_string(i) + "]", "seed " + std::to_string(seeds[i]) + " twice"});
  return seeds;
}

namespace {

// The parameters a tune section's `param` may name: optimizer.lr alone. The weight decay is the
// one second tuned value (tune.weight_decay): rows key their cells by (lr, weight decay).
constexpr const char* kTunableParams[] = {"optimizer.lr"};

// How many steps of `factor` the increasing `values` span (0 for fewer than two).
double span_steps(const std::vector<double>& values, double factor) {
  return values.size() < 2 ? 0 : std::log(values.back() / values.front()) / std::log(factor);
}

// A list of start values: at least 2, finite, > 0, distinct; rounded and sorted.
std::vector<double> read_start(const json& v, const std::string& path,
                               std::vector<ConfigProblem>& problems) {
  std::vector<double> out;
  if (!v.is_array() || v.size() < 2) {
    problems.push_back({path, "must be a list of at least 2 numbers"});
    return out;
  }
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string p = path + "[" + std::to_string(i) + "]";
    if (!v[i].is_number() || !(v[i].get<double>() > 0) || !std::isfinite(v[i].get<double>())) {
      problems.push_back({p, "must be a finite number > 0"});
      continue;
    }
    const double x = rounded_value(v[i].get<double>());
    for (size_t k = 0; k < out.size(); ++k)
      if (same_value(x, out[k])) problems.push_back({p, "a value listed twice"});
    out.push_back(x);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

const std::vector<double>& TuneSpec::start_for(const std::string& optimizer) const {
  if (start_by_optimizer.empty()) return start;
  static const std::vector<double> kNone;
  const auto it = start_by_optimizer.find(optimizer);
  return it == start_by_optimizer.end() ? kNone : it->second;
}

std::vector<double> TuneSpec::all_start_values() const {
  std::vector<double> all = start;
  for (const auto& [name, values] : start_by_optimizer)
    all.insert(all.end(), values.begin(), values.end());
  std::sort(all.begin(), all.end());
  std::vector<double> out;
  for (double v : all)
    if (out.empty() || !same_value(out.back(), v)) out.push_back(v);
  return out;
}

namespace {

EarlyStop read_early_stop(trainer_core::JsonReader& r, std::vector<ConfigProblem>& problems) {
  EarlyStop es;
  auto er = r.child("early_stop");
  er.read("rungs", es.rungs);
  er.read("stop_fraction", es.stop_fraction);
  er.read("min_runs", es.min_runs);
  er.finish();
  if (es.rungs.empty())
    problems.push_back({"tune.early_stop.rungs", "must list at least one fraction of the budget"});
  for (size_t i = 0; i < es.rungs.size(); ++i) {
    const std::string p = "tune.early_stop.rungs[" + std::to_string(i) + "]";
    if (!(es.rungs[i] > 0 && es.rungs[i] < 1))
      problems.push_back({p, "must be a fraction of the token budget, between 0 and 1"});
    else if (i > 0 && es.rungs[i] <= es.rungs[i - 1])
      problems.push_back({p, "must be larger than the rung before it"});
  }
  if (!(es.stop_fraction > 0 && es.stop_fraction < 1))
    problems.push_back({"tune.early_stop.stop_fraction", "must be between 0 and 1"});
  if (es.min_runs < 2)
    problems.push_back({"tune.early_stop.min_runs", "must be >= 2 (a rank needs company)"});
  return es;
}

NoiseRule read_noise(trainer_core::JsonReader& r, const std::vector<int64_t>& tuning_seeds,
                     std::vector<ConfigProblem>& problems) {
  NoiseRule noise;
  auto nr = r.child("noise");
  nr.read("sd", noise.sd);
  if (nr.has("seeds")) noise.seeds = read_seeds(nr, "seeds", "tune.noise.seeds", problems);
  nr.finish();
  if (!(noise.sd > 0 && noise.sd < 10))
    problems.push_back(
        {"tune.noise.sd", "must be a seed SD of final val loss in nats, in (0, 10)"});
  if (noise.seeds.size() > 20) problems.push_back({"tune.noise.seeds", "lists more than 20 seeds"});
  for (int64_t seed : noise.seeds)
    if (std::find(tuning_seeds.begin(), tuning_seeds.end(), seed) != tuning_seeds.end())
      problems.push_back({"tune.noise.seeds", "seed " + std::to_string(seed) +
                                                  " is already a tuning seed (tune.seeds)"});
  return noise;
}

WeightDecayAxis read_weight_decay(trainer_core::JsonReader& r, const json& t,
                                  std::vector<ConfigProblem>& problems) {
  WeightDecayAxis axis;
  auto wr = r.child("weight_decay");
  wr.claim("start");
  wr.read("factor", axis.factor);
  wr.finish();
  const json& w = t["weight_decay"];
  if (w.is_object() && w.contains("start"))
    axis.start = read_start(w["start"], "tune.weight_decay.start", problems);
  else
    problems.push_back({"tune.weight_decay.start", "is required: the first weight decays, a list"});
  if (!(axis.factor > 1) || !(axis.factor <= 100))
    problems.push_back({"tune.weight_decay.factor", "must be > 1 and <= 100"});
  else if (span_steps(axis.start, axis.factor) > 40)
    problems.push_back({"tune.weight_decay.start", "spans more than 40 steps of its factor"});
  if (axis.start.size() > 20)
    problems.push_back({"tune.weight_decay.start", "lists more than 20 values"});
  return axis;
}

// After tune.seeds and tune.noise (final seeds may not repeat a noise seed).
Telescope read_telescope(trainer_core::JsonReader& r, const TuneSpec& spec,
                         std::vector<ConfigProblem>& problems) {
  Telescope tel;
  auto tr = r.child("telescope");
  std::vector<double> widths;
  tr.read("widths", widths);
  tr.read("shrink", tel.shrink);
  tr.read("refine", tel.refine);
  if (tr.has("final_seeds"))
    tel.final_seeds = read_seeds(tr, "final_seeds", "tune.telescope.final_seeds", problems);
  tr.finish();
  for (size_t i = 0; i < widths.size(); ++i) {
    const std::string p = "tune.telescope.widths[" + std::to_string(i) + "]";
    if (widths[i] < 1 || widths[i] > 65536 || widths[i] != double(int(widths[i])))
      problems.push_back({p, "must be an integer between 1 and 65536"});
    else if (i > 0 && widths[i] <= widths[i - 1])
      problems.push_back({p, "must be larger than the width before it"});
    tel.widths.push_back(int(widths[i]));
  }
  if (widths.size() < 2)
    problems.push_back({"tune.telescope.widths", "must list at least 2 widths (model.hidden)"});
  if (!(tel.shrink >= 1) || !(tel.shrink <= 16))
    problems.push_back({"tune.telescope.shrink", "must be between 1 and 16"});
  if (!(tel.refine >= 1) || !(tel.refine <= 4))
    problems.push_back({"tune.telescope.refine", "must be between 1 and 4"});
  else if (tel.refine > tel.shrink)
    problems.push_back({"tune.telescope.refine",
                        "must be at most tune.telescope.shrink (a finer step over a span that "
                        "shrinks less would give later stages more points than stage 0)"});
  if (tel.final_seeds.size() < 2)
    problems.push_back({"tune.telescope.final_seeds",
                        "give at least 2 tuning seeds for the last two widths: whether the "
                        "choice transfers is read there, and one seed cannot tell it from noise"});
  if (spec.noise)
    for (int64_t seed : tel.final_seeds)
      if (std::find(spec.noise->seeds.begin(), spec.noise->seeds.end(), seed) !=
          spec.noise->seeds.end())
        problems.push_back({"tune.telescope.final_seeds",
                            "seed " + std::to_string(seed) + " is also a noise seed (tune.noise)"});
  return tel;
}

}  // namespace

std::optional<TuneSpec> read_tune_spec(const json& doc, std::vector<ConfigProblem>& problems) {
  if (!doc.is_object() || !doc.contains("tune")) return std::nullopt;
  const json& t = doc["tune"];
  if (!t.is_object()) {
    problems.push_back({"tune",
                        "must be a map (param, start, factor, max_extensions, seeds, "
                        "confirm_seeds, early_stop, noise, weight_decay, telescope)"});
    return std::nullopt;
  }
  const size_t before = problems.size();
  TuneSpec spec;
  trainer_core::JsonReader r(t, "tune", problems);
  r.read("param", spec.param);
  r.claim("start");
  if (t.contains("start") && t["start"].is_object()) {
    if (t["start"].empty()) problems.push_back({"tune.start", "names no optimizer"});
    for (auto it = t["start"].begin(); it != t["start"].end(); ++it)
      spec.start_by_optimizer[it.key()] =
          read_start(it.value(), "tune.start." + it.key(), problems);
  } else if (t.contains("start")) {
    spec.start = read_start(t["start"], "tune.start", problems);
  } else {
    problems.push_back({"tune.start",
                        "is required: the first values, a list or a map of "
                        "optimizer names to lists"});
  }
  r.read("factor", spec.factor);
  r.read("max_extensions", spec.max_extensions);
  if (r.has("seeds")) spec.seeds = read_seeds(r, "seeds", "tune.seeds", problems);
  spec.confirm_seeds = r.has("confirm_seeds")
                           ? read_seeds(r, "confirm_seeds", "tune.confirm_seeds", problems)
                           : spec.seeds;
  if (r.has("early_stop")) spec.early_stop = read_early_stop(r, problems);
  if (r.has("noise")) spec.noise = read_noise(r, spec.seeds, problems);
  if (r.has("weight_decay")) spec.weight_decay = read_weight_decay(r, t, problems);
  if (r.has("telescope")) spec.telescope = read_telescope(r, spec, problems);
  r.finish();

  bool tunable = false;
  for (const char* p : kTunableParams) tunable = tunable || spec.param == p;
  if (!tunable)
    problems.push_back({"tune.param",
                        "must be optimizer.lr (the only tunable value in this "
                        "release), got '" +
                            spec.param + "'"});
  if (spec.seeds.size() > 100) problems.push_back({"tune.seeds", "lists more than 100 seeds"});
  if (spec.confirm_seeds.size() > 100)
    problems.push_back({"tune.confirm_seeds", "lists more than 100 seeds"});
  if (spec.telescope && spec.telescope->widths.size() > 8)
    problems.push_back({"tune.telescope.widths", "lists more than 8 widths"});
  // A telescope's later grids span a share of the first one's steps: keep that bounded.
  if (spec.factor > 1 && spec.factor <= 100) {
    const std::vector<double> all = spec.all_start_values();
    if (all.size() > 100) problems.push_back({"tune.start", "lists more than 100 values"});
    if (span_steps(all, spec.factor) > 40)
      problems.push_back({"tune.start", "spans more than 40 steps of tune.factor"});
  }
  if (!(spec.factor > 1) || !(spec.factor <= 100))
    problems.push_back({"tune.factor", "must be > 1 and <= 100 (the spacing of an extension)"});
  // The finest stage's step must survive rounding to 6 significant digits (rounded_value), or a
  // stage's points would merge.
  struct Axis {
    TuneAxis axis;
    double factor;  // <= 1: invalid (reported above) or not tuned
    const char *what, *factor_key;
  };
  const Axis axes[] = {{TuneAxis::kLr, spec.factor, "lr", "tune.factor"},
                       {TuneAxis::kWeightDecay, spec.weight_decay ? spec.weight_decay->factor : 0,
                        "weight-decay", "tune.weight_decay.factor"}};
  for (const Axis& a : axes)
    if (spec.telescope && spec.telescope->refine >= 1 && a.factor > 1 &&
        axis_step(spec, a.axis, spec.stages() - 1) < 1 + 1e-4)
      problems.push_back({"tune.telescope.refine", std::string("makes the last stage's ") + a.what +
                                                       " step " + a.factor_key +
                                                       "^(1/refine^k) smaller than 1.0001: raise " +
                                                       a.factor_key + " or lower refine"});
  if (spec.max_extensions < 0 || spec.max_extensions > 20)
    problems.push_back({"tune.max_extensions", "must be between 0 and 20"});
  if (t.contains("seeds") && spec.seeds.empty())
    problems.push_back({"tune.seeds", "must list at least one seed"});
  if (t.contains("confirm_seeds") && spec.confirm_seeds.empty())
    problems.push_back({"tune.confirm_seeds", "must list at least one seed"});
  if (problems.size() != before) return std::nullopt;
  return spec;
}

json to_json(const TuneSpec& s) {
  const json start = s.start_by_optimizer.empty() ? json(s.start) : json(s.start_by_optimizer);
  json j = {{"param", s.param},   {"start", start},
            {"factor", s.factor}, {"max_extensions", s.max_extensions},
            {"seeds", s.seeds},   {"confirm_seeds", s.confirm_seeds}};
  // New keys are written only when set, so a spec stored before them reads back byte-identical.
  if (s.telescope) {
    j["telescope"] = {{"widths", s.telescope->widths},
                      {"shrink", s.telescope->shrink},
                      {"final_seeds", s.telescope->final_seeds}};
    if (s.telescope->refine != 1) j["telescope"]["refine"] = s.telescope->refine;
  }
  if (s.weight_decay)
    j["weight_decay"] = {{"start", s.weight_decay->start}, {"factor", s.weight_decay->factor}};
  if (s.early_stop)
    j["early_stop"] = {{"rungs", s.early_stop->rungs},
                       {"stop_fraction", s.early_stop->stop_fraction},
                       {"min_runs", s.early_stop->min_runs}};
  if (s.noise) j["noise"] = {{"sd", s.noise->sd}, {"seeds", s.noise->seeds}};
  return j;
}

TuneSpec tune_spec_from_json(const json& j) {
  try {
    TuneSpec s;
    s.param = j.at("param").get<std::string>();
    if (j.at("start").is_object())
      s.start_by_optimizer = j.at("start").get<std::map<std::string, std::vector<double>>>();
    else
      s.start = j.at("start").get<std::vector<double>>();
    s.factor = j.at("factor").get<double>();
    s.max_extensions = j.at("max_extensions").get<int>();
    s.seeds = j.at("seeds").get<std::vector<int64_t>>();
    s.confirm_seeds = j.at("confirm_seeds").get<std::vector<int64_t>>();
    if (j.contains("telescope"))
      s.telescope =
          Telescope{j["telescope"].at("widths").get<std::vector<int>>(),
                    j["telescope"].at("shrink").get<double>(), j["telescope"].value("refine", 1.0),
                    // Stored before final seeds existed: every width used tune.seeds.
                    j["telescope"].value("final_seeds", s.seeds)};
    if (j.contains("weight_decay"))
      s.weight_decay = WeightDecayAxis{j["weight_decay"].at("start").get<std::vector<double>>(),
                                       j["weight_decay"].at("factor").get<double>()};
    if (j.contains("early_stop"))
      s.early_stop = EarlyStop{j["early_stop"].at("rungs").get<std::vector<double>>(),
                               j["early_stop"].at("stop_fraction").get<double>(),
                               j["early_stop"].at("min_runs").get<int>()};
    if (j.contains("noise"))
      s.noise = NoiseRule{j["noise"].at("sd").get<double>(),
                          j["noise"].at("seeds").get<std::vector<int64_t>>()};
    return s;
  } catch (const json::exception& e) {
    throw std::invalid_argument(std::string("stored tune spec: ") + e.what());
  }
}

double axis_step(const TuneSpec& spec, TuneAxis axis, int stage) {
  if (axis == TuneAxis::kWeightDecay && !spec.weight_decay)
    throw std::logic_error("axis_step: the spec does not tune the weight decay");
  const double factor = axis == TuneAxis::kLr ? spec.factor : spec.weight_decay->factor;
  const double refine = spec.telescope ? spec.telescope->refine : 1.0;
  return std::pow(factor, 1.0 / std::pow(refine, stage));
}

namespace {

// Half the span of stage 0's `values` in steps of `factor`, at least 1.
double half_span_steps(const std::vector<double>& values, double factor) {
  return std::max(1.0, span_steps(values, factor) / 2);
}

// Stage `stage`'s half-width in its own steps along one axis (stage_points).
int half_width(const TuneSpec& spec, const std::vector<double>& first, double factor, int stage,
               bool full_span) {
  const double h0 = half_span_steps(first, factor);
  if (full_span) return int(std::lround(h0));
  const double ratio = spec.telescope ? spec.telescope->refine / spec.telescope->shrink : 1.0;
  return std::max(1, int(std::lround(h0 * std::pow(ratio, stage))));
}

}  // namespace

std::vector<TunePoint> stage_points(const TuneSpec& spec, const std::vector<double>& first_lrs,
                                    int stage, TunePoint centre, bool full_span) {
  std::vector<TunePoint> out;
  const std::vector<double> no_wd = {0.0};
  const std::vector<double>& first_wds = spec.weight_decay ? spec.weight_decay->start : no_wd;
  if (stage == 0) {
    for (double lr : first_lrs)
      for (double wd : first_wds) out.push_back({lr, wd});
    return out;
  }
  const int step_stage = full_span ? 0 : stage;  // stage 0's step for a full span
  const double lr_step = axis_step(spec, TuneAxis::kLr, step_stage);
  const int h_lr = half_width(spec, first_lrs, spec.factor, stage, full_span);
  const double wd_step =
      spec.weight_decay ? axis_step(spec, TuneAxis::kWeightDecay, step_stage) : 1;
  const int h_wd = spec.weight_decay
                       ? half_width(spec, first_wds, spec.weight_decay->factor, stage, full_span)
                       : 0;
  for (int a = -h_lr; a <= h_lr; ++a)
    for (int b = -h_wd; b <= h_wd; ++b) {
      // The plus: a point off the centre's axis lines brackets nothing (axis-wise bracketing).
      if (a != 0 && b != 0) continue;
      const TunePoint p{rounded_value(centre.lr * std::pow(lr_step, a)),
                        spec.weight_decay ? rounded_value(centre.wd * std::pow(wd_step, b)) : 0.0};
      if (out.empty() || !same_point(out.back(), p)) out.push_back(p);  // never one point twice
    }
  return out;
}

json with_point(json config, const TuneSpec& spec, TunePoint point) {
  json& o = config["optimizer"];
  o["lr"] = point.lr;
  if (o.contains("adamw_lr") && o.value("name", std::string("adamw")) != "muon")
    o["adamw_lr"] = point.lr;
  if (spec.weight_decay) o["weight_decay"] = point.wd;
  return config;
}

size_t max_tuned_jobs_per_row(const TuneSpec& spec) {
  size_t values = 0;
  for (int stage = 0; stage < spec.stages(); ++stage)
    values += stage_points(spec, spec.all_start_values(), stage, {1.0, 1.0}, stage > 0).size() +
              size_t(spec.max_extensions);
  // Each value may take every tuning seed, every noise seed (bracketing.h), and with early
  // stopping a completion run per tuning seed.
  const size_t seeds =
      std::max(spec.seeds.size(), spec.telescope ? spec.telescope->final_seeds.size() : 0);
  const size_t per_value =
      seeds * (spec.early_stop ? 2 : 1) + (spec.noise ? spec.noise->seeds.size() : 0);
  return values * per_value + spec.confirm_seeds.size();
}

json at_width(json config, int width, int base_width) {
  json& m = config["model"];
  const int hidden = m.value("hidden", 0), n_head = m.value("n_head", 0);
  const int ffn = m.value("ffn_hidden", 0);
  if (hidden <= 0 || n_head <= 0 || hidden % n_head != 0)
    throw std::invalid_argument("the config has no model.hidden / model.n_head to scale");
  const int head_dim = hidden / n_head;
  if (width % head_dim != 0)
    throw std::invalid_argument("width " + std::to_string(width) +
                                " is not a multiple of the head size " + std::to_string(head_dim) +
                                " (model.hidden / model.n_head)");
  m["hidden"] = width;
  m["n_head"] = width / head_dim;
  if (ffn > 0) m["ffn_hidden"] = int(std::lround(double(ffn) * width / hidden));
  if (m.value("parametrization", std::string("standard")) == "mup" &&
      m.value("mup_base_hidden", 0) == 0)
    m["mup_base_hidden"] = base_width;
  return config;
}

}  // namespace sweep_file
