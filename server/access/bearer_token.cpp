#include "server/access/bearer_token.h"

namespace server {

bool bearer_token_accepted(std::string_view authorization_header, const std::string& token) {
  if (token.empty()) return true;
  constexpr std::string_view kScheme = "Bearer ";
  if (authorization_header.size() != kScheme.size() + token.size()) return false;
  unsigned char difference = 0;
  for (size_t i = 0; i < authorization_header.size(); ++i) {
    const char expected = i < kScheme.size() ? kScheme[i] : token[i - kScheme.size()];
    difference |= static_cast<unsigned char>(authorization_header[i] ^ expected);
  }
  return difference == 0;
}

}  // namespace server
