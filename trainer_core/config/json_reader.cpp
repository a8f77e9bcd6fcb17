#include "trainer_core/config/json_reader.h"

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <fstream>
#include <sstream>

namespace trainer_core {

JsonReader::JsonReader(const nlohmann::json& j, std::string path, std::vector<ConfigProblem>& problems)
    : path_(std::move(path)), problems_(problems) {
  if (j.is_object())
    object_ = &j;
  else if (!j.is_null())
    problems_.push_back({path_.empty() ? "(top level)" : path_, "must be an object"});
}

namespace {
template <typename T>
bool convert(const nlohmann::json& v, T& out, std::string& expected) {
  if constexpr (std::is_same_v<T, bool>) {
    expected = "a boolean";
    if (!v.is_boolean()) return false;
    out = v.get<bool>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    expected = "a string";
    if (!v.is_string()) return false;
    out = v.get<std::string>();
  } else if constexpr (std::is_same_v<T, double>) {
    expected = "a number";
    if (!v.is_number()) return false;
    out = v.get<double>();
  } else if constexpr (std::is_same_v<T, std::vector<double>>) {
    expected = "a list of numbers";
    if (!v.is_array()) return false;
    out.clear();
    for (const auto& e : v) {
      if (!e.is_number()) return false;
      out.push_back(e.get<double>());
    }
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    expected = "a non-negative integer";
    if (!v.is_number_integer() || (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0))
      return false;
    out = v.get<uint64_t>();
  } else {
    static_assert(std::is_integral_v<T>);
    expected = "an integer";
    if (!v.is_number_integer()) return false;
    const int64_t x = v.get<int64_t>();
    if (x < int64_t(std::numeric_limits<T>::min()) || x > int64_t(std::numeric_limits<T>::max()))
      return false;
    out = T(x);
  }
  return true;
}
}  // namespace

template <typename T>
void JsonReader::read(const char* key, T& out) {
  claimed_.insert(key);
  if (!has(key)) return;
  std::string expected;
  if (!convert((*object_)[key], out, expected))
    problem(key, "must be " + expected + ", got " + (*object_)[key].dump());
}

template void JsonReader::read(const char*, bool&);
template void JsonReader::read(const char*, int&);
template void JsonReader::read(const char*, int64_t&);
template void JsonReader::read(const char*, uint64_t&);
template void JsonReader::read(const char*, double&);
template void JsonReader::read(const char*, std::string&);
template void JsonReader::read(const char*, std::vector<double>&);

JsonReader JsonReader::child(const char* key) {
  claimed_.insert(key);
  static const nlohmann::json kNull;
  return JsonReader(has(key) ? (*object_)[key] : kNull, key_path(key), problems_);
}

void JsonReader::finish() {
  if (!object_) return;
  for (auto it = object_->begin(); it != object_->end(); ++it)
    if (!claimed_.count(it.key())) problem(it.key(), "unknown key");
}

namespace {
nlohmann::json yaml_node_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Sequence: {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& e : node) arr.push_back(yaml_node_to_json(e));
      return arr;
    }
    case YAML::NodeType::Map: {
      nlohmann::json obj = nlohmann::json::object();
      for (const auto& kv : node) obj[kv.first.as<std::string>()] = yaml_node_to_json(kv.second);
      return obj;
    }
    case YAML::NodeType::Scalar:
      break;
  }
  const std::string s = node.Scalar();
  if (node.Tag() == "!") return s;  // quoted: always a string
  if (s == "true" || s == "True") return true;
  if (s == "false" || s == "False") return false;
  if (s == "null" || s == "~") return nullptr;
  // Numbers: only digits, signs, '.', 'e' and the whole scalar (so "1e-3" is a number, while
  // "1x", "nan" and "inf" stay strings, as YAML 1.2's core schema has it).
  if (s.empty() || s.find_first_not_of("0123456789+-.eE") != std::string::npos) return s;
  try {
    size_t used = 0;
    const long long i = std::stoll(s, &used);
    if (used == s.size()) return i;
  } catch (...) {
  }
  try {
    size_t used = 0;
    const double d = std::stod(s, &used);
    if (used == s.size()) return d;
  } catch (...) {
  }
  return s;
}
}  // namespace

nlohmann::json yaml_to_json(const std::string& text, const std::string& source_name) {
  try {
    return yaml_node_to_json(YAML::Load(text));
  } catch (const YAML::Exception& e) {
    throw ConfigError({ConfigProblem{source_name, "YAML syntax error at line " + std::to_string(e.mark.line + 1) +
                                         ", column " + std::to_string(e.mark.column + 1) + ": " + e.msg}});
  }
}

nlohmann::json read_config_document(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError({ConfigProblem{path, "cannot read file"}});
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const bool yaml = path.ends_with(".yaml") || path.ends_with(".yml");
  if (yaml) return yaml_to_json(text, path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw ConfigError({ConfigProblem{path, std::string("JSON syntax error: ") + e.what()}});
  }
}

}  // namespace trainer_core
