#include "server/api/dashboard_api.h"

#include <memory>
#include <set>

#include "proto/api_json.h"
#include "server/api/api_query.h"
#include "server/api/curve_pack.h"
#include "server/api/results_proto.h"
#include "server/api/rows_proto.h"
#include "server/api/web_assets.h"
#include "server/results/analysis.h"
#include "server/results/config_columns.h"
#include "server/results/export.h"
#include "trainer_core/train/run_records.h"

namespace server {

namespace pb = orchestrator::v1;
using google::protobuf::Message;
using orchestrator_json::to_api_json;

namespace {

int int_param(const http_door::Request& req, const char* name, int fallback, int lo, int hi) {
  return query_int(req.params, name, fallback, lo, hi);
}

void reply(http_door::Response& res, const Message& body, int status = 200) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(to_api_json(body), "application/json");
}

pb::ApiError api_error(const std::string& message) {
  pb::ApiError error;
  error.set_error(message);
  return error;
}

// A route's answer: the message to serve, or (not found) the error to serve with 404.
struct Answer {
  std::unique_ptr<Message> body;
  static Answer of(std::unique_ptr<Message> m) { return {std::move(m)}; }
  static Answer not_found(const std::string& why) {
    return {std::make_unique<pb::ApiError>(api_error(why))};
  }
  bool found() const { return body->GetDescriptor() != pb::ApiError::descriptor(); }
};

// A run's train curve (downsampled by the caller) and its evals into a message with `train` and
// `val` fields (RunCurves, GetRunResponse, ComparedRun).
template <typename RunMessage>
void fill_run_curves(Store& store, int64_t job_id, const std::vector<CurveBucket>& train,
                     RunMessage* out) {
  fill_curve(train, out->mutable_train());
  fill_evals(store.metrics.eval_points(job_id), out->mutable_val());
}

// What the handlers read: held by reference, so `store` and `gate` (and `provisioner`, when not
// null) outlive the HTTP server (dashboard_api.h).
struct Dashboard {
  Store& store;
  Gate& gate;
  const Provisioner* provisioner;
};

// The id in a route's path (its first group).
int64_t id_in_path(const http_door::Request& req, const char* what) {
  return path_id(req.matches[1], what);
}

// Runs `serve`, answering a BadRequest with 400 and any other exception with 500 (JSON errors).
template <typename Serve>
void with_api_errors(http_door::Response& res, Serve&& serve) {
  try {
    serve();
  } catch (const BadRequest& e) {
    reply(res, api_error(e.what()), 400);
  } catch (const std::exception& e) {
    reply(res, api_error(e.what()), 500);
  }
}

Answer list_sweeps(const Dashboard& d, const http_door::Request& req) {
  auto out = std::make_unique<pb::ListSweepsResponse>();
  for (const auto& s : d.store.sweeps.list_sweeps(int_param(req, "limit", 50, 1, 500),
                                                  int_param(req, "before", 0, 0, INT32_MAX)))
    fill_sweep(s, out->add_sweeps());
  return Answer::of(std::move(out));
}

Answer get_sweep(const Dashboard& d, const http_door::Request& req) {
  const auto sweep = d.store.sweeps.sweep(id_in_path(req, "sweep"));
  if (!sweep) return Answer::not_found("no such sweep");
  const auto rows = d.store.sweeps.jobs(sweep->id);
  const ConfigColumns columns = varying_config(rows);
  auto out = std::make_unique<pb::GetSweepResponse>();
  fill_sweep_detail(*sweep, rows, d.store.events.for_sweep(sweep->id, 0, kSweepEventsShown),
                    &columns, d.provisioner, out.get());
  return Answer::of(std::move(out));
}

std::unique_ptr<pb::SweepCurvesResponse> sweep_curves(Store& store, const http_door::Request& req) {
  const int points = int_param(req, "points", 500, 10, 10000);
  const auto jobs = store.sweeps.jobs(id_in_path(req, "sweep"));
  std::vector<int64_t> ids;
  for (const auto& j : jobs) ids.push_back(j.id);
  const auto curves = store.metrics.downsampled_curves(ids, points);
  auto out = std::make_unique<pb::SweepCurvesResponse>();
  for (const auto& j : jobs) {
    auto* run = out->add_jobs();
    run->set_job_id(j.id);
    fill_run_curves(store, j.id, curves.at(j.id), run);
  }
  return out;
}

// ?format=packed: the same curves as curve_pack.h's binary (what the sweep page reads); else the
// JSON of SweepCurvesResponse.
void serve_sweep_curves(const Dashboard& d, const http_door::Request& req,
                        http_door::Response& res) {
  with_api_errors(res, [&] {
    const auto given = req.params.find("format");
    const std::string format = given == req.params.end() ? "json" : given->second;
    if (format != "json" && format != "packed")
      throw BadRequest("query parameter format='" + format.substr(0, 40) +
                       "': json or packed is expected");
    // An unknown sweep is a 404, as /api/sweeps/ID answers, not an empty set of curves.
    if (!d.store.sweeps.sweep(id_in_path(req, "sweep")))
      return reply(res, api_error("no such sweep"), 404);
    const auto curves = sweep_curves(d.store, req);
    if (format == "json") return reply(res, *curves);
    // The door gzips it for clients that accept gzip (http_door.h).
    res.set_header("Cache-Control", "no-store");
    res.set_content(pack_curves(*curves), "application/octet-stream");
  });
}

Answer get_results(const Dashboard& d, const http_door::Request& req) {
  const auto sweep = d.store.sweeps.sweep(id_in_path(req, "sweep"));
  if (!sweep) return Answer::not_found("no such sweep");
  // The same message sweepctl receives (results_proto.h).
  return Answer::of(std::make_unique<pb::GetResultsResponse>(
      results_to_proto(analyze_stored_sweep(d.store.sweeps, d.store.metrics, *sweep))));
}

// /api/runs/N/log?attempt=A&from=B: the run's log (JobLog; its bytes base64, as the proto's JSON
// writes bytes).
Answer get_run_log(const Dashboard& d, const http_door::Request& req) {
  auto out = std::make_unique<pb::JobLog>();
  if (!fill_job_log(d.store, id_in_path(req, "run"), int_param(req, "attempt", 0, 0, 1000000),
                    int_param(req, "from", 0, 0, INT32_MAX), out.get()))
    return Answer::not_found("no such run");
  return Answer::of(std::move(out));
}

Answer get_run(const Dashboard& d, const http_door::Request& req) {
  const auto job = d.store.sweeps.job(id_in_path(req, "run"));
  if (!job) return Answer::not_found("no such run");
  auto out = std::make_unique<pb::GetRunResponse>();
  fill_job(*job, out->mutable_job());
  fill_struct(job->config, out->mutable_config());
  const auto summaries = d.store.metrics.summaries(job->sweep_id);
  if (const auto it = summaries.find(job->id); it != summaries.end())
    if (!fill_struct(it->second, out->mutable_summary())) out->clear_summary();
  fill_run_curves(
      d.store, job->id,
      d.store.metrics.downsampled_curve(job->id, int_param(req, "points", 1000, 10, 20000)),
      out.get());
  return Answer::of(std::move(out));
}

// Runs of any sweeps side by side (the compare view): each run's curve, evals and settings, with
// the config paths that differ among these runs.
Answer compare_runs(const Dashboard& d, const http_door::Request& req) {
  const int points = int_param(req, "points", 500, 10, 10000);
  std::vector<JobRow> jobs;
  for (int64_t id : query_ids(req.params, "runs", 200))
    if (auto job = d.store.sweeps.job(id)) jobs.push_back(std::move(*job));
  std::vector<int64_t> ids;
  std::map<int64_t, std::string> sweep_names;
  for (const auto& j : jobs) {
    ids.push_back(j.id);
    if (!sweep_names.count(j.sweep_id)) {
      const auto sweep = d.store.sweeps.sweep(j.sweep_id);
      sweep_names[j.sweep_id] = sweep ? sweep->name : "";
    }
  }
  const ConfigColumns columns = varying_config(jobs);
  const auto curves = d.store.metrics.downsampled_curves(ids, points);
  auto out = std::make_unique<pb::CompareRunsResponse>();
  for (const auto& path : columns.paths) out->add_config_columns(path);
  for (const auto& j : jobs) {
    auto* run = out->add_runs();
    fill_job(j, run->mutable_job());
    fill_settings(columns, j.id, run->mutable_job());
    run->set_sweep_name(sweep_names[j.sweep_id]);
    fill_run_curves(d.store, j.id, curves.at(j.id), run);
  }
  return Answer::of(std::move(out));
}

// Named metrics: the names a run has (the run page's picker), the names any of several runs has,
// and one metric of many runs (any client that compares runs).
Answer run_metric_names(const Dashboard& d, const http_door::Request& req) {
  const auto job = d.store.sweeps.job(id_in_path(req, "run"));
  if (!job) return Answer::not_found("no such run");
  auto out = std::make_unique<pb::MetricNamesResponse>();
  for (const auto& name : d.store.metrics.metric_names(job->id)) out->add_metrics(name);
  return Answer::of(std::move(out));
}

Answer metric_names(const Dashboard& d, const http_door::Request& req) {
  std::set<std::string> names;
  for (int64_t run : query_ids(req.params, "runs", 1000))
    for (auto& name : d.store.metrics.metric_names(run)) names.insert(std::move(name));
  auto out = std::make_unique<pb::MetricNamesResponse>();
  for (const auto& name : names) out->add_metrics(name);
  return Answer::of(std::move(out));
}

Answer named_metric(const Dashboard& d, const http_door::Request& req) {
  const std::string name = query_text(req.params, "name", trainer_core::kMaxMetricNameBytes);
  const std::vector<int64_t> runs = query_ids(req.params, "runs", 200);
  const auto curves =
      d.store.metrics.downsampled_metric(runs, name, int_param(req, "points", 1000, 10, 20000));
  if (!curves) return Answer::not_found("no metric named \"" + name + "\"");
  auto out = std::make_unique<pb::NamedMetricResponse>();
  out->set_name(name);
  for (int64_t run : runs) {
    auto* curve = out->add_runs();
    curve->set_job_id(run);
    fill_curve(curves->at(run), curve->mutable_curve());
  }
  return Answer::of(std::move(out));
}

// Downloads for pandas: the same tables as `sweepctl export` (export.h), streamed.
void serve_export(const Dashboard& d, const http_door::Request& req, http_door::Response& res) {
  try {
    const auto sweep = d.store.sweeps.sweep(id_in_path(req, "sweep"));
    if (!sweep) return reply(res, api_error("no such sweep"), 404);
    const std::string table_name =
        req.has_param("table") ? query_text(req.params, "table", 16) : "curves";
    const std::string format_name =
        req.has_param("format") ? query_text(req.params, "format", 16) : "csv";
    const auto table = parse_export_table(table_name);
    const auto format = parse_export_format(format_name);
    if (!table || !format)
      throw BadRequest("export: table is curves or summaries and format csv or jsonl, got table=" +
                       table_name.substr(0, 40) + " format=" + format_name.substr(0, 40));
    const std::string file =
        "sweep-" + std::to_string(sweep->id) + "-" + table_name + "." + format_name;
    res.set_header("Content-Disposition", "attachment; filename=\"" + file + "\"");
    res.set_header("Cache-Control", "no-store");
    res.content_type = *format == ExportFormat::kCsv ? "text/csv" : "application/x-ndjson";
    res.stream = [&store = d.store, sweep = *sweep, table = *table,
                  format = *format](const http_door::StreamSink& sink) {
      export_sweep(store.sweeps, store.metrics, sweep, table, format, sink);
    };
  } catch (const BadRequest& e) {
    reply(res, api_error(e.what()), 400);
  }
}

// Who the caller is: the page shows it and offers only what the role may do. (The server's check
// before routing has identified the caller already; this asks the gate again.)
Answer who_am_i(const Dashboard& d, const http_door::Request& req) {
  auto out = std::make_unique<pb::WhoAmIResponse>();
  if (const auto caller = d.gate
                              .identify(req.header("Authorization"), req.peer_address,
                                        Action::kWhoAmI, "http /api/whoami")
                              .caller) {
    out->set_user(caller->user.name);
    out->set_role(role_name(caller->user.role));
  }
  return Answer::of(std::move(out));
}

Answer list_audit(const Dashboard& d, const http_door::Request& req) {
  pb::ListAuditRequest query;
  if (req.params.count("user")) query.set_user(query_text(req.params, "user", 64));
  query.set_since_unix_ms(query_int64(req.params, "since", 0, 0, INT64_MAX));
  query.set_limit(query_int(req.params, "limit", 1000, 1, 100000));
  auto out = std::make_unique<pb::ListAuditResponse>();
  fill_audit(d.store.audit, query, out.get());
  return Answer::of(std::move(out));
}

Answer list_events(const Dashboard& d, const http_door::Request& req) {
  auto out = std::make_unique<pb::ListEventsResponse>();
  for (const EventRow& e : d.store.events.recent(query_int64(req.params, "before", 0, 0, INT64_MAX),
                                                 query_int(req.params, "limit", 50, 1, 1000)))
    fill_event(e, out->add_events());
  return Answer::of(std::move(out));
}

Answer list_workers(const Dashboard& d, const http_door::Request&) {
  auto out = std::make_unique<pb::ListWorkersResponse>();
  fill_workers_page(d.store.workers, d.store.allocations, d.provisioner, out.get());
  return Answer::of(std::move(out));
}

// A route that answers with a message (Answer): served as JSON, 404 when not found, errors as
// with_api_errors says.
template <Answer (*answer)(const Dashboard&, const http_door::Request&)>
void serve_answer(const Dashboard& d, const http_door::Request& req, http_door::Response& res) {
  with_api_errors(res, [&] {
    const Answer a = answer(d, req);
    reply(res, *a.body, a.found() ? 200 : 404);
  });
}

struct Route {
  const char* pattern;  // a regular expression the whole path matches; (\d+): an id
  void (*serve)(const Dashboard&, const http_door::Request&, http_door::Response&);
};

// Every /api/ route (dashboard_api.h lists them). Authorization is the HTTP server's, before
// routing.
constexpr Route kApiRoutes[] = {
    {"/api/sweeps", serve_answer<list_sweeps>},
    {R"(/api/sweeps/(\d+))", serve_answer<get_sweep>},
    {R"(/api/sweeps/(\d+)/curves)", serve_sweep_curves},
    {R"(/api/sweeps/(\d+)/results)", serve_answer<get_results>},
    {R"(/api/runs/(\d+))", serve_answer<get_run>},
    {"/api/compare", serve_answer<compare_runs>},
    {R"(/api/runs/(\d+)/metrics)", serve_answer<run_metric_names>},
    {R"(/api/runs/(\d+)/log)", serve_answer<get_run_log>},
    {"/api/metric-names", serve_answer<metric_names>},
    {"/api/metrics", serve_answer<named_metric>},
    {R"(/api/sweeps/(\d+)/export)", serve_export},
    {"/api/whoami", serve_answer<who_am_i>},
    {"/api/audit", serve_answer<list_audit>},
    {"/api/events", serve_answer<list_events>},
    {"/api/workers", serve_answer<list_workers>},
};

// The page: files from web/ and uPlot, embedded at build time.
void register_page(http_door::Door& http) {
  // Browsers ask for an icon on every page load; there is none, and "none" is not an error.
  http.get("/favicon.ico",
           [](const http_door::Request&, http_door::Response& res) { res.status = 204; });
  for (const WebAsset& asset : web_assets()) {
    const std::string path = asset.path == "index.html" ? "/" : "/" + asset.path;
    http.get(path, [&asset](const http_door::Request&, http_door::Response& res) {
      res.set_header("Content-Security-Policy",
                     "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                     "frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
      res.set_content(std::string(asset.data, asset.size),
                      std::string(asset.content_type) + "; charset=utf-8");
    });
  }
}

}  // namespace

void register_dashboard(http_door::Door& http, Store& store, Gate& gate,
                        const Provisioner* provisioner) {
  const Dashboard dashboard{store, gate, provisioner};
  for (const Route& route : kApiRoutes)
    http.get(route.pattern, [dashboard, serve = route.serve](const http_door::Request& req,
                                                             http_door::Response& res) {
      serve(dashboard, req, res);
    });
  register_page(http);
}

}  // namespace server
