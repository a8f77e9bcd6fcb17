// A fixture for tests of the coordinator's stores on a real SQLite file: a fresh directory and
// database per test, with one CPU worker "w" of 4 slots registered to lease jobs to.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "scratch_dir.h"
#include "server/storage/store.h"

class StoreWithWorker : public ::testing::Test {
 protected:
  explicit StoreWithWorker(std::string dir_prefix) : dir_prefix_(std::move(dir_prefix)) {}
  void SetUp() override {
    dir_ = fresh_test_dir(dir_prefix_);
    store_ = std::make_unique<server::Store>((dir_ / "s.db").string());
    server::WorkerRow w;
    w.id = "w";
    w.hostname = "h";
    w.backend = "cpu";
    w.slots = 4;
    w.devices_json = "[]";
    store_->workers.register_worker(w, {}, 1000, 60000);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string dir_prefix_;
  std::filesystem::path dir_;
  std::unique_ptr<server::Store> store_;
};
