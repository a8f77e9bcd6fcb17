// The rows' mapping to the wire contract and the /api/ JSON form: every state the store knows has
// its proto value (no name drift), and the JSON the page reads keeps numbers as numbers.
#include "server/api/rows_proto.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "proto/api_json.h"

using namespace server;
using nlohmann::json;
using orchestrator_json::to_api_json;
namespace pb = orchestrator::v1;

namespace {

TEST(RowsProto, EveryStoredStateHasItsProtoValue) {
  for (JobState s : kAllJobStates) {
    EXPECT_NE(to_proto(s), pb::JOB_STATE_UNSPECIFIED) << job_state_name(s);
    EXPECT_EQ(from_proto(to_proto(s)), s) << job_state_name(s);
  }
  EXPECT_EQ(from_proto(pb::JOB_STATE_UNSPECIFIED), std::nullopt);
  for (SweepState s : kAllSweepStates)
    EXPECT_NE(to_proto(s), pb::SWEEP_STATE_UNSPECIFIED) << sweep_state_name(s);
  for (WorkerState s : kAllWorkerStates)
    EXPECT_NE(to_proto(s), pb::WORKER_STATE_UNSPECIFIED) << worker_state_name(s);
  for (AllocationState s : kAllAllocationStates)
    EXPECT_NE(to_proto(s), pb::ALLOCATION_STATE_UNSPECIFIED) << allocation_state_name(s);
  EXPECT_EQ(to_proto(SweepState::kFinished), pb::SWEEP_FINISHED);
  EXPECT_EQ(to_proto(WorkerState::kDraining), pb::WORKER_DRAINING);
}

TEST(RowsProto, ASweepsStateFollowsItsJobs) {
  EXPECT_EQ(sweep_state({{JobState::kPending, 3}}, 3), SweepState::kPending);
  EXPECT_EQ(sweep_state({{JobState::kPending, 2}, {JobState::kRunning, 1}}, 3),
            SweepState::kRunning);
  EXPECT_EQ(sweep_state({{JobState::kSucceeded, 2}, {JobState::kCancelled, 1}}, 3),
            SweepState::kFinished);
  EXPECT_EQ(sweep_state({{JobState::kCancelled, 3}}, 3), SweepState::kCancelled);
}

// What the dashboard relies on: proto field names, ids and steps as JSON numbers, enum names, a
// loss not yet reported as null, settings as plain JSON values, every field present.
TEST(ProtoJson, TheApiFormKeepsNumbersAndNamesAndWritesNoNan) {
  JobRow row;
  row.id = 42;
  row.sweep_id = 7;
  row.label = "muon/lr=0.02";
  row.state = JobState::kRunning;
  row.step = (int64_t(1) << 48);  // the largest step the store takes
  row.last_train_loss = 3.25;
  row.last_val_loss = std::nan("");
  ConfigColumns columns;
  columns.paths = {"optimizer.lr", "optimizer.name"};
  columns.values[42] = {json(0.02), json("muon")};
  pb::GetSweepResponse response;
  fill_job(row, response.add_jobs());
  fill_settings(columns, 42, response.mutable_jobs(0));
  response.add_config_columns("optimizer.lr");
  const json out = json::parse(to_api_json(response));
  const json& job = out["jobs"][0];
  EXPECT_EQ(job["job_id"], 42);
  EXPECT_TRUE(job["job_id"].is_number());
  EXPECT_EQ(job["step"], int64_t(1) << 48);
  EXPECT_EQ(job["state"], "RUNNING");
  EXPECT_EQ(job["finished"], false);
  EXPECT_EQ(job["last_train_loss"], 3.25);
  EXPECT_TRUE(job["last_val_loss"].is_null());
  EXPECT_EQ(job["settings"]["optimizer.lr"], 0.02);
  EXPECT_EQ(job["settings"]["optimizer.name"], "muon");
  EXPECT_EQ(job["message"], "");        // defaults are present
  EXPECT_TRUE(out["sweep"].is_null());  // an unset message is null
  EXPECT_EQ(out["config_columns"], json::array({"optimizer.lr"}));
  // Past 2^53 a JSON number would lose digits: such an int64 is written as a string.
  pb::Curve curve;
  curve.add_step(int64_t(1) << 60);
  EXPECT_EQ(json::parse(to_api_json(curve))["step"][0], std::to_string(int64_t(1) << 60));
}

}  // namespace
