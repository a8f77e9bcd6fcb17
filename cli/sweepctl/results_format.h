// Renders a sweep's results (ablation table and R_L(B)) as an aligned table, CSV, Markdown or
// LaTeX. Pure formatting, no I/O.
#pragma once

#include <string>

#include "orchestrator.pb.h"

namespace sweepctl {

enum class Format { kTable, kCsv, kMarkdown, kLatex };

Format parse_format(const std::string& name);  // throws std::invalid_argument
std::string format_results(const orchestrator::v1::GetResultsResponse& results, Format format);

}  // namespace sweepctl
