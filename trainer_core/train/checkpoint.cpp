#include "trainer_core/train/checkpoint.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <type_traits>
#include <variant>

#include "trainer_core/train/record_fields.h"

namespace trainer_core {

namespace fs = std::filesystem;

namespace {

// Version 3: steps carry named metrics. Older files are refused by name (below).
constexpr char kMagic[8] = {'S', 'W', 'P', 'C', 'K', 'P', 'T', '3'};
constexpr char kMagicStem[7] = {'S', 'W', 'P', 'C', 'K', 'P', 'T'};

class Writer {
 public:
  explicit Writer(std::ofstream& out) : out_(out) {}
  template <typename T>
  void pod(const T& v) {
    out_.write(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void string(const std::string& s) {
    pod(uint64_t(s.size()));
    out_.write(s.data(), std::streamsize(s.size()));
  }
  template <typename T>
  void vec(const std::vector<T>& v) {
    pod(uint64_t(v.size()));
    out_.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * sizeof(T)));
  }
  void text(const std::string& s) { string(s); }
  void length(uint64_t n, uint64_t) { pod(n); }
  void detector(const SpikeDetector::State& s) {
    vec(s.window);
    vec(s.spikes);
    pod(s.in_spike);
  }
  void device(Backend& backend, const float* data, size_t n, const char*) {
    std::vector<float> host(n);
    backend.download(host.data(), data, n);
    vec(host);
  }
  void count(uint64_t n, const char*) { pod(n); }

 private:
  std::ofstream& out_;
};

class Reader {
 public:
  // `in` is positioned after the magic; every length read later is checked against the bytes
  // the file still holds, so a damaged one is refused before anything is allocated for it.
  Reader(std::ifstream& in, const std::string& path) : in_(in), path_(path) {
    const std::streamoff here = in_.tellg();
    in_.seekg(0, std::ios::end);
    remaining_ = uint64_t(in_.tellg() - here);
    in_.seekg(here);
  }
  template <typename T>
  void pod(T& v) {
    read(&v, sizeof v);
  }
  std::string string() {
    uint64_t n = 0;
    pod(n);
    check_length(n, 1);
    std::string s(n, '\0');
    read(s.data(), n);
    return s;
  }
  template <typename T>
  void vec(std::vector<T>& v) {
    uint64_t n = 0;
    pod(n);
    check_length(n, sizeof(T));
    v.resize(n);
    read(v.data(), n * sizeof(T));
  }
  void text(std::string& s) { s = string(); }
  // A count of items of at least `item_bytes` each, checked against the file like any length.
  void length(uint64_t& n, uint64_t item_bytes) {
    pod(n);
    check_length(n, item_bytes);
  }
  void detector(SpikeDetector::State& s) {
    vec(s.window);
    vec(s.spikes);
    pod(s.in_spike);
  }
  void device(Backend& backend, float* data, size_t n, const char* what) {
    std::vector<float> host;
    vec(host);
    if (host.size() != n)
      throw std::runtime_error("checkpoint " + path_ + ": " + what + " has the wrong size");
    backend.upload(data, host.data(), n);
  }
  // The writer records a count; the reader checks it against the one expected.
  void count(uint64_t expected, const char* what) {
    uint64_t n = 0;
    pod(n);
    if (n != expected) throw std::runtime_error("checkpoint " + path_ + ": " + what + " mismatch");
  }

 private:
  void check_length(uint64_t count, uint64_t item_bytes) {
    if (count > remaining_ / item_bytes)
      throw std::runtime_error("checkpoint " + path_ + " is corrupt: a length of " +
                               std::to_string(count) + " items runs past the end of the file");
  }
  void read(void* dst, size_t n) {
    if (n > remaining_ || !in_.read(static_cast<char*>(dst), std::streamsize(n)))
      throw std::runtime_error("checkpoint " + path_ + " is truncated");
    remaining_ -= n;
  }
  std::ifstream& in_;
  std::string path_;
  uint64_t remaining_ = 0;
};

// A step of the replay history: its fields in the order of the step table (record_fields.h), then
// its named metrics.
template <typename Archive, typename Step>
void transfer_step(Archive& a, Step& m) {
  for (const RecordField<StepMetrics>& f : kStepFields)
    std::visit([&](auto member) { a.pod(m.*member); }, f.member);
  uint64_t n = m.metrics.size();
  a.length(n, 16);
  if constexpr (!std::is_const_v<Step>) m.metrics.resize(n);
  for (auto& v : m.metrics) {
    a.text(v.name);
    a.pod(v.value);
  }
}

// One description of the checkpoint layout after the header, used to write and to read, so the
// two can never disagree. Progress is const when writing.
template <typename Archive, typename Progress>
void transfer(Archive& a, Progress& progress, Gpt& model, Optimizer& optimizer, Backend& backend) {
  a.pod(progress.next_step);
  a.pod(progress.tokens_seen);
  a.pod(progress.elapsed_seconds);
  a.pod(progress.train_seconds);
  a.pod(progress.last_train_loss);
  a.vec(progress.evals);
  uint64_t steps = progress.history.size();
  a.length(steps, 8);
  if constexpr (!std::is_const_v<Progress>) progress.history.resize(steps);
  for (auto& m : progress.history) transfer_step(a, m);
  a.detector(progress.loss_detector);
  a.detector(progress.grad_norm_detector);
  a.device(backend, model.weights(), model.num_params(), "weights");
  auto state = optimizer.state();
  a.pod(*state.steps_taken);
  a.count(state.tensors.size(), "optimizer state");
  for (Tensor* t : state.tensors) a.device(backend, t->data(), t->size(), "optimizer state");
  for (double* s : state.scalars) a.pod(*s);
}

}  // namespace

void save_checkpoint(const std::string& path, const std::string& identity, Gpt& model,
                     Optimizer& optimizer, const TrainingProgress& progress, Backend& backend) {
  const fs::path target(path);
  if (target.has_parent_path()) fs::create_directories(target.parent_path());
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("checkpoint: cannot create " + tmp);
    Writer w(out);
    out.write(kMagic, sizeof kMagic);
    w.string(identity);
    transfer(w, progress, model, optimizer, backend);
    out.flush();
    if (!out) {
      out.close();
      fs::remove(tmp);
      throw std::runtime_error("checkpoint: writing " + tmp + " failed (disk full?)");
    }
  }
  fs::rename(tmp, path);
}

namespace {
// Past the magic (refused unless it is this layout's), at the identity.
void open_at_identity(std::ifstream& in, const std::string& path) {
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, kMagicStem, sizeof kMagicStem) != 0)
    throw std::runtime_error("checkpoint " + path + " is not a checkpoint file");
  if (magic[7] != kMagic[7])
    throw std::runtime_error("checkpoint " + path + " has layout version " +
                             std::string(1, magic[7]) + "; this trainer reads version " +
                             kMagic[7] + " (use another checkpoint_dir)");
}
}  // namespace

std::string checkpoint_identity(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("no checkpoint at " + path);
  open_at_identity(in, path);
  Reader r(in, path);
  return r.string();
}

bool load_checkpoint(const std::string& path, const std::string& identity, Gpt& model,
                     Optimizer& optimizer, TrainingProgress& progress, Backend& backend) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  open_at_identity(in, path);
  Reader r(in, path);
  if (r.string() != identity)
    throw std::runtime_error("checkpoint " + path +
                             " was written by a run with a different model, optimizer, data or "
                             "batch configuration; use another checkpoint_dir");
  transfer(r, progress, model, optimizer, backend);
  return true;
}

}  // namespace trainer_core
