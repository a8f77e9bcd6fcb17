#include "trainer_core/data/token_shards.h"

#include <fcntl.h>
#include <glob.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace trainer_core {

namespace fs = std::filesystem;

namespace {

class ShardFile final : public TokenSource {
 public:
  ShardFile(std::string path, int fd, size_t count)
      : path_(std::move(path)), fd_(fd), count_(count) {}
  ~ShardFile() override { ::close(fd_); }
  size_t size() const override { return count_; }
  const std::string& name() const override { return path_; }
  void read(size_t pos, size_t count, uint16_t* out) const override {
    if (pos + count > count_)
      throw std::runtime_error(path_ + ": read of tokens [" + std::to_string(pos) + ", " +
                               std::to_string(pos + count) + ") beyond its " +
                               std::to_string(count_) + " tokens");
    auto* dst = reinterpret_cast<char*>(out);
    size_t done = 0, bytes = count * sizeof(uint16_t);
    const off_t offset = off_t(kShardHeaderBytes + pos * sizeof(uint16_t));
    while (done < bytes) {
      const ssize_t got = ::pread(fd_, dst + done, bytes - done, offset + off_t(done));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) throw std::runtime_error(path_ + ": read error: " + std::strerror(errno));
      if (got == 0)
        throw std::runtime_error(path_ + ": truncated while reading (the file shrank?)");
      done += size_t(got);
    }
  }

 private:
  std::string path_;
  int fd_;
  size_t count_;
};

class MemoryTokens final : public TokenSource {
 public:
  MemoryTokens(std::vector<uint16_t> tokens, std::string name)
      : tokens_(std::move(tokens)), name_(std::move(name)) {}
  size_t size() const override { return tokens_.size(); }
  const std::string& name() const override { return name_; }
  void read(size_t pos, size_t count, uint16_t* out) const override {
    if (pos + count > tokens_.size()) throw std::runtime_error(name_ + ": read beyond its tokens");
    std::copy_n(tokens_.begin() + std::ptrdiff_t(pos), count, out);
  }

 private:
  std::vector<uint16_t> tokens_;
  std::string name_;
};

}  // namespace

std::shared_ptr<const TokenSource> open_shard(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(path + ": cannot open token shard: " + std::strerror(errno));
  int32_t header[256] = {};
  const ssize_t got = ::pread(fd, header, sizeof header, 0);
  const auto fail = [&](const std::string& message) {
    ::close(fd);
    throw std::runtime_error(path + ": " + message);
  };
  if (got != ssize_t(sizeof header))
    fail("not a token shard: " + std::to_string(std::max<ssize_t>(got, 0)) +
         " bytes, shorter than the " + std::to_string(kShardHeaderBytes) + "-byte header");
  if (header[0] != kShardMagic)
    fail("not a token shard: magic " + std::to_string(header[0]) + ", expected " +
         std::to_string(kShardMagic));
  if (header[1] != kShardVersion)
    fail("token shard version " + std::to_string(header[1]) + ", expected " +
         std::to_string(kShardVersion) + " (uint16 tokens)");
  if (header[2] < 0) fail("token shard header gives a negative token count");
  const size_t count = size_t(header[2]);
  std::error_code ec;
  const uintmax_t bytes = fs::file_size(path, ec);
  const uintmax_t expected = kShardHeaderBytes + count * sizeof(uint16_t);
  if (ec || bytes < expected)
    fail("truncated: the header says " + std::to_string(count) + " tokens (" +
         std::to_string(expected) + " bytes) but the file has " + std::to_string(ec ? 0 : bytes) +
         " bytes");
  return std::make_shared<ShardFile>(path, fd, count);
}

std::shared_ptr<const TokenSource> memory_tokens(std::vector<uint16_t> tokens, std::string name) {
  return std::make_shared<MemoryTokens>(std::move(tokens), std::move(name));
}

void write_shard(const std::string& path, const uint16_t* tokens, size_t count) {
  if (count > size_t(INT32_MAX))
    throw std::runtime_error(path + ": " + std::to_string(count) +
                             " tokens do not fit one shard (at most 2^31 - 1)");
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(tmp + ": cannot create: " + std::strerror(errno));
  int32_t header[256] = {};
  header[0] = kShardMagic;
  header[1] = kShardVersion;
  header[2] = int32_t(count);
  auto write_all = [&](const void* data, size_t bytes) {
    const char* p = static_cast<const char*>(data);
    while (bytes > 0) {
      const ssize_t n = ::write(fd, p, bytes);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const std::string reason = std::strerror(errno);
        ::close(fd);
        ::unlink(tmp.c_str());
        throw std::runtime_error(path + ": cannot write token shard: " + reason);
      }
      p += n;
      bytes -= size_t(n);
    }
  };
  write_all(header, sizeof header);
  write_all(tokens, count * sizeof(uint16_t));
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw std::runtime_error(path + ": cannot write token shard: " + std::strerror(errno));
  }
  fs::rename(tmp, path);
}

std::vector<std::string> expand_shard_spec(const std::string& spec, const std::string& field) {
  std::vector<std::string> out;
  std::error_code ec;
  if (fs::is_directory(spec, ec)) {
    for (const auto& entry : fs::directory_iterator(spec)) {
      const std::string name = entry.path().filename().string();
      if (entry.is_regular_file() && name.ends_with(".bin")) out.push_back(entry.path().string());
    }
    if (out.empty())
      throw std::runtime_error(field + ": directory " + spec + " holds no token shards (*.bin)");
  } else if (spec.find_first_of("*?[") != std::string::npos) {
    glob_t g{};
    if (::glob(spec.c_str(), 0, nullptr, &g) == 0)
      for (size_t i = 0; i < g.gl_pathc; ++i) out.push_back(g.gl_pathv[i]);
    ::globfree(&g);
    if (out.empty()) throw std::runtime_error(field + ": no token shard matches " + spec);
  } else {
    if (!fs::exists(spec, ec))
      throw std::runtime_error(field + ": " + spec + ": no such token shard");
    out.push_back(spec);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace trainer_core
