// A proto message as the JSON the dashboard's /api/ serves and `sweepctl ... --format json` prints:
// the proto3 JSON mapping with proto field names, every field present (defaults included; an unset
// message field is null), enums by name, maps as objects, google.protobuf.Struct/Value as plain
// JSON, with two departures for the browser: int64 fields are JSON numbers, not strings (every
// int64 we send is below 2^53: ids, steps, tokens, milliseconds; a larger one is written as a
// string, as proto3 does), and a non-finite double is null. protobuf's own JSON parser reads this
// form back.
#pragma once

#include <google/protobuf/message.h>

#include <string>

namespace orchestrator_json {

std::string to_api_json(const google::protobuf::Message& message);

}  // namespace orchestrator_json
