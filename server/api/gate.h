// Admission at both doors (gRPC and HTTP), the same rules: who calls (access/users.h), whether they
// may (access/policy.h), and the audit trail (storage/audit.h) of every refusal and every change.
// What is audited: each refused call (no or an unknown token: UNAUTHENTICATED / 401, summed per
// peer and minute by stranger_ledger.h, which also rate-limits a peer that fails too often:
// RESOURCE_EXHAUSTED / 429; a rule: PERMISSION_DENIED / 403, one row each), and each allowed
// change: submit, cancel, retry, drain, a worker's registration, a lease, a completion. Reads that
// are allowed are not (they change nothing). Threads: called from every gRPC and HTTP handler
// thread at once; it holds no state of its own (the directory and the audit store lock themselves).
// Lifetime: main() owns it, the directory and the store, and stops both servers before any of them
// goes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "server/access/policy.h"
#include "server/access/users.h"
#include "server/api/calls_in_flight.h"
#include "server/api/stranger_ledger.h"
#include "server/storage/audit.h"

namespace server {

struct Caller {
  User user;
  std::string peer;  // the transport's address of the caller
};

// Who calls, as the gate identified them.
struct Identity {
  std::optional<Caller> caller;  // nullopt: no or an unknown token (audited: stranger_ledger.h)
  int retry_after_s = 0;  // > 0: this peer failed too often this minute; refuse as rate-limited
};

class Gate {
 public:
  // max_auth_failures: refusals without a valid token a peer may have in a minute before it is
  // rate-limited (stranger_ledger.h).
  // max_calls_per_address: gRPC calls one address may have in progress (calls_in_flight.h).
  Gate(const UserDirectory& users, AuditStore& audit, int max_auth_failures = 120,
       int max_calls_per_address = 256)
      : users_(users),
        audit_(audit),
        strangers_(max_auth_failures),
        calls_(max_calls_per_address) {}
  // A place for one more gRPC call from `peer`, held until the handler returns; none when its
  // address has max_calls_per_address in progress.
  std::optional<CallsInFlight::Slot> enter_call(const std::string& peer) {
    return calls_.enter(peer);
  }
  int max_calls_per_address() const { return calls_.max_per_address(); }
  // The caller behind an authorization header value; none for none or an unknown token, which
  // the stranger ledger counts (and audits: its first of the minute at once, the rest summed).
  // `attempt` and `target` name what was tried, for the audit.
  Identity identify(std::string_view authorization, const std::string& peer, Action attempt,
                    const std::string& target);
  // Writes the stranger ledger's summaries of the minutes that ended (all of them: `all`, at
  // shutdown). The housekeeping loop calls it every few seconds.
  void flush_strangers(int64_t now_ms, bool all = false);
  // The policy's decision for the caller; a refusal is audited with its rule.
  Decision admit(const Caller& caller, Action action, const std::string& target,
                 const std::string& owner = "");
  // A worker API call for `worker_id`: refused (and audited) when another user's token registered
  // it. registered_by: the worker's registrant, empty when unknown or from before users existed.
  Decision admit_worker(const Caller& caller, const std::string& worker_id,
                        const std::string& registered_by);
  // An allowed change, audited: `what` is its word (submit, cancel, lease, complete, ...).
  void record(const Caller& caller, const std::string& what, const std::string& target,
              const std::string& detail);
  bool open() const { return users_.open(); }

 private:
  void audit(const Caller& caller, const std::string& what, const std::string& target, bool allowed,
             const std::string& detail);
  const UserDirectory& users_;
  AuditStore& audit_;
  StrangerLedger strangers_;
  CallsInFlight calls_;
};

}  // namespace server
