// The one check of a bearer token, for every door of the coordinator (gRPC, the dashboard's
// /api/, Prometheus' /metrics): with a token configured, a request must carry the header value
// "Bearer <token>". The comparison takes the same time wherever the first difference is, so the
// token cannot be guessed byte by byte from response times.
#pragma once

#include <string>
#include <string_view>

namespace server {

// True when no token is configured, or when authorization_header is "Bearer <token>".
bool bearer_token_accepted(std::string_view authorization_header, const std::string& token);

}  // namespace server
