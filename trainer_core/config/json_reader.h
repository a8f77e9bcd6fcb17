// Reads a JSON object into plain fields while collecting every problem with its dotted path:
// wrong types, and (at finish()) keys that no field claimed, so a typo never passes silently.
#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "trainer_core/config/train_config.h"

namespace trainer_core {

class JsonReader {
 public:
  JsonReader(const nlohmann::json& j, std::string path, std::vector<ConfigProblem>& problems);
  // A value outside a choice's names goes to `value_problems` instead: the value keeps its default
  // so that the rest of the config can still be checked and every problem reported at once.
  void report_values_to(std::vector<ConfigProblem>* value_problems) {
    value_problems_ = value_problems;
  }
  bool has(const char* key) const { return object_ && object_->contains(key); }
  template <typename T>
  void read(const char* key, T& out);
  // A choice, by one of its names (config_enums.h).
  template <ConfigEnum E>
  void read(const char* key, E& out) {
    std::string name = name_of(out);
    const size_t before = problems_.size();
    read(key, name);
    if (problems_.size() != before) return;  // not a string: said already
    if (const auto value = parse_name<E>(name))
      out = *value;
    else
      (value_problems_ ? *value_problems_ : problems_)
          .push_back({key_path(key), "must be one of " + names_list<E>() + ", got '" + name + "'"});
  }
  JsonReader child(const char* key);                     // a nested object (absent: reads nothing)
  void claim(const char* key) { claimed_.insert(key); }  // read by the caller itself
  void finish();                                         // reports unknown keys

 private:
  std::string key_path(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }
  void problem(const std::string& key, const std::string& message) {
    problems_.push_back({key_path(key), message});
  }
  const nlohmann::json* object_ = nullptr;
  std::string path_;
  std::vector<ConfigProblem>& problems_;
  std::vector<ConfigProblem>* value_problems_ = nullptr;
  std::set<std::string> claimed_;
};

// YAML -> JSON with YAML 1.2 core scalars (unquoted true/false/null/numbers), quoted = string.
// Documents larger than this, or with more than 100,000 nodes once YAML aliases are expanded,
// nested deeper than 64 levels or holding a scalar over 64 KiB, are refused with a problem that
// names the limit (a hostile sweep file must not take the coordinator's memory or time).
constexpr size_t kMaxDocumentBytes = 1 << 20;
nlohmann::json yaml_to_json(const std::string& text, const std::string& source_name);
nlohmann::json parse_json_document(const std::string& text, const std::string& source_name);
// Parses a .json, .yaml or .yml file; syntax errors become a ConfigError naming the file/line.
nlohmann::json read_config_document(const std::string& path);

// Sets the value at a dotted path ("optimizer.muon.ns_steps"), creating objects on the way; an
// object value merges into an existing object (so {optimizer: {lr: 1e-2}} keeps the optimizer's
// other fields). Used by sweep expansion and `trainer --set`. Throws std::invalid_argument for a
// path with an empty key ("a..b").
void set_dotted_path(nlohmann::json& doc, const std::string& path, const nlohmann::json& value);

}  // namespace trainer_core
