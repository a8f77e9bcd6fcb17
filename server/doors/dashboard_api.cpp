#include "server/doors/dashboard_api.h"

#include <httplib.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "server/access/bearer_token.h"
#include "server/doors/api_query.h"
#include "server/doors/results_proto.h"
#include "server/doors/web_assets.h"
#include "server/results/analysis.h"
#include "server/results/config_columns.h"
#include "server/results/export.h"
#include "trainer_core/train/run_records.h"

namespace server {

using nlohmann::json;

namespace {

json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json sweep_json(const SweepRow& s) {
  json by_state = json::object();
  for (const auto& [state, n] : s.jobs_by_state) by_state[job_state_name(state)] = n;
  return {{"id", s.id},
          {"name", s.name},
          {"state", s.state()},
          {"submitted_ms", s.submitted_ms},
          {"jobs_by_state", by_state},
          {"total_jobs", s.total_jobs},
          {"priority", s.priority},
          {"max_concurrency", s.max_concurrency},
          {"targets", s.targets},
          {"baseline", s.baseline}};
}

json job_json(const JobRow& j) {
  return {{"id", j.id},
          {"sweep_id", j.sweep_id},
          {"label", j.label},
          {"ablation", j.ablation},
          {"seed", j.seed},
          {"optimizer", j.optimizer},
          {"batch_tokens", j.batch_tokens},
          {"state", job_state_name(j.state)},
          {"attempt", j.attempt},
          {"worker_id", j.worker_id},
          {"step", j.step},
          {"max_steps", j.max_steps},
          {"last_train_loss", number(j.last_train_loss)},
          {"last_val_loss", number(j.last_val_loss)},
          {"spikes", j.spikes},
          {"message", j.message}};
}

json curve_json(const std::vector<CurveBucket>& buckets) {
  json step = json::array(), lo = json::array(), hi = json::array(), mean = json::array(),
       spikes = json::array();
  for (const auto& b : buckets) {
    step.push_back(b.last_step);
    lo.push_back(number(b.min_value));
    hi.push_back(number(b.max_value));
    mean.push_back(number(b.mean_value));
    if (b.flagged) spikes.push_back(b.last_step);
  }
  return {{"step", step}, {"min", lo}, {"max", hi}, {"mean", mean}, {"spike_steps", spikes}};
}

json evals_json(const std::vector<EvalRow>& evals) {
  json step = json::array(), loss = json::array();
  for (const auto& e : evals) {
    step.push_back(e.step);
    loss.push_back(number(e.val_loss));
  }
  return {{"step", step}, {"loss", loss}};
}

// A job's settings among `columns` as {path: value}: what the page filters and groups by.
json settings_json(const ConfigColumns& columns, int64_t job_id) {
  json out = json::object();
  const auto& values = columns.values.at(job_id);
  for (size_t i = 0; i < columns.paths.size(); ++i) out[columns.paths[i]] = values[i];
  return out;
}

int int_param(const httplib::Request& req, const char* name, int fallback, int lo, int hi) {
  return query_int(req.params, name, fallback, lo, hi);
}

bool authorized(const httplib::Request& req, const std::string& token) {
  return bearer_token_accepted(req.get_header_value("Authorization"), token);
}

void reply(httplib::Response& res, const json& body, int status = 200) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(body.dump(), "application/json");
}

}  // namespace

void register_dashboard(httplib::Server& http, Store& store, const std::string& token) {
  // Authorization and error handling for every /api/ route.
  auto api = [&http, token](const std::string& pattern,
                            std::function<json(const httplib::Request&)> handler) {
    http.Get(pattern, [token, handler](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req, token))
        return reply(res, {{"error", "missing or wrong bearer token"}}, 401);
      try {
        json body = handler(req);
        if (body.contains("error")) return reply(res, body, 404);
        reply(res, body);
      } catch (const BadRequest& e) {
        reply(res, {{"error", e.what()}}, 400);
      } catch (const std::exception& e) {
        reply(res, {{"error", e.what()}}, 500);
      }
    });
  };
  auto id_of = [](const httplib::Request& req, const char* what) {
    return path_id(req.matches[1], what);
  };

  api("/api/sweeps", [&store](const httplib::Request& req) {
    json out = json::array();
    for (const auto& s : store.list_sweeps(int_param(req, "limit", 50, 1, 500),
                                           int_param(req, "before", 0, 0, INT32_MAX)))
      out.push_back(sweep_json(s));
    return json{{"sweeps", out}};
  });
  api(R"(/api/sweeps/(\d+))", [&store, id_of](const httplib::Request& req) {
    const auto sweep = store.sweep(id_of(req, "sweep"));
    if (!sweep) return json{{"error", "no such sweep"}};
    const auto rows = store.jobs(sweep->id);
    const ConfigColumns columns = varying_config(rows);
    json jobs = json::array();
    for (const auto& j : rows) {
      jobs.push_back(job_json(j));
      jobs.back()["config"] = settings_json(columns, j.id);
    }
    return json{{"sweep", sweep_json(*sweep)}, {"config_columns", columns.paths}, {"jobs", jobs}};
  });
  api(R"(/api/sweeps/(\d+)/curves)", [&store, id_of](const httplib::Request& req) {
    const int points = int_param(req, "points", 500, 10, 10000);
    const auto jobs = store.jobs(id_of(req, "sweep"));
    std::vector<int64_t> ids;
    for (const auto& j : jobs) ids.push_back(j.id);
    const auto curves = store.downsampled_curves(ids, points);
    json out = json::array();
    for (const auto& j : jobs)
      out.push_back({{"id", j.id},
                     {"label", j.label},
                     {"seed", j.seed},
                     {"state", job_state_name(j.state)},
                     {"batch_tokens", j.batch_tokens},
                     {"train", curve_json(curves.at(j.id))},
                     {"val", evals_json(store.eval_points(j.id))}});
    return json{{"jobs", out}};
  });
  api(R"(/api/sweeps/(\d+)/results)", [&store, id_of](const httplib::Request& req) {
    const auto sweep = store.sweep(id_of(req, "sweep"));
    if (!sweep) return json{{"error", "no such sweep"}};
    // The wire contract's JSON form (results_proto.h): the same message sweepctl receives.
    return json::parse(
        results_to_json(analyze_sweep(*sweep, store.jobs(sweep->id), store.summaries(sweep->id))));
  });
  api(R"(/api/runs/(\d+))", [&store, id_of](const httplib::Request& req) {
    const auto job = store.job(id_of(req, "run"));
    if (!job) return json{{"error", "no such run"}};
    const auto summaries = store.summaries(job->sweep_id);
    const auto it = summaries.find(job->id);
    return json{{"job", job_json(*job)},
                {"config", json::parse(job->config)},
                {"summary",
                 it == summaries.end() ? json(nullptr) : json::parse(it->second, nullptr, false)},
                {"train", curve_json(store.downsampled_curve(
                              job->id, int_param(req, "points", 1000, 10, 20000)))},
                {"val", evals_json(store.eval_points(job->id))}};
  });
  // Runs of any sweeps side by side (the compare view): each run's curve, evals and settings,
  // with the config paths that differ among these runs.
  api("/api/compare", [&store](const httplib::Request& req) {
    const int points = int_param(req, "points", 500, 10, 10000);
    std::vector<JobRow> jobs;
    for (int64_t id : query_ids(req.params, "runs", 200))
      if (auto job = store.job(id)) jobs.push_back(std::move(*job));
    std::vector<int64_t> ids;
    std::map<int64_t, std::string> sweep_names;
    for (const auto& j : jobs) {
      ids.push_back(j.id);
      if (!sweep_names.count(j.sweep_id)) {
        const auto sweep = store.sweep(j.sweep_id);
        sweep_names[j.sweep_id] = sweep ? sweep->name : "";
      }
    }
    const ConfigColumns columns = varying_config(jobs);
    const auto curves = store.downsampled_curves(ids, points);
    json runs = json::array();
    for (const auto& j : jobs) {
      json run = job_json(j);
      run["sweep_name"] = sweep_names[j.sweep_id];
      run["config"] = settings_json(columns, j.id);
      run["train"] = curve_json(curves.at(j.id));
      run["val"] = evals_json(store.eval_points(j.id));
      runs.push_back(std::move(run));
    }
    return json{{"config_columns", columns.paths}, {"runs", runs}};
  });
  // Named metrics: the names a run has, and one metric of many runs (the run page's picker,
  // and any client that compares runs).
  api(R"(/api/runs/(\d+)/metrics)", [&store, id_of](const httplib::Request& req) {
    const auto job = store.job(id_of(req, "run"));
    if (!job) return json{{"error", "no such run"}};
    return json{{"run", job->id}, {"metrics", store.metric_names(job->id)}};
  });
  api("/api/metric-names", [&store](const httplib::Request& req) {
    std::set<std::string> names;
    for (int64_t run : query_ids(req.params, "runs", 1000))
      for (auto& name : store.metric_names(run)) names.insert(std::move(name));
    return json{{"metrics", names}};
  });
  api("/api/metrics", [&store](const httplib::Request& req) {
    const std::string name = query_text(req.params, "name", trainer_core::kMaxMetricNameBytes);
    const std::vector<int64_t> runs = query_ids(req.params, "runs", 200);
    const auto curves =
        store.downsampled_metric(runs, name, int_param(req, "points", 1000, 10, 20000));
    if (!curves) return json{{"error", "no metric named \"" + name + "\""}};
    json out = json::array();
    for (int64_t run : runs) out.push_back({{"run", run}, {"curve", curve_json(curves->at(run))}});
    return json{{"name", name}, {"runs", out}};
  });
  // Downloads for pandas: the same tables as `sweepctl export` (export.h), streamed.
  http.Get(R"(/api/sweeps/(\d+)/export)",
           [&store, token](const httplib::Request& req, httplib::Response& res) {
             if (!authorized(req, token))
               return reply(res, {{"error", "missing or wrong bearer token"}}, 401);
             try {
               const auto sweep = store.sweep(path_id(req.matches[1], "sweep"));
               if (!sweep) return reply(res, {{"error", "no such sweep"}}, 404);
               const std::string table_name =
                   req.has_param("table") ? query_text(req.params, "table", 16) : "curves";
               const std::string format_name =
                   req.has_param("format") ? query_text(req.params, "format", 16) : "csv";
               const auto table = parse_export_table(table_name);
               const auto format = parse_export_format(format_name);
               if (!table || !format)
                 throw BadRequest(
                     "export: table is curves or summaries and format csv or jsonl, got table=" +
                     table_name.substr(0, 40) + " format=" + format_name.substr(0, 40));
               const std::string file =
                   "sweep-" + std::to_string(sweep->id) + "-" + table_name + "." + format_name;
               res.set_header("Content-Disposition", "attachment; filename=\"" + file + "\"");
               res.set_header("Cache-Control", "no-store");
               res.set_chunked_content_provider(
                   *format == ExportFormat::kCsv ? "text/csv" : "application/x-ndjson",
                   [&store, sweep = *sweep, table = *table, format = *format](
                       size_t, httplib::DataSink& sink) {
                     export_sweep(store, sweep, table, format, [&](const std::string& piece) {
                       sink.write(piece.data(), piece.size());
                     });
                     sink.done();
                     return true;
                   });
             } catch (const BadRequest& e) {
               reply(res, {{"error", e.what()}}, 400);
             }
           });
  api("/api/workers", [&store](const httplib::Request&) {
    json out = json::array();
    for (const auto& w : store.workers())
      out.push_back({{"id", w.id},
                     {"hostname", w.hostname},
                     {"backend", w.backend},
                     {"gpus", w.gpus},
                     {"slots", w.slots},
                     {"state", w.state},
                     {"last_heartbeat_ms", w.last_heartbeat_ms},
                     {"jobs", w.job_ids},
                     {"devices", json::parse(w.devices_json, nullptr, false)}});
    return json{{"workers", out}};
  });

  // Browsers ask for an icon on every page load; there is none, and "none" is not an error.
  http.Get("/favicon.ico",
           [](const httplib::Request&, httplib::Response& res) { res.status = 204; });

  // The page: files from web/ and uPlot, embedded at build time.
  for (const WebAsset& asset : web_assets()) {
    const std::string path = asset.path == "index.html" ? "/" : "/" + asset.path;
    http.Get(path, [&asset](const httplib::Request&, httplib::Response& res) {
      res.set_header("Content-Security-Policy",
                     "default-src 'self'; style-src 'self' 'unsafe-inline'");
      res.set_content(std::string(asset.data, asset.size),
                      std::string(asset.content_type) + "; charset=utf-8");
    });
  }
}

}  // namespace server
