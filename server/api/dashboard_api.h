// The dashboard's read-only JSON API under /api/, and the page itself (web/, built into the
// binary). Every user-given string leaves here as JSON data; the page renders it as text.
//   GET /api/sweeps?limit=N&before=ID        newest first, paged
//   GET /api/sweeps/ID                       sweep, jobs (each with its settings among the
//                                            config paths the sweep varies: config_columns)
//   GET /api/sweeps/ID/curves?points=N       per job: train curve in N min/max buckets, val points
//       &format=packed                       the same, packed (curve_pack.h; the sweep page's)
//   GET /api/sweeps/ID/results               ablation table and R_L(B)
//   GET /api/sweeps/ID/export?table=T&format=F  curves|summaries as csv|jsonl, for pandas
//   GET /api/runs/ID?points=N                config, summary, curve and eval points of one job
//   GET /api/compare?runs=ID,ID&points=N     up to 200 runs of any sweeps: job, sweep name,
//                                            settings among the paths that differ, curves
//   GET /api/runs/ID/metrics                 the named metrics of one job
//   GET /api/runs/ID/log?attempt=A&from=B    its log from byte B (JobLog; attempt 0: the newest)
//   GET /api/metric-names?runs=ID,ID         the named metrics any of up to 1000 runs has
//   GET /api/metrics?name=M&runs=ID,ID&points=N  one named metric of up to 200 runs
//   GET /api/workers                         workers, allocations, the provisioner's last look
//   GET /api/events?limit=N&before=ID        every sweep's events and the coordinator's own,
//                                            newest first, paged
//   GET /api/whoami                          the caller's user name and role
//   GET /api/audit?user=U&since=MS&limit=N   the audit trail, oldest first (admins only)
#pragma once

#include <string>

#include "http_door/http_door.h"
#include "server/api/gate.h"
#include "server/provisioning/provisioner.h"
#include "server/storage/store.h"

namespace server {

// Registers /api/ and the page on `http`; the server checks authorization before routing
// (http_server.h). Handlers hold `store` and `provisioner` (null: none) by reference: both must
// outlive `http`.
void register_dashboard(http_door::Door& http, Store& store, Gate& gate,
                        const Provisioner* provisioner);

}  // namespace server
