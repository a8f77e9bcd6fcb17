#include "server/access/policy.h"

namespace server {

const char* action_name(Action action) {
  static const char* const kNames[] = {"read",  "submit",     "cancel",     "retry", "fork",
                                       "drain", "read-audit", "worker-api", "whoami"};
  return kNames[int(action)];  // in the enum's order
}

Decision decide(const User& user, Action action, const std::string& owner) {
  const auto deny = [&](const std::string& rule) {
    return Decision{false, std::string(role_name(user.role)) + " " + user.name + ": " + rule};
  };
  if (action == Action::kWhoAmI) return {true, ""};
  switch (user.role) {
    case Role::kAdmin:
      return {true, ""};
    case Role::kWorker:
      if (action == Action::kWorkerApi) return {true, ""};
      return deny("worker tokens may only use the worker API (register, lease, report, complete)");
    case Role::kViewer:
      if (action == Action::kRead) return {true, ""};
      return deny("viewers may read sweeps, results and workers, and change nothing");
    case Role::kResearcher:
      switch (action) {
        case Action::kRead:
        case Action::kSubmit:
          return {true, ""};
        case Action::kCancelSweep:
        case Action::kRetrySweep:
        case Action::kForkJob:
          if (!owner.empty() && owner == user.name) return {true, ""};
          return deny(
              std::string("researchers may ") + action_name(action) +
              " only their own sweeps; this one belongs to " +
              (owner.empty() ? "no one (submitted before users existed: an admin's)" : owner));
        case Action::kDrainWorker:
          return deny("only admins drain workers");
        case Action::kReadAudit:
          return deny("only admins read the audit trail");
        case Action::kWorkerApi:
          return deny("the worker API takes worker tokens");
        case Action::kWhoAmI:
          return {true, ""};
      }
  }
  return deny("no rule allows this");
}

}  // namespace server
