#include "trainer_core/train/checkpoint.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace trainer_core {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'S', 'W', 'P', 'C', 'K', 'P', 'T', '1'};

class Writer {
 public:
  explicit Writer(std::ofstream& out) : out_(out) {}
  template <typename T>
  void pod(const T& v) { out_.write(reinterpret_cast<const char*>(&v), sizeof v); }
  void string(const std::string& s) {
    pod(uint64_t(s.size()));
    out_.write(s.data(), std::streamsize(s.size()));
  }
  template <typename T>
  void vec(const std::vector<T>& v) {
    pod(uint64_t(v.size()));
    out_.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * sizeof(T)));
  }
  void detector(const SpikeDetector::State& s) {
    vec(s.window);
    vec(s.spikes);
    pod(s.in_spike);
  }

 private:
  std::ofstream& out_;
};

class Reader {
 public:
  Reader(std::ifstream& in, const std::string& path) : in_(in), path_(path) {}
  template <typename T>
  void pod(T& v) { read(&v, sizeof v); }
  std::string string() {
    uint64_t n = 0;
    pod(n);
    check_size(n);
    std::string s(n, '\0');
    read(s.data(), n);
    return s;
  }
  template <typename T>
  void vec(std::vector<T>& v) {
    uint64_t n = 0;
    pod(n);
    check_size(n * sizeof(T));
    v.resize(n);
    read(v.data(), n * sizeof(T));
  }
  void detector(SpikeDetector::State& s) {
    vec(s.window);
    vec(s.spikes);
    pod(s.in_spike);
  }

 private:
  void check_size(uint64_t bytes) {
    if (bytes > (uint64_t(1) << 40)) throw std::runtime_error("checkpoint " + path_ + " is corrupt");
  }
  void read(void* dst, size_t n) {
    if (!in_.read(static_cast<char*>(dst), std::streamsize(n)))
      throw std::runtime_error("checkpoint " + path_ + " is truncated");
  }
  std::ifstream& in_;
  std::string path_;
};

void write_device(Writer& w, Backend& backend, const float* data, size_t n) {
  std::vector<float> host(n);
  backend.download(host.data(), data, n);
  w.vec(host);
}

void read_device(Reader& r, Backend& backend, float* data, size_t n, const std::string& what) {
  std::vector<float> host;
  r.vec(host);
  if (host.size() != n) throw std::runtime_error("checkpoint: " + what + " has the wrong size");
  backend.upload(data, host.data(), n);
}

}  // namespace

std::string checkpoint_path(const std::string& dir) { return (fs::path(dir) / "checkpoint.bin").string(); }

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
    w.pod(progress.next_step);
    w.pod(progress.tokens_seen);
    w.pod(progress.elapsed_seconds);
    w.pod(progress.train_seconds);
    w.pod(progress.last_train_loss);
    w.vec(progress.evals);
    w.detector(progress.loss_detector);
    w.detector(progress.grad_norm_detector);
    write_device(w, backend, model.weights(), model.num_params());
    auto state = optimizer.state();
    w.pod(*state.steps_taken);
    w.pod(uint64_t(state.tensors.size()));
    for (Tensor* t : state.tensors) write_device(w, backend, t->data(), t->size());
    for (double* s : state.scalars) w.pod(*s);
    out.flush();
    if (!out) {
      out.close();
      fs::remove(tmp);
      throw std::runtime_error("checkpoint: writing " + tmp + " failed (disk full?)");
    }
  }
  fs::rename(tmp, path);
}

bool load_checkpoint(const std::string& path, const std::string& identity, Gpt& model,
                     Optimizer& optimizer, TrainingProgress& progress, Backend& backend) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, kMagic, 8) != 0)
    throw std::runtime_error("checkpoint " + path + " is not a checkpoint file");
  Reader r(in, path);
  if (r.string() != identity)
    throw std::runtime_error("checkpoint " + path +
                             " was written by a run with a different model, optimizer, data or "
                             "batch configuration; use another checkpoint_dir");
  r.pod(progress.next_step);
  r.pod(progress.tokens_seen);
  r.pod(progress.elapsed_seconds);
  r.pod(progress.train_seconds);
  r.pod(progress.last_train_loss);
  r.vec(progress.evals);
  r.detector(progress.loss_detector);
  r.detector(progress.grad_norm_detector);
  read_device(r, backend, model.weights(), model.num_params(), "weights");
  auto state = optimizer.state();
  r.pod(*state.steps_taken);
  uint64_t count = 0;
  r.pod(count);
  if (count != state.tensors.size()) throw std::runtime_error("checkpoint " + path + ": optimizer state mismatch");
  for (Tensor* t : state.tensors) read_device(r, backend, t->data(), t->size(), "optimizer state");
  for (double* s : state.scalars) r.pod(*s);
  return true;
}

}  // namespace trainer_core
