// Who may do what: the users file, the token lookup and the policy's whole table.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "server/access/policy.h"
#include "server/access/users.h"

using namespace server;

namespace {

std::string users_yaml(
    const std::vector<std::tuple<std::string, std::string, std::string>>& users) {
  std::string out = "users:\n";
  for (const auto& [name, role, token] : users)
    out +=
        "  - {name: " + name + ", role: " + role + ", token_sha256: " + token_sha256(token) + "}\n";
  return out;
}

class UsersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = (std::filesystem::temp_directory_path() /
             ("users_test_" + std::to_string(getpid()) + ".yaml"))
                .string();
  }
  void TearDown() override { std::filesystem::remove(file_); }
  void write(const std::string& text) { std::ofstream(file_) << text; }
  std::string file_;
};

TEST_F(UsersTest, EachTokenIsItsUserAndOnlyItsHeaderPassesWithTheSchemeInAnyCase) {
  write(users_yaml({{"alice", "researcher", "alice-token"}, {"vic", "viewer", "vic-token"}}));
  const UserDirectory users(file_, "root-token");
  EXPECT_FALSE(users.open());
  EXPECT_EQ(users.size(), 3u);
  EXPECT_EQ(users.authenticate("Bearer alice-token")->name, "alice");
  EXPECT_EQ(users.authenticate("Bearer alice-token")->role, Role::kResearcher);
  EXPECT_EQ(users.authenticate("Bearer vic-token")->role, Role::kViewer);
  const auto admin = users.authenticate("Bearer root-token");  // --token: one admin
  ASSERT_TRUE(admin);
  EXPECT_EQ(admin->name, "admin");
  EXPECT_EQ(admin->role, Role::kAdmin);
  // RFC 7235: the scheme name is case-insensitive; some HTTP clients send it lower-case.
  for (const char* scheme : {"bearer ", "BEARER ", "bEaReR "})
    EXPECT_EQ(users.authenticate(std::string(scheme) + "alice-token")->name, "alice") << scheme;
  for (const char* wrong : {"", "Bearer", "Bearer ", "alice-token", "Bearer  alice-token",
                            "Bearer alice-tokem", "Bearer alice-token ", "Bearer alice-toke",
                            "Basic alice-token", "Bearer " /* empty token */})
    EXPECT_FALSE(users.authenticate(wrong)) << '"' << wrong << '"';
}

TEST_F(UsersTest, WithNoTokenAndNoUsersEveryCallerIsTheAdmin) {
  const UserDirectory users("", "");
  EXPECT_TRUE(users.open());
  EXPECT_EQ(users.authenticate("")->role, Role::kAdmin);
  // The --token alone: as before users existed, one admin token.
  const UserDirectory one("", "s3cret");
  EXPECT_FALSE(one.open());
  EXPECT_TRUE(one.authenticate("Bearer s3cret"));
  EXPECT_FALSE(one.authenticate(""));
}

TEST_F(UsersTest, ABadFileIsRefusedNamingTheEntryAndTheProblem) {
  const auto refusal = [&](const std::string& text) {
    write(text);
    try {
      UserDirectory users(file_, "");
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  const std::string hash = token_sha256("t");
  EXPECT_NE(refusal("users: [{name: a, role: researcher, token: plain}]")
                .find("users[0]: unknown key 'token'"),
            std::string::npos);
  EXPECT_NE(
      refusal("users: [{name: a, role: boss, token_sha256: " + hash + "}]").find("role must be"),
      std::string::npos);
  EXPECT_NE(refusal("users: [{name: a, role: viewer, token_sha256: abc}]").find("64 hex digits"),
            std::string::npos);
  EXPECT_NE(refusal("users: [{name: 'a b', role: viewer, token_sha256: " + hash + "}]")
                .find("name 'a b'"),
            std::string::npos);
  EXPECT_NE(refusal("users:\n  - {name: a, role: viewer, token_sha256: " + hash +
                    "}\n  - {name: b, role: admin, token_sha256: " + hash + "}\n")
                .find("users[1] (b): its token is another user's"),
            std::string::npos);
  EXPECT_NE(refusal("users:\n  - {name: a, role: viewer, token_sha256: " + hash +
                    "}\n  - {name: a, role: admin, token_sha256: " + token_sha256("u") + "}\n")
                .find("listed twice with different roles"),
            std::string::npos);
  EXPECT_NE(refusal("[1, 2").find("not YAML"), std::string::npos);
  EXPECT_NE(refusal("people: []").find("a list 'users'"), std::string::npos);
}

TEST_F(UsersTest, AUserMayHaveTwoTokensWhileOneIsRotated) {
  write(users_yaml({{"alice", "researcher", "old-token"}, {"alice", "researcher", "new-token"}}));
  const UserDirectory users(file_, "");
  EXPECT_EQ(users.authenticate("Bearer old-token")->name, "alice");
  EXPECT_EQ(users.authenticate("Bearer new-token")->name, "alice");
}

TEST_F(UsersTest, AReloadSwapsTheUsersAndABadOneKeepsThePrevious) {
  write(users_yaml({{"alice", "researcher", "alice-token"}}));
  UserDirectory users(file_, "");
  write(users_yaml({{"carol", "viewer", "carol-token"}}));
  users.reload();
  EXPECT_FALSE(users.authenticate("Bearer alice-token"));  // removed: refused from now on
  EXPECT_EQ(users.authenticate("Bearer carol-token")->name, "carol");
  write("users: [{name: x}]");
  EXPECT_THROW(users.reload(), std::invalid_argument);
  EXPECT_EQ(users.authenticate("Bearer carol-token")->name, "carol");
}

// The whole table: every role, every action, on its own sweep and on another's.
TEST(Policy, EveryRoleActionAndOwnershipAsDocumented) {
  struct Row {
    Role role;
    Action action;
    bool own;
    bool allowed;
  };
  const Row table[] = {
      // admin: everything, anyone's
      {Role::kAdmin, Action::kRead, false, true},
      {Role::kAdmin, Action::kSubmit, false, true},
      {Role::kAdmin, Action::kCancelSweep, false, true},
      {Role::kAdmin, Action::kRetrySweep, false, true},
      {Role::kAdmin, Action::kForkJob, false, true},
      {Role::kAdmin, Action::kDrainWorker, false, true},
      {Role::kAdmin, Action::kReadAudit, false, true},
      {Role::kAdmin, Action::kWorkerApi, false, true},
      {Role::kAdmin, Action::kWhoAmI, false, true},
      // researcher: read, submit, change only their own
      {Role::kResearcher, Action::kRead, false, true},
      {Role::kResearcher, Action::kSubmit, false, true},
      {Role::kResearcher, Action::kCancelSweep, true, true},
      {Role::kResearcher, Action::kCancelSweep, false, false},
      {Role::kResearcher, Action::kRetrySweep, true, true},
      {Role::kResearcher, Action::kRetrySweep, false, false},
      {Role::kResearcher, Action::kForkJob, true, true},
      {Role::kResearcher, Action::kForkJob, false, false},
      {Role::kResearcher, Action::kDrainWorker, false, false},
      {Role::kResearcher, Action::kReadAudit, false, false},
      {Role::kResearcher, Action::kWorkerApi, false, false},
      {Role::kResearcher, Action::kWhoAmI, false, true},
      // viewer: read only
      {Role::kViewer, Action::kRead, false, true},
      {Role::kViewer, Action::kSubmit, false, false},
      {Role::kViewer, Action::kCancelSweep, true, false},
      {Role::kViewer, Action::kRetrySweep, true, false},
      {Role::kViewer, Action::kForkJob, true, false},
      {Role::kViewer, Action::kDrainWorker, false, false},
      {Role::kViewer, Action::kReadAudit, false, false},
      {Role::kViewer, Action::kWorkerApi, false, false},
      {Role::kViewer, Action::kWhoAmI, false, true},
      // worker: the worker API only
      {Role::kWorker, Action::kRead, false, false},
      {Role::kWorker, Action::kSubmit, false, false},
      {Role::kWorker, Action::kCancelSweep, true, false},
      {Role::kWorker, Action::kRetrySweep, true, false},
      {Role::kWorker, Action::kForkJob, true, false},
      {Role::kWorker, Action::kDrainWorker, false, false},
      {Role::kWorker, Action::kReadAudit, false, false},
      {Role::kWorker, Action::kWorkerApi, false, true},
      {Role::kWorker, Action::kWhoAmI, false, true},
  };
  int rows_for[4][std::size(kAllActions)] = {};
  for (const Row& r : table) {
    const User user{"alice", r.role};
    const Decision d = decide(user, r.action, r.own ? "alice" : "bob");
    EXPECT_EQ(d.allowed, r.allowed) << role_name(r.role) << " " << action_name(r.action)
                                    << (r.own ? " own" : " other") << ": " << d.rule;
    EXPECT_EQ(d.rule.empty(), d.allowed) << "a refusal says its rule";
    ++rows_for[int(r.role)][int(r.action)];
  }
  for (Role role : kAllRoles)  // the table covers every pair
    for (Action action : kAllActions)
      EXPECT_GT(rows_for[int(role)][int(action)], 0)
          << role_name(role) << " " << action_name(action);
  // The rule names the owner, and a sweep from before users existed is no researcher's.
  EXPECT_NE(
      decide({"alice", Role::kResearcher}, Action::kCancelSweep, "bob").rule.find("belongs to bob"),
      std::string::npos);
  EXPECT_FALSE(decide({"alice", Role::kResearcher}, Action::kCancelSweep, "").allowed);
}

}  // namespace
