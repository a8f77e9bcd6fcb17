#include "api_query.h"

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

}  // namespace

int64_t path_id(const std::string& text, const char* what) {
  int64_t id = 0;
  if (!parse_integer(text, id) || id <= 0)
    throw BadRequest(std::string(what) + " id " + quoted(text) + " is not a positive 64-bit integer");
  return id;
}

int query_int(const QueryParams& params, const char* name, int fallback, int lo, int hi) {
  const auto [first, last] = params.equal_range(name);
  if (first == last) return fallback;
  if (std::next(first) != last) throw BadRequest(std::string("query parameter ") + name + " is given more than once");
  int64_t v = 0;
  if (!parse_integer(first->second, v) || v < lo || v > hi)
    throw BadRequest(std::string("query parameter ") + name + "=" + quoted(first->second) + ": an integer in " +
                     std::to_string(lo) + ".." + std::to_string(hi) + " is expected");
  return int(v);
}

}  // namespace server
