// `trainer`: train one model from a config file, validate a config, or list presets.
//   trainer run CONFIG [--set path=value ...] [--jsonl FILE|-] [--summary FILE] [--quiet]
//   trainer validate CONFIG [--set path=value ...]
//   trainer presets
//   trainer generate CONFIG [--prompt TEXT] [--tokens N]
//   trainer coord-check CONFIG --widths 64,128,256 [--steps N] [--seeds N] [--json FILE]
//   trainer prepare-data INPUT... --out DIR [--tokenizer gpt2|byte] [--shard-tokens N] ...
// Exit codes (trainer_core/train/exit_codes.h): 0 succeeded, 1 runtime error, 2 bad config or
// flags, 3 diverged, 4 out of memory, 130 stopped.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "coord_check_output.h"
#include "progress_printer.h"
#include "trainer_core/backend/backend.h"
#include "trainer_core/config/json_reader.h"
#include "trainer_core/config/presets.h"
#include "trainer_core/config/train_config.h"
#include "trainer_core/data/prepare_data.h"
#include "trainer_core/train/coord_check.h"
#include "trainer_core/train/exit_codes.h"
#include "trainer_core/train/run_records.h"
#include "trainer_core/train/trainer.h"

namespace {

using namespace trainer_core;
using nlohmann::json;

std::atomic<bool> g_stop{false};
void request_stop(int) { g_stop = true; }

// "optimizer.muon.ns_steps=7": the value is read as a YAML scalar (number, bool or string).
void apply_override(json& doc, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError({ConfigProblem{"--set " + assignment, "expected path=value"}});
  const std::string path = assignment.substr(0, eq);
  try {
    set_dotted_path(doc, path, yaml_to_json(assignment.substr(eq + 1), "--set " + path));
  } catch (const std::invalid_argument& e) {
    throw ConfigError({ConfigProblem{"--set " + assignment, e.what()}});
  }
}

TrainConfig load_config(const std::string& path, const std::vector<std::string>& overrides) {
  json doc = read_config_document(path);
  for (const auto& o : overrides) apply_override(doc, o);
  try {
    return train_config_from_json(doc);
  } catch (ConfigError& e) {
    for (auto& p : e.problems) p.path = path + ": " + p.path;
    throw ConfigError(e.problems);
  }
}

RunOutcome run_command(const std::string& config_path, const std::vector<std::string>& overrides,
                       const std::string& jsonl_path, const std::string& summary_path, bool quiet) {
  const TrainConfig config = load_config(config_path, overrides);
  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);

  trainer_cli::ObserverList observers;
  const bool jsonl_stdout = jsonl_path == "-";
  // Progress goes to stderr so that stdout can carry JSON lines.
  trainer_cli::ProgressPrinter progress(stderr, isatty(fileno(stderr)) != 0);
  if (!quiet) observers.add(&progress);
  std::FILE* jsonl = nullptr;
  if (!jsonl_path.empty()) {
    jsonl = jsonl_stdout ? stdout : std::fopen(jsonl_path.c_str(), "w");
    if (!jsonl) throw std::runtime_error("cannot write " + jsonl_path);
  }
  RunRecordWriter writer(jsonl ? jsonl : stdout);
  if (jsonl) observers.add(&writer);

  Trainer trainer(config, &observers);
  const RunSummary summary = trainer.run(&g_stop);
  if (jsonl && !jsonl_stdout) std::fclose(jsonl);
  if (!summary_path.empty()) {
    std::ofstream out(summary_path);
    out << to_json(summary).dump(2) << "\n";
    if (!out) throw std::runtime_error("cannot write " + summary_path);
  }
  return summary.outcome;
}

// A progress line on a terminal: input read, tokens, throughput and time left.
void print_prepare_progress(const PrepareProgress& p) {
  const double mb = double(p.bytes_read) / 1e6, total = double(p.bytes_total) / 1e6;
  const double rate = p.seconds > 0 ? mb / p.seconds : 0;
  const double eta = rate > 0 ? (total - mb) / rate : 0;
  std::fprintf(stderr, "\rprepare-data: %.1f/%.1f MB  %.2fM tokens  %.1f MB/s  ETA %.0f s   ", mb,
               total, double(p.tokens) / 1e6, rate, eta);
  std::fflush(stderr);
}

int prepare_command(const PrepareOptions& options, bool quiet) {
  const bool tty = !quiet && ::isatty(STDERR_FILENO);
  const PrepareResult r = prepare_data(
      options, tty ? print_prepare_progress : std::function<void(const PrepareProgress&)>());
  if (tty) std::fprintf(stderr, "\n");
  std::printf(
      "%s: %s %lld train and %lld val tokens from %lld documents in %d shards; dataset %s\n",
      r.manifest_path.c_str(), r.up_to_date ? "up to date," : "wrote", (long long)r.train_tokens,
      (long long)r.val_tokens, (long long)r.documents, r.shards,
      r.dataset_id.substr(0, 16).c_str());
  return 0;
}

int coord_check_command(const std::string& config_path, const std::vector<std::string>& overrides,
                        const CoordCheckOptions& options, const std::string& json_path) {
  const TrainConfig config = load_config(config_path, overrides);
  TokenDataset dataset = TokenDataset::load(config.data);
  dataset.check(config.model.seq_len, config.model.vocab_size);
  const CoordCheckResult result = run_coord_check(config, dataset, options);
  const std::string label = std::string(name_of(config.model.parametrization)) + ", " +
                            name_of(config.optimizer.name) + ", lr " +
                            json(config.optimizer.lr).dump();
  trainer_cli::print_coord_check(stdout, result, label);
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << trainer_cli::coord_check_json(result, label).dump(2) << "\n";
    if (!out) throw std::runtime_error("cannot write " + json_path);
  }
  return 0;
}

// `trainer coord-check`: its options, into `coord` and `json_path`.
CLI::App* add_coord_check_command(CLI::App& app, std::string& config_path,
                                  std::vector<std::string>& overrides, CoordCheckOptions& coord,
                                  std::string& coord_json) {
  auto* coord_check = app.add_subcommand(
      "coord-check", "train a few steps at several widths; print how activations grow with width");
  coord_check->add_option("config", config_path, "config file (.json, .yaml or .yml)")->required();
  coord_check->add_option("--set", overrides, "override a field: path=value (repeatable)");
  coord_check->add_option("--widths", coord.widths, "model widths, increasing (64,128,256)")
      ->required()
      ->delimiter(',')
      ->check(CLI::Range(1, 1 << 16));
  coord_check->add_option("--steps", coord.steps, "optimizer steps before reading (default 5)")
      ->check(CLI::Range(1, 1000));
  coord_check->add_option("--seeds", coord.seeds, "seeds averaged (default 3)")
      ->check(CLI::Range(1, 100));
  coord_check->add_option("--json", coord_json, "also write the figures as JSON to FILE");
  return coord_check;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"trainer: train a decoder-only language model from a config file"};
  app.require_subcommand(1);
  std::string config_path, jsonl_path, summary_path;
  std::vector<std::string> overrides;
  bool quiet = false;

  auto* run = app.add_subcommand("run", "train the model a config file describes");
  run->add_option("config", config_path, "config file (.json, .yaml or .yml)")->required();
  run->add_option("--set", overrides, "override a field: path=value (repeatable)");
  run->add_option("--jsonl", jsonl_path,
                  "write step/eval/summary JSON lines to FILE ('-' = stdout)");
  run->add_option("--summary", summary_path, "write the run summary as JSON to FILE");
  run->add_flag("--quiet", quiet, "no progress output");

  auto* check = app.add_subcommand("validate", "check a config file and print it resolved");
  check->add_option("config", config_path, "config file (.json, .yaml or .yml)")->required();
  check->add_option("--set", overrides, "override a field: path=value (repeatable)");

  app.add_subcommand("presets", "list the model presets");

  std::string prompt = "The ";
  int gen_tokens = 64;
  auto* gen =
      app.add_subcommand("generate", "greedy generation with the KV cache from a run's checkpoint");
  gen->add_option("config", config_path,
                  "the run's config file (its training.checkpoint_dir is loaded)")
      ->required();
  gen->add_option("--set", overrides, "override a field: path=value (repeatable)");
  gen->add_option("--prompt", prompt, "prompt text");
  gen->add_option("--tokens", gen_tokens, "tokens to generate")->check(CLI::Range(1, 100000));

  CoordCheckOptions coord;
  std::string coord_json;
  CLI::App* coord_check = add_coord_check_command(app, config_path, overrides, coord, coord_json);

  PrepareOptions prepare;
  auto* prep = app.add_subcommand(
      "prepare-data", "tokenize text, .gz or JSON-lines corpora into train/val token shards");
  prep->add_option("inputs", prepare.inputs,
                   "input files (text, .gz, .jsonl with a \"text\" field) or gcide")
      ->required();
  prep->add_option("--out", prepare.out_dir, "output directory (shards and manifest.json)")
      ->required();
  prep->add_option("--tokenizer", prepare.tokenizer, "gpt2 or byte")
      ->check(CLI::IsMember({"gpt2", "byte"}));
  prep->add_option("--bpe-dir", prepare.bpe_dir, "directory of encoder.json and vocab.bpe");
  prep->add_option("--shard-tokens", prepare.shard_tokens, "tokens per shard (default 100,000,000)")
      ->check(CLI::Range(int64_t(1), int64_t(INT32_MAX)));
  prep->add_option("--val-fraction", prepare.val_fraction,
                   "share of documents for validation (default 0.005)")
      ->check(CLI::Range(1e-9, 0.999999));
  prep->add_option(
          "--text-documents", prepare.text_documents,
          "a text file is one document (file) or one per blank-line-separated block (paragraphs)")
      ->check(CLI::IsMember({"file", "paragraphs"}));
  prep->add_option("--val-split", prepare.val_split,
                   "validation by whole documents (documents) or the last tokens (tail)")
      ->check(CLI::IsMember({"documents", "tail"}));
  prep->add_option("--max-bytes", prepare.max_bytes, "read only the first N bytes of text (0: all)")
      ->check(CLI::Range(int64_t(0), INT64_MAX));
  prep->add_option("--threads", prepare.threads, "tokenizer threads (0: all cores)")
      ->check(CLI::Range(0, 1024));
  prep->add_flag("--quiet", quiet, "no progress output");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  return exit_code_of([&]() -> int {
    if (run->parsed())
      return exit_code_of(run_command(config_path, overrides, jsonl_path, summary_path, quiet));
    if (gen->parsed()) {
      const TrainConfig config = load_config(config_path, overrides);
      Trainer trainer(config, nullptr);
      GenerationStats stats;
      const std::string text = trainer.generate(prompt, gen_tokens, &stats);
      std::printf("%s%s\n", prompt.c_str(), text.c_str());
      std::fprintf(stderr,
                   "%d tokens, decoded at %.1f tokens/s after a %.1f ms prefill of %d prompt "
                   "tokens (batch 1), KV cache %.0f bytes/token (%s)\n",
                   stats.generated_tokens, stats.tokens_per_second, stats.prefill_seconds * 1e3,
                   stats.prompt_tokens, stats.cache_bytes_per_token,
                   config.model.attention == Attention::kMla ? "latent" : "keys and values");
      return 0;
    }
    if (prep->parsed()) return prepare_command(prepare, quiet);
    if (coord_check->parsed()) {
      if (const std::string problem = coord_check_options_problem(coord); !problem.empty()) {
        std::fprintf(stderr, "error: %s\n", problem.c_str());
        return 2;  // a bad flag
      }
      return coord_check_command(config_path, overrides, coord, coord_json);
    }
    if (check->parsed()) {
      const TrainConfig config = load_config(config_path, overrides);
      std::cout << to_json(config).dump(2) << "\n";
      std::fprintf(stderr, "training length: %s\n", training_length_text(config).c_str());
      return 0;
    }
    for (const auto& p : all_presets())
      std::printf("%-10s layers %2d hidden %4d heads %2d ffn %4d vocab %5d seq %4d lr %.1e\n",
                  p.name.c_str(), p.model.n_layer, p.model.hidden, p.model.n_head,
                  p.model.ffn_hidden, p.model.vocab_size, p.model.seq_len, p.adamw_lr);
    return 0;
  });
}
