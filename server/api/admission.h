// How every gRPC handler of both services is admitted and guarded (sweep_service.h,
// worker_service.h): the caller is identified from its bearer token, the policy admits the action
// (server/access/policy.h, through the Gate, which audits both), and store failures become gRPC
// statuses. gRPC C++ offers no server interceptor that can end a call with a status, and an
// AuthMetadataProcessor only works on TLS credentials, so these wrappers are the interceptor.
#pragma once

#include <grpcpp/grpcpp.h>

#include <optional>
#include <string>
#include <string_view>

#include "server/api/gate.h"
#include "server/storage/job_rows.h"
#include "server/storage/sweep_store.h"

namespace server {

inline std::string sweep_target(int64_t id) { return "sweep " + std::to_string(id); }
inline std::string job_target(int64_t id) { return "job " + std::to_string(id); }
inline std::string worker_target(const std::string& id) { return "worker " + id; }

inline grpc::Status refused(const Decision& d) {
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, d.rule);
}

// A worker call's fence (job_rows.h) as a status: an unknown job is NOT_FOUND, an attempt that is
// not current FAILED_PRECONDITION.
inline grpc::Status fence_status(Fence f, int64_t job_id, int attempt) {
  if (f == Fence::kUnknownJob)
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no job " + std::to_string(job_id));
  if (f == Fence::kStale)
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "job " + std::to_string(job_id) + " attempt " + std::to_string(attempt) +
                            " is no longer current");
  return grpc::Status::OK;
}

// A store failure (disk full, I/O error) becomes INTERNAL with its reason instead of gRPC's
// anonymous "unexpected error"; a full database is RESOURCE_EXHAUSTED (a resource problem, not a
// bug: the worker keeps its metrics buffered and retries).
template <typename Handler>
grpc::Status guarded(Handler&& handler) {
  try {
    return handler();
  } catch (const DbError& e) {
    if (e.full())
      return grpc::Status(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          std::string(
              "coordinator: the database cannot grow (disk full, or --max-db-mib reached): ") +
              e.what());
    return grpc::Status(grpc::StatusCode::INTERNAL, std::string("coordinator: ") + e.what());
  } catch (const std::exception& e) {
    return grpc::Status(grpc::StatusCode::INTERNAL, std::string("coordinator: ") + e.what());
  }
}

// The caller of a call (no or an unknown token: none, counted by the gate).
inline Identity identify(const grpc::ServerContext* context, Gate& gate, Action action,
                         const std::string& target) {
  const auto& md = context->client_metadata();
  const auto it = md.find("authorization");
  const std::string_view header =
      it == md.end() ? std::string_view() : std::string_view(it->second.data(), it->second.size());
  return gate.identify(header, context->peer(), action, target);
}

// Why a call without a valid token is refused: the token, or too many such calls from its
// peer this minute (stranger_ledger.h).
inline grpc::Status unauthenticated(const Identity& who) {
  if (who.retry_after_s > 0)
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "too many calls without a valid token from this address: retry in " +
                            std::to_string(who.retry_after_s) + " s");
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or wrong bearer token");
}

// Why a call is refused before anything else: its address has too many calls in progress
// (calls_in_flight.h).
inline grpc::Status too_many_calls(const Gate& gate) {
  return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                      "this address has " + std::to_string(gate.max_calls_per_address()) +
                          " calls in progress (--max-calls-per-address): end one, such as a "
                          "watch, and retry");
}

// Every handler but the owner-checked ones: given a place among its address's calls in
// progress, identified, admitted by the policy, then run with the caller under guarded(). The
// worker API's per-worker rule is checked by its handlers, which know the worker's registrant
// (worker_service.cpp).
template <typename Handler>
grpc::Status serve(const grpc::ServerContext* context, Gate& gate, Action action,
                   const std::string& target, Handler&& handler) {
  const auto slot = gate.enter_call(context->peer());
  if (!slot) return too_many_calls(gate);
  const Identity who = identify(context, gate, action, target);
  if (!who.caller) return unauthenticated(who);
  const Caller& caller = *who.caller;
  if (const Decision d = gate.admit(caller, action, target); !d.allowed) return refused(d);
  return guarded([&] { return handler(caller); });
}

// An action on a sweep that its owner (or an admin) may take, such as cancel or retry: the sweep
// must exist (NOT_FOUND), the policy admits the caller against its owner, then `act(caller,
// target)` runs under guarded().
template <typename Act>
grpc::Status serve_owner_checked(const grpc::ServerContext* context, Gate& gate, SweepStore& sweeps,
                                 Action action, int64_t sweep_id, Act&& act) {
  const std::string target = sweep_target(sweep_id);
  const auto slot = gate.enter_call(context->peer());
  if (!slot) return too_many_calls(gate);
  const Identity who = identify(context, gate, action, target);
  if (!who.caller) return unauthenticated(who);
  const Caller& caller = *who.caller;
  return guarded([&]() -> grpc::Status {
    const std::optional<SweepRow> sweep = sweeps.sweep(sweep_id);
    if (!sweep) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no " + target);
    if (const Decision d = gate.admit(caller, action, target, sweep->owner); !d.allowed)
      return refused(d);
    return act(caller, target);
  });
}

}  // namespace server
