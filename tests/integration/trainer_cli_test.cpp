// The trainer command as a user runs it: a real child process, real files.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "process.h"
#include "test_configs.h"
#include "trainer_core/backend/cuda/device_query.h"

namespace {

using Result = test_process::CommandResult;

// The trainer binary with a shell-style argument string (split on spaces).
Result run(const std::string& args) {
  std::vector<std::string> argv = {TRAINER_BINARY};
  std::istringstream words(args);
  for (std::string w; words >> w;) argv.push_back(w);
  return test_process::run_command(argv);
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(TrainerCli, BadConfigListsEveryProblemWithFileAndPath) {
  const std::string dir = test_configs::temp_dir("cli_bad");
  write(dir + "/bad.yaml",
        "optimizer: {name: sgd, lr: 0}\ntraining: {batch_tokens: 100, micro_batch: 4}\n");
  const Result r = run("run " + dir + "/bad.yaml");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("bad.yaml: optimizer.name: must be one of adamw, muon, got 'sgd'"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("bad.yaml: optimizer.lr: must be > 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bad.yaml: training.batch_tokens: must be a positive multiple"),
            std::string::npos)
      << r.out;

  write(dir + "/typo.json", R"({"optimizer": {"nmae": "muon"}})");
  const Result t = run("validate " + dir + "/typo.json");
  EXPECT_EQ(t.exit_code, 2);
  EXPECT_NE(t.out.find("optimizer.nmae: unknown key"), std::string::npos) << t.out;

  const Result missing = run("run " + dir + "/nope.yaml");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.out.find("nope.yaml: cannot read file"), std::string::npos) << missing.out;

  const Result flag = run("run " + dir + "/bad.yaml --no-such-flag");
  EXPECT_EQ(flag.exit_code, 2);
  std::filesystem::remove_all(dir);
}

// The data path as a researcher uses it: prepare shards from a corpus, train on them by glob,
// and find the dataset's id in the run's summary.
TEST(TrainerCli, PrepareDataThenTrainOnTheShards) {
  const std::string dir = test_configs::temp_dir("cli_prepare");
  std::string text;
  for (int i = 0; i < 400; ++i)
    text += "Entry " + std::to_string(i) + ". A definition, with words and more words.\n\n";
  write(dir + "/corpus.txt", text);
  const Result p = run("prepare-data " + dir + "/corpus.txt --out " + dir +
                       "/shards --tokenizer byte "
                       "--text-documents paragraphs --val-fraction 0.1 --shard-tokens 8000");
  ASSERT_EQ(p.exit_code, 0) << p.out;
  EXPECT_NE(p.out.find("wrote"), std::string::npos) << p.out;
  const Result again = run("prepare-data " + dir + "/corpus.txt --out " + dir +
                           "/shards --tokenizer byte "
                           "--text-documents paragraphs --val-fraction 0.1 --shard-tokens 8000");
  EXPECT_NE(again.out.find("up to date"), std::string::npos) << again.out;
  const nlohmann::json manifest =
      nlohmann::json::parse(std::ifstream(dir + "/shards/manifest.json"));
  nlohmann::json cfg = trainer_core::to_json(test_configs::micro(dir));
  cfg["data"]["train"] = dir + "/shards/train_*.bin";
  cfg["data"]["val"] = dir + "/shards/val_*.bin";
  write(dir + "/run.json", cfg.dump());
  const Result r =
      run("run " + dir + "/run.json --set training.max_steps=6 --summary " + dir + "/summary.json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const nlohmann::json summary = nlohmann::json::parse(std::ifstream(dir + "/summary.json"));
  EXPECT_EQ(summary["dataset"]["id"], manifest["dataset_id"]);
  EXPECT_EQ(summary["dataset"]["train_tokens"], manifest["tokens"]["train"]);
  // A missing shard is the run's error, with the path.
  const Result missing =
      run("run " + dir + "/run.json --set data.train=" + dir + "/nowhere/train_*.bin");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.out.find("data.train: no token shard matches " + dir + "/nowhere/train_*.bin"),
            std::string::npos)
      << missing.out;
  std::filesystem::remove_all(dir);
}

TEST(TrainerCli, RunWritesJsonLinesAndASummary) {
  const std::string dir = test_configs::temp_dir("cli_run");
  const nlohmann::json cfg = trainer_core::to_json(test_configs::micro(dir));
  write(dir + "/run.json", cfg.dump());
  const Result r = run("run " + dir +
                       "/run.json --set training.max_steps=12 --set optimizer.name=muon "
                       "--jsonl " +
                       dir + "/metrics.jsonl --summary " + dir + "/summary.json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("succeeded after 12 steps"), std::string::npos) << r.out;

  std::ifstream in(dir + "/metrics.jsonl");
  std::string line;
  int steps = 0, evals = 0, summaries = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j["type"] == "step") {
      ++steps;
      EXPECT_EQ(j["step"], steps);
      EXPECT_GT(j["train_loss"].get<double>(), 0.0);
    }
    evals += j["type"] == "eval";
    summaries += j["type"] == "summary";
  }
  EXPECT_EQ(steps, 12);
  EXPECT_EQ(evals, 3);  // step 0, 10 and the final step 12
  EXPECT_EQ(summaries, 1);
  std::ifstream s(dir + "/summary.json");
  const auto summary = nlohmann::json::parse(s);
  EXPECT_EQ(summary["status"], "succeeded");
  EXPECT_EQ(summary["steps"], 12);
  std::filesystem::remove_all(dir);
}

// Generation from a run's checkpoint, as the README shows it: the prompt and its greedy
// continuation on stdout, the figures on stderr; a request beyond the context is refused.
TEST(TrainerCli, GenerateContinuesAPromptFromTheRunsCheckpoint) {
  const std::string dir = test_configs::temp_dir("cli_generate");
  trainer_core::TrainConfig c = test_configs::micro(dir);
  c.training.max_steps = 12;
  c.training.checkpoint_dir = dir + "/ckpt";
  write(dir + "/run.json", trainer_core::to_json(c).dump());
  ASSERT_EQ(run("run " + dir + "/run.json --quiet").exit_code, 0);
  const Result r = run("generate " + dir + "/run.json --prompt Abdication --tokens 8");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("Abdication"), std::string::npos) << r.out;  // stdout, after stderr
  EXPECT_NE(r.out.find("8 tokens, decoded at "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ms prefill of 10 prompt tokens (batch 1)"), std::string::npos) << r.out;

  const Result too_long = run("generate " + dir + "/run.json --prompt Abdication --tokens 30");
  EXPECT_NE(too_long.exit_code, 0);
  EXPECT_NE(too_long.out.find("prompt (10) + tokens (30) exceed the model's seq_len 32"),
            std::string::npos)
      << too_long.out;
  std::filesystem::remove_all(dir);
}

TEST(TrainerCli, DivergedRunExitsWithCodeThree) {
  const std::string dir = test_configs::temp_dir("cli_nan");
  write(dir + "/run.json", trainer_core::to_json(test_configs::micro(dir)).dump());
  const Result r = run("run " + dir +
                       "/run.json --set optimizer.lr=1e30 --set schedule.warmup_steps=0 "
                       "--set training.grad_clip=0");
  EXPECT_EQ(r.exit_code, 3) << r.out;
  EXPECT_NE(r.out.find("diverged after 1 steps"), std::string::npos) << r.out;
  std::filesystem::remove_all(dir);
}

// muP's coordinate check as a user runs it: a table with slopes, the same as JSON; a bad
// --widths is a bad flag (exit code 2) that says what is wrong.
TEST(TrainerCli, CoordCheckPrintsSlopesAndWritesJson) {
  const std::string dir = test_configs::temp_dir("cli_coord");
  write(dir + "/run.json", trainer_core::to_json(test_configs::micro(dir)).dump());
  const Result r = run("coord-check " + dir + "/run.json --widths 32,64 --steps 1 --seeds 1 " +
                       "--set model.parametrization=mup --json " + dir + "/cc.json");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("coordinate check: mup, adamw"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("logits"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(std::ifstream(dir + "/cc.json"));
  EXPECT_EQ(j["widths"], nlohmann::json({32, 64}));
  ASSERT_FALSE(j["series"].empty());
  EXPECT_EQ(j["series"][0]["rms"].size(), 2u);
  const Result bad = run("coord-check " + dir + "/run.json --widths 64,32");
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_NE(bad.out.find("--widths: widths must increase"), std::string::npos) << bad.out;
  std::filesystem::remove_all(dir);
}

// Where no GPU is present (CI, a laptop) a CUDA run ends at once with the reason, exit code 1.
TEST(TrainerCli, CudaRunWithoutAGpuSaysSo) {
  if (!trainer_core::list_cuda_devices().empty()) GTEST_SKIP() << "this machine has a GPU";
  const std::string dir = test_configs::temp_dir("cli_cuda");
  write(dir + "/run.json", trainer_core::to_json(test_configs::micro(dir)).dump());
  const Result r = run("run " + dir + "/run.json --set backend=cuda");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_TRUE(r.out.find("backend 'cuda': no CUDA device or driver present") != std::string::npos ||
              r.out.find("backend 'cuda': this build has no CUDA support") != std::string::npos)
      << r.out;
  std::filesystem::remove_all(dir);
}

}  // namespace
