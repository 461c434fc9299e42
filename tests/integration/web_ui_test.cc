// The status page's files against the real binary (daemon/web/): served without a token,
// with their types and security headers, revalidated by ETag, and "/" redirected to /ui.
// The page itself is tested in a real browser (tests/browser/).
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "tests/support/tallyd_process.h"
#include "tests/support/temp_dir.h"

namespace tally::testing {
namespace {

void ExpectSecurityHeaders(const HttpResult& r, const std::string& what) {
  EXPECT_EQ(r.headers.count("Content-Security-Policy"), 1u) << what;
  if (r.headers.count("Content-Security-Policy") == 1) {
    EXPECT_EQ(r.headers.at("Content-Security-Policy"), "default-src 'self'; frame-ancestors 'none'")
        << what;
  }
  EXPECT_EQ(r.headers.count("X-Content-Type-Options") ? r.headers.at("X-Content-Type-Options") : "",
            "nosniff")
      << what;
  EXPECT_EQ(r.headers.count("Referrer-Policy") ? r.headers.at("Referrer-Policy") : "",
            "no-referrer")
      << what;
}

class WebUi : public ::testing::Test {
 protected:
  TempDir dir_;
  // Tokens set: the files must still be served without one.
  TallydProcess tallyd_{dir_.Sub("data"), {"--admin-token", "web-admin-token"}};
};

TEST_F(WebUi, EveryFileIsServedWithoutTokenWithItsTypeAndHeaders) {
  const std::vector<std::pair<std::string, std::string>> files = {
      {"/ui", "text/html; charset=utf-8"},
      {"/ui/app.css", "text/css; charset=utf-8"},
      {"/ui/icon.svg", "image/svg+xml"},
      {"/ui/app.js", "text/javascript; charset=utf-8"},
      {"/ui/format.js", "text/javascript; charset=utf-8"},
      {"/ui/api.js", "text/javascript; charset=utf-8"},
      {"/ui/chart.js", "text/javascript; charset=utf-8"},
      {"/ui/panels.js", "text/javascript; charset=utf-8"},
      {"/ui/bans.js", "text/javascript; charset=utf-8"},
      {"/ui/key_view.js", "text/javascript; charset=utf-8"},
  };
  for (const auto& [path, type] : files) {
    HttpResult r = Http(tallyd_.http_port(), "GET", path);
    ASSERT_EQ(r.status, 200) << path << ": " << r.body;
    EXPECT_EQ(r.headers["Content-Type"], type) << path;
    EXPECT_EQ(r.headers["Cache-Control"], "no-cache") << path;
    EXPECT_FALSE(r.headers["ETag"].empty()) << path;
    EXPECT_GT(r.body.size(), 20u) << path;
    ExpectSecurityHeaders(r, path);
  }
}

TEST_F(WebUi, ThePageLoadsOnlyItsOwnFilesAndNoInlineScript) {
  HttpResult r = Http(tallyd_.http_port(), "GET", "/ui");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(R"(<script type="module" src="/ui/app.js"></script>)"), std::string::npos)
      << r.body;
  // Nothing the CSP would refuse: no inline script or style, no other origin.
  EXPECT_EQ(r.body.find("<script>"), std::string::npos);
  EXPECT_EQ(r.body.find("<style"), std::string::npos);
  EXPECT_EQ(r.body.find(" style="), std::string::npos);
  EXPECT_FALSE(std::regex_search(r.body, std::regex(R"(\son[a-z]+\s*=)")));  // onclick=...
  EXPECT_EQ(r.body.find("http://"), std::string::npos);
  EXPECT_EQ(r.body.find("https://"), std::string::npos);
}

TEST_F(WebUi, RootRedirectsToTheUi) {
  HttpResult r = Http(tallyd_.http_port(), "GET", "/");
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(r.headers["Location"], "/ui");
  ExpectSecurityHeaders(r, "/");
}

TEST_F(WebUi, AnUnchangedFileIsRevalidatedWith304) {
  HttpResult first = Http(tallyd_.http_port(), "GET", "/ui/app.js");
  ASSERT_EQ(first.status, 200);
  const std::string etag = first.headers["ETag"];
  HttpResult again = Http(tallyd_.http_port(), "GET", "/ui/app.js", {}, {{"If-None-Match", etag}});
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(again.headers["ETag"], etag);
  HttpResult other =
      Http(tallyd_.http_port(), "GET", "/ui/app.js", {}, {{"If-None-Match", "\"0\""}});
  EXPECT_EQ(other.status, 200);
  // Another file has another tag.
  EXPECT_NE(Http(tallyd_.http_port(), "GET", "/ui/app.css").headers["ETag"], etag);
}

TEST_F(WebUi, UnknownFilesAndOtherMethodsAreRefused) {
  EXPECT_EQ(Http(tallyd_.http_port(), "GET", "/ui/nope.js").status, 404);
  EXPECT_EQ(Http(tallyd_.http_port(), "GET", "/ui/").status, 404);
  HttpResult post = Http(tallyd_.http_port(), "POST", "/ui", "x");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.headers["Allow"], "GET, HEAD");
  // The data behind the page still needs the token.
  EXPECT_EQ(Http(tallyd_.http_port(), "GET", "/admin/apikey-stats/summary").status, 401);
}

}  // namespace
}  // namespace tally::testing
