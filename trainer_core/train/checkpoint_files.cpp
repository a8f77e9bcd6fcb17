#include "trainer_core/train/checkpoint_files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <stdexcept>
#include <utility>

namespace trainer_core {

namespace fs = std::filesystem;

namespace {
constexpr const char* kKeepRequestsFile = "keep-steps";
}  // namespace

std::string checkpoint_path(const std::string& dir) {
  return (fs::path(dir) / "checkpoint.bin").string();
}

std::string kept_checkpoint_path(const std::string& dir, int64_t step) {
  return (fs::path(dir) / ("checkpoint-step-" + std::to_string(step) + ".bin")).string();
}

std::vector<int64_t> kept_checkpoint_steps(const std::string& dir) {
  static const std::regex kKept("checkpoint-step-([0-9]{1,18})\\.bin");
  std::vector<int64_t> steps;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (std::regex_match(name, m, kKept)) steps.push_back(std::stoll(m[1]));
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

std::vector<int64_t> kept_checkpoint_requests(const std::string& dir) {
  std::ifstream in(fs::path(dir) / kKeepRequestsFile);
  std::vector<int64_t> steps;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line.size() > 18 || !std::all_of(line.begin(), line.end(), ::isdigit))
      continue;
    steps.push_back(std::stoll(line));
  }
  std::sort(steps.begin(), steps.end());
  steps.erase(std::unique(steps.begin(), steps.end()), steps.end());
  return steps;
}

void request_kept_checkpoint(const std::string& dir, int64_t step) {
  static std::mutex writing;  // read, merge and rename as one step
  std::lock_guard<std::mutex> lock(writing);
  std::vector<int64_t> steps = kept_checkpoint_requests(dir);
  if (std::binary_search(steps.begin(), steps.end(), step)) return;
  steps.insert(std::upper_bound(steps.begin(), steps.end(), step), step);
  fs::create_directories(dir);
  const fs::path target = fs::path(dir) / kKeepRequestsFile;
  const fs::path tmp = target.string() + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (int64_t s : steps) out << s << '\n';
    out.flush();
    if (!out) throw std::runtime_error("cannot write " + tmp.string() + " (disk full?)");
  }
  fs::rename(tmp, target);
}

KeepRequests::KeepRequests(std::string dir)
    : dir_(std::move(dir)), file_((fs::path(dir_) / kKeepRequestsFile).string()) {}

bool KeepRequests::wants(int64_t step) {
  struct stat st {};
  if (::stat(file_.c_str(), &st) == 0) {
    const std::string version =
        std::to_string(st.st_ino) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
        std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_size);
    if (version != seen_) {
      steps_ = kept_checkpoint_requests(dir_);
      seen_ = version;
    }
  }
  return std::binary_search(steps_.begin(), steps_.end(), step);
}

}  // namespace trainer_core
