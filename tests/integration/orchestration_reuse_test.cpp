// Reuse of finished runs on a real coordinator and workers: a sweep with `reuse: true` takes the
// results of finished runs of the same config, data and trainer binary and trains the rest; data
// prepared anew at the same path, or another build of the worker, is trained again.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "orchestration_cluster.h"

namespace orchestration_test {
namespace {

namespace fs = std::filesystem;

// Every file the worker wrote for a job (its config, log): where "not reusing ..." is said.
std::string job_files_text(Cluster& c, const std::string& worker, int64_t job_id) {
  std::string text;
  for (const auto& e : fs::recursive_directory_iterator(c.dir() + "/" + worker))
    if (e.is_regular_file() && e.path().extension() == ".log" &&
        e.path().filename().string().starts_with("job-" + std::to_string(job_id) + "-"))
      text += test_process::read_text(e.path().string());
  return text;
}

TEST(Orchestration, ReuseTakesFinishedRunsOnlyOfTheSameDataAndTrainerBinary) {
  Cluster c("reuse");
  c.start_coordinator();
  ChildProcess& w1 = c.start_worker("w1", 2);
  const std::string shards = c.cache() + "/shards";
  const auto prepare = [&](const std::string& max_bytes) {
    fs::remove_all(shards);
    const auto prepared = test_process::run_command(
        {TRAINER_BINARY, "prepare-data", "gcide", "--out", shards, "--tokenizer", "byte",
         "--text-documents", "paragraphs", "--max-bytes", max_bytes});
    ASSERT_EQ(prepared.exit_code, 0) << prepared.out;
  };
  const auto yaml = [&](const std::string& name, const std::string& seeds, bool reuse) {
    return sweep_yaml(name, c.cache(), 20,
                      "grid:\n  data: [{train: '" + shards + "/train_*.bin', val: '" + shards +
                          "/val_*.bin'}]\nseeds: " + seeds + "\n" + (reuse ? "reuse: true\n" : ""));
  };
  const auto only_job = [&](int64_t sweep, int64_t seed) {
    const pb::GetSweepResponse s = c.get(sweep);
    for (const auto& j : s.jobs())
      if (j.seed() == seed) return j;
    throw std::runtime_error("no seed " + std::to_string(seed));
  };

  prepare("400000");
  const int64_t first = c.submit(yaml("first", "[1]", false));
  ASSERT_TRUE(c.wait_finished(first)) << c.diagnostics();
  const pb::JobInfo trained = only_job(first, 1);
  ASSERT_EQ(pb::JobState_Name(trained.state()), "SUCCEEDED") << trained.message();

  // Seed 1 is the finished run's; seed 2 is new and trains.
  const int64_t second = c.submit(yaml("second", "[1, 2]", true));
  ASSERT_TRUE(c.wait_finished(second)) << c.diagnostics();
  const pb::JobInfo reused = only_job(second, 1), fresh = only_job(second, 2);
  ASSERT_EQ(pb::JobState_Name(reused.state()), "SUCCEEDED") << reused.message();
  ASSERT_EQ(pb::JobState_Name(fresh.state()), "SUCCEEDED") << fresh.message();
  ASSERT_TRUE(reused.has_reused_from()) << reused.message() << c.diagnostics();
  EXPECT_EQ(reused.reused_from().job_id(), trained.job_id());
  EXPECT_EQ(reused.reused_from().sweep_id(), first);
  EXPECT_EQ(reused.message(), "reused job " + std::to_string(trained.job_id()) + " of sweep " +
                                  std::to_string(first) + ": same config, data and trainer");
  EXPECT_EQ(reused.last_val_loss(), trained.last_val_loss());
  EXPECT_EQ(reused.step(), 20);
  EXPECT_EQ(std::get<0>(c.curve(reused.job_id())), 0) << "nothing trained, nothing stored twice";
  EXPECT_FALSE(fresh.has_reused_from());
  EXPECT_EQ(std::get<0>(c.curve(fresh.job_id())), 20);

  // The results say which runs were reused and from where; the export gives the whole curve.
  const pb::GetResultsResponse results = c.results(second);
  std::string notes;
  for (const auto& n : results.notes()) notes += n + "\n";
  EXPECT_NE(notes.find("Reused: 1 of 2 runs were not trained again"), std::string::npos) << notes;
  EXPECT_NE(notes.find("job " + std::to_string(reused.job_id()) + " from job " +
                       std::to_string(trained.job_id()) + " (sweep " + std::to_string(first) + ")"),
            std::string::npos)
      << notes;
  const std::string csv_path = c.dir() + "/second.csv";
  ASSERT_EQ(test_process::run_command({SWEEPCTL_BINARY, "--coordinator", c.endpoint().address,
                                       "export", std::to_string(second), "--output", csv_path})
                .exit_code,
            0);
  std::istringstream csv(test_process::read_text(csv_path));
  std::string header;
  std::getline(csv, header);
  EXPECT_EQ(header.find("job,label,seed,state,reused_from_job,"), 0u) << header;
  size_t reused_points = 0;
  for (std::string line; std::getline(csv, line);)
    reused_points += line.starts_with(std::to_string(reused.job_id()) + ",") &&
                     line.find("," + std::to_string(trained.job_id()) + ",") != std::string::npos &&
                     line.find(",train_loss,") != std::string::npos;
  EXPECT_EQ(reused_points, 20u);

  // The same path prepared from other text is another dataset: trained again, and the job's log
  // says why the offer was declined.
  prepare("300000");
  const int64_t third = c.submit(yaml("third", "[1]", true));
  ASSERT_TRUE(c.wait_finished(third)) << c.diagnostics();
  const pb::JobInfo other_data = only_job(third, 1);
  EXPECT_EQ(pb::JobState_Name(other_data.state()), "SUCCEEDED") << other_data.message();
  EXPECT_FALSE(other_data.has_reused_from()) << other_data.message();
  EXPECT_EQ(std::get<0>(c.curve(other_data.job_id())), 20);
  EXPECT_NE(
      job_files_text(c, "w1", other_data.job_id())
          .find("not reusing job " + std::to_string(trained.job_id()) + ": the dataset differs"),
      std::string::npos)
      << job_files_text(c, "w1", other_data.job_id());
  EXPECT_NE(other_data.last_val_loss(), trained.last_val_loss());

  // Another build of the worker (the same code with bytes appended hashes differently) trains
  // again what this one trained.
  w1.kill(SIGTERM);
  ASSERT_TRUE(w1.wait_for_exit(30s));
  const std::string rebuilt = c.dir() + "/worker-rebuilt";
  fs::copy_file(WORKER_BINARY, rebuilt);
  std::ofstream(rebuilt, std::ios::app) << "another build";
  fs::permissions(rebuilt, fs::perms::owner_exec, fs::perm_options::add);
  c.start_worker("w2", 1, "-", {}, rebuilt);
  const int64_t fourth = c.submit(yaml("fourth", "[1]", true));
  ASSERT_TRUE(c.wait_finished(fourth)) << c.diagnostics();
  const pb::JobInfo other_binary = only_job(fourth, 1);
  EXPECT_EQ(pb::JobState_Name(other_binary.state()), "SUCCEEDED") << other_binary.message();
  EXPECT_FALSE(other_binary.has_reused_from()) << other_binary.message();
  EXPECT_NE(job_files_text(c, "w2", other_binary.job_id())
                .find("not reusing job " + std::to_string(other_data.job_id()) +
                      ": the trainer binary differs"),
            std::string::npos)
      << job_files_text(c, "w2", other_binary.job_id());
  EXPECT_EQ(other_binary.last_val_loss(), other_data.last_val_loss())
      << "the same training, trained again";
}

}  // namespace
}  // namespace orchestration_test
