#include "server/provisioning/provisioner.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <sstream>

#include "server/provisioning/kubernetes_engine.h"
#include "server/provisioning/slurm_engine.h"
#include "server/storage/clock.h"

namespace server {

std::unique_ptr<ClusterEngine> make_engine(const ProvisionerSettings& settings) {
  switch (settings.engine) {
    case EngineKind::kSlurm:
      return std::make_unique<SlurmEngine>(settings);
    case EngineKind::kKubernetes:
      return std::make_unique<KubernetesEngine>(settings);
    case EngineKind::kNone:
      break;
  }
  return nullptr;
}

Provisioner::Provisioner(AllocationStore& allocations, ProvisionerSettings settings,
                         std::unique_ptr<ClusterEngine> engine)
    : allocations_(allocations),
      settings_(std::move(settings)),
      engine_(std::move(engine)),
      planner_(settings_.limits),
      prefix_(allocations_.allocation_name_prefix()) {}

Provisioner::~Provisioner() { stop(); }

void Provisioner::reconcile(int64_t now_ms) {
  std::map<std::string, EngineView> seen;
  for (EngineView& v : engine_->list(prefix_)) seen[v.name] = std::move(v);
  std::set<std::string> wanted;
  for (const AllocationRow& a : allocations_.allocations(/*open_only=*/true)) {
    std::optional<EngineView> view;
    if (auto it = seen.find(a.name); it != seen.end())
      view = it->second;
    else if (!a.engine_id.empty())
      view = engine_->find(a.engine_id);
    if (!view) {
      // Never reached the engine (the coordinator stopped between the row and the request), or
      // the engine forgot it without accounting: either way nothing runs under this name.
      allocations_.record_allocation(a.id, AllocationState::kFailed, a.engine_id,
                                     a.engine_id.empty()
                                         ? "never reached " + std::string(engine_->kind()) +
                                               " (the coordinator stopped before asking)"
                                         : "no longer known to " + std::string(engine_->kind()),
                                     now_ms);
      continue;
    }
    AllocationState state = view->state;
    std::string reason = view->reason;
    if (a.cancel_requested && !is_open(state)) {
      state = AllocationState::kEnded;  // the coordinator's own withdrawal is no failure
      reason = a.engine_reason;
    } else if (a.cancel_requested) {
      engine_->cancel(view->engine_id);  // again: a withdrawal a crash interrupted
      reason = a.engine_reason;
    }
    if (a.workers_registered > 0) clear_setback();
    if (state != a.state || view->engine_id != a.engine_id || reason != a.engine_reason) {
      allocations_.record_allocation(a.id, state, view->engine_id, reason, now_ms);
      if (state == AllocationState::kFailed) {
        // Read once, as it fails: the engine's words outlive neither its queue nor its TTL.
        const std::string output = engine_->failure_output(a, view->engine_id);
        allocations_.record_engine_output(a.id, output);
        const std::string line = telling_line(output);
        spdlog::warn("provisioner: allocation {} ({} {}) failed: {}{}", a.name, engine_->kind(),
                     view->engine_id, reason, line.empty() ? "" : " | " + line);
        if (a.workers_registered == 0)
          note_failure(a.name, line.empty() ? reason : reason + ": " + line, now_ms);
      }
    }
    if (is_open(state)) wanted.insert(a.name);
  }
  for (const auto& [name, view] : seen)
    if (is_open(view.state) && !wanted.count(name)) {
      spdlog::warn(
          "provisioner: cancelling {} {} ({}): no open allocation of this coordinator "
          "wants it",
          engine_->kind(), view.engine_id, name);
      engine_->cancel(view.engine_id);
    }
}

std::string telling_line(const std::string& engine_output) {
  std::string last, exit_report;
  std::istringstream lines(engine_output);
  for (std::string line; std::getline(lines, line);) {
    const size_t start = line.find_first_not_of(" \t\r");
    if (start == std::string::npos) continue;
    line = line.substr(start, line.find_last_not_of(" \t\r") + 1 - start);
    std::string lower = line;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return char(std::tolower(c)); });
    last = line;
    if (lower.find("error") == std::string::npos) continue;
    // A task's exit report says no more than the engine's reason (NonZeroExitCode).
    if (lower.find("exited with exit code") == std::string::npos) return line;
    if (exit_report.empty()) exit_report = line;
  }
  return exit_report.empty() ? last : exit_report;
}

void Provisioner::note_failure(const std::string& allocation, const std::string& cause,
                               int64_t now_ms) {
  ++failures_in_a_row_;
  const int64_t hold = std::min<int64_t>(600000, std::max<int64_t>(1000, settings_.limits.delay_ms)
                                                     << std::min(failures_in_a_row_, 10));
  hold_until_ms_ = now_ms + hold;
  spdlog::warn(
      "provisioner: {} allocation(s) failed in a row before a worker registered: no new "
      "request for {} s",
      failures_in_a_row_, hold / 1000);
  trainer_core::MutexLock lock(mu_);
  setback_ = ProvisioningSetback{allocation, cause, failures_in_a_row_, now_ms, hold_until_ms_};
}

void Provisioner::clear_setback() {
  failures_in_a_row_ = 0;
  trainer_core::MutexLock lock(mu_);
  setback_.reset();
}

std::optional<ProvisioningSetback> Provisioner::setback() const {
  trainer_core::MutexLock lock(mu_);
  return setback_;
}

void Provisioner::act(const DemandDecision& d, const std::vector<AllocationRow>& open,
                      int64_t now_ms) {
  for (int64_t id : d.withdraw) {
    for (const AllocationRow& a : open)
      if (a.id == id) {
        allocations_.withdraw_allocation(id, "withdrawn: no waiting job needs it", now_ms);
        spdlog::info("provisioner: withdrawing {} ({} {}): no waiting job needs it", a.name,
                     engine_->kind(), a.engine_id);
        engine_->cancel(a.engine_id);
      }
  }
  for (int i = 0; i < d.request; ++i) {
    AllocationRow request = shaped_allocation(settings_.limits.shape, engine_->kind());
    request.reason = d.why;
    const AllocationRow row = allocations_.begin_allocation(request, now_ms);
    try {
      const std::string id = engine_->submit(row);
      if (crash_after_submissions_ > 0 && ++submissions_ >= crash_after_submissions_) {
        spdlog::error("provisioner: --crash-after-allocations reached: exiting like kill -9");
        _exit(137);
      }
      allocations_.record_allocation(row.id, AllocationState::kQueued, id, "", now_ms);
      spdlog::info("provisioner: asked {} for {} (id {}): {}", engine_->kind(), row.name, id,
                   d.why);
    } catch (const std::exception& e) {
      allocations_.record_allocation(row.id, AllocationState::kFailed, "", e.what(), now_ms);
      spdlog::warn("provisioner: {}", e.what());
      note_failure(row.name, e.what(), now_ms);
      break;
    }
  }
}

DemandDecision Provisioner::run_once(int64_t now_ms) {
  DemandDecision decision;
  try {
    reconcile(now_ms);
    const ProvisionSnapshot snapshot =
        allocations_.provision_snapshot(settings_.limits.shape.backend);
    decision = planner_.plan(snapshot, now_ms);
    if (now_ms < hold_until_ms_) decision.request = 0;  // held back after failures
    act(decision, snapshot.open_allocations, now_ms);
  } catch (const std::exception& e) {
    spdlog::warn("provisioner: round failed, retried in {} ms: {}", settings_.interval_ms,
                 e.what());
  }
  trainer_core::MutexLock lock(mu_);
  last_ = decision;
  return decision;
}

DemandDecision Provisioner::last_decision() const {
  trainer_core::MutexLock lock(mu_);
  return last_;
}

void Provisioner::round_loop() {
  for (;;) {
    {
      trainer_core::MutexLock lock(mu_);
      if (stopping_) return;
    }
    run_once(now_ms());
    trainer_core::MutexLock lock(mu_);
    // Clang cannot see that wait_for holds mu_ again when it calls the predicate.
    wake_.wait_for(mu_, std::chrono::milliseconds(settings_.interval_ms),
                   [this]() NO_THREAD_SAFETY_ANALYSIS { return stopping_; });
  }
}

void Provisioner::start() {
  thread_ = std::thread([this] { round_loop(); });
}

void Provisioner::stop() {
  {
    trainer_core::MutexLock lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace server
