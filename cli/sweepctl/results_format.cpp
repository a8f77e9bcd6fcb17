#include "results_format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
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

std::string stat_text(const pb::Stat& s, int digits, bool plain) {
  if (s.n() == 0) return "-";
  if (s.n() == 1) return fixed(s.mean(), digits);
  return fixed(s.mean(), digits) + (plain ? " +- " : " ± ") + fixed(s.std(), digits);
}

Table ablation_table(const pb::GetResultsResponse& r, bool plain) {
  const std::string target = r.targets_size() ? fixed(r.targets(0), 2) : "-";
  Table t = {{"label", "runs", "val PPL", "steps to " + target, "loss spikes", "peak MiB", "ΔPPL vs baseline"}};
  if (plain) t[0][6] = "delta PPL vs baseline";
  for (const auto& row : r.ablation()) {
    std::string steps = stat_text(row.steps_to_target(), 0, plain);
    if (row.steps_to_target().n() < row.runs() && row.steps_to_target().n() > 0)
      steps += " (" + std::to_string(row.steps_to_target().n()) + "/" + std::to_string(row.runs()) + ")";
    t.push_back({row.label() + (row.baseline() ? " *" : ""), std::to_string(row.runs()),
                 stat_text(row.val_ppl(), 2, plain), steps, stat_text(row.spikes(), 1, plain),
                 stat_text(row.peak_memory_mb(), 1, plain),
                 row.baseline() ? "baseline" : row.has_delta() ? (row.delta_val_ppl() >= 0 ? "+" : "") + fixed(row.delta_val_ppl(), 2) : "-"});
  }
  return t;
}

Table architecture_table(const pb::GetResultsResponse& r, bool plain) {
  const std::string target = r.targets_size() ? fixed(r.targets(0), 2) : "-";
  Table t = {{"architecture", "optimizer", "runs", "train s to " + target, "inference tok/s", "peak MiB", "final PPL",
              "FLOPs to target vs MHA+AdamW"}};
  for (const auto& a : r.architecture()) {
    const std::string arch = a.attention() == "mha" && a.ffn() == "dense" ? "MHA"
                             : a.ffn() == "moe" ? (a.attention() == "mla" ? "MoE-MLA" : "MoE-MHA") : "MLA";
    t.push_back({arch, a.optimizer(), std::to_string(a.runs()), stat_text(a.seconds_to_target(), 1, plain),
                 stat_text(a.inference_tokens_per_second(), 0, plain), stat_text(a.peak_memory_mb(), 1, plain),
                 stat_text(a.val_ppl(), 2, plain), a.has_relative_flops() ? fixed(a.relative_flops_to_target(), 3) : "-"});
  }
  return t;
}

Table ratio_table(const pb::GetResultsResponse& r) {
  Table t = {{"group", "batch tokens", "target loss", "R_L(B)", "95% CI", "seed pairs"}};
  for (const auto& p : r.ratios())
    t.push_back({p.group(), std::to_string(p.batch_tokens()), fixed(p.target(), 2), fixed(p.ratio_mean(), 3),
                 "[" + fixed(p.ci_low(), 3) + ", " + fixed(p.ci_high(), 3) + "]", std::to_string(p.pairs())});
  return t;
}

size_t display_width(const std::string& s) {  // UTF-8 code points
  return size_t(std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
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
        for (size_t p; (p = cell.find("±")) != std::string::npos;) cell.replace(p, std::string("±").size(), "$\\pm$");
        for (size_t p; (p = cell.find("Δ")) != std::string::npos;) cell.replace(p, std::string("Δ").size(), "$\\Delta$");
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
        for (size_t i = 0; i < width.size(); ++i) out += (i ? "-" : ":") + std::string(width[i], '-') + (i ? ":|" : "-|");
      } else {
        for (size_t i = 0; i < width.size(); ++i) out += (i ? "  " : "") + std::string(width[i], '-');
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
  if (f == Format::kTable) out += "Ablations (mean ± std over seeds; * = baseline)\n";
  if (f == Format::kMarkdown) out += "### Ablations\n\n";
  out += render(ablation_table(r, plain), f);
  if (r.architecture_size() > 0) {
    out += f == Format::kCsv ? "\n" : f == Format::kMarkdown ? "\n### Architectures (Table 3)\n\n"
                                    : f == Format::kLatex ? "\n" : "\nArchitectures (Table 3 layout)\n";
    out += render(architecture_table(r, plain), f);
  }
  if (r.ratios_size() == 0) {
    if (f == Format::kTable) out += "\nR_L(B): no batch size where both AdamW and Muon reached a target\n";
    return out;
  }
  out += f == Format::kCsv ? "\n" : f == Format::kMarkdown ? "\n### Token consumption ratio R_L(B) = T_AdamW / T_Muon\n\n"
                                  : f == Format::kLatex ? "\n" : "\nToken consumption ratio R_L(B) = T_AdamW / T_Muon (> 1: Muon needs fewer tokens)\n";
  out += render(ratio_table(r), f);
  return out;
}

}  // namespace sweepctl
