// Counting endpoints against the real binary: ez-api's internal flush (its own test cases,
// whole-body validation, Idempotency-Key retries across a restart), the summary,
// POST /v1/ingest with and without wait=flush, and POST /admin/flush.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_tokens.h"

namespace tally::testing {
namespace {

namespace json = boost::json;

json::object Object(const HttpResult& r) { return json::parse(r.body).as_object(); }

HttpResult Flush(const TallydProcess& t, std::string_view body,
                 std::map<std::string, std::string> headers = kInternal) {
  return Http(t.http_port(), "POST", "/internal/apikey-stats/flush", body, headers);
}

json::object Summary(const TallydProcess& t, std::string_view query = "") {
  HttpResult r =
      Http(t.http_port(), "GET", "/admin/apikey-stats/summary" + std::string(query), {}, kAdmin);
  EXPECT_EQ(r.status, 200) << r.body;
  return Object(r);
}

TEST(ApiFlush, EzApiCasesForKeysAndGroup) {
  TempDir dir;
  TallydProcess t(dir.Sub("data"), Tokens());
  ASSERT_EQ(Http(t.http_port(), "POST", "/admin/provider-groups",
                 R"({"name":"g","type":"openai","base_url":"u"})", kAdmin)
                .status,
            201);
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(
        Http(t.http_port(), "POST", "/admin/api-keys", R"({"group_id":1,"api_key":"k"})", kAdmin)
            .status,
        201);
  }
  HttpResult r = Flush(t, R"({"keys":[{"api_key_id":1,"requests":5,"success_requests":3},)"
                          R"({"api_key_id":2,"requests":4,"success_requests":4}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"updated":2,"groups_updated":1})");

  json::object k1 = Object(Http(t.http_port(), "GET", "/admin/api-keys/1", {}, kAdmin));
  EXPECT_EQ(k1.at("total_requests").as_int64(), 5);
  EXPECT_EQ(k1.at("success_requests").as_int64(), 3);
  EXPECT_EQ(k1.at("failure_requests").as_int64(), 2);
  EXPECT_DOUBLE_EQ(k1.at("success_rate").to_number<double>(), 0.6);
  json::object k2 = Object(Http(t.http_port(), "GET", "/admin/api-keys/2", {}, kAdmin));
  EXPECT_EQ(k2.at("failure_requests").as_int64(), 0);
  EXPECT_DOUBLE_EQ(k2.at("success_rate").to_number<double>(), 1.0);
  HttpResult g = Http(t.http_port(), "GET", "/admin/provider-groups/1", {}, kAdmin);
  json::object group = Object(g);
  EXPECT_EQ(group.at("total_requests").as_int64(), 9);
  EXPECT_EQ(group.at("success_requests").as_int64(), 7);
  EXPECT_EQ(group.at("failure_requests").as_int64(), 2);
  EXPECT_NE(g.body.find(R"("success_rate":0.7777777777777778)"), std::string::npos) << g.body;
}

TEST(ApiFlush, EzApiSummaryCase) {
  TempDir dir;
  TallydProcess t(dir.Sub("data"), Tokens());
  HttpResult r = Flush(t, R"({"keys":[{"api_key_id":1,"requests":10,"success_requests":7},)"
                          R"({"api_key_id":2,"requests":5,"success_requests":5}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  HttpResult s = Http(t.http_port(), "GET", "/admin/apikey-stats/summary", {}, kAdmin);
  EXPECT_EQ(s.body, R"({"total_requests":15,"success_requests":12,"failure_requests":3,)"
                    R"("success_rate":0.8,"failure_rate":0.2})");
  // Unknown keys are created in the unassigned group, group_id=0.
  EXPECT_EQ(Summary(t, "?group_id=0").at("total_requests").as_int64(), 15);
  EXPECT_EQ(Http(t.http_port(), "GET", "/admin/apikey-stats/summary?group_id=7", {}, kAdmin).status,
            404);
  EXPECT_EQ(Http(t.http_port(), "GET", "/admin/apikey-stats/summary?group_id=x", {}, kAdmin).status,
            400);
}

TEST(ApiFlush, AnyBadEntryRefusesTheWholeBody) {
  TempDir dir;
  TallydProcess t(dir.Sub("data"), Tokens());
  for (
      const char* bad : {
          R"({"keys":[{"api_key_id":1,"requests":5,"success_requests":3},{"api_key_id":2,"requests":-1}]})",
          R"({"keys":[{"api_key_id":1,"requests":5,"success_requests":3},{"api_key_id":2,"requests":1,"success_requests":2}]})",
          R"({"keys":[{"api_key_id":1,"requests":5,"success_requests":3},{"api_key_id":0,"requests":1}]})",
          R"({"keys":[{"api_key_id":1,"requests":5,"success_requests":3},{"api_key_id":2,"requests":"1"}]})",
          R"({"keys":"all"})",
          "garbage",
      }) {
    HttpResult r = Flush(t, bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_TRUE(Object(r).contains("error")) << r.body;
  }
  EXPECT_EQ(Flush(t, "garbage").body, R"({"error":"invalid request body"})");
  EXPECT_EQ(Summary(t).at("total_requests").as_int64(), 0);
  // Auth: the internal token, not the admin one.
  EXPECT_EQ(Flush(t, R"({"keys":[]})", {}).status, 401);
  EXPECT_EQ(Flush(t, R"({"keys":[]})", {{"X-Internal-Token", "wrong"}}).status, 401);
  EXPECT_EQ(Flush(t, R"({"keys":[]})", kAdmin).status, 401);
  EXPECT_EQ(Http(t.http_port(), "GET", "/internal/apikey-stats/flush", {}, kInternal).status, 405);
}

TEST(ApiFlush, IdempotentRetriesApplyOnceAcrossARestart) {
  TempDir dir;
  std::string data = dir.Sub("data");
  const std::string body = R"({"keys":[{"api_key_id":3,"requests":4,"success_requests":1}]})";
  std::map<std::string, std::string> headers = kInternal;
  headers["Idempotency-Key"] = "flush-0001";
  {
    TallydProcess t(data, Tokens());
    HttpResult first = Flush(t, body, headers);
    ASSERT_EQ(first.status, 200) << first.body;
    HttpResult retry = Flush(t, body, headers);
    EXPECT_EQ(retry.status, 200);
    EXPECT_EQ(retry.body, first.body);
    EXPECT_EQ(retry.headers["Idempotent-Replayed"], "true");
    // The same key with another body is refused, and nothing is applied.
    HttpResult reuse =
        Flush(t, R"({"keys":[{"api_key_id":3,"requests":100,"success_requests":1}]})", headers);
    EXPECT_EQ(reuse.status, 422) << reuse.body;
    EXPECT_EQ(Summary(t).at("total_requests").as_int64(), 4);
    std::map<std::string, std::string> bad_key = kInternal;
    bad_key["Idempotency-Key"] = std::string(256, 'k');
    EXPECT_EQ(Flush(t, body, bad_key).status, 400);
    EXPECT_EQ(t.Stop(), 0) << t.Log();
  }
  TallydProcess t(data, Tokens());
  HttpResult retry = Flush(t, body, headers);
  EXPECT_EQ(retry.status, 200) << retry.body;
  EXPECT_EQ(retry.body, R"({"updated":1,"groups_updated":0})");
  EXPECT_EQ(retry.headers["Idempotent-Replayed"], "true");
  json::object s = Summary(t);
  EXPECT_EQ(s.at("total_requests").as_int64(), 4);
  EXPECT_EQ(s.at("failure_requests").as_int64(), 3);
  // A new key applies again.
  headers["Idempotency-Key"] = "flush-0002";
  EXPECT_EQ(Flush(t, body, headers).status, 200);
  EXPECT_EQ(Summary(t).at("total_requests").as_int64(), 8);
}

// Idempotency-Key given twice, or empty, is a 400 with nothing applied: taking one of two
// keys would let a retry carrying the other apply the same deltas again.
TEST(ApiFlush, DuplicateOrEmptyIdempotencyKeyIsRefused) {
  TempDir dir;
  TallydProcess t(dir.Sub("data"), Tokens());
  const std::string body = R"({"keys":[{"api_key_id":3,"requests":4,"success_requests":1}]})";
  auto send = [&](std::string_view key_lines) {
    RawConnection c(t.http_port());
    EXPECT_TRUE(
        c.Send("POST /internal/apikey-stats/flush HTTP/1.1\r\nHost: x\r\n"
               "X-Internal-Token: int-token\r\n" +
               std::string(key_lines) + "Content-Length: " + std::to_string(body.size()) +
               "\r\n\r\n" + body));
    return c.ReadResponse();
  };
  const std::string two = "Idempotency-Key: key-a\r\nIdempotency-Key: key-b\r\n";
  HttpResult r = send(two);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(send("Idempotency-Key:\r\n").status, 400);
  EXPECT_EQ(send("Idempotency-Key: \r\n").status, 400);
  EXPECT_EQ(Summary(t).at("total_requests").as_int64(), 0);
  // Each key alone applies once; the pair is still refused.
  EXPECT_EQ(send("Idempotency-Key: key-a\r\n").status, 200);
  EXPECT_EQ(send("Idempotency-Key: key-b\r\n").status, 200);
  EXPECT_EQ(send(two).status, 400);
  EXPECT_EQ(Summary(t).at("total_requests").as_int64(), 8);
  EXPECT_EQ(t.Stop(), 0) << t.Log();
}

TEST(ApiFlush, IngestAndWaitForFlush) {
  TempDir dir;
  std::string data = dir.Sub("data");
  {
    // A flush interval of an hour: only wait=flush's own flush can make these durable.
    TallydProcess t(data, Tokens({"--flush-interval-ms", "3600000"}));
    HttpResult r = Http(t.http_port(), "POST", "/v1/ingest",
                        "apikey.1.success:2|c\napikey.1.failure:1|c\nother.metric:1|g\nbad line\n"
                        "apikey.2.success:1|c|@0.5\n",
                        kInternal);
    EXPECT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(r.body, R"({"accepted":2,"ignored":1,"malformed":1,"refused":1})");
    EXPECT_EQ(Summary(t).at("total_requests").as_int64(), 0);  // not flushed yet

    r = Http(t.http_port(), "POST", "/v1/ingest?wait=flush", "apikey.1.success:5|c", kInternal);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, R"({"accepted":1,"ignored":0,"malformed":0,"refused":0})");
    // Answered only after a committed flush: both requests' lines are in the store now.
    EXPECT_EQ(Summary(t).at("total_requests").as_int64(), 8);

    EXPECT_EQ(Http(t.http_port(), "POST", "/v1/ingest?wait=later", "x", kInternal).status, 400);
    EXPECT_EQ(Http(t.http_port(), "POST", "/v1/ingest", "apikey.1.success:1|c").status, 401);
    EXPECT_EQ(Http(t.http_port(), "GET", "/v1/ingest", {}, kInternal).status, 405);

    // POST /admin/flush answers with what it wrote.
    ASSERT_EQ(Http(t.http_port(), "POST", "/v1/ingest", "apikey.9.failure:3|c", kInternal).status,
              202);
    r = Http(t.http_port(), "POST", "/admin/flush", {}, kAdmin);
    ASSERT_EQ(r.status, 200) << r.body;
    json::object f = Object(r);
    EXPECT_EQ(f.at("keys").as_int64(), 1);
    EXPECT_EQ(f.at("groups").as_int64(), 0);  // key 9 is unassigned
    int64_t epoch = f.at("epoch").as_int64();
    EXPECT_GE(epoch, 2);
    r = Http(t.http_port(), "POST", "/admin/flush", {}, kAdmin);
    EXPECT_EQ(r.body, R"({"epoch":)" + std::to_string(epoch) + R"(,"keys":0,"groups":0})");
    EXPECT_EQ(Summary(t).at("total_requests").as_int64(), 11);
    t.Kill();  // no final flush: what was acknowledged must already be durable
  }
  TallydProcess t(data, Tokens());
  EXPECT_EQ(Summary(t).at("total_requests").as_int64(), 11);
}

TEST(ApiFlush, UnknownPathsAndOpenEndpointsWithoutTokens) {
  TempDir dir;
  // No tokens configured: allowed because the listener is on loopback.
  TallydProcess t(dir.Sub("data"));
  EXPECT_EQ(Http(t.http_port(), "GET", "/nope").status, 404);
  EXPECT_EQ(Http(t.http_port(), "GET", "/admin").status, 404);
  EXPECT_EQ(Http(t.http_port(), "GET", "/admin/apikey-stats/summary").status, 200);
  EXPECT_EQ(Http(t.http_port(), "POST", "/v1/ingest", "apikey.1.success:1|c").status, 202);
  HttpResult r = Http(t.http_port(), "POST", "/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.headers["Content-Type"], "application/json");
  EXPECT_EQ(r.body, R"({"error":"no such endpoint"})");
}

}  // namespace
}  // namespace tally::testing
