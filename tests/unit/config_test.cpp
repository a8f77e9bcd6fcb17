#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "alias_bomb.h"
#include "trainer_core/config/json_reader.h"
#include "trainer_core/config/train_config.h"

using namespace trainer_core;
using nlohmann::json;

namespace {

std::vector<std::string> problems_of(const json& j) {
  try {
    train_config_from_json(j);
  } catch (const ConfigError& e) {
    std::vector<std::string> out;
    for (const auto& p : e.problems) out.push_back(p.to_string());
    return out;
  }
  return {};
}

bool contains(const std::vector<std::string>& v, const std::string& needle) {
  for (const auto& s : v)
    if (s.find(needle) != std::string::npos) return true;
  return false;
}

TEST(Config, JsonRoundTripIsLossless) {
  TrainConfig c;
  c.name = "rt";
  c.seed = 42;
  c.optimizer.name = OptimizerKind::kMuon;
  c.optimizer.muon.ns_coefficients = NsCoefficientSet::kPolarExpress;
  c.optimizer.muon.ns_steps = 7;
  c.optimizer.muon.rms_matching = RmsMatching::kPerLayerDynamic;
  c.optimizer.adamw_lr = 1e-3;
  c.model.activation = Activation::kSwiglu;
  c.metrics.target_losses = {3.0, 2.5};
  const json j = to_json(c);
  const TrainConfig back = train_config_from_json(j);
  EXPECT_EQ(to_json(back), j);
}

// Every field is read, written and checked from one description (config_fields.h): whatever
// to_json writes reads back unchanged with no unknown key, and each written field's own rule
// names it by its path.
TEST(Config, OneFieldListReadsWritesAndChecksEveryField) {
  const json written = to_json(train_config_from_json(json::object()));  // the defaults, as read
  std::vector<std::string> paths;
  std::function<void(const json&, const std::string&)> leaves = [&](const json& j,
                                                                    const std::string& prefix) {
    for (const auto& [key, value] : j.items()) {
      if (value.is_object())
        leaves(value, prefix + key + ".");
      else
        paths.push_back(prefix + key);
    }
  };
  leaves(written, "");
  EXPECT_GE(paths.size(), 60u) << "every section's fields are written";
  EXPECT_EQ(to_json(train_config_from_json(written)), written);
  const std::vector<std::pair<std::string, json>> breaks = {{"threads", -1},
                                                            {"model.n_layer", 0},
                                                            {"model.norm", "batchnorm"},
                                                            {"optimizer.beta2", 1.0},
                                                            {"optimizer.muon.momentum", 1.0},
                                                            {"schedule.min_lr_ratio", 2.0},
                                                            {"training.grad_clip", -1},
                                                            {"data.tokenizer", "sentencepiece"},
                                                            {"metrics.diagnostics_every", -5}};
  for (const auto& [path, value] : breaks) {
    ASSERT_NE(std::find(paths.begin(), paths.end(), path), paths.end()) << path;
    json broken = written;
    set_dotted_path(broken, path, value);
    const auto p = problems_of(broken);
    EXPECT_TRUE(contains(p, path + ": must be")) << path << ": " << ::testing::PrintToString(p);
  }
}

TEST(Config, PresetFillsDimsAndLearningRate) {
  const TrainConfig c =
      train_config_from_json({{"model", {{"preset", "XS"}}},
                              {"data", {{"tokenizer", "gpt2"}}},
                              {"training", {{"batch_tokens", 8192}, {"micro_batch", 16}}}});
  EXPECT_EQ(c.model.hidden, 256);
  EXPECT_EQ(c.model.n_layer, 6);
  EXPECT_EQ(c.model.vocab_size, 50257);
  EXPECT_DOUBLE_EQ(c.optimizer.lr, 2.5e-3);
  const TrainConfig o = train_config_from_json(
      {{"model", {{"preset", "tiny"}, {"hidden", 64}}}, {"optimizer", {{"lr", 1e-3}}}});
  EXPECT_EQ(o.model.hidden, 64);  // explicit field beats the preset
  EXPECT_DOUBLE_EQ(o.optimizer.lr, 1e-3);
}

// A token budget gives each batch size its step count, so a batch sweep compares equal tokens.
TEST(Config, TokenBudgetSetsTheStepsForEachBatchSize) {
  for (int64_t batch : {2048, 8192}) {
    const TrainConfig c = train_config_from_json(
        {{"model", {{"preset", "tiny"}}},
         {"training", {{"max_tokens", 1 << 20}, {"batch_tokens", batch}, {"micro_batch", 16}}}});
    EXPECT_EQ(int64_t(c.training.max_steps) * batch, 1 << 20);
    EXPECT_NE(training_length_text(c).find("from training.max_tokens"), std::string::npos)
        << training_length_text(c);
    // The resolved config (max_steps written beside max_tokens) parses back to itself.
    EXPECT_EQ(to_json(train_config_from_json(to_json(c))), to_json(c));
  }
  EXPECT_TRUE(contains(problems_of({{"training", {{"max_tokens", 10000}, {"batch_tokens", 4096}}}}),
                       "training.max_tokens: must be a multiple of training.batch_tokens (4096)"));
  EXPECT_TRUE(contains(
      problems_of(
          {{"training", {{"max_tokens", 40960}, {"max_steps", 200}, {"batch_tokens", 4096}}}}),
      "training.max_steps: conflicts with training.max_tokens"));
  const TrainConfig steps = train_config_from_json({{"training", {{"max_steps", 30}}}});
  EXPECT_NE(training_length_text(steps).find("training.max_steps"), std::string::npos);
}

// An eval interval in tokens evaluates every batch size at the same token positions: each batch
// size gets its step interval, the resolved config parses back to itself, and an interval that
// would fall between steps, or an explicit eval_every that disagrees, is refused.
TEST(Config, EvalIntervalInTokensGivesEveryBatchSizeTheSameTokenPositions) {
  for (int64_t batch : {2048, 4096, 16384}) {
    const TrainConfig c = train_config_from_json({{"model", {{"preset", "tiny"}}},
                                                  {"training",
                                                   {{"max_tokens", 1 << 20},
                                                    {"batch_tokens", batch},
                                                    {"micro_batch", 16},
                                                    {"eval_every_tokens", 16384}}}});
    EXPECT_EQ(int64_t(c.training.eval_every) * batch, 16384) << batch;
    EXPECT_EQ(to_json(train_config_from_json(to_json(c))), to_json(c));
  }
  EXPECT_TRUE(contains(
      problems_of({{"training", {{"eval_every_tokens", 15000}, {"batch_tokens", 4096}}}}),
      "training.eval_every_tokens: must be a multiple of training.batch_tokens (4096), got 15000"));
  EXPECT_TRUE(
      contains(problems_of({{"training", {{"eval_every_tokens", 8192}, {"batch_tokens", 16384}}}}),
               "training.eval_every_tokens: must be a multiple of training.batch_tokens (16384)"));
  EXPECT_TRUE(contains(
      problems_of({{"training",
                    {{"eval_every_tokens", 40960}, {"eval_every", 7}, {"batch_tokens", 4096}}}}),
      "training.eval_every: conflicts with training.eval_every_tokens"));
  EXPECT_TRUE(contains(problems_of({{"training", {{"eval_every_tokens", -1}}}}),
                       "training.eval_every_tokens: must be >= 0 (0 = use training.eval_every)"));
}

// A Muon run's embeddings, head and norms train at the preset's AdamW lr unless told otherwise;
// tuning the Muon lr does not move them.
TEST(Config, MuonRunsKeepTheAdamWLearningRateForTheirAdamWParameters) {
  const TrainConfig muon = train_config_from_json(
      {{"model", {{"preset", "tiny"}}}, {"optimizer", {{"name", "muon"}, {"lr", 0.02}}}});
  EXPECT_DOUBLE_EQ(muon.optimizer.lr, 0.02);
  EXPECT_DOUBLE_EQ(muon.optimizer.adamw_lr, 3e-3);
  const TrainConfig given =
      train_config_from_json({{"optimizer", {{"name", "muon"}, {"lr", 0.02}, {"adamw_lr", 1e-3}}}});
  EXPECT_DOUBLE_EQ(given.optimizer.adamw_lr, 1e-3);
  const TrainConfig adamw = train_config_from_json(
      {{"optimizer", {{"name", "adamw"}, {"lr", 0.005}, {"adamw_lr", 1e-3}}}});
  EXPECT_DOUBLE_EQ(adamw.optimizer.adamw_lr, 0.005);  // an AdamW run trains everything at lr
}

TEST(Config, TrainingShardsComeWithValidationShards) {
  EXPECT_TRUE(contains(problems_of({{"data", {{"train", "/data/fineweb/train_*.bin"}}}}),
                       "data.val: data.train and data.val are given together"));
  const TrainConfig c =
      train_config_from_json({{"data", {{"train", "/d/train"}, {"val", "/d/val.bin"}}}});
  EXPECT_EQ(c.data.train, "/d/train");
  EXPECT_EQ(to_json(train_config_from_json(to_json(c))), to_json(c));
}

// A hostile document (an alias bomb, deep nesting, a huge scalar or file) is refused with the
// limit named, in bounded time and memory, never parsed whole.
TEST(Config, HostileDocumentsAreRefusedWithTheLimitNamed) {
  auto refusal = [](const std::function<void()>& parse) -> std::string {
    try {
      parse();
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  const std::string bomb = test_documents::yaml_alias_bomb();
  EXPECT_LT(bomb.size(), 1000u);
  EXPECT_NE(refusal([&] {
              yaml_to_json(bomb, "bomb.yaml");
            }).find("bomb.yaml: refused: more than 100000 nodes once anchors"),
            std::string::npos);
  EXPECT_NE(refusal([&] {
              yaml_to_json(std::string(100000, '[') + std::string(100000, ']'), "deep.yaml");
            }).find("deep.yaml: refused: more than 512 open brackets"),
            std::string::npos);
  std::string chain;
  for (int i = 0; i < 2000; ++i) chain += "- ";
  EXPECT_NE(refusal([&] { yaml_to_json(chain + "x\n", "dashes.yaml"); }).find("refused"),
            std::string::npos);
  EXPECT_NE(refusal([&] {
              yaml_to_json(std::string(70, '[') + "1" + std::string(70, ']'), "d.yaml");
            }).find("nested deeper than 64 levels"),
            std::string::npos);
  EXPECT_NE(refusal([&] {
              yaml_to_json("name: " + std::string(100000, 'x') + "\n", "long.yaml");
            }).find("a scalar of 100000 bytes"),
            std::string::npos);
  EXPECT_NE(refusal([&] {
              yaml_to_json(std::string(kMaxDocumentBytes + 1, '#'), "big.yaml");
            }).find("larger than the limit of 1048576 bytes"),
            std::string::npos);
  EXPECT_NE(refusal([&] {
              parse_json_document(std::string(500000, '[') + std::string(500000, ']'), "deep.json");
            }).find("deep.json: refused: nested deeper than 64 levels"),
            std::string::npos);
  // Invalid UTF-8 (found by fuzzing: JSON cannot hold it) is a problem with its place.
  EXPECT_NE(refusal([&] {
              yaml_to_json(
                  "name: a\xA0"
                  "b\n",
                  "bytes.yaml");
            }).find("bytes.yaml: not valid UTF-8 at byte 7"),
            std::string::npos);
  EXPECT_EQ(yaml_to_json("name: naïve 中文 🙂\n", "utf8.yaml")["name"], "naïve 中文 🙂");
  // Valid UTF-8 that yaml-cpp decodes into invalid bytes (a NUL makes it guess UTF-16; found by
  // fuzz_train_config, where the error message's JSON dump then threw past every handler).
  const std::string guessed_utf16("optimizer:\n  lr: l\0NNNN", 23);
  EXPECT_NE(refusal([&] {
              train_config_from_json(yaml_to_json(guessed_utf16, "nul.yaml"));
            }).find("nul.yaml: refused: a value at line"),
            std::string::npos);
  EXPECT_NE(refusal([&] {
              parse_json_document("{\"seed\": 11111111111111111e111111111}", "n.json");
            }).find("n.json: JSON syntax error"),
            std::string::npos);
  // An ordinary document is untouched by the limits.
  EXPECT_EQ(yaml_to_json("a: &x {b: [1, 2]}\nc: *x\n", "ok.yaml")["c"]["b"][1], 2);
}

TEST(Config, EveryProblemIsReportedWithItsPath) {
  const auto p = problems_of(
      {{"optimizer", {{"lr", -1}, {"muon", {{"ns_steps", 0}, {"ns_coefficients", "magic"}}}}},
       {"training", {{"batch_tokens", 1000}}},
       {"model", {{"heads", 4}}},
       {"metrics", {{"target_losses", {3.0, -1.0}}}}});
  EXPECT_TRUE(contains(p, "model.heads: unknown key")) << ::testing::PrintToString(p);
  // Type and unknown-key problems come first; range problems are reported once those are fixed.
  const auto q = problems_of(
      {{"optimizer", {{"lr", -1}, {"muon", {{"ns_steps", 0}, {"ns_coefficients", "magic"}}}}},
       {"training", {{"batch_tokens", 1000}}},
       {"metrics", {{"target_losses", {3.0, -1.0}}}}});
  EXPECT_TRUE(contains(q, "optimizer.lr: must be > 0"));
  EXPECT_TRUE(contains(q, "optimizer.muon.ns_steps: must be >= 1"));
  EXPECT_TRUE(contains(q, "optimizer.muon.ns_coefficients: must be one of"));
  EXPECT_TRUE(contains(q, "training.batch_tokens: must be a positive multiple of"));
  EXPECT_TRUE(contains(q, "metrics.target_losses[1]: must be > 0"));
  EXPECT_EQ(q.size(), 5u) << ::testing::PrintToString(q);
}

TEST(Config, PrecisionIsFp32OrBf16) {
  const auto p = problems_of({{"model", {{"precision", "fp16"}}}});
  EXPECT_TRUE(contains(p, "model.precision: must be one of fp32, bf16"))
      << ::testing::PrintToString(p);
  EXPECT_TRUE(problems_of({{"model", {{"precision", "bf16"}}}}).empty());
}

TEST(Config, AWsdScheduleNamesItsShapeAndMustFitTheRun) {
  EXPECT_TRUE(contains(problems_of({{"schedule", {{"kind", "step"}}}}),
                       "schedule.kind: must be one of cosine, wsd, constant"));
  EXPECT_TRUE(contains(problems_of({{"schedule", {{"kind", "wsd"}, {"decay_shape", "exp"}}}}),
                       "schedule.decay_shape: must be one of linear, cosine, one_minus_sqrt, "
                       "inverse_sqrt"));
  EXPECT_TRUE(contains(problems_of({{"schedule", {{"kind", "wsd"}, {"decay_fraction", 1.5}}}}),
                       "schedule.decay_fraction: must be in (0, 1]"));
  EXPECT_TRUE(contains(problems_of({{"schedule", {{"kind", "wsd"}, {"decay_fraction", 0}}}}),
                       "schedule.decay_fraction: must be > 0"));
  const auto crowded =
      problems_of({{"training", {{"max_steps", 100}}},
                   {"schedule", {{"kind", "wsd"}, {"warmup_steps", 30}, {"decay_fraction", 0.8}}}});
  EXPECT_TRUE(contains(crowded,
                       "schedule.decay_fraction: warm-up (30 steps) and decay (80 steps) "
                       "must fit in training.max_steps (100)"))
      << ::testing::PrintToString(crowded);
  EXPECT_TRUE(contains(
      problems_of(
          {{"schedule", {{"kind", "wsd"}, {"decay_shape", "inverse_sqrt"}, {"min_lr_ratio", 0}}}}),
      "schedule.min_lr_ratio: must be > 0 with decay_shape inverse_sqrt"));
  const TrainConfig c = train_config_from_json(
      {{"training", {{"max_steps", 100}}},
       {"schedule",
        {{"kind", "wsd"}, {"decay_fraction", 0.2}, {"decay_shape", "one_minus_sqrt"}}}});
  EXPECT_EQ(c.schedule.kind, ScheduleKind::kWsd);
  EXPECT_EQ(c.schedule.decay_shape, DecayShape::kOneMinusSqrt);
  EXPECT_EQ(c.decay_steps(), 20);
  EXPECT_EQ(to_json(c)["schedule"]["kind"], "wsd");  // written back by name
}

TEST(Config, TheMupOutputMultiplierIsPositiveAndMupOnly) {
  EXPECT_TRUE(contains(problems_of({{"model", {{"mup_output_multiplier", 2.0}}}}),
                       "model.mup_output_multiplier: applies only with model.parametrization mup"));
  EXPECT_TRUE(
      contains(problems_of({{"model", {{"parametrization", "mup"}, {"mup_output_multiplier", 0}}}}),
               "model.mup_output_multiplier: must be > 0"));
  EXPECT_TRUE(problems_of({{"model", {{"parametrization", "mup"}, {"mup_output_multiplier", 2.0}}}})
                  .empty());
}

TEST(Config, WrongTypesAreReported) {
  const auto p =
      problems_of({{"seed", "one"}, {"optimizer", {{"muon", {{"nesterov", 1}}}}}, {"model", 3}});
  EXPECT_TRUE(contains(p, "seed: must be a non-negative integer"));
  EXPECT_TRUE(contains(p, "optimizer.muon.nesterov: must be a boolean"));
  EXPECT_TRUE(contains(p, "model: must be an object"));
}

TEST(Config, TokenizerNeedsAMatchingVocabulary) {
  const auto p = problems_of({{"data", {{"tokenizer", "gpt2"}}}});
  EXPECT_TRUE(contains(p, "model.vocab_size: must be >= 50257 for tokenizer gpt2"));
}

TEST(Config, YamlScalarsFollowTheCoreSchema) {
  const json j = yaml_to_json("a: 3\nb: 2.5e-3\nc: true\nd: '7'\ne: [1, 2]\nf: hello\n", "t.yaml");
  EXPECT_EQ(j["a"], 3);
  EXPECT_DOUBLE_EQ(j["b"].get<double>(), 2.5e-3);
  EXPECT_EQ(j["c"], true);
  EXPECT_EQ(j["d"], "7");  // quoted stays a string
  EXPECT_EQ(j["e"], json::array({1, 2}));
  EXPECT_EQ(j["f"], "hello");
  const json words = yaml_to_json("a: nan\nb: inf\nc: 1x\nd: -2\n", "t.yaml");
  EXPECT_EQ(words["a"], "nan");  // a sweep may well be called "nan"
  EXPECT_EQ(words["b"], "inf");
  EXPECT_EQ(words["c"], "1x");
  EXPECT_EQ(words["d"], -2);
}

TEST(Config, YamlSyntaxErrorNamesFileAndLine) {
  try {
    yaml_to_json("a: 1\nb: [1, 2\n", "sweep.yaml");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("sweep.yaml"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("line"), std::string::npos);
  }
}

}  // namespace
