// A webhook receiver for tests: a real HTTP server on 127.0.0.1 (cpp-httplib) that records every
// POST body and answers as told: 500 to the first `fail_first` requests, and after `delay` (a
// slow receiver) when asked. Started on construction on a free port, stopped on destruction.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace test_webhook {

class Receiver {
 public:
  explicit Receiver(int fail_first = 0, std::chrono::milliseconds delay = {})
      : fail_first_(fail_first), delay_(delay) {
    server_.Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
      bool fail = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        fail = ++requests_ <= fail_first_;  // counted on arrival, a slow answer too
      }
      if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
      if (fail) {
        res.status = 500;
        return;
      }
      std::lock_guard<std::mutex> lock(mu_);
      bodies_.push_back(nlohmann::json::parse(req.body, nullptr, false));
      paths_.push_back(req.path);
      res.status = 200;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~Receiver() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_; }
  std::string url(const std::string& path = "/hook") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int requests() {  // every POST that arrived
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  // The bodies answered 200, in arrival order.
  std::vector<nlohmann::json> bodies() {
    std::lock_guard<std::mutex> lock(mu_);
    return bodies_;
  }
  std::vector<std::string> paths() {
    std::lock_guard<std::mutex> lock(mu_);
    return paths_;
  }

 private:
  httplib::Server server_;
  const int fail_first_;
  const std::chrono::milliseconds delay_;
  std::mutex mu_;
  int requests_ = 0;
  std::vector<nlohmann::json> bodies_;
  std::vector<std::string> paths_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace test_webhook
