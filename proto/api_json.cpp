#include "proto/api_json.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace orchestrator_json {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using nlohmann::json;

json message_json(const Message& message);

json int64_json(int64_t v) {
  constexpr int64_t kExact = int64_t(1) << 53;  // beyond this a JSON number loses digits
  return v > -kExact && v < kExact ? json(v) : json(std::to_string(v));
}
json double_json(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// Bytes (a run's log: not necessarily UTF-8) as standard base64, as protobuf's own JSON writes
// them.
std::string base64(const std::string& bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t v = 0;
    for (size_t k = 0; k < 3; ++k)
      v = (v << 8) | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0u);
    for (size_t k = 0; k < 4; ++k) out += k <= n ? kAlphabet[(v >> (18 - 6 * k)) & 63] : '=';
  }
  return out;
}

// One value of `field`: its index-th element when repeated, else the singular value.
json value_json(const Message& m, const FieldDescriptor* field, int index) {
  const Reflection* r = m.GetReflection();
  const bool rep = field->is_repeated();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return rep ? r->GetRepeatedInt32(m, field, index) : r->GetInt32(m, field);
    case FieldDescriptor::CPPTYPE_UINT32:
      return rep ? r->GetRepeatedUInt32(m, field, index) : r->GetUInt32(m, field);
    case FieldDescriptor::CPPTYPE_INT64:
      return int64_json(rep ? r->GetRepeatedInt64(m, field, index) : r->GetInt64(m, field));
    case FieldDescriptor::CPPTYPE_UINT64:
      return int64_json(
          int64_t(rep ? r->GetRepeatedUInt64(m, field, index) : r->GetUInt64(m, field)));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return double_json(rep ? r->GetRepeatedDouble(m, field, index) : r->GetDouble(m, field));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return double_json(rep ? r->GetRepeatedFloat(m, field, index) : r->GetFloat(m, field));
    case FieldDescriptor::CPPTYPE_BOOL:
      return rep ? r->GetRepeatedBool(m, field, index) : r->GetBool(m, field);
    case FieldDescriptor::CPPTYPE_ENUM:
      return (rep ? r->GetRepeatedEnum(m, field, index) : r->GetEnum(m, field))->name();
    case FieldDescriptor::CPPTYPE_STRING:
      if (field->type() == FieldDescriptor::TYPE_BYTES)
        return base64(rep ? r->GetRepeatedString(m, field, index) : r->GetString(m, field));
      return rep ? r->GetRepeatedString(m, field, index) : r->GetString(m, field);
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return message_json(rep ? r->GetRepeatedMessage(m, field, index) : r->GetMessage(m, field));
  }
  return nullptr;
}

json message_json(const Message& message) {
  const auto* descriptor = message.GetDescriptor();
  // Struct, Value, ListValue: protobuf's own mapping, which is plain JSON.
  if (descriptor->file()->package() == "google.protobuf") {
    std::string text;
    if (!google::protobuf::util::MessageToJsonString(message, &text).ok())
      throw std::runtime_error("to_api_json: cannot write " + descriptor->full_name());
    return json::parse(text);
  }
  const Reflection* r = message.GetReflection();
  json out = json::object();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    json& slot = out[field->name()];
    if (field->is_map()) {
      slot = json::object();
      for (int k = 0; k < r->FieldSize(message, field); ++k) {
        const Message& entry = r->GetRepeatedMessage(message, field, k);
        const auto* key_field = entry.GetDescriptor()->map_key();
        const json key = value_json(entry, key_field, 0);
        slot[key.is_string() ? key.get<std::string>() : key.dump()] =
            value_json(entry, entry.GetDescriptor()->map_value(), 0);
      }
    } else if (field->is_repeated()) {
      slot = json::array();
      for (int k = 0; k < r->FieldSize(message, field); ++k)
        slot.push_back(value_json(message, field, k));
    } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
               !r->HasField(message, field)) {
      slot = nullptr;
    } else {
      slot = value_json(message, field, 0);
    }
  }
  return out;
}

}  // namespace

std::string to_api_json(const google::protobuf::Message& message) {
  return message_json(message).dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace orchestrator_json
