// Who is calling: the users file maps each token to a user and a role, and every door asks this
// directory who an "authorization: Bearer <token>" header belongs to.
//
// The users file (YAML; docs/deploy.md, "A team on one coordinator"):
//   users:
//     - {name: alice, role: researcher, token_sha256: <64 hex digits>}
//     - {name: node-pool, role: worker, token_sha256: <...>}
// Roles: admin (everything), researcher (submit; cancel and retry only their own sweeps; read
// all), viewer (read only), worker (the worker API only). Tokens are stored as SHA-256 hex, never
// in plain text (`coordinator hash-token` prints a token's); a header is hashed and compared with
// every entry in constant time, whatever matches. The single --token (or SWEEP_TOKEN) keeps
// working as one admin, named "admin". With neither, every caller is that admin (loopback only:
// listen_policy.h). A name may be listed with several tokens (one role): a rotation adds the new
// token, then removes the old one.
//
// Threads: reload() swaps the whole directory at once (on SIGHUP); a lookup sees the old or the
// new one, never a mix, and connections are not dropped.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trainer_core/util/thread_annotations.h"

namespace server {

enum class Role { kAdmin, kResearcher, kViewer, kWorker };
constexpr Role kAllRoles[] = {Role::kAdmin, Role::kResearcher, Role::kViewer, Role::kWorker};
const char* role_name(Role role);  // "admin", "researcher", "viewer", "worker"
std::optional<Role> parse_role(std::string_view name);

struct User {
  std::string name;
  Role role = Role::kViewer;
};

// A token's SHA-256 as lowercase hex: what the users file stores.
std::string token_sha256(std::string_view token);

// Threads: authenticate() is called from every gRPC and HTTP thread at once, reload() from the
// coordinator's main thread on SIGHUP; a reload swaps the entries under mu_, and a caller keeps
// the snapshot it took. Lifetime: main() owns it; the gate holds it by reference.
class UserDirectory {
 public:
  // users_file: empty for none; admin_token: the --token, empty for none. Throws
  // std::invalid_argument naming the file, the entry and the problem.
  UserDirectory(std::string users_file, const std::string& admin_token);
  // Re-reads the users file; on a bad file keeps the current directory and throws.
  void reload() EXCLUDES(mu_);
  // The caller of an "authorization" header value; nullopt: no or an unknown token.
  std::optional<User> authenticate(std::string_view authorization_header) const EXCLUDES(mu_);
  // No token and no users: every caller is the admin (loopback only).
  bool open() const EXCLUDES(mu_);
  size_t size() const EXCLUDES(mu_);

  struct Entry {
    User user;
    std::string sha256;  // lowercase hex
  };

 private:
  std::string users_file_;
  std::string admin_sha256_;  // of --token; empty when none
  mutable trainer_core::Mutex mu_;
  std::shared_ptr<const std::vector<Entry>> entries_ GUARDED_BY(mu_);
};

// The entries of a users file's text (its path for messages); throws std::invalid_argument.
std::vector<UserDirectory::Entry> parse_users(const std::string& text, const std::string& path);

}  // namespace server
