// The spill file: a job's oldest unsent metric points, appended in order as length-prefixed
// MetricPoint records while the coordinator is away or full, and read back from there first.
#include <spdlog/spdlog.h>

#include <fstream>

#include "daemon.h"
#include "running_job.h"

namespace worker {

// Moves the oldest half of the in-memory points to the job's spill file (append-only, in order).
void Daemon::spill(RunningJob& job) {
  const size_t n = job.points.size() / 2;
  std::ofstream out(job.spill_path, std::ios::binary | std::ios::app);
  std::string record;
  for (size_t i = 0; i < n; ++i) {
    job.points[i].SerializeToString(&record);
    const uint32_t size = uint32_t(record.size());
    out.write(reinterpret_cast<const char*>(&size), sizeof size);
    out.write(record.data(), std::streamsize(record.size()));
  }
  out.flush();
  if (!out) {  // cannot spill (disk full): keep them in memory rather than lose them
    spdlog::warn("worker {}: job {}: cannot spill metrics to {}; keeping them in memory",
                 options_.worker_id, job.job_id, job.spill_path);
    return;
  }
  job.spill_end = int64_t(std::filesystem::file_size(job.spill_path));
  job.spilled += int64_t(n);
  job.points.erase(job.points.begin(), job.points.begin() + std::ptrdiff_t(n));
  spdlog::info("worker {}: job {}: coordinator away, {} metric points spilled to {}",
               options_.worker_id, job.job_id, job.spilled, job.spill_path);
}

// Reads the next batch of spilled points into `req`; returns the file offset after them. Called
// with job.mu held (daemon.h says so to the compiler).
int64_t Daemon::read_spill(RunningJob& job, pb::ReportMetricsRequest& req) {
  std::ifstream in(job.spill_path, std::ios::binary);
  in.seekg(job.spill_sent_offset);
  int64_t offset = job.spill_sent_offset;
  std::string record;
  while (offset < job.spill_end && req.points_size() < options_.max_batch_points) {
    uint32_t size = 0;
    if (!in.read(reinterpret_cast<char*>(&size), sizeof size)) break;
    record.resize(size);
    if (!in.read(record.data(), std::streamsize(size))) break;
    if (!req.add_points()->ParseFromString(record)) break;
    offset += int64_t(sizeof size) + int64_t(size);
  }
  return offset;
}

}  // namespace worker
