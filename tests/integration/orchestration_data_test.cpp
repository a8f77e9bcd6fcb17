// What runs read and report: token shards, named metrics through to the API, exports for pandas,
// external trainers.
#include "orchestration_cluster.h"

namespace orchestration_test {
namespace {

// A sweep trains on token shards named by path; a worker that cannot see them fails the job with
// the missing path, a bounded number of times (max_attempts), and goes on serving.
TEST(Orchestration, SweepsTrainOnShardsByPathAndMissingShardsFailWithThePath) {
  Cluster c("no_data");
  c.start_coordinator();
  ChildProcess& worker = c.start_worker("w1");
  const std::string missing = c.cache() + "/nowhere/train_*.bin";
  const std::string grid = "max_attempts: 2\ngrid:\n  data: [{train: '" + missing + "', val: '" +
                           c.cache() + "/nowhere/val.bin'}]\n";
  const int64_t sweep = c.submit(sweep_yaml("no-data", c.cache(), 10, grid));
  ASSERT_TRUE(c.wait_finished(sweep)) << c.diagnostics();
  const auto s = c.get(sweep);
  ASSERT_EQ(s.jobs_size(), 1);
  EXPECT_EQ(pb::JobState_Name(s.jobs(0).state()), "FAILED");
  EXPECT_EQ(s.jobs(0).attempt(), 2);
  EXPECT_NE(s.jobs(0).message().find("data.train: no token shard matches " + missing),
            std::string::npos)
      << s.jobs(0).message();
  EXPECT_FALSE(worker.wait_for_exit(0ms));

  // The same sweep on shards the test prepares: it trains, and the results name the dataset.
  const std::string shards = c.cache() + "/gcide-bytes";
  const auto prepared = test_process::run_command(
      {TRAINER_BINARY, "prepare-data", "gcide", "--out", shards, "--tokenizer", "byte",
       "--text-documents", "paragraphs", "--max-bytes", "2000000"});
  ASSERT_EQ(prepared.exit_code, 0) << prepared.out;
  const nlohmann::json manifest = nlohmann::json::parse(std::ifstream(shards + "/manifest.json"));
  const int64_t ok =
      c.submit(sweep_yaml("shards", c.cache(), 10,
                          "grid:\n  data: [{train: '" + shards + "/train_*.bin', val: '" + shards +
                              "/val_*.bin'}]\nseeds: [1, 2]\n"));
  ASSERT_TRUE(c.wait_finished(ok)) << c.diagnostics();
  const auto done = c.get(ok);
  for (const auto& j : done.jobs())
    EXPECT_EQ(pb::JobState_Name(j.state()), "SUCCEEDED") << j.message();
  const pb::GetResultsResponse results = c.results(ok);
  std::string notes;
  for (const auto& n : results.notes()) notes += n + "\n";
  EXPECT_NE(notes.find("every run trained on dataset " +
                       manifest["dataset_id"].get<std::string>().substr(0, 12) + " (2 runs"),
            std::string::npos)
      << notes;
}

// The run-record contract end to end: the named metrics a trainer writes reach the API through
// worker, wire and store unchanged, value for value (the trainer command, run on the same config,
// writes the reference).
TEST(Orchestration, NamedMetricsReachTheApiUnchangedFromTheTrainersRunRecords) {
  Cluster c("named_metrics");
  c.start_coordinator();
  c.start_worker("w1");
  const int steps = 30;
  const int64_t sweep = c.submit(
      "name: moe\nbase:\n"
      "  model: {preset: tiny, n_layer: 1, hidden: 32, n_head: 2, ffn_hidden: 64, seq_len: 32, "
      "ffn: moe, n_experts: 4, top_k: 2}\n"
      "  optimizer: {name: adamw, lr: 3.0e-3}\n"
      "  training: {max_steps: " +
      std::to_string(steps) +
      ", batch_tokens: 256, micro_batch: 8, "
      "eval_every: 10, eval_tokens: 2048}\n"
      "  data: {corpus: gcide, max_corpus_bytes: 1000000, cache_dir: " +
      c.cache() + "}\n");
  ASSERT_TRUE(c.wait_finished(sweep)) << c.diagnostics();
  const int64_t job = c.get(sweep).jobs(0).job_id();

  httplib::Client http("127.0.0.1", c.http_port());
  const auto get_json = [&](const std::string& path) {
    const auto res = http.Get(path);
    EXPECT_TRUE(res && res->status == 200) << path << ": " << (res ? res->body : "no answer");
    return nlohmann::json::parse(res ? res->body : "{}");
  };
  const auto names = get_json("/api/runs/" + std::to_string(job) + "/metrics")["metrics"];
  EXPECT_EQ(names, nlohmann::json({"moe/balance_loss", "moe/load/expert0", "moe/load/expert1",
                                   "moe/load/expert2", "moe/load/expert3", "moe/load_max"}));

  // The reference: the trainer command on the job's config writes the same run records.
  nlohmann::json config = get_json("/api/runs/" + std::to_string(job))["config"];
  config["threads"] = 1;  // as the worker ran it (--threads-per-job 1)
  const std::string config_path = c.dir() + "/job.json", records = c.dir() + "/records.jsonl";
  std::ofstream(config_path) << config.dump();
  const auto trained = test_process::run_command(
      {TRAINER_BINARY, "run", config_path, "--jsonl", records, "--quiet"});
  ASSERT_EQ(trained.exit_code, 0) << trained.out;
  std::map<std::string, std::map<int64_t, double>> expected;
  std::ifstream in(records);
  for (std::string line; std::getline(in, line);)
    if (const auto record = trainer_core::parse_run_record(line))
      if (const auto* step = std::get_if<trainer_core::StepMetrics>(&*record))
        for (const auto& v : step->metrics) expected[v.name][step->step] = v.value;
  ASSERT_EQ(expected.size(), 6u);
  for (const auto& [name, values] : expected) {
    const auto served =
        get_json("/api/metrics?name=" + name + "&runs=" + std::to_string(job) + "&points=1000");
    const auto& curve = served["runs"][0]["curve"];
    ASSERT_EQ(curve["step"].size(), size_t(steps)) << name << ": one bucket per step";
    for (size_t i = 0; i < curve["step"].size(); ++i) {
      const int64_t step = curve["step"][i];
      EXPECT_EQ(curve["mean"][i].get<double>(), values.at(step)) << name << " at step " << step;
      EXPECT_EQ(curve["min"][i], curve["max"][i]);
    }
  }
  // Bad requests name what is wrong; an unknown metric is a 404.
  EXPECT_EQ(http.Get("/api/metrics?name=nothing&runs=" + std::to_string(job))->status, 404);
  EXPECT_EQ(http.Get("/api/metrics?name=moe/load_max&runs=1,x")->status, 400);
  EXPECT_EQ(http.Get("/api/metrics?runs=1")->status, 400);
}

std::vector<std::string> split_csv_line(const std::string& line) {  // no quoted cells here
  std::vector<std::string> cells;
  size_t start = 0;
  for (size_t comma; (comma = line.find(',', start)) != std::string::npos; start = comma + 1)
    cells.push_back(line.substr(start, comma - start));
  cells.push_back(line.substr(start));
  return cells;
}

// `sweepctl export` and the API's download give every stored point of every metric in long
// format, with the config columns the sweep varies, and one summary row per run.
TEST(Orchestration, ExportGivesEveryPointOfEveryMetricForPandas) {
  Cluster c("export");
  c.start_coordinator();
  c.start_worker("w1");
  const int64_t sweep = c.submit(sweep_yaml("export", c.cache(), 30, R"(
grid:
  optimizer: [{name: adamw, lr: 3.0e-3}, {name: muon, lr: 1.0e-2}]
targets: [4.5]
)"));
  ASSERT_TRUE(c.wait_finished(sweep)) << c.diagnostics();
  const std::string csv_path = c.dir() + "/curves.csv", jsonl_path = c.dir() + "/curves.jsonl",
                    summaries_path = c.dir() + "/summaries.csv";
  for (const auto& [args, path] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--format", "csv"}, csv_path},
           {{"--format", "jsonl"}, jsonl_path},
           {{"--table", "summaries"}, summaries_path}}) {
    std::vector<std::string> argv = {SWEEPCTL_BINARY,
                                     "--coordinator",
                                     c.endpoint().address,
                                     "export",
                                     std::to_string(sweep),
                                     "--output",
                                     path};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = test_process::run_command(argv);
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  std::ifstream csv(csv_path);
  std::string header;
  std::getline(csv, header);
  const auto columns = split_csv_line(header);
  EXPECT_EQ(std::vector<std::string>(columns.begin(), columns.begin() + 4),
            (std::vector<std::string>{"job", "label", "seed", "state"}));
  EXPECT_NE(std::find(columns.begin(), columns.end(), "optimizer.name"), columns.end()) << header;
  EXPECT_NE(std::find(columns.begin(), columns.end(), "optimizer.lr"), columns.end()) << header;
  EXPECT_EQ(std::find(columns.begin(), columns.end(), "training.max_steps"), columns.end())
      << "only what the sweep varies: " << header;
  EXPECT_EQ(std::vector<std::string>(columns.end() - 3, columns.end()),
            (std::vector<std::string>{"step", "metric", "value"}));
  std::map<std::string, int> rows_per_metric;
  std::map<std::pair<std::string, std::string>, std::string> train_loss;  // (job, step) -> value
  size_t rows = 0;
  for (std::string line; std::getline(csv, line); ++rows) {
    const auto cells = split_csv_line(line);
    ASSERT_EQ(cells.size(), columns.size()) << line;
    const std::string& metric = cells[columns.size() - 2];
    ++rows_per_metric[metric];
    if (metric == "train_loss") train_loss[{cells[0], cells[columns.size() - 3]}] = cells.back();
  }
  for (const char* metric : {"train_loss", "lr", "grad_norm", "tokens", "elapsed_s"})
    EXPECT_EQ(rows_per_metric[metric], 2 * 30) << metric << ": every step of both runs";
  EXPECT_GE(rows_per_metric["val_loss"], 2 * 3);
  // The values are the stored ones, at full precision.
  httplib::Client http("127.0.0.1", c.http_port());
  const auto finished = c.get(sweep);
  for (const auto& job : finished.jobs()) {
    const auto run = nlohmann::json::parse(
        http.Get("/api/runs/" + std::to_string(job.job_id()) + "?points=1000")->body);
    for (size_t i = 0; i < run["train"]["step"].size(); ++i) {
      const std::string step = std::to_string(run["train"]["step"][i].get<int64_t>());
      const std::string exported = train_loss[{std::to_string(job.job_id()), step}];
      ASSERT_FALSE(exported.empty()) << "job " << job.job_id() << " step " << step;
      EXPECT_EQ(std::stod(exported), run["train"]["mean"][i].get<double>()) << "step " << step;
    }
  }
  // JSON lines: the same rows, one object each.
  std::ifstream jsonl(jsonl_path);
  size_t objects = 0;
  for (std::string line; std::getline(jsonl, line); ++objects) {
    const auto row = nlohmann::json::parse(line);
    ASSERT_TRUE(row.contains("metric") && row.contains("value") && row.contains("optimizer.name"))
        << line;
  }
  EXPECT_EQ(objects, rows);
  // Summaries: one row per run, targets by their loss.
  std::ifstream summaries(summaries_path);
  std::getline(summaries, header);
  EXPECT_NE(header.find("final_val_loss"), std::string::npos) << header;
  EXPECT_NE(header.find("to_target_4.5.tokens"), std::string::npos) << header;
  size_t summary_rows = 0;
  for (std::string line; std::getline(summaries, line);) ++summary_rows;
  EXPECT_EQ(summary_rows, 2u);
  // Each run names the trainer that ran it: the source commit and the worker binary's hash.
  const auto summary_lines =
      http.Get("/api/sweeps/" + std::to_string(sweep) + "/export?table=summaries&format=jsonl");
  ASSERT_TRUE(summary_lines && summary_lines->status == 200);
  const auto first_run =
      nlohmann::json::parse(summary_lines->body.substr(0, summary_lines->body.find('\n')));
  const auto [git_code, head] =
      test_process::run_command({"git", "-C", SOURCE_DIR, "rev-parse", "HEAD"});
  EXPECT_EQ(first_run.value("trainer.commit", ""),
            git_code == 0 ? head.substr(0, head.find('\n')) : std::string("unknown"));
  EXPECT_TRUE(first_run.at("trainer.dirty").is_boolean()) << first_run.dump();
  const auto [sum_code, sum] = test_process::run_command({"sha256sum", WORKER_BINARY});
  ASSERT_EQ(sum_code, 0);
  EXPECT_EQ(first_run.value("trainer.binary_sha256", ""), sum.substr(0, 64));
  // The API's download is the same table.
  const auto download =
      http.Get("/api/sweeps/" + std::to_string(sweep) + "/export?table=curves&format=csv");
  ASSERT_TRUE(download && download->status == 200);
  EXPECT_EQ(download->body, test_process::read_text(csv_path));
  EXPECT_EQ(http.Get("/api/sweeps/" + std::to_string(sweep) + "/export?format=xlsx")->status, 400);
}

// A program of the user's own (examples/external/bigram.py, plain Python) runs in a sweep beside
// the built-in trainer: its run records become curves and results like any job's.
TEST(Orchestration, AnExternalTrainerRunsBesideTheBuiltInOne) {
  Cluster c("external");
  c.start_coordinator();
  c.start_worker("w1", 2);
  std::string spec =
      test_process::read_text(std::string(SOURCE_DIR) + "/examples/external/sweep.yaml");
  const std::string relative = "[python3, examples/external/bigram.py]";
  ASSERT_NE(spec.find(relative), std::string::npos);
  spec.replace(spec.find(relative), relative.size(),
               "[/usr/bin/python3, " + std::string(SOURCE_DIR) + "/examples/external/bigram.py]");
  spec.replace(spec.find("max_corpus_bytes: 1000000}"), 26,
               "max_corpus_bytes: 1000000, cache_dir: " + c.cache() + "}");
  const int64_t sweep = c.submit(spec);
  ASSERT_TRUE(c.wait_finished(sweep)) << c.diagnostics();
  const auto s = c.get(sweep);
  ASSERT_EQ(s.jobs_size(), 4);
  for (const auto& job : s.jobs())
    EXPECT_EQ(pb::JobState_Name(job.state()), "SUCCEEDED") << job.label() << ": " << job.message();
  expect_complete_curves(c, s);
  const auto results = c.results(sweep);
  ASSERT_EQ(results.ablation_size(), 2);
  for (const auto& row : results.ablation()) {
    EXPECT_EQ(row.val_ppl().n(), 2) << row.label();
    EXPECT_GT(row.val_ppl().mean(), 1.0) << row.label();
  }
  // Its named metric is stored like the built-in trainer's.
  httplib::Client http("127.0.0.1", c.http_port());
  for (const auto& job : s.jobs())
    if (job.label() == "bigram-python") {
      const auto names = nlohmann::json::parse(
          http.Get("/api/runs/" + std::to_string(job.job_id()) + "/metrics")->body)["metrics"];
      EXPECT_EQ(names, nlohmann::json({"bigram/rows_seen"}));
    }
}

// An external trainer gets the built-in trainer's hand-back: SIGTERM to its worker, the job goes
// back to the queue, and another worker resumes it from the program's own checkpoint. The
// example restores its sampler too, so the resumed run ends exactly where one without a stop
// does.
TEST(Orchestration, AnExternalTrainerIsHandedBackAndResumesFromItsOwnCheckpoint) {
  Cluster c("external-resume");
  c.start_coordinator();
  ChildProcess& w1 = c.start_worker("w1");
  const int64_t sweep = c.submit(bigram_sweep_yaml("bigram-resume", 1500));
  ASSERT_TRUE(wait_until([&] { return c.get(sweep).jobs(0).step() > 120; }, 120s))
      << c.diagnostics();
  w1.kill(SIGTERM);
  ASSERT_TRUE(w1.wait_for_exit(60s)) << c.diagnostics();
  auto job = c.get(sweep).jobs(0);
  ASSERT_EQ(pb::JobState_Name(job.state()), "PENDING") << job.message();
  const int64_t stopped_at = job.step();
  c.start_worker("w2");
  ASSERT_TRUE(c.wait_finished(sweep)) << c.diagnostics();
  const auto s = c.get(sweep);
  job = s.jobs(0);
  EXPECT_EQ(pb::JobState_Name(job.state()), "SUCCEEDED") << job.message();
  EXPECT_EQ(job.worker_id(), "w2");
  expect_complete_curves(c, s);
  // The second worker started the program again, and it went on from its checkpoint.
  const std::string w2_log = test_process::read_text(c.worker_log("w2"));
  const size_t at = w2_log.find("resumed at step ");
  ASSERT_NE(at, std::string::npos) << w2_log;
  const int64_t resumed_at = std::stoll(w2_log.substr(at + 16));
  EXPECT_GT(resumed_at, 100) << w2_log;
  EXPECT_LE(resumed_at, stopped_at + 50) << w2_log;
  httplib::Client http("127.0.0.1", c.http_port());
  const auto run =
      nlohmann::json::parse(http.Get("/api/runs/" + std::to_string(job.job_id()))->body);
  // The same config run by hand in one go, without a checkpoint directory.
  const std::string config_path = c.dir() + "/by-hand.json";
  std::ofstream(config_path) << run["config"].dump();
  const auto by_hand = test_process::run_command({"/usr/bin/python3", kBigramScript, config_path});
  ASSERT_EQ(by_hand.exit_code, 0) << by_hand.out;
  const std::string last_line =
      by_hand.out.substr(by_hand.out.rfind('\n', by_hand.out.size() - 2) + 1);
  const auto uninterrupted = nlohmann::json::parse(last_line);
  EXPECT_GT(stopped_at, 120);
  EXPECT_EQ(run["summary"]["steps"], 1500);
  EXPECT_DOUBLE_EQ(run["summary"]["final_val_loss"].get<double>(),
                   uninterrupted["final_val_loss"].get<double>())
      << "resumed at step " << stopped_at << " from the checkpoint; the loss should not differ";
}

}  // namespace
}  // namespace orchestration_test
