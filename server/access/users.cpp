#include "server/access/users.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "trainer_core/util/sha256.h"

namespace server {

const char* role_name(Role role) {
  static const char* const kNames[] = {"admin", "researcher", "viewer", "worker"};
  return kNames[int(role)];  // in the enum's order
}

std::optional<Role> parse_role(std::string_view name) {
  for (Role r : kAllRoles)
    if (name == role_name(r)) return r;
  return std::nullopt;
}

std::string token_sha256(std::string_view token) {
  trainer_core::Sha256 h;
  h.update(token.data(), token.size());
  return h.hex();
}

namespace {
// RFC 7235: the scheme name is case-insensitive ("bearer", "BEARER"); one space follows it.
constexpr std::string_view kScheme = "bearer ";

bool has_bearer_scheme(std::string_view header) {
  if (header.size() < kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) return false;
  return true;
}

// Equal in time independent of where they differ (both are 64 hex digits here).
bool same_digest(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char difference = 0;
  for (size_t i = 0; i < a.size(); ++i) difference |= static_cast<unsigned char>(a[i] ^ b[i]);
  return difference == 0;
}

bool is_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.' &&
        c != '@')
      return false;
  return true;
}
}  // namespace

std::vector<UserDirectory::Entry> parse_users(const std::string& text, const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw std::invalid_argument(path + ": not YAML: " + e.what());
  }
  if (!root.IsMap() || !root["users"] || !root["users"].IsSequence())
    throw std::invalid_argument(path + ": expected a map with a list 'users'");
  std::vector<UserDirectory::Entry> out;
  std::map<std::string, Role> roles;  // a name may have several tokens (rotation), one role
  std::set<std::string> digests;
  int i = 0;
  for (const YAML::Node& u : root["users"]) {
    const std::string where = path + ": users[" + std::to_string(i++) + "]";
    if (!u.IsMap()) throw std::invalid_argument(where + ": expected {name, role, token_sha256}");
    for (const auto& kv : u) {
      const std::string key = kv.first.as<std::string>();
      if (key != "name" && key != "role" && key != "token_sha256")
        throw std::invalid_argument(where + ": unknown key '" + key +
                                    "' (name, role, token_sha256; a plain token is never stored: "
                                    "coordinator hash-token prints its SHA-256)");
    }
    const std::string name = u["name"] ? u["name"].as<std::string>() : "";
    if (!is_name(name))
      throw std::invalid_argument(where + ": name '" + name +
                                  "' must be 1-64 letters, digits, '-', '_', '.' or '@'");
    const auto role = parse_role(u["role"] ? u["role"].as<std::string>() : "");
    if (!role)
      throw std::invalid_argument(where + " (" + name +
                                  "): role must be admin, researcher, viewer or worker");
    std::string digest = u["token_sha256"] ? u["token_sha256"].as<std::string>() : "";
    for (char& c : digest) c = char(std::tolower(static_cast<unsigned char>(c)));
    if (digest.size() != 64 || digest.find_first_not_of("0123456789abcdef") != std::string::npos)
      throw std::invalid_argument(where + " (" + name +
                                  "): token_sha256 must be 64 hex digits (coordinator hash-token)");
    if (const auto [it, fresh] = roles.emplace(name, *role); !fresh && it->second != *role)
      throw std::invalid_argument(where + ": '" + name + "' is listed twice with different roles");
    if (!digests.insert(digest).second)
      throw std::invalid_argument(where + " (" + name + "): its token is another user's");
    UserDirectory::Entry entry;
    entry.user.name = name;
    entry.user.role = *role;
    entry.sha256 = digest;
    out.push_back(std::move(entry));
  }
  return out;
}

UserDirectory::UserDirectory(std::string users_file, const std::string& admin_token)
    : users_file_(std::move(users_file)),
      admin_sha256_(admin_token.empty() ? "" : token_sha256(admin_token)),
      entries_(std::make_shared<const std::vector<Entry>>()) {
  reload();
}

void UserDirectory::reload() {
  std::vector<Entry> entries;
  if (!users_file_.empty()) {
    std::ifstream in(users_file_);
    if (!in) throw std::invalid_argument("--users-file: cannot read " + users_file_);
    std::stringstream text;
    text << in.rdbuf();
    entries = parse_users(text.str(), users_file_);
  }
  if (!admin_sha256_.empty()) {
    for (const Entry& e : entries)
      if (e.user.name == "admin" || e.sha256 == admin_sha256_)
        throw std::invalid_argument(users_file_ +
                                    ": 'admin' and the --token's hash belong to the --token");
    Entry admin;
    admin.user.name = "admin";
    admin.user.role = Role::kAdmin;
    admin.sha256 = admin_sha256_;
    entries.push_back(std::move(admin));
  }
  trainer_core::MutexLock lock(mu_);
  entries_ = std::make_shared<const std::vector<Entry>>(std::move(entries));
}

bool UserDirectory::open() const {
  trainer_core::MutexLock lock(mu_);
  return entries_->empty();
}

size_t UserDirectory::size() const {
  trainer_core::MutexLock lock(mu_);
  return entries_->size();
}

std::optional<User> UserDirectory::authenticate(std::string_view header) const {
  std::shared_ptr<const std::vector<Entry>> entries;
  {
    trainer_core::MutexLock lock(mu_);
    entries = entries_;
  }
  if (entries->empty()) return User{"admin", Role::kAdmin};
  if (!has_bearer_scheme(header)) return std::nullopt;
  const std::string digest = token_sha256(header.substr(kScheme.size()));
  std::optional<User> found;
  for (const Entry& e : *entries)  // every entry, matched or not: the time says nothing
    if (same_digest(e.sha256, digest)) found = e.user;
  return found;
}

}  // namespace server
