// Strangers cannot grow the audit trail (server/api/stranger_ledger.h): per peer and minute, one
// row at once and one summary; over the limit, rate-limited until the minute ends.
#include "server/api/stranger_ledger.h"

#include <gtest/gtest.h>

using namespace server;

TEST(StrangerLedger, APeerGetsItsFirstRowAtOnceAndOneSummaryPerMinute) {
  StrangerLedger ledger(5);
  const int64_t t0 = 7 * StrangerLedger::kWindowMs + 1000;
  EXPECT_TRUE(ledger.refuse("ipv4:10.0.0.1:5000", "list: no bearer token", t0).write_now);
  for (int i = 1; i < 5; ++i) {
    const auto v = ledger.refuse("ipv4:10.0.0.1:" + std::to_string(5000 + i), "list", t0 + i);
    EXPECT_FALSE(v.write_now) << "counted, not written";
    EXPECT_EQ(v.retry_after_s, 0);
  }
  const auto limited = ledger.refuse("ipv4:10.0.0.1:6000", "list", t0 + 10);
  EXPECT_EQ(limited.retry_after_s, 59) << "the sixth in a minute: until the minute ends";
  EXPECT_TRUE(ledger.take_summaries(t0 + 20, false).empty()) << "the minute has not ended";
  const auto rows = ledger.take_summaries(t0 + StrangerLedger::kWindowMs, false);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].peer, "10.0.0.1");
  EXPECT_FALSE(rows[0].allowed);
  EXPECT_NE(rows[0].detail.find("5 more refusals without a valid token"), std::string::npos)
      << rows[0].detail;
  EXPECT_NE(rows[0].detail.find("first: list: no bearer token"), std::string::npos);
  EXPECT_NE(rows[0].detail.find("rate-limited after 5"), std::string::npos);
  EXPECT_TRUE(ledger.take_summaries(t0 + 2 * StrangerLedger::kWindowMs, true).empty())
      << "each summary once";
  // A new minute starts afresh: written at once, not limited.
  const auto next = ledger.refuse("10.0.0.1:80", "list", t0 + StrangerLedger::kWindowMs + 5);
  EXPECT_TRUE(next.write_now);
  EXPECT_EQ(next.retry_after_s, 0);
}

TEST(StrangerLedger, APeerRefusedOnceNeedsNoSummaryAndOtherPeersCountApart) {
  StrangerLedger ledger(100);
  EXPECT_TRUE(ledger.refuse("ipv6:[::1]:4000", "x", 0).write_now);
  EXPECT_TRUE(ledger.refuse("ipv4:10.0.0.2:1", "y", 1).write_now);
  EXPECT_FALSE(ledger.refuse("ipv4:10.0.0.2:2", "y", 2).write_now);
  const auto rows = ledger.take_summaries(0, /*all=*/true);
  ASSERT_EQ(rows.size(), 1u) << "::1 was refused once: its first row said it all";
  EXPECT_EQ(rows[0].peer, "10.0.0.2");
}

TEST(StrangerLedger, PeersBeyondTheCapShareOneRow) {
  StrangerLedger ledger(100);
  for (size_t i = 0; i < StrangerLedger::kMaxPeersPerWindow; ++i)
    EXPECT_TRUE(
        ledger
            .refuse("10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ":1", "x",
                    0)
            .write_now);
  EXPECT_FALSE(ledger.refuse("10.9.9.9:1", "x", 1).write_now) << "no row of its own";
  EXPECT_FALSE(ledger.refuse("10.9.9.8:1", "x", 2).write_now);
  const auto rows = ledger.take_summaries(0, true);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].peer, "*");
  EXPECT_NE(rows[0].detail.find("2 refusals without a valid token from peers beyond the first"),
            std::string::npos)
      << rows[0].detail;
}

TEST(StrangerLedger, HostOfEveryPeerForm) {
  EXPECT_EQ(StrangerLedger::host_of("ipv4:127.0.0.1:54321"), "127.0.0.1");
  EXPECT_EQ(StrangerLedger::host_of("ipv6:[::1]:54321"), "::1");
  EXPECT_EQ(StrangerLedger::host_of("127.0.0.1:80"), "127.0.0.1");
  EXPECT_EQ(StrangerLedger::host_of("::1"), "::1");
  EXPECT_EQ(StrangerLedger::host_of("unix:/tmp/sock"), "/tmp/sock");
}
