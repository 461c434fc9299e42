// https forwarding (issue 17): the edge verifies the upstream's certificate against
// --forward-ca-file (a throwaway CA made by the test), or refuses to send.
#include <gtest/gtest.h>

#include <optional>

#include "tests/support/forward_fleet.h"
#include "tests/support/tallyd_process.h"
#include "tests/support/tls_front.h"

namespace tally::testing {
namespace {

TEST(ForwardTls, HttpsWithTheTestCaDeliversAndAnUnknownCaSendsNothing) {
  TempDir dir;
  const TestCa ca = MakeTestCa(dir.path());
  const std::string token = WriteForwardToken(dir);
  TallydProcess central(dir.Sub("central"), Tokens());
  TlsFront front(ca, central.http_port());
  const std::string url = "https://localhost:" + std::to_string(front.port());
  {
    // No CA file: the system's store does not know the test CA; the handshake fails.
    std::vector<std::string> args = EdgeArgs(token, 1);
    args[5] = url;  // --forward-url's value (EdgeArgs: 4 token arguments, then it)
    TallydProcess edge(dir.Sub("untrusting"), args);
    ASSERT_EQ(
        Http(edge.http_port(), "POST", "/v1/ingest?wait=flush", "apikey.1.success:1|c\n", kInternal)
            .status,
        200);
    ASSERT_TRUE(WaitUntil(
        [&] {
          return Metric(edge.http_port(), "tallyd_forward_retries_total{reason=\"connection\"}") >=
                 2;
        },
        20000));
    EXPECT_EQ(TotalRequests(central.http_port()), 0);
    EXPECT_EQ(front.handshakes(), 0u);
  }
  std::vector<std::string> args = EdgeArgs(token, 1, {"--forward-ca-file", ca.ca_pem});
  args[5] = url;
  TallydProcess edge(dir.Sub("edge"), args);
  ASSERT_EQ(Http(edge.http_port(), "POST", "/v1/ingest?wait=flush",
                 "apikey.1.success:3|c\napikey.2.failure:2|c\n", kInternal)
                .status,
            200);
  ASSERT_TRUE(WaitUntil([&] { return TotalRequests(central.http_port()) == 5; }, 20000));
  EXPECT_GE(front.handshakes(), 1u);
}

}  // namespace
}  // namespace tally::testing

namespace tally::testing {
namespace {

TEST(ForwardTls, ACentralServingTlsItselfIsReachedWithoutAProxy) {
  TempDir dir;
  const TestCa ca = MakeTestCa(dir.path());
  const std::string token = WriteForwardToken(dir);
  const uint16_t port = FreePort();
  TallydLaunch launch;
  launch.args = Tokens({"--data-dir", dir.Sub("central"), "--udp-listen", "off", "--http-listen",
                        "127.0.0.1:" + std::to_string(port), "--http-tls-cert", ca.cert_pem,
                        "--http-tls-key", ca.key_pem});
  std::optional<TallydChild> central;
  central.emplace(launch, dir.Sub("central.log"));
  ASSERT_TRUE(central->WaitForLog("ready"));
  // Plain HTTP gets no answer from a TLS listener.
  EXPECT_EQ(Http(port, "GET", "/healthz").status, 0);

  std::vector<std::string> args = EdgeArgs(token, 1, {"--forward-ca-file", ca.ca_pem});
  args[5] = "https://localhost:" + std::to_string(port);
  TallydProcess edge(dir.Sub("edge"), args);
  ASSERT_EQ(Http(edge.http_port(), "POST", "/v1/ingest?wait=flush",
                 "apikey.7.success:4|c\napikey.8.failure:1|c\n", kInternal)
                .status,
            200);
  ASSERT_TRUE(WaitUntil(
      [&] { return Metric(edge.http_port(), "tallyd_forward_batches_total") == 1; }, 20000));
  EXPECT_EQ(Metric(edge.http_port(), "tallyd_outbox_batches"), 0);
  EXPECT_EQ(Metric(edge.http_port(), "tallyd_forward_dead_letters_total"), 0);
  // What the central applied, read back over plain HTTP after a restart without TLS.
  EXPECT_EQ(central->Stop(), 0);
  central.reset();
  TallydProcess plain(dir.Sub("central"), Tokens());
  EXPECT_EQ(TotalRequests(plain.http_port()), 5);
}

}  // namespace
}  // namespace tally::testing
