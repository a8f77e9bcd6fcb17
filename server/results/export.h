// A sweep's data for analysis outside the service (pandas, R, a spreadsheet), in long format:
//   curves:    job, label, seed, state, <config columns>, step, metric, value
//              every stored point of every metric: train_loss, lr, grad_norm, tokens, elapsed_s,
//              val_loss (eval steps) and each named metric, at full resolution
//   summaries: job, label, seed, state, <config columns>, then the run summary's fields
//              flattened to dotted names, with target crossings as to_target_<L>.<field>
// Config columns are the config paths whose values differ between the sweep's jobs (what the
// grid and ablations vary), by dotted path ("optimizer.name", "training.batch_tokens").
// CSV quotes per RFC 4180; JSON lines hold one object per row with the same keys. A missing
// value (a non-finite number, a field a run does not have) is empty in CSV and null in JSON.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "server/storage/metric_store.h"
#include "server/storage/sweep_store.h"

namespace server {

enum class ExportTable { kCurves, kSummaries };
enum class ExportFormat { kCsv, kJsonl };

std::optional<ExportTable> parse_export_table(std::string_view name);    // curves | summaries
std::optional<ExportFormat> parse_export_format(std::string_view name);  // csv | jsonl

// Writes the table to `sink` in pieces of a few hundred KiB (rows are never split), job by job,
// so that a sweep of any size streams in bounded memory.
void export_sweep(SweepStore& sweeps, MetricStore& metrics, const SweepRow& sweep,
                  ExportTable table, ExportFormat format,
                  const std::function<void(const std::string&)>& sink);

}  // namespace server
