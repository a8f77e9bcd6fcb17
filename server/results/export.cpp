#include "server/results/export.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "server/results/config_columns.h"
#include "trainer_core/train/record_fields.h"

namespace server {

using nlohmann::json;

namespace {

constexpr size_t kPieceBytes = 256 << 10;

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

std::string csv_cell(const json& v) {
  if (v.is_null()) return "";
  if (!v.is_string()) return v.dump();
  const std::string s = v.get<std::string>();
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string quoted = "\"";
  for (char c : s) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

// Rows of one table in CSV or JSON lines, buffered into pieces for the sink.
class TableWriter {
 public:
  TableWriter(ExportFormat format, std::vector<std::string> columns,
              const std::function<void(const std::string&)>& sink)
      : format_(format), columns_(std::move(columns)), sink_(sink) {
    if (format_ != ExportFormat::kCsv) return;
    for (size_t i = 0; i < columns_.size(); ++i) buffer_ += (i ? "," : "") + csv_cell(columns_[i]);
    buffer_ += "\n";
  }
  ~TableWriter() {
    if (!buffer_.empty()) sink_(buffer_);
  }
  void row(const std::vector<json>& values) {
    if (format_ == ExportFormat::kCsv) {
      for (size_t i = 0; i < values.size(); ++i) buffer_ += (i ? "," : "") + csv_cell(values[i]);
      buffer_ += "\n";
    } else {
      json object = json::object();
      for (size_t i = 0; i < values.size(); ++i) object[columns_[i]] = values[i];
      buffer_ += object.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    }
    if (buffer_.size() >= kPieceBytes) {
      sink_(buffer_);
      buffer_.clear();
    }
  }

 private:
  ExportFormat format_;
  std::vector<std::string> columns_;
  const std::function<void(const std::string&)>& sink_;
  std::string buffer_;
};

// The columns every row of a job starts with (job, label, seed, state, and in a sweep with forks
// fork_of and branch_step: a fork's curve rows up to branch_step are its parent's, as the fork
// started from them; in a sweep with reused runs reused_from_job: that job trained the rows;
// then the config paths whose values differ between the jobs), and each job's values; every
// config is read once.
class JobColumns {
 public:
  explicit JobColumns(const std::vector<JobRow>& jobs) {
    const ConfigColumns config = varying_config(jobs);
    const bool forks =
        std::any_of(jobs.begin(), jobs.end(), [](const JobRow& j) { return j.fork.has_value(); });
    const bool reused =
        std::any_of(jobs.begin(), jobs.end(), [](const JobRow& j) { return j.reused.has_value(); });
    names_ = {"job", "label", "seed", "state"};
    if (forks) names_.insert(names_.end(), {"fork_of", "branch_step"});
    if (reused) names_.push_back("reused_from_job");
    names_.insert(names_.end(), config.paths.begin(), config.paths.end());
    for (const JobRow& j : jobs) {
      std::vector<json>& row = values_[j.id];
      row = {j.id, j.label, j.seed, job_state_name(j.state)};
      if (forks && j.fork)
        row.insert(row.end(), {j.fork->parent_job_id, j.fork->plan.branch_step});
      else if (forks)
        row.insert(row.end(), {nullptr, nullptr});
      if (reused) row.push_back(j.reused ? json(j.reused->job_id) : json(nullptr));
      const auto& settings = config.values.at(j.id);
      row.insert(row.end(), settings.begin(), settings.end());
    }
  }
  const std::vector<std::string>& names() const { return names_; }
  const std::vector<json>& values(int64_t job_id) const { return values_.at(job_id); }

 private:
  std::vector<std::string> names_;
  std::map<int64_t, std::vector<json>> values_;
};

void export_curves(MetricStore& metrics, const std::vector<JobRow>& jobs,
                   const JobColumns& job_columns, ExportFormat format,
                   const std::function<void(const std::string&)>& sink) {
  std::vector<std::string> columns = job_columns.names();
  columns.insert(columns.end(), {"step", "metric", "value"});
  TableWriter out(format, columns, sink);
  for (const JobRow& j : jobs) {
    const std::vector<json>& prefix = job_columns.values(j.id);
    auto emit = [&](int64_t step, const char* metric, double value) {
      std::vector<json> row = prefix;
      row.insert(row.end(), {step, metric, number_or_null(value)});
      out.row(row);
    };
    // Series by series, as stored: each step field the coordinator keeps (record_fields.h), the
    // evaluations' val_loss, then the named metrics.
    for (const auto& field : trainer_core::kStepFields)
      if (trainer_core::is_kept_series(field))
        for (const SeriesPoint& p : metrics.series_points(j.id, field.name))
          emit(p.step, field.name, p.value);
    for (const EvalRow& e : metrics.eval_points(j.id)) emit(e.step, "val_loss", e.val_loss);
    for (const std::string& name : metrics.metric_names(j.id))
      for (const SeriesPoint& p : metrics.series_points(j.id, name))
        emit(p.step, name.c_str(), p.value);
  }
}

// A summary as columns: its fields flattened, target crossings keyed by their target.
std::map<std::string, json> summary_columns(const std::string& text) {
  std::map<std::string, json> flat;
  json summary = json::parse(text, nullptr, false);
  if (!summary.is_object()) return flat;
  json targets = summary.value("targets", json::array());
  summary.erase("targets");
  summary.erase("type");
  flatten_json(summary, "", flat);
  for (const json& t : targets) {
    if (!t.is_object() || !t.contains("target")) continue;
    const std::string prefix = "to_target_" + t["target"].dump();
    for (const auto& [key, value] : t.items())
      if (key != "target") flat[prefix + "." + key] = value;
  }
  return flat;
}

void export_summaries(MetricStore& metrics, const SweepRow& sweep, const std::vector<JobRow>& jobs,
                      const JobColumns& job_columns, ExportFormat format,
                      const std::function<void(const std::string&)>& sink) {
  const auto summaries = metrics.summaries(sweep.id);
  std::map<int64_t, std::map<std::string, json>> by_job;
  std::set<std::string> fields;
  for (const auto& [job, text] : summaries) {
    by_job[job] = summary_columns(text);
    for (const auto& [field, value] : by_job[job]) fields.insert(field);
  }
  std::vector<std::string> columns = job_columns.names();
  columns.insert(columns.end(), fields.begin(), fields.end());
  TableWriter out(format, columns, sink);
  for (const JobRow& j : jobs) {
    std::vector<json> row = job_columns.values(j.id);
    const auto& flat = by_job[j.id];
    for (const std::string& field : fields) {
      const auto it = flat.find(field);
      row.push_back(it == flat.end() ? json(nullptr) : it->second);
    }
    out.row(row);
  }
}

}  // namespace

std::optional<ExportTable> parse_export_table(std::string_view name) {
  if (name == "curves") return ExportTable::kCurves;
  if (name == "summaries") return ExportTable::kSummaries;
  return std::nullopt;
}

std::optional<ExportFormat> parse_export_format(std::string_view name) {
  if (name == "csv") return ExportFormat::kCsv;
  if (name == "jsonl") return ExportFormat::kJsonl;
  return std::nullopt;
}

void export_sweep(SweepStore& sweeps, MetricStore& metrics, const SweepRow& sweep,
                  ExportTable table, ExportFormat format,
                  const std::function<void(const std::string&)>& sink) {
  const std::vector<JobRow> jobs = sweeps.jobs(sweep.id);
  const JobColumns job_columns(jobs);
  if (table == ExportTable::kCurves)
    export_curves(metrics, jobs, job_columns, format, sink);
  else
    export_summaries(metrics, sweep, jobs, job_columns, format, sink);
}

}  // namespace server
