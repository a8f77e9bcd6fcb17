// The dashboard's files, built into the coordinator (server/api/embed_web.cmake).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace server {

struct WebAsset {
  std::string path;  // URL path without the leading slash ("index.html" is served at "/")
  const char* data;
  size_t size;
  const char* content_type;
};

const std::vector<WebAsset>& web_assets();

}  // namespace server
