#include "server/api/gate.h"

#include <spdlog/spdlog.h>

#include "server/storage/clock.h"

namespace server {

void Gate::audit(const Caller& caller, const std::string& what, const std::string& target,
                 bool allowed, const std::string& detail) {
  try {
    audit_.append({0, now_ms(), caller.user.name,
                   caller.user.name.empty() ? "" : role_name(caller.user.role), what, target,
                   caller.peer, allowed, detail});
  } catch (const std::exception& e) {
    // A full disk must not turn a refusal into a crash or an allowed call into a failure.
    spdlog::warn("audit: could not record {} {} by '{}': {}", what, target, caller.user.name,
                 e.what());
  }
}

Identity Gate::identify(std::string_view authorization, const std::string& peer, Action attempt,
                        const std::string& target) {
  if (auto user = users_.authenticate(authorization)) {
    Caller caller;
    caller.user = std::move(*user);
    caller.peer = peer;
    return {std::move(caller), 0};
  }
  const std::string why = authorization.empty() ? "no bearer token" : "unknown bearer token";
  const std::string what = action_name(attempt);
  const StrangerLedger::Verdict v =
      strangers_.refuse(peer, what + (target.empty() ? "" : " " + target) + ": " + why, now_ms());
  if (v.write_now) {
    Caller unknown;  // no user: the audit row's user and role stay empty
    unknown.peer = peer;
    audit(unknown, what, target, false, why);
  }
  return {std::nullopt, v.retry_after_s};
}

void Gate::flush_strangers(int64_t now, bool all) {
  for (const AuditRow& row : strangers_.take_summaries(now, all)) try {
      audit_.append(row);
    } catch (const std::exception& e) {
      spdlog::warn("audit: could not record a summary of refusals from {}: {}", row.peer, e.what());
    }
}

Decision Gate::admit(const Caller& caller, Action action, const std::string& target,
                     const std::string& owner) {
  Decision d = decide(caller.user, action, owner);
  if (!d.allowed) audit(caller, action_name(action), target, false, d.rule);
  return d;
}

Decision Gate::admit_worker(const Caller& caller, const std::string& worker_id,
                            const std::string& registered_by) {
  Decision d = decide(caller.user, Action::kWorkerApi);
  if (d.allowed && caller.user.role != Role::kAdmin && !registered_by.empty() &&
      registered_by != caller.user.name)
    d = {false, std::string(role_name(caller.user.role)) + " " + caller.user.name + ": worker " +
                    worker_id + " was registered by " + registered_by +
                    "; a worker token acts only for the workers it registered"};
  if (!d.allowed)
    audit(caller, action_name(Action::kWorkerApi), "worker " + worker_id, false, d.rule);
  return d;
}

void Gate::record(const Caller& caller, const std::string& what, const std::string& target,
                  const std::string& detail) {
  audit(caller, what, target, true, detail);
}

}  // namespace server
