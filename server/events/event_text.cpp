#include "server/events/event_text.h"

#include <map>
#include <nlohmann/json.hpp>

namespace server {

using nlohmann::json;

namespace {

// Names and messages come from users and trainers: invalid UTF-8 is replaced, never thrown on.
std::string safe_dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string sweep_name(int64_t id, const std::string& name) {
  return "sweep " + std::to_string(id) + (name.empty() ? "" : " (" + name + ")");
}

EventRow finished_event(const FinishedSweep& s, int64_t now_ms) {
  std::string counts;
  json by_state = json::object();
  for (const auto& [state, n] : s.jobs_by_state) {
    counts += (counts.empty() ? "" : ", ") + std::to_string(n) + " " + job_state_name(state);
    by_state[job_state_name(state)] = n;
  }
  const json detail = {{"sweep_id", s.sweep_id},
                       {"name", s.name},
                       {"jobs_by_state", by_state},
                       {"finished_ms", s.finished_ms}};
  return {0,
          now_ms,
          EventKind::kSweepFinished,
          s.sweep_id,
          sweep_name(s.sweep_id, s.name) + " finished: " + counts,
          safe_dump(detail)};
}

EventRow failed_event(int64_t sweep_id, const std::vector<const FailedJob*>& jobs, int64_t now_ms) {
  std::string text = std::to_string(jobs.size()) + " job(s) of sweep " + std::to_string(sweep_id) +
                     " failed for good: ";
  json ids = json::array();
  for (size_t i = 0; i < jobs.size(); ++i) {
    const FailedJob& j = *jobs[i];
    if (i < kFailedJobsInDetail) ids.push_back(j.job_id);
    if (i < kFailedJobsNamed)
      text += (i ? "; " : "") + std::string("job ") + std::to_string(j.job_id) + " " + j.label +
              " seed " + std::to_string(j.seed) + ": " + j.message.substr(0, 200);
  }
  if (jobs.size() > kFailedJobsNamed)
    text += "; and " + std::to_string(jobs.size() - kFailedJobsNamed) + " more";
  const json detail = {{"sweep_id", sweep_id},
                       {"failed_jobs", jobs.size()},
                       {"job_ids", ids},
                       {"job_ids_complete", jobs.size() <= kFailedJobsInDetail}};
  return {0, now_ms, EventKind::kJobsFailed, sweep_id, text, safe_dump(detail)};
}

}  // namespace

std::vector<EventRow> news_events(const EventNews& news, int64_t now_ms) {
  std::vector<EventRow> out;
  std::map<int64_t, std::vector<const FailedJob*>> failed_by_sweep;
  for (const FailedJob& j : news.failed) failed_by_sweep[j.sweep_id].push_back(&j);
  // Failures first: a sweep that failed and finished in one tick tells why before that it ended.
  for (const auto& [sweep_id, jobs] : failed_by_sweep)
    out.push_back(failed_event(sweep_id, jobs, now_ms));
  for (const FinishedSweep& s : news.finished) out.push_back(finished_event(s, now_ms));
  return out;
}

EventRow health_event(int64_t sweep_id, int64_t job_id, const std::string& label,
                      const std::string& reason, int64_t now_ms) {
  const json detail = {{"sweep_id", sweep_id}, {"job_id", job_id}, {"reason", reason}};
  return {0,
          now_ms,
          EventKind::kHealthRule,
          sweep_id,
          "job " + std::to_string(job_id) + " (" + label + ") of sweep " +
              std::to_string(sweep_id) + ": " + reason,
          safe_dump(detail)};
}

EventRow no_worker_event(int64_t since_ms, int64_t now_ms) {
  const int64_t minutes = (now_ms - since_ms) / 60000;
  const json detail = {{"since_ms", since_ms}, {"minutes", minutes}};
  return {0,
          now_ms,
          EventKind::kNoWorker,
          std::nullopt,
          "jobs are waiting and no worker has been heard from for " + std::to_string(minutes) +
              " minute(s)",
          safe_dump(detail)};
}

std::string webhook_body(const EventRow& event) {
  json body = {{"text", event.text},
               {"event_id", event.id},
               {"kind", trainer_core::name_of(event.kind)},
               {"at_ms", event.at_ms},
               {"sweep_id", event.sweep_id ? json(*event.sweep_id) : json(nullptr)},
               {"detail", json::parse(event.detail_json.empty() ? "{}" : event.detail_json)}};
  return safe_dump(body);
}

}  // namespace server
