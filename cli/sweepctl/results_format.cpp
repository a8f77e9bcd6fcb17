#include "results_format.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <vector>

namespace sweepctl {

namespace pb = orchestrator::v1;

namespace {

using Table = std::vector<std::vector<std::string>>;  // first row: header

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string general(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

// A target loss as given or chosen from the data (to 0.001): "2.4", "2.25", "2.675".
std::string target_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// "41 ± 3", and "(2/3 reached)" when it averages over a subset of the row's runs.
// `number` writes the mean and the std.
std::string stat_text_as(const pb::Stat& s, const std::function<std::string(double)>& number,
                         bool plain, const char* subset_word) {
  if (s.n() == 0)
    return s.of() > 0 ? std::string("- (0/") + std::to_string(s.of()) + " " + subset_word + ")"
                      : "-";
  std::string out = number(s.mean());
  if (s.n() > 1) out += (plain ? " +- " : " ± ") + number(s.std());
  if (s.n() < s.of())
    out += " (" + std::to_string(s.n()) + "/" + std::to_string(s.of()) + " " + subset_word + ")";
  return out;
}

std::string stat_text(const pb::Stat& s, int digits, bool plain, const char* subset_word = "runs") {
  return stat_text_as(
      s, [digits](double v) { return fixed(v, digits); }, plain, subset_word);
}

// "3/3 ok", "1/3 ok, 2 diverged", ...
std::string outcome_text(const pb::RunCounts& c) {
  std::string out = std::to_string(c.succeeded()) + "/" + std::to_string(c.total()) + " ok";
  if (c.diverged()) out += ", " + std::to_string(c.diverged()) + " diverged";
  if (c.failed()) out += ", " + std::to_string(c.failed()) + " failed";
  if (c.cancelled()) out += ", " + std::to_string(c.cancelled()) + " cancelled";
  if (c.stopped()) out += ", " + std::to_string(c.stopped()) + " stopped early";
  if (c.unfinished()) out += ", " + std::to_string(c.unfinished()) + " unfinished";
  return out;
}

// An adaptive sweep's choice: "0.004 (best of 5 tuned, 2 extensions, bracketed)", "0.064 (best
// of 6 tuned, 3 extensions, at edge: not bracketed)", "0.002 (best of 3 tuned, tuning)".
// With a tuned weight decay the point: "0.004, weight decay 0.1 (best of 9 tuned, bracketed)"
// (a tuned weight decay is > 0: tune_spec.h).
std::string tuned_lr_text(const pb::LrChoice& c) {
  std::string out = general(c.lr());
  if (c.weight_decay() > 0) out += ", weight decay " + general(c.weight_decay());
  out += " (best of " + std::to_string(c.candidates()) + " tuned";
  if (c.extensions() > 0)
    out += ", " + std::to_string(c.extensions()) + " extension" + (c.extensions() == 1 ? "" : "s");
  if (c.provisional())
    out += ", tuning";
  else if (c.extensions_exhausted())
    out += ", at edge: not bracketed";
  else if (c.at_grid_edge())
    out += ", at edge: extending";
  else if (c.within_noise())
    out += ", within noise: not bracketed";
  else if (c.bracketed())
    out += ", bracketed";
  else
    out += ", checking its neighbours";
  return out + ")";
}

// "0.003", "0.012 (best of 4)", "0.001 (best of 4, at grid edge: widen the grid)".
std::string lr_text(const pb::LrChoice& c) {
  if (!c.decided()) return "- (none of " + std::to_string(c.candidates()) + " finished)";
  if (c.tuned()) return tuned_lr_text(c);
  std::string out = general(c.lr());
  if (c.candidates() > 1) {
    out += " (best of " + std::to_string(c.candidates());
    if (c.at_grid_edge()) out += ", at grid edge: widen the grid";
    if (c.provisional()) out += ", provisional";
    out += ")";
  }
  return out;
}

// "2.512", ">2.512" (a lower bound), "<0.870" (an upper bound), "-" (missing).
std::string ratio_text(const pb::PairedRatio& r) {
  switch (r.kind()) {
    case pb::RATIO_ESTIMATE:
      return fixed(r.value(), 3);
    case pb::RATIO_LOWER_BOUND:
      return ">" + fixed(r.value(), 3);
    case pb::RATIO_UPPER_BOUND:
      return "<" + fixed(r.value(), 3);
    default:
      return "-";
  }
}

std::string interval_text(const pb::PairedRatio& r) {
  return r.has_interval() ? "[" + fixed(r.ci_low(), 3) + ", " + fixed(r.ci_high(), 3) + "]" : "-";
}

Table ablation_table(const pb::GetResultsResponse& r, bool plain) {
  const std::string target = r.targets_size() ? target_text(r.targets(0)) : "-";
  Table t = {{"label", "lr", "runs", "val PPL", "steps to " + target, "loss spikes", "peak MiB",
              "ΔPPL vs baseline"}};
  if (plain) t[0][7] = "delta PPL vs baseline";
  for (const auto& row : r.ablation()) {
    std::string runs = outcome_text(row.counts());
    if (row.lr().tuned())  // which of the chosen lr's runs tuned it and which confirm it
      runs += " (" + std::to_string(row.tuning_runs()) + " tuning + " +
              std::to_string(row.confirmation_runs()) + " confirmation)";
    t.push_back({row.label() + (row.baseline() ? " *" : ""), lr_text(row.lr()), runs,
                 stat_text(row.val_ppl(), 2, plain, "succeeded"),
                 stat_text(row.steps_to_target(), 0, plain, "reached"),
                 stat_text(row.spikes(), 1, plain), stat_text(row.peak_memory_mb(), 1, plain),
                 row.baseline() ? "baseline"
                 : row.has_delta()
                     ? (row.delta_val_ppl() >= 0 ? "+" : "") + fixed(row.delta_val_ppl(), 2)
                     : "-"});
  }
  return t;
}

Table architecture_table(const pb::GetResultsResponse& r, bool plain) {
  const std::string target = r.targets_size() ? target_text(r.targets(0)) : "-";
  Table t = {{"label", "architecture", "optimizer", "lr", "runs", "tokens to " + target,
              "FLOPs to " + target, "train s to " + target, "inference tok/s", "peak MiB",
              "final PPL", "FLOPs to target vs MHA+AdamW", "seed pairs"}};
  for (const auto& a : r.architecture()) {
    const std::string arch = a.attention() == "mha" && a.ffn() == "dense" ? "MHA"
                             : a.ffn() == "moe" ? (a.attention() == "mla" ? "MoE-MLA" : "MoE-MHA")
                                                : "MLA";
    const bool rel = a.has_relative_flops();
    t.push_back({a.label(), arch, a.optimizer(), lr_text(a.lr()), outcome_text(a.counts()),
                 stat_text_as(a.tokens_to_target(), general, plain, "reached"),
                 stat_text_as(a.flops_to_target(), general, plain, "reached"),
                 stat_text(a.seconds_to_target(), 1, plain, "reached"),
                 stat_text(a.inference_tokens_per_second(), 0, plain, "succeeded"),
                 stat_text(a.peak_memory_mb(), 1, plain),
                 stat_text(a.val_ppl(), 2, plain, "succeeded"),
                 rel ? ratio_text(a.relative_flops()) : "-",
                 rel ? std::to_string(a.relative_flops().pairs()) : "-"});
  }
  return t;
}

// The rule that chose a ratio's lrs, as the sweep file names it: the proto name without its
// prefix, lower case (SELECTION_TOKENS_TO_TARGET -> tokens_to_target), as the dashboard writes it.
std::string selection_text(pb::SelectionRule rule) {
  if (rule == pb::SELECTION_RULE_UNSPECIFIED) return "-";
  std::string name = pb::SelectionRule_Name(rule).substr(std::string("SELECTION_").size());
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return name;
}

// "3e-3" with " (edge)" when the row tried nothing beyond it on one side.
std::string chosen_lr_text(double lr, bool at_edge) {
  if (lr <= 0) return "-";
  return general(lr) + (at_edge ? " (edge)" : "");
}

// R at each side's neighbouring lrs: "AdamW 1.5e-3: 1.62, 6e-3: 1.88; Muon 6e-3: 2.01".
std::string neighbours_text(const pb::RatioPoint& p) {
  std::string out;
  for (const char* side : {"adamw", "muon"}) {
    std::string part;
    for (const auto& n : p.neighbours())
      if (n.side() == side)
        part += (part.empty() ? "" : ", ") + general(n.lr()) + ": " + ratio_text(n.ratio());
    if (!part.empty())
      out += (out.empty() ? "" : "; ") +
             std::string(side == std::string("adamw") ? "AdamW " : "Muon ") + part;
  }
  return out.empty() ? "-" : out;
}

// Where T(L) was read, as the tables name it.
std::string reading_text(pb::TargetReading reading) {
  return reading == pb::READ_ANNEALED ? "annealed" : "within-run (early speed)";
}

// Where one side reaches the target, as a share of its budget over the seeds R pairs: "34%", or
// "34% (1 missed)", or "-" when no seed reached it.
std::string crossing_text(const pb::CrossingShare& c) {
  std::string out = c.reached() > 0 ? fixed(100 * c.mean_share(), 0) + "%" : "-";
  if (c.missed() > 0) out += " (" + std::to_string(c.missed()) + " missed)";
  return out;
}

Table ratio_table(const pb::GetResultsResponse& r) {
  Table t = {{"T read", "group", "batch tokens", "target loss", "R_L(B)", "95% CI", "seed pairs",
              "lr AdamW", "lr Muon", "lr chosen by", "T / budget AdamW", "T / budget Muon",
              "R at neighbouring lrs", "how"}};
  for (const auto& p : r.ratios())
    t.push_back({reading_text(p.reading()), p.group(), std::to_string(p.batch_tokens()),
                 target_text(p.target()), ratio_text(p.ratio()), interval_text(p.ratio()),
                 std::to_string(p.ratio().pairs()),
                 chosen_lr_text(p.adamw_lr(), p.adamw_lr_at_edge()),
                 chosen_lr_text(p.muon_lr(), p.muon_lr_at_edge()), selection_text(p.selection()),
                 crossing_text(p.adamw_crossing()), crossing_text(p.muon_crossing()),
                 neighbours_text(p), p.ratio().note()});
  return t;
}

Table trend_table(const pb::GetResultsResponse& r) {
  Table t = {{"T read", "group", "target loss", "batch sizes", "seed pairs", "R per doubling of B",
              "95% CI", "df", "does not fall", "why no slope"}};
  for (const auto& p : r.trends())
    t.push_back({reading_text(p.reading()), p.group(), target_text(p.target()),
                 std::to_string(p.batch_sizes()), std::to_string(p.points()),
                 p.has_slope() ? fixed(p.per_doubling(), 3) : "-",
                 p.has_slope() ? "[" + fixed(p.low(), 3) + ", " + fixed(p.high(), 3) + "]" : "-",
                 !p.has_slope()                          ? "-"
                 : std::isfinite(p.degrees_of_freedom()) ? fixed(p.degrees_of_freedom(), 1)
                                                         : "inf",
                 p.has_slope() ? std::string(p.does_not_fall() ? "yes" : "not shown") +
                                     " (margin " + fixed(p.margin(), 2) + ")"
                               : "-",
                 p.withheld()});
  return t;
}

// A multiplier or bound: "never" where the slower side's law does not reach that loss.
std::string multiplier_text(double v) { return std::isfinite(v) ? fixed(v, 2) : "never"; }

Table scaling_table(const pb::GetResultsResponse& r) {
  Table t = {{"group", "optimizer", "batch tokens", "lr", "E", "A", "alpha",
              "bootstrap 95% of alpha (nominal; coverage 0.70 at 3 seeds, 0.89 at 8)", "seeds",
              "points"}};
  for (const auto& s : r.scaling_fits())
    t.push_back({s.group(), s.optimizer(), std::to_string(s.batch_tokens()), general(s.lr()),
                 fixed(s.e(), 3), general(s.a()),
                 fixed(s.alpha(), 3) + (s.alpha_at_bound() ? " (at the search's bound)" : ""),
                 s.has_interval()
                     ? "[" + fixed(s.alpha_low(), 3) + ", " + fixed(s.alpha_high(), 3) + "]" +
                           (s.failed_draws() > 0
                                ? " (" + std::to_string(s.failed_draws()) + " of " +
                                      std::to_string(s.bootstrap_draws()) + " draws gave no fit)"
                                : "")
                     : "- (fewer than 5 seeds)",
                 std::to_string(s.seeds()), std::to_string(s.points())});
  return t;
}

Table multiplier_table(const pb::GetResultsResponse& r) {
  Table t = {{"group", "batch tokens", "budget D (tokens)", "AdamW tokens / Muon tokens",
              "bootstrap 95%", "extrapolated", "paired seeds"}};
  for (const auto& m : r.multipliers())
    for (const auto& p : m.points())
      t.push_back({m.group(), std::to_string(m.batch_tokens()), std::to_string(p.tokens()),
                   multiplier_text(p.value()),
                   p.has_interval()
                       ? "[" + multiplier_text(p.low()) + ", " + multiplier_text(p.high()) + "]"
                       : "- (fewer than 5 seeds)",
                   p.extrapolated() ? "yes" : "", std::to_string(m.seeds())});
  return t;
}

std::string pareto_verdict_text(pb::ParetoVerdict v) {
  switch (v) {
    case pb::PARETO_MUON_DOMINATES:
      return "Muon dominates";
    case pb::PARETO_NOT_DOMINATED:
      return "Muon does not dominate";
    default:
      return "undecided";
  }
}

Table pareto_verdict_table(const pb::GetResultsResponse& r) {
  Table t = {{"T read", "group", "target loss", "one device's batch", "s/step AdamW", "s/step Muon",
              "verdict", "why"}};
  for (const auto& f : r.pareto())
    t.push_back({reading_text(f.reading()), f.group(), target_text(f.target()),
                 std::to_string(f.device_batch_tokens()), general(f.adamw_step_seconds()),
                 general(f.muon_step_seconds()), pareto_verdict_text(f.verdict()), f.why()});
  return t;
}

Table pareto_points_table(const pb::GetResultsResponse& r) {
  Table t = {{"T read", "group", "target loss", "optimizer", "batch tokens", "devices",
              "time to target (s)", "95% CI", "seeds", "on its frontier"}};
  for (const auto& f : r.pareto())
    for (const auto& p : f.points())
      t.push_back({reading_text(f.reading()), f.group(), target_text(f.target()), p.optimizer(),
                   std::to_string(p.batch_tokens()), general(p.devices()),
                   p.reached() ? general(p.seconds()) : "not reached",
                   p.has_interval()
                       ? "[" + general(p.seconds_low()) + ", " + general(p.seconds_high()) + "]"
                       : "-",
                   std::to_string(p.seeds()), p.on_frontier() ? "yes" : ""});
  return t;
}

Table lr_law_table(const pb::GetResultsResponse& r) {
  Table t = {{"group", "optimizer", "rows", "width exponent", "95% CI", "batch exponent", "95% CI",
              "df", "left out (lr at grid edge)"}};
  const auto ci = [&](bool fitted, double low, double high, bool interval) {
    return !fitted ? "-" : interval ? "[" + fixed(low, 2) + ", " + fixed(high, 2) + "]" : "none";
  };
  for (const auto& l : r.lr_laws())
    t.push_back({l.group(), l.optimizer(), std::to_string(l.rows()),
                 l.fits_width() ? fixed(l.width_exponent(), 2) : "-",
                 ci(l.fits_width(), l.width_low(), l.width_high(), l.has_interval()),
                 l.fits_batch() ? fixed(l.batch_exponent(), 2) : "-",
                 ci(l.fits_batch(), l.batch_low(), l.batch_high(), l.has_interval()),
                 general(l.degrees_of_freedom()), std::to_string(l.left_out_at_edge())});
  return t;
}

// Each varied setting's share of the variance of final val loss, and its level means.
Table importance_table(const pb::SettingImportance& imp) {
  Table t = {{"setting", "share of variance", "final val loss by value (runs)"}};
  for (const auto& s : imp.settings()) {
    std::string levels;
    for (const auto& l : s.levels())
      levels += (levels.empty() ? "" : "; ") + l.value() + ": " +
                fixed(l.mean_final_val_loss(), 4) + " (" + std::to_string(l.runs()) + ")";
    t.push_back({s.path(), fixed(s.share(), 3), levels});
  }
  t.push_back(
      {imp.balanced() ? "interactions and seed noise" : "the rest (not balanced: a ranking only)",
       fixed(imp.residual_share(), 3), ""});
  return t;
}

// A weight-decay column only for a sweep that tunes it (its points' weight decays are > 0).
Table lr_table(const pb::GetResultsResponse& r, bool plain) {
  bool tuned_wd = false;
  for (const auto& p : r.lr_sensitivity()) tuned_wd = tuned_wd || p.weight_decay() > 0;
  Table t = {{"row", "optimizer", "batch tokens", "lr", "final val loss", "runs", "selected"}};
  if (tuned_wd) t[0].insert(t[0].begin() + 4, "weight decay");
  for (const auto& p : r.lr_sensitivity()) {
    t.push_back({p.row(), p.optimizer(), std::to_string(p.batch_tokens()), general(p.lr()),
                 stat_text(p.final_val_loss(), 4, plain, "succeeded"), outcome_text(p.counts()),
                 p.selected() ? "best" : ""});
    if (tuned_wd) t.back().insert(t.back().begin() + 4, general(p.weight_decay()));
  }
  return t;
}

// "1.23e+12": FLOPs as researchers write them.
std::string flops_text(double flops) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", flops);
  return buf;
}

// An adaptive sweep's search: per row and stage, what it tried, chose and spent.
Table tuning_table(const pb::TuningReport& t) {
  bool points = false;  // a tuned weight decay: each tried value is a point (lr, weight decay)
  for (const auto& s : t.stages()) points = points || s.weight_decays_size() > 0;
  Table out = {{"row", "stage", "width", points ? "(lr, weight decay) tried" : "lrs tried",
                "chosen lr", "tuning runs", "stopped", "confirmation runs", "tuning FLOPs"}};
  for (const auto& s : t.stages()) {
    std::string tried;
    for (int i = 0; i < s.values_size(); ++i)
      tried += (tried.empty() ? "" : " ") +
               (i < s.weight_decays_size()
                    ? "(" + general(s.values(i)) + ", " + general(s.weight_decays(i)) + ")"
                    : general(s.values(i)));
    out.push_back({s.row(), std::to_string(s.stage() + 1), std::to_string(s.width()), tried,
                   lr_text(s.choice()), std::to_string(s.tuning_runs()),
                   std::to_string(s.stopped_runs()), std::to_string(s.confirmation_runs()),
                   flops_text(s.tuning_flops())});
  }
  return out;
}

// Telescopes: the stages' tuning compute against one full grid at the largest width.
Table telescope_table(const pb::TuningReport& t) {
  Table out = {{"row family", "optimizer", "widths", "telescoped FLOPs",
                "full grid at largest width", "telescoped / full grid"}};
  for (const auto& c : t.telescopes())
    out.push_back(
        {c.family(), c.optimizer(), std::to_string(c.widths()), flops_text(c.telescoped_flops()),
         flops_text(c.full_grid_flops()) + " (" + std::to_string(c.full_grid_values()) + " runs)",
         c.full_grid_flops() > 0 ? fixed(c.telescoped_flops() / c.full_grid_flops(), 2) : "-"});
  return out;
}

size_t display_width(const std::string& s) {  // UTF-8 code points
  return size_t(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string render(const Table& t, Format f) {
  std::string out;
  if (f == Format::kCsv) {
    for (const auto& row : t) {
      for (size_t i = 0; i < row.size(); ++i) {
        std::string cell = row[i];
        if (cell.find_first_of(",\"\n") != std::string::npos) {
          std::string q = "\"";
          for (char c : cell) q += c == '"' ? std::string("\"\"") : std::string(1, c);
          cell = q + "\"";
        }
        out += (i ? "," : "") + cell;
      }
      out += "\n";
    }
    return out;
  }
  if (f == Format::kLatex) {
    auto escape = [](const std::string& s) {
      std::string e;
      for (char c : s) {
        if (std::string("&%$#_{}").find(c) != std::string::npos) e += '\\';
        e += c;
      }
      return e;
    };
    out += "\\begin{tabular}{l" + std::string(t[0].size() - 1, 'r') + "}\n\\hline\n";
    for (size_t r = 0; r < t.size(); ++r) {
      for (size_t i = 0; i < t[r].size(); ++i) {
        std::string cell = escape(t[r][i]);
        for (size_t p; (p = cell.find("±")) != std::string::npos;)
          cell.replace(p, std::string("±").size(), "$\\pm$");
        for (size_t p; (p = cell.find("Δ")) != std::string::npos;)
          cell.replace(p, std::string("Δ").size(), "$\\Delta$");
        out += (i ? " & " : "") + cell;
      }
      out += " \\\\\n";
      if (r == 0) out += "\\hline\n";
    }
    return out + "\\hline\n\\end{tabular}\n";
  }
  std::vector<size_t> width(t[0].size(), 0);
  for (const auto& row : t)
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], display_width(row[i]));
  const bool md = f == Format::kMarkdown;
  for (size_t r = 0; r < t.size(); ++r) {
    std::string line = md ? "|" : "";
    for (size_t i = 0; i < t[r].size(); ++i) {
      const std::string& cell = t[r][i];
      const std::string pad(width[i] - display_width(cell), ' ');
      line += md ? " " + cell + pad + " |" : (i ? "  " : "") + (i ? pad + cell : cell + pad);
    }
    out += line + "\n";
    if (r == 0) {
      if (md) {
        out += "|";
        for (size_t i = 0; i < width.size(); ++i)
          out += (i ? "-" : ":") + std::string(width[i], '-') + (i ? ":|" : "-|");
      } else {
        for (size_t i = 0; i < width.size(); ++i)
          out += (i ? "  " : "") + std::string(width[i], '-');
      }
      out += "\n";
    }
  }
  return out;
}

}  // namespace

Format parse_format(const std::string& name) {
  if (name == "table") return Format::kTable;
  if (name == "csv") return Format::kCsv;
  if (name == "md" || name == "markdown") return Format::kMarkdown;
  if (name == "latex" || name == "tex") return Format::kLatex;
  throw std::invalid_argument("unknown format '" + name + "' (expected table, csv, md or latex)");
}

std::string format_results(const pb::GetResultsResponse& r, Format f) {
  const bool plain = f == Format::kCsv;
  std::string out;
  // A section heading in the format's own way (CSV: a blank line between tables).
  auto section = [&](const std::string& title) {
    if (f == Format::kCsv)
      out += out.empty() ? "" : "\n";
    else if (f == Format::kMarkdown)
      out += (out.empty() ? "" : "\n") + std::string("### ") + title + "\n\n";
    else if (f == Format::kLatex)
      out += (out.empty() ? "" : "\n") + std::string("% ") + title + "\n";
    else
      out += (out.empty() ? "" : "\n") + title + "\n";
  };
  section("Ablations (mean ± std over seeds; (n/m): over n of the row's m runs; * = baseline)");
  out += render(ablation_table(r, plain), f);
  if (r.architecture_size() > 0) {
    section("Architectures (Table 3 layout)");
    out += render(architecture_table(r, plain), f);
  }
  if (r.ratios_size() > 0) {
    section("Token consumption ratio R_L(B) = T_AdamW / T_Muon (> 1: Muon needs fewer tokens)");
    out += render(ratio_table(r), f);
    if (r.trends_size() > 0) {
      section(
          "R_L(B) against the batch size: slope of the mean log ratio on log2(B), Welch interval; "
          "does not fall = its lower end above the margin");
      out += render(trend_table(r), f);
    }
  } else if (f == Format::kTable) {
    out += "\nR_L(B): the sweep has no AdamW and Muon rows of the same setting\n";
  }
  if (r.scaling_fits_size() > 0) {
    section("Scaling fits: L(D) = E + A·D^(-alpha) over each ladder row's annealed losses");
    out += render(scaling_table(r), f);
  }
  if (r.multipliers_size() > 0) {
    section("Compute multiplier: tokens AdamW needs to reach the loss Muon reaches at D, over D");
    out += render(multiplier_table(r), f);
  }
  if (r.pareto_size() > 0) {
    section(
        "Compute-time plane (section 3.2): devices = B / one device's batch, time to target = "
        "T(L, B) / B steps x seconds per step at one device's batch");
    out += render(pareto_verdict_table(r), f);
    section("Compute-time plane: each batch size's point");
    out += render(pareto_points_table(r), f);
  }
  if (r.lr_sensitivity_size() > 0) {
    section("Learning-rate sensitivity (final val loss per lr)");
    out += render(lr_table(r, plain), f);
  }
  if (r.lr_laws_size() > 0) {
    section("How the best lr scales: lr* = C * width^a * B^b over rows differing only in those");
    out += render(lr_law_table(r), f);
  }
  if (r.has_tuning() && r.tuning().stages_size() > 0) {
    section("Tuning: what the coordinator tried per row and stage (training FLOPs)");
    out += render(tuning_table(r.tuning()), f);
    if (r.tuning().telescopes_size() > 0) {
      section("Telescoping: tuning compute against one full grid at the largest width");
      out += render(telescope_table(r.tuning()), f);
    }
  }
  if (r.importance().settings_size() > 0) {
    section(
        "Which settings matter: each one's share of the variance of final val loss "
        "(functional ANOVA main effects over " +
        std::to_string(r.importance().runs_used()) + " runs)");
    out += render(importance_table(r.importance()), f);
  }
  if (r.notes_size() > 0 || r.importance().settings_size() > 0) {
    section("How these numbers were made");
    std::vector<std::string> notes(r.notes().begin(), r.notes().end());
    if (r.importance().settings_size() > 0) notes.push_back(r.importance().note());
    for (const auto& n : notes)
      out += f == Format::kCsv     ? render({{n}}, f)
             : f == Format::kLatex ? "% " + n + "\n"
                                   : (f == Format::kMarkdown ? "- " : "  ") + n + "\n";
  }
  return out;
}

}  // namespace sweepctl
