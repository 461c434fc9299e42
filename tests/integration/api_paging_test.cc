// Issue 23.8 against the real binary: list paging (?limit=&after_id=, a Link to the next
// page) and the plain array of every record when no page is asked for.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>

#include "tests/support/sanitized.h"
#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_tokens.h"

namespace tally::testing {
namespace {

namespace json = boost::json;

HttpResult Admin(const TallydProcess& t, std::string_view target) {
  return Http(t.http_port(), "GET", target, {}, kAdmin);
}

std::vector<int64_t> Ids(const HttpResult& r) {
  std::vector<int64_t> ids;
  const json::value list = json::parse(r.body);
  for (const json::value& v : list.as_array()) {
    ids.push_back(v.at("ID").as_int64());
  }
  return ids;
}

// The target inside `Link: <target>; rel="next"`, or "" without one.
std::string NextTarget(const HttpResult& r) {
  auto it = r.headers.find("Link");
  if (it == r.headers.end()) {
    return "";
  }
  const std::string& link = it->second;
  EXPECT_NE(link.find(">; rel=\"next\""), std::string::npos) << link;
  return link.substr(1, link.find('>') - 1);
}

// Peak resident memory (VmHWM) of `pid` in KiB, or -1.
int64_t PeakRssKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      return std::stoll(line.substr(6));
    }
  }
  return -1;
}

// Creates keys first..last in the unassigned group with one internal flush.
void CreateKeys(const TallydProcess& t, int last, int first = 1) {
  std::string body = R"({"keys":[)";
  for (int id = first; id <= last; ++id) {
    body += id > first ? "," : "";
    body += R"({"api_key_id":)";
    body += std::to_string(id);
    body += R"(,"requests":1,"success_requests":1})";
  }
  body += "]}";
  HttpResult r = Http(t.http_port(), "POST", "/internal/apikey-stats/flush", body, kInternal);
  ASSERT_EQ(r.status, 200) << r.body;
}

TEST(ApiPaging, PagesFollowTheLinkToTheEnd) {
  TempDir dir;
  TallydProcess t(dir.Sub("data"), Tokens());
  CreateKeys(t, 5);

  HttpResult r = Admin(t, "/admin/api-keys?limit=2");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Ids(r), (std::vector<int64_t>{1, 2}));
  ASSERT_EQ(NextTarget(r), "/admin/api-keys?limit=2&after_id=2");
  r = Admin(t, NextTarget(r));
  EXPECT_EQ(Ids(r), (std::vector<int64_t>{3, 4}));
  r = Admin(t, NextTarget(r));
  EXPECT_EQ(Ids(r), (std::vector<int64_t>{5}));
  EXPECT_EQ(NextTarget(r), "");  // the last page names no next one
  // A full last page has no Link either: the server looks one record ahead.
  r = Admin(t, "/admin/api-keys?limit=5");
  EXPECT_EQ(Ids(r).size(), 5u);
  EXPECT_EQ(NextTarget(r), "");

  // after_id alone: the default limit. Filters travel in the Link.
  r = Admin(t, "/admin/api-keys?after_id=3");
  EXPECT_EQ(Ids(r), (std::vector<int64_t>{4, 5}));
  r = Admin(t, "/admin/api-keys?group_id=0&status=active&limit=1&after_id=1");
  EXPECT_EQ(Ids(r), (std::vector<int64_t>{2}));
  EXPECT_EQ(NextTarget(r), "/admin/api-keys?group_id=0&status=active&limit=1&after_id=2");
  r = Admin(t, "/admin/api-keys?after_id=9223372036854775807");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "[]");

  // Groups page the same way.
  for (int i = 1; i <= 3; ++i) {
    std::string body = R"({"name":"g)" + std::to_string(i) + R"(","type":"t","base_url":"u"})";
    ASSERT_EQ(Http(t.http_port(), "POST", "/admin/provider-groups", body, kAdmin).status, 201);
  }
  r = Admin(t, "/admin/provider-groups?limit=2");
  EXPECT_EQ(Ids(r), (std::vector<int64_t>{1, 2}));
  ASSERT_EQ(NextTarget(r), "/admin/provider-groups?limit=2&after_id=2");
  r = Admin(t, NextTarget(r));
  EXPECT_EQ(Ids(r), (std::vector<int64_t>{3}));

  // Bad page parameters are 400.
  for (std::string_view target :
       {"/admin/api-keys?limit=0", "/admin/api-keys?limit=1001", "/admin/api-keys?limit=-1",
        "/admin/api-keys?limit=01", "/admin/api-keys?after_id=x",
        "/admin/provider-groups?limit=", "/admin/provider-groups?after_id=01"}) {
    EXPECT_EQ(Admin(t, target).status, 400) << target;
  }
  EXPECT_EQ(Admin(t, "/admin/api-keys?limit=1000").status, 200);
}

TEST(ApiPaging, WithoutPagingEveryRecordInIdOrder) {
  TempDir dir;
  TallydProcess t(dir.Sub("data"), Tokens());
  constexpr int kKeys = 1000;  // several of the server's read chunks
  CreateKeys(t, kKeys);
  HttpResult r = Admin(t, "/admin/api-keys");
  ASSERT_EQ(r.status, 200);
  std::vector<int64_t> ids = Ids(r);
  ASSERT_EQ(ids.size(), static_cast<size_t>(kKeys));
  for (int i = 0; i < kKeys; ++i) {
    ASSERT_EQ(ids[i], i + 1);
  }
  EXPECT_EQ(NextTarget(r), "");
  // Sent as a stream (chunked), not as one body built whole.
  EXPECT_EQ(r.headers["Transfer-Encoding"], "chunked");
  EXPECT_EQ(r.headers.count("Content-Length"), 0u);
  EXPECT_EQ(r.headers["Content-Type"], "application/json");
  // Filters apply to the stream; an empty list is "[]".
  r = Admin(t, "/admin/api-keys?group_id=0&status=banned");
  EXPECT_EQ(r.body, "[]");
  r = Admin(t, "/admin/provider-groups");
  EXPECT_EQ(r.body, "[]");

  // An HTTP/1.0 client cannot take chunks: it gets the same array with a Content-Length.
  RawConnection c(t.http_port());
  ASSERT_TRUE(
      c.Send("GET /admin/api-keys?status=active HTTP/1.0\r\nAuthorization: Bearer "
             "adm-token\r\n\r\n"));
  HttpResult old = c.ReadResponse();
  ASSERT_EQ(old.status, 200);
  EXPECT_EQ(Ids(old).size(), static_cast<size_t>(kKeys));
}

// 23.8: with 100,000 keys, the whole list (about 36 MB of JSON) is sent without tallyd's
// memory growing with it.
TEST(ApiPaging, TheWholeListDoesNotGrowMemory) {
  TempDir dir;
  TallydProcess t(dir.Sub("data"), Tokens());
  constexpr int kKeys = 100'000;
  for (int first = 1; first <= kKeys; first += 25'000) {
    CreateKeys(t, first + 24'999, first);
  }
  const int64_t before = PeakRssKb(t.pid());
  ASSERT_GT(before, 0);
  HttpResult r = Admin(t, "/admin/api-keys");
  ASSERT_EQ(r.status, 200);
  EXPECT_GT(r.body.size(), 30'000'000u);
  EXPECT_EQ(Ids(r).size(), static_cast<size_t>(kKeys));
  const int64_t growth_kb = PeakRssKb(t.pid()) - before;
  if (!kSanitized) {
    EXPECT_LT(growth_kb, 16 * 1024) << "peak RSS grew by " << growth_kb << " KiB";
  }
}

}  // namespace
}  // namespace tally::testing
