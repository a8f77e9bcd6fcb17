// Workers on demand (server/provisioning/): the demand planner's rules on hand-made snapshots,
// the allocation rows and the provisioner's snapshot on a real SQLite file, the engines' state
// mappings, the sbatch command line and token file, and the Kubernetes Job as rendered against
// the kustomize base by the real kubectl.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "required_tool.h"
#include "scratch_dir.h"
#include "server/provisioning/command.h"
#include "server/provisioning/demand.h"
#include "server/provisioning/flags.h"
#include "server/provisioning/kubernetes_engine.h"
#include "server/provisioning/preflight.h"
#include "server/provisioning/provisioner.h"
#include "server/provisioning/slurm_engine.h"
#include "server/storage/store.h"
#include "sweep_file/sweep_spec.h"

using namespace server;
namespace fs = std::filesystem;

namespace {

DemandLimits cpu_limits(int max_allocations = 4, int64_t delay_ms = 1000) {
  DemandLimits l;
  l.shape = {"cpu", 1, 2, 0};
  l.max_allocations = max_allocations;
  l.delay_ms = delay_ms;
  return l;
}

// n pending CPU jobs of one sweep (max_concurrency 0: no limit).
std::vector<PendingJob> cpu_jobs(int n, int64_t sweep = 1, int max_concurrency = 0) {
  std::vector<PendingJob> out;
  for (int i = 0; i < n; ++i) out.push_back({100 + i, sweep, i, 0, max_concurrency, "cpu", 0, ""});
  return out;
}

AllocationRow allocation(int64_t id, AllocationState state, int slots = 2, int registered = 0) {
  AllocationRow a;
  a.id = id;
  a.state = state;
  a.backend = "cpu";
  a.slots_per_node = slots;
  a.workers_registered = registered;
  return a;
}

TEST(Demand, AsksForWhatTheWaitingJobsNeedOnlyAfterTheNeedLastedTheDelay) {
  DemandPlanner planner(cpu_limits());
  ProvisionSnapshot s;
  s.pending = cpu_jobs(3);  // 2 slots per allocation: 2 allocations, the second for one job
  EXPECT_EQ(planner.plan(s, 0).request, 0);
  const DemandDecision early = planner.plan(s, 999);
  EXPECT_EQ(early.needed, 2);
  EXPECT_EQ(early.request, 0);
  const DemandDecision due = planner.plan(s, 1000);
  EXPECT_EQ(due.waiting, 3);
  EXPECT_EQ(due.unplaced, 3);
  EXPECT_EQ(due.request, 2);
  EXPECT_NE(due.why.find("3 waiting cpu job(s)"), std::string::npos) << due.why;
  // Asked: the delay starts again (the new allocations count from the next snapshot on).
  EXPECT_EQ(planner.plan(s, 1500).request, 0);
}

TEST(Demand, ABreakInTheNeedRestartsTheDelay) {
  DemandPlanner planner(cpu_limits());
  ProvisionSnapshot busy, idle;
  busy.pending = cpu_jobs(2);
  planner.plan(busy, 0);
  planner.plan(idle, 600);  // the queue emptied: the need is gone
  EXPECT_EQ(planner.plan(busy, 1200).request, 0);
  EXPECT_EQ(planner.plan(busy, 2200).request, 1);
}

TEST(Demand, FreeSlotsOfLiveWorkersAndUnregisteredAllocationsComeFirst) {
  DemandPlanner planner(cpu_limits(4, 0));
  ProvisionSnapshot s;
  s.pending = cpu_jobs(6);
  s.workers.push_back({"w1", "", {"cpu", 1, 0}});                          // 1 free slot
  s.open_allocations.push_back(allocation(1, AllocationState::kQueued));   // 2 slots coming
  s.open_allocations.push_back(allocation(2, AllocationState::kRunning));  // 2 slots coming
  // Its worker registered: what it has free is the worker's (above), not the allocation's.
  s.open_allocations.push_back(allocation(3, AllocationState::kRunning, 2, 1));
  const DemandDecision d = planner.plan(s, 0);
  EXPECT_EQ(d.unplaced, 1);  // 6 - 1 - 2 - 2
  EXPECT_EQ(d.needed, 1);
  EXPECT_EQ(d.request, 1);
  EXPECT_TRUE(d.withdraw.empty());
}

TEST(Demand, NeverMoreOpenAllocationsThanTheLimit) {
  DemandPlanner planner(cpu_limits(3, 0));
  ProvisionSnapshot s;
  s.pending = cpu_jobs(40);
  s.open_allocations.push_back(allocation(1, AllocationState::kRunning, 2, 1));
  const DemandDecision d = planner.plan(s, 0);
  EXPECT_EQ(d.needed, 20);
  EXPECT_EQ(d.request, 2);
}

TEST(Demand, ASweepAtItsMaxConcurrencyWaitsOnlyForWhatItMayStart) {
  DemandPlanner planner(cpu_limits(4, 0));
  ProvisionSnapshot s;
  s.pending = cpu_jobs(5, /*sweep=*/7, /*max_concurrency=*/2);
  s.active[7] = 1;
  const DemandDecision d = planner.plan(s, 0);
  EXPECT_EQ(d.waiting, 1);
  EXPECT_EQ(d.request, 1);
}

TEST(Demand, OtherBackendsJobsAreNotThisProvisionersDemand) {
  DemandPlanner planner(cpu_limits(4, 0));
  ProvisionSnapshot s;
  s.pending = {{1, 1, 0, 0, 0, "cuda", 1, ""}};
  EXPECT_EQ(planner.plan(s, 0).waiting, 0);
}

TEST(Demand, GpuJobsArePackedIntoNodesAndAJobLargerThanANodeIsNeverProvisionedFor) {
  DemandLimits l;
  l.shape = {"cuda", 2, 8, 8};  // allocations of 2 nodes x 8 GPUs
  l.max_allocations = 10;
  l.delay_ms = 0;
  DemandPlanner planner(l);
  ProvisionSnapshot s;
  for (int g : {2, 4, 2, 4, 9, 4, 2})
    s.pending.push_back({int64_t(s.pending.size()), 1, 0, 0, 0, "cuda", g, ""});
  const DemandDecision d = planner.plan(s, 0);
  EXPECT_EQ(d.unfit, 1);
  EXPECT_EQ(d.waiting, 6);
  // Largest first: [4 4] [4 2 2] [2]: three nodes, so two allocations of two nodes.
  EXPECT_EQ(d.needed, 2);
  EXPECT_EQ(d.request, 2);
}

TEST(Demand, QueuedAllocationsNoJobNeedsAreWithdrawnAtOnceWhenNothingWaits) {
  DemandPlanner planner(cpu_limits(4, 60000));
  ProvisionSnapshot s;  // the sweep was cancelled: its jobs no longer wait
  s.open_allocations.push_back(allocation(1, AllocationState::kQueued));
  s.open_allocations.push_back(allocation(2, AllocationState::kQueued));
  s.open_allocations.push_back(allocation(3, AllocationState::kRunning));  // started: it idles out
  s.open_allocations.push_back(allocation(4, AllocationState::kRequested));  // not yet answered
  const DemandDecision d = planner.plan(s, 0);
  EXPECT_EQ(d.withdraw, (std::vector<int64_t>{2, 1}));  // newest first
}

TEST(Demand, ASurplusWhileJobsStillWaitIsWithdrawnOnlyAfterTheDelay) {
  DemandPlanner planner(cpu_limits(4, 1000));
  ProvisionSnapshot s;
  s.pending = cpu_jobs(1);
  s.open_allocations.push_back(allocation(1, AllocationState::kQueued));
  s.open_allocations.push_back(allocation(2, AllocationState::kQueued));
  EXPECT_TRUE(planner.plan(s, 0).withdraw.empty());
  EXPECT_TRUE(planner.plan(s, 999).withdraw.empty());
  EXPECT_EQ(planner.plan(s, 1000).withdraw, (std::vector<int64_t>{2}));  // the job takes the older
}

TEST(Demand, AQueueThatOscillatesFasterThanTheDelayNeitherAsksNorWithdraws) {
  DemandPlanner planner(cpu_limits(4, 1000));
  // Two queued allocations; the queue swings between 4 jobs (both needed, and 2 jobs unplaced)
  // and 1 job (one allocation surplus) every 400 ms, for a minute.
  int requests = 0, withdrawals = 0;
  for (int64_t t = 0; t < 60000; t += 400) {
    ProvisionSnapshot s;
    s.pending = cpu_jobs((t / 400) % 2 ? 1 : 6);
    s.open_allocations.push_back(allocation(1, AllocationState::kQueued));
    s.open_allocations.push_back(allocation(2, AllocationState::kQueued));
    const DemandDecision d = planner.plan(s, t);
    requests += d.request;
    withdrawals += int(d.withdraw.size());
  }
  EXPECT_EQ(requests, 0);
  EXPECT_EQ(withdrawals, 0);
  // Between a full queue and an empty one, as fast: never asked either.
  DemandPlanner again(cpu_limits(4, 1000));
  for (int64_t t = 0; t < 60000; t += 400) {
    ProvisionSnapshot s;
    if ((t / 400) % 2 == 0) s.pending = cpu_jobs(6);
    requests += again.plan(s, t).request;
  }
  EXPECT_EQ(requests, 0);
}

TEST(Demand, AWithdrawnAllocationOffersNothing) {
  DemandPlanner planner(cpu_limits(4, 0));
  ProvisionSnapshot s;
  s.pending = cpu_jobs(2);
  AllocationRow a = allocation(1, AllocationState::kQueued);
  a.cancel_requested = true;
  s.open_allocations.push_back(a);
  const DemandDecision d = planner.plan(s, 0);
  EXPECT_EQ(d.unplaced, 2);
  EXPECT_EQ(d.request, 1);
}

// ---------------------------------------------------------------- the rows, on real SQLite

class AllocationStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fresh_test_dir("provisioning_test");
    store_ = std::make_unique<Store>((dir_ / "s.db").string());
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  void register_worker(const std::string& id, const std::string& allocation, int slots) {
    WorkerRow w;
    w.id = id;
    w.hostname = "h";
    w.backend = "cpu";
    w.slots = slots;
    w.devices_json = "[]";
    w.allocation = allocation;
    store_->workers.register_worker(w, {}, 1000, 60000);
  }
  fs::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(AllocationStoreTest, AnAllocationIsNamedByThisDatabaseAndKeepsTheEnginesWord) {
  const std::string prefix = store_->allocations.allocation_name_prefix();
  EXPECT_EQ(prefix.rfind("sweep-", 0), 0u);
  EXPECT_EQ(prefix.size(), std::string("sweep-12345678-").size()) << prefix;
  AllocationRow request;
  request.engine = "slurm";
  request.backend = "cpu";
  request.slots_per_node = 2;
  request.reason = "3 waiting";
  const AllocationRow a = store_->allocations.begin_allocation(request, 5000);
  EXPECT_EQ(a.name, prefix + std::to_string(a.id));
  EXPECT_EQ(a.state, AllocationState::kRequested);
  EXPECT_EQ(a.ended_ms, 0);
  store_->allocations.record_allocation(a.id, AllocationState::kQueued, "42", "Priority", 6000);
  register_worker("w1", a.name, 2);
  auto open = store_->allocations.allocations(true);
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].engine_id, "42");
  EXPECT_EQ(open[0].engine_reason, "Priority");
  EXPECT_EQ(open[0].workers_registered, 1);
  EXPECT_EQ(open[0].workers_active, 1);
  store_->allocations.record_allocation(a.id, AllocationState::kFailed, "42", "NODE_FAIL", 9000);
  EXPECT_TRUE(store_->allocations.allocations(true).empty());
  const auto all = store_->allocations.allocations(false);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].ended_ms, 9000);
  // A second database has another tag: two coordinators never take each other's allocations.
  Store other((dir_ / "other.db").string());
  EXPECT_NE(other.allocations.allocation_name_prefix(), prefix);
  // The tag survives a reopen.
  store_.reset();
  store_ = std::make_unique<Store>((dir_ / "s.db").string());
  EXPECT_EQ(store_->allocations.allocation_name_prefix(), prefix);
}

TEST_F(AllocationStoreTest, AFailedAllocationKeepsTheEnginesOwnWordsAcrossAReopen) {
  AllocationRow request;
  request.engine = "slurm";
  request.backend = "cpu";
  const AllocationRow a = store_->allocations.begin_allocation(request, 5000);
  EXPECT_EQ(a.engine_output, "");
  store_->allocations.record_allocation(a.id, AllocationState::kFailed, "7",
                                        "FAILED: NonZeroExitCode", 6000);
  const std::string words = "slurmstepd: error: execve(): worker: No such file or directory";
  store_->allocations.record_engine_output(a.id, words);
  store_.reset();
  store_ = std::make_unique<Store>((dir_ / "s.db").string());
  const auto all = store_->allocations.allocations(false);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].engine_output, words);
  EXPECT_EQ(all[0].engine_reason, "FAILED: NonZeroExitCode");
}

TEST_F(AllocationStoreTest, TheSnapshotHasTheQueueTheActiveWorkersFreeSlotsAndOpenAllocations) {
  const std::string spec =
      "name: t\nbase: {model: {preset: micro}, training: {max_steps: 10, batch_tokens: 256, "
      "micro_batch: 8}}\nseeds: [1, 2, 3]\nmax_concurrency: 2\n";
  store_->sweeps.create_sweep(sweep_file::plan_sweep(spec, "t.yaml", 100), spec, 1000);
  register_worker("w1", "", 2);
  ASSERT_TRUE(store_->workers.acquire_job("w1", {"cpu", 2, 0}, 1000, 60000));
  register_worker("w2", "sweep-x-1", 1);
  ASSERT_TRUE(store_->workers.drain_worker("w2"));  // a draining worker offers nothing
  const ProvisionSnapshot s = store_->allocations.provision_snapshot("cpu");
  EXPECT_EQ(s.pending.size(), 2u);
  EXPECT_EQ(s.pending[0].max_concurrency, 2);
  EXPECT_EQ(s.active.at(1), 1);
  ASSERT_EQ(s.workers.size(), 1u);
  EXPECT_EQ(s.workers[0].id, "w1");
  EXPECT_EQ(s.workers[0].free.free_slots, 1);
  EXPECT_TRUE(store_->allocations.provision_snapshot("cuda").pending.empty());
  // A worker that leaves holding a job stays; one that holds none is LEFT.
  EXPECT_FALSE(store_->workers.worker_left("w1", 2000));
  EXPECT_TRUE(store_->workers.worker_left("w2", 2000));
  EXPECT_EQ(store_->workers.worker("w2")->state, WorkerState::kLeft);
  // LEFT is final until it registers again: the lease sweep never calls it lost.
  store_->workers.expire_leases(10'000'000, 1000);
  EXPECT_EQ(store_->workers.worker("w2")->state, WorkerState::kLeft);
}

// ---------------------------------------------------------------- engines

TEST(SlurmEngine, StatesMapToAllocationStatesWithTheEnginesReason) {
  EXPECT_EQ(slurm_view("n", "1", "PENDING", "Resources").state, AllocationState::kQueued);
  EXPECT_EQ(slurm_view("n", "1", "PENDING", "Resources").reason, "Resources");
  EXPECT_EQ(slurm_view("n", "1", "RUNNING", "None").state, AllocationState::kRunning);
  EXPECT_EQ(slurm_view("n", "1", "RUNNING", "None").reason, "");
  EXPECT_EQ(slurm_view("n", "1", "COMPLETED", "None").state, AllocationState::kEnded);
  EXPECT_EQ(slurm_view("n", "1", "TIMEOUT", "None").state, AllocationState::kEnded);
  const EngineView failed = slurm_view("n", "1", "NODE_FAIL", "NodeDown");
  EXPECT_EQ(failed.state, AllocationState::kFailed);
  EXPECT_EQ(failed.reason, "NODE_FAIL: NodeDown");
  EXPECT_EQ(slurm_view("n", "1", "CANCELLED by 1000", "None").state, AllocationState::kFailed);
}

TEST(SlurmEngine, SbatchGetsTheShapeAndSiteFlagsAndTheTokenOnlyAsA0600File) {
  const fs::path dir = fs::temp_directory_path() / ("slurm_engine_" + std::to_string(getpid()));
  fs::remove_all(dir);
  ProvisionerSettings s;
  s.engine = EngineKind::kSlurm;
  s.state_dir = (dir / "state").string();
  s.worker_token = "s3cret-token";
  s.coordinator_address = "login1:50051";
  s.slurm.script = "/opt/sweep/sweep-workers.sbatch";
  s.slurm.partition = "gpu";
  s.slurm.account = "lab";
  s.slurm.qos = "high";
  s.slurm.time_limit = "4:00:00";
  s.slurm.extra_args = {"--constraint=a100"};
  SlurmEngine engine(s);
  AllocationRow a;
  a.name = "sweep-abc-7";
  a.nodes = 2;
  a.gpus_per_node = 4;
  const auto argv = sbatch_argv(s, a);
  const std::string line = [&] {
    std::string out;
    for (const auto& x : argv) out += x + " ";
    return out;
  }();
  for (const char* want :
       {"--job-name=sweep-abc-7 ", "--nodes=2 ", "--gres=gpu:4 ", "--time=4:00:00 ",
        "--partition=gpu ", "--account=lab ", "--qos=high ", "--constraint=a100 "})
    EXPECT_NE(line.find(want), std::string::npos) << want << " in " << line;
  EXPECT_EQ(argv.back(), "/opt/sweep/sweep-workers.sbatch");
  EXPECT_EQ(line.find("s3cret"), std::string::npos) << line;
  a.gpus_per_node = 0;
  const auto cpu = sbatch_argv(s, a);
  EXPECT_NE(std::find(cpu.begin(), cpu.end(), "--gres=none"), cpu.end());
  struct stat st {};
  ASSERT_EQ(stat((dir / "state/worker-token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream in(dir / "state/worker-token");
  std::string token;
  std::getline(in, token);
  EXPECT_EQ(token, "s3cret-token");
  fs::remove_all(dir);
}

TEST(KubernetesEngine, JobStatusMapsToAllocationStates) {
  using nlohmann::json;
  auto job = [](json status) {
    return json{{"metadata", {{"name", "sweep-a-1"}}}, {"status", status}};
  };
  EXPECT_EQ(kubernetes_view(job({{"active", 1}})).state, AllocationState::kQueued);
  EXPECT_EQ(kubernetes_view(job({{"active", 1}, {"ready", 1}})).state, AllocationState::kRunning);
  EXPECT_EQ(
      kubernetes_view(job({{"conditions", {{{"type", "Complete"}, {"status", "True"}}}}})).state,
      AllocationState::kEnded);
  const EngineView failed =
      kubernetes_view(job({{"conditions",
                            {{{"type", "Failed"},
                              {"status", "True"},
                              {"reason", "BackoffLimitExceeded"},
                              {"message", "Job has reached the specified backoff limit"}}}}}));
  EXPECT_EQ(failed.state, AllocationState::kFailed);
  EXPECT_EQ(failed.reason, "BackoffLimitExceeded: Job has reached the specified backoff limit");
}

// What a failed allocation's output keeps: its last lines within 4 KiB, cut at a line start.
TEST(EngineOutput, TheLastLinesWithinTheBoundCutAtALineStart) {
  EXPECT_EQ(last_lines("", 5), "");
  EXPECT_EQ(last_lines("\n\n  \n", 5), "");
  EXPECT_EQ(last_lines("a\nb\nc\n\n", 2), "b\nc");
  EXPECT_EQ(last_lines("a\nb\nc", 3), "a\nb\nc");
  EXPECT_EQ(last_lines("a\nb\nc", 10), "a\nb\nc");
  std::string big;
  for (int i = 0; i < 1000; ++i) big += "line " + std::to_string(i) + " of a long worker log\n";
  big += "slurmstepd: error: execve(): worker: No such file or directory\n";
  const std::string kept = last_lines(big, 100000);
  EXPECT_LE(kept.size(), kEngineOutputLimit);
  EXPECT_GT(kept.size(), kEngineOutputLimit - 40);
  EXPECT_EQ(kept.rfind("line ", 0), 0u) << kept.substr(0, 40);  // whole lines only
  EXPECT_NE(kept.find("execve"), std::string::npos);
  // One line longer than the bound: its end.
  const std::string one(10000, 'x');
  EXPECT_EQ(last_lines(one, 3).size(), kEngineOutputLimit);
}

// The line a setback quotes: the first that says error, else the last.
TEST(EngineOutput, TheTellingLineIsTheFirstErrorElseTheLastLine) {
  EXPECT_EQ(telling_line("sweep-a-1-7.out:\nslurmstepd: error: execve(): worker: No such file or "
                         "directory\nsrun: error: node1: task 0: Exited with exit code 2\n"),
            "slurmstepd: error: execve(): worker: No such file or directory");
  // The two writers of a Slurm output file race: srun's exit report may come first, and tells
  // no more than the engine's NonZeroExitCode.
  EXPECT_EQ(telling_line("srun: error: vm: task 0: Exited with exit code 2\nslurmstepd-vm: error: "
                         "execve(): /x/worker: No such file or directory\n"),
            "slurmstepd-vm: error: execve(): /x/worker: No such file or directory");
  EXPECT_EQ(telling_line("srun: error: vm: task 0: Exited with exit code 2\n"),
            "srun: error: vm: task 0: Exited with exit code 2")
      << "with nothing else that says error, the exit report stands";
  EXPECT_EQ(telling_line("  pod p: Pending\n    not scheduled: Unschedulable: 0/3 nodes\n"),
            "not scheduled: Unschedulable: 0/3 nodes");
  EXPECT_EQ(telling_line(""), "");
}

TEST(KubernetesEngine, APodsStateAndEventsSayWhyItFailed) {
  using nlohmann::json;
  const json pull = {{"metadata", {{"name", "sweep-a-1-xk2"}}},
                     {"status",
                      {{"phase", "Pending"},
                       {"containerStatuses",
                        {{{"name", "worker"},
                          {"state",
                           {{"waiting",
                             {{"reason", "ImagePullBackOff"},
                              {"message", "Back-off pulling image \"sweep-worker:typo\""}}}}}}}}}}};
  EXPECT_EQ(pod_status_words(pull),
            "pod sweep-a-1-xk2: Pending\n  container worker waiting: ImagePullBackOff: Back-off "
            "pulling image \"sweep-worker:typo\"\n");
  const json exited = {
      {"metadata", {{"name", "p2"}}},
      {"status",
       {{"phase", "Failed"},
        {"containerStatuses",
         {{{"name", "worker"},
           {"state", {{"terminated", {{"reason", "Error"}, {"exitCode", 1}}}}}}}}}}};
  EXPECT_EQ(pod_status_words(exited),
            "pod p2: Failed\n  container worker terminated: Error, exit code 1\n");
  const json unscheduled = {
      {"metadata", {{"name", "p3"}}},
      {"status",
       {{"phase", "Pending"},
        {"conditions",
         {{{"type", "PodScheduled"},
           {"status", "False"},
           {"reason", "Unschedulable"},
           {"message", "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}}}}}}};
  EXPECT_NE(pod_status_words(unscheduled).find("not scheduled: Unschedulable: 0/3 nodes"),
            std::string::npos);
  const json events = {{"items",
                        {{{"type", "Warning"},
                          {"reason", "Failed"},
                          {"message", "second"},
                          {"lastTimestamp", "2026-12-06T10:00:02Z"}},
                         {{"type", "Normal"},
                          {"reason", "Pulling"},
                          {"message", "first"},
                          {"lastTimestamp", "2026-12-06T10:00:01Z"}},
                         {{"type", "Warning"},
                          {"reason", "BackOff"},
                          {"message", "third"},
                          {"lastTimestamp", "2026-12-06T10:00:03Z"}}}}};
  EXPECT_EQ(event_words(events, 2), "  Warning Failed: second\n  Warning BackOff: third\n");
}

TEST(KubernetesEngine, WithoutAPodTemplateTheJobIsBuiltFromTheSettingsAlone) {
  ProvisionerSettings s;
  s.engine = EngineKind::kKubernetes;
  s.coordinator_address = "coordinator:50051";
  s.kubernetes.image = "registry/sweep-worker:3";
  s.kubernetes.token_secret = "team-token";
  KubernetesEngine engine(s);
  AllocationRow a;
  a.name = "sweep-00000000-1";
  a.backend = "cpu";
  a.slots_per_node = 4;
  const nlohmann::json job = engine.render_job(a, "sweep-00000000-");
  const nlohmann::json pod = job["spec"]["template"];
  EXPECT_EQ(pod["metadata"]["labels"]["sweeps/allocation"], "sweep-00000000-1");
  const nlohmann::json worker = pod["spec"]["containers"][0];
  EXPECT_EQ(worker["image"], "registry/sweep-worker:3");
  EXPECT_FALSE(worker.contains("resources"));  // a CPU worker asks for no GPU
  EXPECT_NE(std::find(worker["args"].begin(), worker["args"].end(), "--slots=4"),
            worker["args"].end());
  EXPECT_EQ(pod["spec"]["volumes"][0]["secret"]["secretName"], "team-token");
}

// The Job the kubernetes provisioner would create, from the worker DaemonSet's pod template, put
// beside the kustomize base and rendered by the real kubectl: it lands in the base's namespace,
// mounts the base's Secret (never carrying the token), keeps the template's node selector and
// volumes, asks for the GPUs, and its worker arguments pass the real worker's --check.
// (kubectl create --dry-run=client needs an API server's discovery even for a dry run; there is
// none here, so the schema itself is not validated: docs/deploy.md says so.)
TEST(KubernetesEngine, TheRenderedJobFitsTheKustomizeBaseAndItsArgumentsAreAccepted) {
  bool have_kubectl = false;
  try {  // run_command throws when the program cannot be started at all
    have_kubectl = run_command({"kubectl", "version", "--client"}, environment_without({}), "",
                               std::chrono::seconds(30))
                       .exit_code == 0;
  } catch (const std::exception&) {
  }
  if (!have_kubectl) SKIP_UNLESS_CI("no kubectl (scripts/setup.sh installs kubernetes-client)");
  const fs::path dir = fs::temp_directory_path() / ("k8s_render_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "overlay");
  ProvisionerSettings s;
  s.engine = EngineKind::kKubernetes;
  s.coordinator_address = "sweep-coordinator:50051";
  s.worker_token = "never-in-the-manifest";
  s.idle_timeout_s = 300;
  s.kubernetes.pod_template = std::string(SOURCE_DIR) + "/deploy/k8s/worker.yaml";
  KubernetesEngine engine(s);
  AllocationRow a;
  a.name = "sweep-0a1b2c3d-12";
  a.backend = "cuda";
  a.nodes = 2;
  a.slots_per_node = 8;
  a.gpus_per_node = 8;
  const nlohmann::json job = engine.render_job(a, "sweep-0a1b2c3d-");
  std::ofstream(dir / "overlay/job.json") << job.dump(2);
  std::ofstream(dir / "overlay/kustomization.yaml")
      << "resources:\n  - "
      << fs::relative(fs::path(SOURCE_DIR) / "deploy/k8s", dir / "overlay").string()
      << "\n  - job.json\n";
  const CommandResult r = run_command({"kubectl", "kustomize", (dir / "overlay").string()},
                                      environment_without({}), "", std::chrono::seconds(60));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("never-in-the-manifest"), std::string::npos);
  nlohmann::json rendered_job, secret;
  for (const auto& text : {r.out}) {
    std::stringstream docs(text);
    std::string doc, line;
    auto flush = [&] {
      if (doc.empty()) return;
      const nlohmann::json j = yaml_text_to_json(doc);
      if (j.value("kind", "") == "Job") rendered_job = j;
      if (j.value("kind", "") == "Secret") secret = j;
      doc.clear();
    };
    while (std::getline(docs, line)) {
      if (line == "---")
        flush();
      else
        doc += line + "\n";
    }
    flush();
  }
  ASSERT_TRUE(rendered_job.is_object()) << r.out;
  EXPECT_EQ(rendered_job["metadata"]["namespace"], "sweeps");
  EXPECT_EQ(rendered_job["metadata"]["labels"]["sweeps/owner"], "sweep-0a1b2c3d");
  EXPECT_EQ(rendered_job["spec"]["parallelism"], 2);
  const nlohmann::json pod = rendered_job["spec"]["template"]["spec"];
  EXPECT_EQ(pod["restartPolicy"], "Never");
  EXPECT_EQ(pod["nodeSelector"]["sweeps/gpu"], "true");  // from the template
  const nlohmann::json worker = pod["containers"][0];
  EXPECT_EQ(worker["resources"]["limits"]["nvidia.com/gpu"], 8);
  bool token_volume = false, checkpoints = false;
  for (const auto& v : pod["volumes"]) {
    if (v["name"] == "sweep-token") {
      token_volume = true;
      EXPECT_EQ(v["secret"]["secretName"], secret["metadata"]["name"]);  // the base's Secret
      EXPECT_EQ(v["secret"]["defaultMode"], 0400);
    }
    checkpoints = checkpoints || v["name"] == "checkpoints";
  }
  EXPECT_TRUE(token_volume);
  EXPECT_TRUE(checkpoints);
  for (const auto& e : worker.value("env", nlohmann::json::array()))
    EXPECT_NE(e["name"], "SWEEP_TOKEN") << "the token comes as a file, not an env variable";
  // The arguments as the real worker takes them (cpu: this machine has no GPU), token file and all.
  std::ofstream(dir / "token") << "t\n";
  std::vector<std::string> argv = {WORKER_BINARY};
  for (const auto& arg : worker["args"]) {
    std::string text = arg.get<std::string>();
    if (text.rfind("--token-file=", 0) == 0) text = "--token-file=" + (dir / "token").string();
    if (text == "--backend=cuda") text = "--backend=cpu";
    argv.push_back(text);
  }
  argv.push_back("--check");
  const CommandResult check =
      run_command(argv, environment_without({}), "", std::chrono::seconds(30));
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  fs::remove_all(dir);
}

}  // namespace

namespace {

// The worker binary provisioned workers run, in the documented order: the flag, the environment,
// a worker beside the coordinator's executable, else worker on PATH.
TEST(WorkerBinary, TheFlagThenTheEnvironmentThenBesideTheCoordinatorThenPath) {
  const fs::path dir = fs::temp_directory_path() / ("worker_binary_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string coordinator = (dir / "coordinator").string();
  EXPECT_EQ(resolve_worker_binary("/opt/w", "/env/w", coordinator).path, "/opt/w");
  EXPECT_EQ(resolve_worker_binary("/opt/w", "/env/w", coordinator).source,
            "--provision-worker-binary");
  EXPECT_EQ(resolve_worker_binary("", "/env/w", coordinator).path, "/env/w");
  EXPECT_EQ(resolve_worker_binary("", "/env/w", coordinator).source, "SWEEP_WORKER_BINARY");
  EXPECT_EQ(resolve_worker_binary("", nullptr, coordinator).path, "worker");  // none beside it
  EXPECT_EQ(resolve_worker_binary("", "", coordinator).path, "worker");
  std::ofstream(dir / "worker") << "#!/bin/sh\n";
  EXPECT_EQ(resolve_worker_binary("", nullptr, coordinator).path, "worker")
      << "a file beside it that cannot be executed is not taken";
  fs::permissions(dir / "worker", fs::perms::owner_all);
  EXPECT_EQ(resolve_worker_binary("", nullptr, coordinator).path, (dir / "worker").string());
  // The build tree: build/server/coordinator finds build/worker/worker.
  fs::create_directories(dir / "build/server");
  fs::create_directories(dir / "build/worker");
  fs::copy_file(dir / "worker", dir / "build/worker/worker");
  EXPECT_EQ(resolve_worker_binary("", nullptr, (dir / "build/server/coordinator").string()).path,
            (dir / "build/worker/worker").string());
  fs::remove_all(dir);
}

// The worker's --health address (the Kubernetes probes' port) is checked with the flag named.
TEST(WorkerFlags, ABadHealthAddressIsRefusedNamingTheFlag) {
  for (const char* bad : {"0.0.0.0:x", "0.0.0.0", "host:80x", "host:65536", "host:"}) {
    const CommandResult r =
        run_command({WORKER_BINARY, "--backend=cpu", std::string("--health=") + bad, "--check"},
                    environment_without({}), "", std::chrono::seconds(30));
    EXPECT_NE(r.exit_code, 0) << bad;
    EXPECT_NE((r.out + r.err)
                  .find("--health: expected host:port with a port in 0..65535, got '" +
                        std::string(bad) + "'"),
              std::string::npos)
        << bad << ": " << r.out << r.err;
  }
  const CommandResult ok =
      run_command({WORKER_BINARY, "--backend=cpu", "--health=0.0.0.0:8081", "--check"},
                  environment_without({}), "", std::chrono::seconds(30));
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
}

// coordinator --check with a provisioner: what this host can see is checked before any allocation.
TEST(Preflight, AScriptSbatchWouldRefuseAndAWorkerThatDoesNotResolveAreNamedByTheirFlags) {
  const fs::path dir = fs::temp_directory_path() / ("preflight_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "no-shebang.sbatch") << "srun worker\n";
  ProvisionerSettings s;
  s.engine = EngineKind::kSlurm;
  s.limits.shape = {"cpu", 1, 1, 0};
  s.state_dir = (dir / "state").string();
  s.slurm.script = (dir / "no-shebang.sbatch").string();
  s.slurm.worker_binary = "no-such-worker-binary";
  s.slurm.worker_binary_source = "SWEEP_WORKER_BINARY";
  // No sbatch on this PATH: its own check fails at once instead of waiting on a controller
  // (the one-node Slurm test, Deploy.SlurmProvisionerShowsWhyItsAllocationsFail, runs it).
  const std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  setenv("PATH", dir.c_str(), 1);
  const auto problems = preflight_problems(s);
  const auto said = [&](const std::string& text) {
    for (const auto& p : problems)
      if (p.find(text) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(said("--provision-slurm-script: '" + s.slurm.script + "' does not start with #!"));
  EXPECT_TRUE(
      said("--provision-worker-binary: the worker 'no-such-worker-binary' (from "
           "SWEEP_WORKER_BINARY) is not on this host's PATH"));
  s.slurm.worker_binary = (dir / "missing/worker").string();
  EXPECT_TRUE([&] {
    for (const auto& p : preflight_problems(s))
      if (p.find("is no executable file on this host") != std::string::npos) return true;
    return false;
  }());
  EXPECT_TRUE(said("--provisioner slurm: cannot run sbatch here"));
  setenv("PATH", path.c_str(), 1);
  // A Kubernetes pod template that is no template: the Job does not render.
  ProvisionerSettings k;
  k.engine = EngineKind::kKubernetes;
  std::ofstream(dir / "bad.yaml") << "just a string\n";
  k.kubernetes.pod_template = (dir / "bad.yaml").string();
  const auto k8s = preflight_problems(k);
  ASSERT_EQ(k8s.size(), 1u);
  EXPECT_NE(k8s[0].find("--provision-k8s-pod-template"), std::string::npos) << k8s[0];
  k.kubernetes.pod_template = "";
  EXPECT_TRUE(preflight_problems(k).empty());
  fs::remove_all(dir);
}

}  // namespace
