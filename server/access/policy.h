// What each role may do: one table for every door (gRPC, the dashboard's /api/, /metrics, the
// exports), so a rule is written once and a denial says which rule (docs/deploy.md has the table).
//   admin       everything
//   researcher  read everything; submit; cancel, retry and fork jobs into only sweeps they own
//   viewer      read everything (dashboard, results, exports, /metrics), change nothing
//   worker      the worker API only (register, lease, heartbeat, report, complete), and only for
//               worker ids its own token registered
// Pure: tests/unit/access_policy_test.cpp checks the whole role x action x own/other table.
#pragma once

#include <string>

#include "server/access/users.h"

namespace server {

enum class Action {
  kRead,         // sweeps, jobs, results, exports, workers and allocations, /metrics
  kSubmit,       // submit and validate a sweep
  kCancelSweep,  // owner-checked
  kRetrySweep,   // owner-checked
  kForkJob,      // owner-checked: the fork joins its parent's sweep
  kDrainWorker,
  kReadAudit,
  kWorkerApi,  // register, acquire, heartbeat, report metrics, complete
  kWhoAmI,     // who the caller is: every role
};
constexpr Action kAllActions[] = {Action::kRead,       Action::kSubmit,    Action::kCancelSweep,
                                  Action::kRetrySweep, Action::kForkJob,   Action::kDrainWorker,
                                  Action::kReadAudit,  Action::kWorkerApi, Action::kWhoAmI};
const char* action_name(Action action);  // "read", "submit", "cancel", ... (the audit's words)

struct Decision {
  bool allowed = false;
  std::string rule;  // why it was refused, in words a user can act on; empty when allowed
};

// owner: the sweep's owner for kCancelSweep, kRetrySweep and kForkJob (ignored otherwise).
Decision decide(const User& user, Action action, const std::string& owner = "");

}  // namespace server
