#include "server/api/api_query.h"

#include <algorithm>
#include <charconv>

namespace server {
namespace {

// The whole text as an integer, or nullopt (no sign games, no trailing bytes, no overflow).
bool parse_integer(const std::string& text, int64_t& out) {
  const char* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && p == end && !text.empty();
}

std::string quoted(const std::string& s) {
  constexpr size_t kShown = 40;  // a hostile value is not echoed whole
  return "'" + (s.size() > kShown ? s.substr(0, kShown) + "..." : s) + "'";
}

// The one value of `name`; nullptr when absent.
const std::string* single(const QueryParams& params, const char* name) {
  const auto [first, last] = params.equal_range(name);
  if (first == last) return nullptr;
  if (std::next(first) != last)
    throw BadRequest(std::string("query parameter ") + name + " is given more than once");
  return &first->second;
}

}  // namespace

int64_t path_id(const std::string& text, const char* what) {
  int64_t id = 0;
  if (!parse_integer(text, id) || id <= 0)
    throw BadRequest(std::string(what) + " id " + quoted(text) +
                     " is not a positive 64-bit integer");
  return id;
}

int64_t query_int64(const QueryParams& params, const char* name, int64_t fallback, int64_t lo,
                    int64_t hi) {
  const std::string* value = single(params, name);
  if (!value) return fallback;
  int64_t v = 0;
  if (!parse_integer(*value, v) || v < lo || v > hi)
    throw BadRequest(std::string("query parameter ") + name + "=" + quoted(*value) +
                     ": an integer in " + std::to_string(lo) + ".." + std::to_string(hi) +
                     " is expected");
  return v;
}

int query_int(const QueryParams& params, const char* name, int fallback, int lo, int hi) {
  return int(query_int64(params, name, fallback, lo, hi));
}

std::string query_text(const QueryParams& params, const char* name, size_t max_bytes) {
  const std::string* value = single(params, name);
  if (!value || value->empty() || value->size() > max_bytes)
    throw BadRequest(std::string("query parameter ") + name + " is required: 1.." +
                     std::to_string(max_bytes) + " bytes");
  return *value;
}

std::vector<int64_t> query_ids(const QueryParams& params, const char* name, size_t max_ids) {
  const std::string* value = single(params, name);
  if (!value)
    throw BadRequest(std::string("query parameter ") + name + " is required: comma-separated ids");
  std::vector<int64_t> ids;
  for (size_t start = 0; start <= value->size();) {
    const size_t comma = std::min(value->find(',', start), value->size());
    if (ids.size() == max_ids)
      throw BadRequest(std::string("query parameter ") + name + ": at most " +
                       std::to_string(max_ids) + " ids");
    ids.push_back(path_id(value->substr(start, comma - start), name));
    start = comma + 1;
  }
  return ids;
}

}  // namespace server
