#include "trainer_core/config/json_reader.h"

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <fstream>
#include <sstream>

namespace trainer_core {

JsonReader::JsonReader(const nlohmann::json& j, std::string path,
                       std::vector<ConfigProblem>& problems)
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
  } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
    expected = "a list of integers";
    if (!v.is_array()) return false;
    out.clear();
    for (const auto& e : v) {
      if (!e.is_number_integer()) return false;
      out.push_back(e.get<int64_t>());
    }
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    expected = "a non-negative integer";
    if (!v.is_number_integer() ||
        (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0))
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
    problem(key,
            "must be " + expected + ", got " +
                (*object_)[key].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

template void JsonReader::read(const char*, bool&);
template void JsonReader::read(const char*, int&);
template void JsonReader::read(const char*, int64_t&);
template void JsonReader::read(const char*, uint64_t&);
template void JsonReader::read(const char*, double&);
template void JsonReader::read(const char*, std::string&);
template void JsonReader::read(const char*, std::vector<double>&);
template void JsonReader::read(const char*, std::vector<int64_t>&);

JsonReader JsonReader::child(const char* key) {
  claimed_.insert(key);
  static const nlohmann::json kNull;
  JsonReader child(has(key) ? (*object_)[key] : kNull, key_path(key), problems_);
  child.value_problems_ = value_problems_;
  return child;
}

void JsonReader::finish() {
  if (!object_) return;
  for (auto it = object_->begin(); it != object_->end(); ++it)
    if (!claimed_.count(it.key())) problem(it.key(), "unknown key");
}

size_t invalid_utf8_at(const std::string& s);  // below

namespace {

// A config or sweep document is small; these bounds keep a hostile one (a YAML alias bomb, a
// deeply nested list, a huge scalar) from taking memory or time. Exceeding one is a problem that
// names the limit.
constexpr size_t kMaxNodes = 100000;  // after alias expansion
constexpr int kMaxDepth = 64;
constexpr size_t kMaxScalarBytes = 64 << 10;

struct LimitExceeded {
  std::string what;
};

struct YamlConverter {
  size_t nodes = 0;

  nlohmann::json convert(const YAML::Node& node, int depth) {
    if (++nodes > kMaxNodes)
      throw LimitExceeded{"more than " + std::to_string(kMaxNodes) +
                          " nodes once anchors and aliases are expanded"};
    if (depth > kMaxDepth)
      throw LimitExceeded{"nested deeper than " + std::to_string(kMaxDepth) + " levels"};
    switch (node.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        return nullptr;
      case YAML::NodeType::Sequence: {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& e : node) arr.push_back(convert(e, depth + 1));
        return arr;
      }
      case YAML::NodeType::Map: {
        nlohmann::json obj = nlohmann::json::object();
        for (const auto& kv : node) obj[scalar(kv.first)] = convert(kv.second, depth + 1);
        return obj;
      }
      case YAML::NodeType::Scalar:
        break;
    }
    return scalar_value(node);
  }

  static std::string scalar(const YAML::Node& node) {
    std::string s = node.as<std::string>();
    if (s.size() > kMaxScalarBytes)
      throw LimitExceeded{"a scalar of " + std::to_string(s.size()) + " bytes, more than " +
                          std::to_string(kMaxScalarBytes)};
    // yaml-cpp decodes escapes and guesses UTF-16 from NUL bytes, so valid UTF-8 text can still
    // give an invalid value (found by fuzz/fuzz_train_config.cpp).
    if (const size_t at = invalid_utf8_at(s); at != std::string::npos)
      throw LimitExceeded{"a value at line " + std::to_string(node.Mark().line + 1) +
                          " that is not valid UTF-8 once YAML escapes are decoded"};
    return s;
  }

  static nlohmann::json scalar_value(const YAML::Node& node) {
    const std::string s = scalar(node);
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
};

void check_size(const std::string& text, const std::string& source_name) {
  if (text.size() > kMaxDocumentBytes)
    throw ConfigError(
        {ConfigProblem{source_name, "document of " + std::to_string(text.size()) +
                                        " bytes is larger than the limit of " +
                                        std::to_string(kMaxDocumentBytes) + " bytes"}});
}

// yaml-cpp parses recursively, so nesting deep enough to overflow its stack is refused before it
// parses: flow brackets open at once, columns of indentation, and "- " entries chained on one
// line (each opens a level) are bounded generously above kMaxDepth, which the conversion checks
// exactly. Brackets inside quotes are counted too: a false alarm needs 512 of them.
void check_yaml_nesting(const std::string& text, const std::string& source_name) {
  constexpr int kMaxRawNesting = 512;
  int flow = 0;
  size_t line = 1, column = 0, dashes = 0;
  bool leading = true;
  auto refuse = [&](const std::string& what) {
    throw ConfigError(
        {ConfigProblem{source_name, "refused: " + what + " at line " + std::to_string(line) +
                                        " (nesting deeper than " + std::to_string(kMaxDepth) +
                                        " levels is not accepted)"}});
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      column = dashes = 0;
      leading = true;
      continue;
    }
    if (leading && (c == ' ' || (c == '-' && i + 1 < text.size() && text[i + 1] == ' '))) {
      if (c == '-' && ++dashes > size_t(kMaxRawNesting))
        refuse("a chain of more than 512 \"- \" entries");
      if (++column > size_t(2 * kMaxRawNesting)) refuse("indentation past column 1024");
      continue;
    }
    leading = false;
    if (c == '[' || c == '{') {
      if (++flow > kMaxRawNesting) refuse("more than 512 open brackets");
    } else if ((c == ']' || c == '}') && flow > 0) {
      --flow;
    }
  }
}

}  // namespace

// Byte offset of the first invalid UTF-8 sequence, or npos. Config values end up in JSON, which
// cannot hold invalid UTF-8 (found by fuzz/fuzz_sweep_spec.cpp).
size_t invalid_utf8_at(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t extra = c < 0x80           ? 0
                         : (c >> 5) == 0x6  ? 1
                         : (c >> 4) == 0xE  ? 2
                         : (c >> 3) == 0x1E ? 3
                                            : 4;
    if (extra == 4 || (extra == 1 && c < 0xC2) || i + extra >= s.size() + (extra == 0 ? 1 : 0))
      return i;
    uint32_t cp = extra == 0 ? c : extra == 1 ? (c & 0x1F) : extra == 2 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k <= extra; ++k) {
      const auto next = static_cast<unsigned char>(s[i + k]);
      if ((next & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (next & 0x3F);
    }
    if ((extra == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
      return i;
    i += 1 + extra;
  }
  return std::string::npos;
}

nlohmann::json yaml_to_json(const std::string& text, const std::string& source_name) {
  check_size(text, source_name);
  if (const size_t at = invalid_utf8_at(text); at != std::string::npos)
    throw ConfigError(
        {ConfigProblem{source_name, "not valid UTF-8 at byte " + std::to_string(at)}});
  check_yaml_nesting(text, source_name);
  try {
    YamlConverter converter;
    return converter.convert(YAML::Load(text), 0);
  } catch (const YAML::Exception& e) {
    throw ConfigError({ConfigProblem{
        source_name, "YAML syntax error at line " + std::to_string(e.mark.line + 1) + ", column " +
                         std::to_string(e.mark.column + 1) + ": " + e.msg}});
  } catch (const LimitExceeded& e) {
    throw ConfigError({ConfigProblem{source_name, "refused: " + e.what}});
  }
}

nlohmann::json parse_json_document(const std::string& text, const std::string& source_name) {
  check_size(text, source_name);
  size_t nodes = 0;
  try {
    return nlohmann::json::parse(
        text, [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
          if (depth > kMaxDepth)
            throw LimitExceeded{"nested deeper than " + std::to_string(kMaxDepth) + " levels"};
          if (++nodes > 4 * kMaxNodes)
            throw LimitExceeded{"more than " + std::to_string(kMaxNodes) + " nodes"};
          return true;
        });
  } catch (const nlohmann::json::exception& e) {  // syntax, and numbers out of range (fuzzing)
    throw ConfigError({ConfigProblem{source_name, std::string("JSON syntax error: ") + e.what()}});
  } catch (const LimitExceeded& e) {
    throw ConfigError({ConfigProblem{source_name, "refused: " + e.what}});
  }
}

void set_dotted_path(nlohmann::json& doc, const std::string& path, const nlohmann::json& value) {
  nlohmann::json* node = &doc;
  for (size_t start = 0;;) {
    const size_t dot = path.find('.', start);
    const std::string key =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (key.empty()) throw std::invalid_argument("\"" + path + "\": an empty key in a dotted path");
    if (!node->is_object()) *node = nlohmann::json::object();
    node = &(*node)[key];
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (value.is_object() && node->is_object())
    node->merge_patch(value);
  else
    *node = value;
}

nlohmann::json read_config_document(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError({ConfigProblem{path, "cannot read file"}});
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const bool yaml = path.ends_with(".yaml") || path.ends_with(".yml");
  if (yaml) return yaml_to_json(text, path);
  return parse_json_document(text, path);
}

}  // namespace trainer_core
