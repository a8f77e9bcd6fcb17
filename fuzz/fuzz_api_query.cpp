// A dashboard API request target ("/api/...?query"), its query decoded by a parser (cpp-httplib's
// here; the door decodes with libmicrohttpd's) and read by our API: every parameter and id is a
// value or a BadRequest, never a crash or another exception.
#include <httplib.h>

#include <cstddef>
#include <cstdint>
#include <regex>
#include <string>

#include "server/api/api_query.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string target(reinterpret_cast<const char*>(data), size);
  const size_t question = target.find('?');
  const std::string path = target.substr(0, question);
  httplib::Params params;
  if (question != std::string::npos)
    httplib::detail::parse_query_text(target.substr(question + 1), params);
  try {
    server::query_int(params, "points", 500, 10, 10000);
  } catch (const server::BadRequest&) {
  }
  try {
    server::query_int(params, "limit", 50, 1, 500);
  } catch (const server::BadRequest&) {
  }
  try {
    server::query_int(params, "before", 0, 0, INT32_MAX);
  } catch (const server::BadRequest&) {
  }
  // The routes' id: digits after /api/sweeps/ or /api/runs/ (as the route's (\d+) captures).
  static const std::regex route(R"(/api/(?:sweeps|runs)/(\d+).*)");
  std::smatch m;
  if (std::regex_match(path, m, route)) {
    try {
      server::path_id(m[1], "sweep");
    } catch (const server::BadRequest&) {
    }
  }
  return 0;
}
