// SHA-256 (OpenSSL's EVP), as lowercase hex: dataset manifests and provenance.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace trainer_core {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t bytes);
  std::string hex();  // finishes; the object is then spent

 private:
  struct Context;
  std::unique_ptr<Context> ctx_;
};

std::string sha256_hex(const std::string& data);
std::string sha256_file(const std::string& path);  // throws naming the path when unreadable

}  // namespace trainer_core
