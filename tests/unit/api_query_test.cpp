// The dashboard API's path ids and query parameters: a bad one is refused with what and where.
#include "server/api/api_query.h"

#include <gtest/gtest.h>

using namespace server;

namespace {

std::string refusal(const std::function<void()>& f) {
  try {
    f();
  } catch (const BadRequest& e) {
    return e.what();
  }
  return "accepted";
}

TEST(ApiQuery, IntegersInRangeAreReadAndEverythingElseIsRefusedByName) {
  EXPECT_EQ(query_int({}, "points", 500, 10, 10000), 500);
  EXPECT_EQ(query_int({{"points", "400"}}, "points", 500, 10, 10000), 400);
  EXPECT_EQ(query_int({{"limit", "7"}}, "points", 500, 10, 10000), 500);
  for (const char* bad :
       {"abc", "", "12x", " 12", "+12", "1e3", "5", "10001", "99999999999999999999999", "-1"}) {
    const std::string why = refusal([&] {
      query_int({{"points", bad}}, "points", 500, 10, 10000);
    });
    EXPECT_NE(why.find("points="), std::string::npos) << bad << ": " << why;
    EXPECT_NE(why.find("10..10000"), std::string::npos) << bad << ": " << why;
  }
  EXPECT_NE(refusal([] {
              query_int({{"points", "20"}, {"points", "30"}}, "points", 500, 10, 10000);
            }).find("more than once"),
            std::string::npos);
  const std::string long_value(100000, '9');
  EXPECT_LT(refusal([&] {
              query_int({{"points", long_value}}, "points", 500, 10, 10000);
            }).size(),
            200u)
      << "a hostile value is not echoed whole";
}

TEST(ApiQuery, PathIdsArePositive64BitIntegers) {
  EXPECT_EQ(path_id("12", "sweep"), 12);
  EXPECT_EQ(path_id("9223372036854775807", "run"), INT64_MAX);
  EXPECT_NE(
      refusal([] { path_id("9223372036854775808", "run"); }).find("run id '9223372036854775808'"),
      std::string::npos);
  EXPECT_NE(refusal([] { path_id("0", "sweep"); }).find("sweep id '0'"), std::string::npos);
}

}  // namespace
