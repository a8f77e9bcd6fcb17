// The run-record contract: what the writer writes the parser reads back unchanged, and a malformed
// record is refused with the field named (docs/run-records.md).
#include "trainer_core/train/run_records.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <sstream>

using namespace trainer_core;

namespace {

// Writes records through the writer into memory and returns the lines.
std::vector<std::string> written(const std::function<void(RunRecordWriter&)>& write) {
  char* buffer = nullptr;
  size_t size = 0;
  std::FILE* f = open_memstream(&buffer, &size);
  {
    RunRecordWriter writer(f);
    write(writer);
  }
  std::fclose(f);
  std::vector<std::string> lines;
  std::istringstream in(std::string(buffer, size));
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  free(buffer);
  return lines;
}

TEST(RunRecords, WhatTheWriterWritesTheParserReadsBackUnchanged) {
  StepMetrics step;
  step.step = 12;
  step.train_loss = 3.1415926535897931;
  step.lr = 2.9999999999999997e-4;
  step.grad_norm = NAN;  // a diverged step: null on the wire, NaN again when read
  step.loss_spike = true;
  step.tokens = 6291456;
  step.elapsed_s = 2.345678;
  step.metrics = {
      {"moe/balance_loss", 0.0123}, {"layer0/update_rms", 1e-300}, {"moe/load_max", INFINITY}};
  EvalMetrics eval;
  eval.step = 12;
  eval.val_loss = 3.05;
  eval.val_ppl = std::exp(3.05);
  eval.tokens = 6291456;
  eval.elapsed_s = 9.5;
  eval.train_s = 7.25;
  RunSummary summary;
  summary.outcome = RunOutcome::kDiverged;
  summary.message = "loss became non-finite at step 13";
  RunInfo info;
  info.start_step = 5;
  info.max_steps = 100;
  const auto lines = written([&](RunRecordWriter& w) {
    w.on_start(info);
    w.on_step(step);
    w.on_eval(eval);
    w.on_checkpoint(12, "/ckpt/checkpoint.bin");
    w.on_finish(summary);
  });
  ASSERT_EQ(lines.size(), 5u);

  const auto start = std::get<StartRecord>(*parse_run_record(lines[0]));
  EXPECT_EQ(start.version, kRunRecordVersion);
  EXPECT_EQ(start.start_step, 5);
  EXPECT_EQ(start.max_steps, 100);

  const auto back = std::get<StepMetrics>(*parse_run_record(lines[1]));
  EXPECT_EQ(back.step, 12);
  EXPECT_EQ(back.train_loss, step.train_loss);  // bit for bit: shortest round-trip decimal
  EXPECT_EQ(back.lr, step.lr);
  EXPECT_TRUE(std::isnan(back.grad_norm));
  EXPECT_TRUE(back.loss_spike);
  EXPECT_EQ(back.tokens, 6291456);
  EXPECT_EQ(back.elapsed_s, 2.345678);
  ASSERT_EQ(back.metrics.size(), 3u);
  std::map<std::string, double> named;
  for (const auto& v : back.metrics) named[v.name] = v.value;
  EXPECT_EQ(named["moe/balance_loss"], 0.0123);
  EXPECT_EQ(named["layer0/update_rms"], 1e-300);
  EXPECT_TRUE(std::isnan(named["moe/load_max"]));  // not finite: null, then NaN

  const auto e = std::get<EvalMetrics>(*parse_run_record(lines[2]));
  EXPECT_EQ(e.val_loss, 3.05);
  EXPECT_EQ(e.val_ppl, std::exp(3.05));
  EXPECT_EQ(e.elapsed_s, 9.5);
  EXPECT_EQ(e.train_s, 7.25);
  // A record from a trainer older than train_s reads as "not recorded", never as 0 seconds.
  const auto old = std::get<EvalMetrics>(*parse_run_record(
      R"({"type":"eval","step":4,"val_loss":3.2,"val_ppl":24.5,"tokens":1024,"elapsed_s":1.5})"));
  EXPECT_TRUE(std::isnan(old.train_s));
  const auto c = std::get<CheckpointRecord>(*parse_run_record(lines[3]));
  EXPECT_EQ(c.path, "/ckpt/checkpoint.bin");
  const auto s = std::get<SummaryRecord>(*parse_run_record(lines[4]));
  EXPECT_EQ(s.outcome, RunOutcome::kDiverged);
  EXPECT_EQ(s.message, summary.message);
  EXPECT_EQ(s.fields["status"], "diverged");
}

std::string refusal(const std::string& line) {
  try {
    parse_run_record(line);
  } catch (const RunRecordError& e) {
    return e.what();
  }
  return "accepted";
}

TEST(RunRecords, AMalformedRecordIsRefusedWithTheFieldNamedAndAnUnknownTypeIsSkipped) {
  EXPECT_EQ(refusal("not json"), "not a JSON line");
  EXPECT_NE(refusal("[1, 2]").find("\"type\""), std::string::npos);
  EXPECT_EQ(refusal(R"({"type":"step","train_loss":1})"), "step record: \"step\" is missing");
  EXPECT_EQ(refusal(R"({"type":"step","step":1.5,"train_loss":1})"),
            "step record: \"step\" must be an integer");
  EXPECT_EQ(refusal(R"({"type":"step","step":1,"train_loss":"low"})"),
            "step record: \"train_loss\" must be a number or null");
  EXPECT_EQ(refusal(R"({"type":"step","step":1,"train_loss":1,"metrics":{"a":"b"}})"),
            "step record: \"metrics.a\" must be a number or null");
  EXPECT_NE(refusal(R"({"type":"step","step":1,"train_loss":1,"metrics":{"":1}})")
                .find("names of 1..200 bytes"),
            std::string::npos);
  EXPECT_EQ(refusal(R"({"type":"summary","status":"won"})"),
            "summary record: \"status\" must be succeeded, diverged or stopped");
  EXPECT_FALSE(parse_run_record(R"({"type":"histogram","step":1})").has_value())
      << "a later version's record";
  // A minimal step, as an external trainer may write it: the rest keeps its defaults.
  const auto minimal =
      std::get<StepMetrics>(*parse_run_record(R"({"type":"step","step":3,"train_loss":2.5})"));
  EXPECT_EQ(minimal.step, 3);
  EXPECT_EQ(minimal.train_loss, 2.5);
  EXPECT_TRUE(minimal.metrics.empty());
}

TEST(RunRecords, OutcomesAndExitCodesAreOneList) {
  for (RunOutcome o : {RunOutcome::kSucceeded, RunOutcome::kDiverged, RunOutcome::kStopped})
    EXPECT_EQ(parse_outcome(outcome_name(o)), o);
  EXPECT_EQ(exit_code_of(RunOutcome::kSucceeded), kExitSucceeded);
  EXPECT_EQ(exit_code_of(RunOutcome::kDiverged), kExitDiverged);
  EXPECT_EQ(exit_code_of(RunOutcome::kStopped), kExitStopped);
  EXPECT_EQ(exit_code_of([]() -> int {
              throw ConfigError({ConfigProblem{"model.hidden", "must be > 0"}});
            }),
            kExitBadConfig);
  EXPECT_EQ(exit_code_of([]() -> int { throw std::runtime_error("disk"); }), kExitError);
  EXPECT_EQ(exit_code_of([] { return 7; }), 7);
}

}  // namespace

namespace {

// The summary the trainer writes reads back as the RunSummary it came from: the analysis reads
// these fields, not JSON keys.
TEST(RunRecords, ASummaryReadsBackAsTheRunSummaryItWasWrittenFrom) {
  RunSummary s;
  s.outcome = RunOutcome::kSucceeded;
  s.steps_completed = 400;
  s.final_val_loss = 3.25;
  s.final_val_ppl = std::exp(3.25);
  s.loss_spikes = {{10, 12, 9.5, 20, 3.0}};
  s.targets = {{4.0, true, 120.5, 61696000, 33.2, 1.5e15}, {3.0, false, 0, 0, 0, 0}};
  s.peak_memory_bytes = 123456789;
  s.tokens_seen = 204800000;
  s.inference_tokens_per_second = 812.5;
  s.dataset_id = "abc";
  s.dataset_source = "fineweb";
  s.dataset_train_tokens = 1000;
  s.flops.train_per_token = 6e8;
  s.flops.optimizer_per_step = 1.25e9;
  s.trainer_commit = "0123456789abcdef0123456789abcdef01234567";
  s.trainer_dirty = true;
  s.trainer_binary_sha256 = "ab12";
  const RunSummary back = summary_from_json(to_json(s));
  EXPECT_EQ(back.trainer_commit, s.trainer_commit);
  EXPECT_TRUE(back.trainer_dirty);
  EXPECT_EQ(back.trainer_binary_sha256, "ab12");
  EXPECT_EQ(back.outcome, s.outcome);
  EXPECT_EQ(back.steps_completed, 400);
  EXPECT_EQ(back.final_val_loss, 3.25);
  ASSERT_EQ(back.loss_spikes.size(), 1u);
  EXPECT_EQ(back.loss_spikes[0].peak_step, 12);
  ASSERT_EQ(back.targets.size(), 2u);
  EXPECT_TRUE(back.targets[0].reached);
  EXPECT_EQ(back.targets[0].tokens, 61696000);
  EXPECT_FALSE(back.targets[1].reached);
  EXPECT_TRUE(std::isnan(back.targets[1].tokens)) << "not reached: no number";
  EXPECT_EQ(back.peak_memory_bytes, 123456789u);
  EXPECT_EQ(back.tokens_seen, 204800000);
  EXPECT_EQ(back.inference_tokens_per_second, 812.5);
  EXPECT_EQ(back.dataset_source, "fineweb");
  EXPECT_EQ(back.flops.train_per_token, 6e8);
  EXPECT_EQ(back.flops.optimizer_per_step, 1.25e9);
  EXPECT_EQ(back.targets[0].flops, 1.5e15);
  // A summary from before the optimizer's FLOPs were counted: FLOPs to target unknown, not low.
  nlohmann::json older = to_json(s);
  older.erase("optimizer_flops_per_step");
  const RunSummary old = summary_from_json(older);
  EXPECT_TRUE(std::isnan(old.flops.optimizer_per_step));
  EXPECT_TRUE(std::isnan(old.targets[0].flops));
  EXPECT_EQ(old.targets[0].tokens, 61696000) << "only the FLOPs are unknown";
  nlohmann::json broken = to_json(s);
  broken["peak_memory_bytes"] = "lots";
  EXPECT_THROW(summary_from_json(broken), RunRecordError);
}

}  // namespace
