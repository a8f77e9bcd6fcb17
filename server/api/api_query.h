// Typed reading of a dashboard API request: the id in its path and its query parameters. A bad
// value is a BadRequest naming the parameter, the value and what is allowed (the API answers 400),
// never a silent fallback or a 500.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace server {

struct BadRequest : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// What the HTTP door gives (http_door::QueryParams): every name=value pair of the query, decoded.
using QueryParams = std::multimap<std::string, std::string>;

// A positive id from the path ("sweep 12"); `what` names it in the error.
int64_t path_id(const std::string& text, const char* what);
// The integer parameter `name` in lo..hi, or `fallback` when absent; refused when given twice.
int query_int(const QueryParams& params, const char* name, int fallback, int lo, int hi);
// The same for a 64-bit integer (times in milliseconds).
int64_t query_int64(const QueryParams& params, const char* name, int64_t fallback, int64_t lo,
                    int64_t hi);
// The required text parameter `name`, 1..max_bytes bytes.
std::string query_text(const QueryParams& params, const char* name, size_t max_bytes);
// The required parameter `name` as comma-separated positive ids, 1..max_ids of them.
std::vector<int64_t> query_ids(const QueryParams& params, const char* name, size_t max_ids);

}  // namespace server
