// libFuzzer target: the JSON body of every endpoint that takes one.
//
// The first byte picks the body's endpoint; the rest is the body.
//   0  POST /internal/apikey-stats/flush  ParseFlushBody, then the endpoint itself
//   1  POST/PUT /admin/provider-groups    ParseGroup, then the endpoint itself
//   2  POST/PUT /admin/api-keys           ParseKey, then the endpoint itself
//   3  POST /admin/checkpoint             the endpoint, with "dir" moved under a temp dir
// Checked beyond crashes, leaks and undefined behaviour (ASan, UBSan):
//   - a flush body that parses respects every rule (ids 1..2^63-1, counts in range);
//   - a record that parses, rendered and parsed again, is the same record (refresh_token
//     aside: it is never rendered), and its rendering is valid JSON;
//   - the endpoint answers once, with a documented status and a JSON body (ApiHarness);
//   - every 256 inputs the store's invariant holds (Store::Verify).
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "daemon/api/record_json.h"
#include "tests/fuzz/api_harness.h"

namespace http = boost::beast::http;
using tally::fuzz::ApiHarness;
using tally::fuzz::Check;

namespace {

tally::daemon::Request MakeRequest(http::verb verb, std::string target, std::string body) {
  tally::daemon::Request req{verb, target, 11};
  req.set(http::field::host, "fuzz");
  req.set(http::field::content_type, "application/json");
  req.body() = std::move(body);
  req.prepare_payload();
  return req;
}

void FlushBody(std::string_view body, ApiHarness& h, uint8_t salt) {
  auto deltas = tally::daemon::ParseFlushBody(body);
  if (deltas.ok()) {
    for (const auto& d : *deltas) {
      Check(d.key >= 1 && d.key <= (uint64_t{1} << 63) - 1, "flush delta key out of range");
      Check(d.successes + d.failures <= uint64_t(tally::daemon::kMaxFlushEntryRequests),
            "flush delta above kMaxFlushEntryRequests");
    }
  } else {
    Check(!deltas.status().message().empty(), "flush body error without a message");
  }
  auto req = MakeRequest(http::verb::post, "/internal/apikey-stats/flush", std::string(body));
  if (salt & 1) {
    req.set("Idempotency-Key", "fuzz-" + std::to_string(salt >> 1));
  }
  auto res = h.Call(std::move(req));
  // 422: the Idempotency-Key was used before with another body; 409: a valid body refused
  // whole because a total would pass 2^63-1 or it would create keys past --max-keys
  // (README.md, the internal flush).
  const unsigned code = res.result_int();
  Check(deltas.ok() == (code == 200) || code == 422 || code == 503 || (deltas.ok() && code == 409),
        "flush endpoint and ParseFlushBody disagree: " + std::to_string(res.result_int()) + " " +
            res.body());
}

template <typename Record, typename Parse, typename Render>
void RecordBody(std::string_view body, Parse parse, Render render, bool is_key) {
  auto rec = parse(body);
  if (!rec.ok()) {
    Check(!rec.status().message().empty(), "record body error without a message");
    return;
  }
  std::string rendered = render(*rec);
  boost::system::error_code ec;
  boost::json::parse(rendered, ec);
  Check(!ec, "rendered record is not valid JSON: " + rendered);
  auto again = parse(rendered);
  Check(again.ok(), "a rendered record does not parse again: " + rendered);
  Record want = *rec;
  if constexpr (requires { want.refresh_token; }) {
    want.refresh_token.clear();  // never rendered
  }
  (void)is_key;
  Check(*again == want, "render then parse changed the record: " + rendered);
}

void Checkpoint(std::string_view body, ApiHarness& h) {
  // Never let a fuzzed path reach the file system outside the harness's directory: a body
  // that Boost.JSON reads as an object with a string "dir" gets that dir replaced by one
  // under the harness's directory (keeping whether it was absolute and a trailing slash);
  // any other body goes as is (the endpoint, parsing it the same way, finds no dir).
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  std::string sent(body);
  std::string target_dir;
  if (!ec && v.is_object()) {
    auto* dir = v.as_object().if_contains("dir");
    if (dir != nullptr && dir->is_string()) {
      std::string original(dir->as_string());
      std::string safe;
      for (char c : original) {
        safe += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      }
      safe = safe.substr(0, 64);
      target_dir = h.data_dir() + "-ckpt/" + (safe.empty() ? "x" : safe);
      std::filesystem::create_directories(h.data_dir() + "-ckpt");
      std::string replaced = (!original.empty() && original.front() == '/')
                                 ? target_dir
                                 : (original.empty() ? "" : "relative/" + safe);
      if (!original.empty() && original.back() == '/') {
        replaced += "/";
      }
      v.as_object()["dir"] = replaced;
      sent = boost::json::serialize(v);
    }
  }
  h.Call(MakeRequest(http::verb::post, "/admin/checkpoint", sent));
  if (!target_dir.empty()) {
    std::error_code rm;
    std::filesystem::remove_all(target_dir, rm);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) {
    return 0;
  }
  ApiHarness& h = ApiHarness::Get();
  const uint8_t selector = data[0];
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  const uint8_t salt = static_cast<uint8_t>(selector >> 2);
  switch (selector & 3) {
    case 0:
      FlushBody(body, h, salt);
      break;
    case 1:
      RecordBody<tally::persistence::ProviderGroup>(body, tally::daemon::ParseGroup,
                                                    tally::daemon::RenderGroup, false);
      h.Call(salt & 1 ? MakeRequest(http::verb::put,
                                    "/admin/provider-groups/" + std::to_string(1 + salt % 8),
                                    std::string(body))
                      : MakeRequest(http::verb::post, "/admin/provider-groups", std::string(body)));
      break;
    case 2:
      RecordBody<tally::persistence::ApiKey>(body, tally::daemon::ParseKey,
                                             tally::daemon::RenderKey, true);
      h.Call(salt & 1
                 ? MakeRequest(http::verb::put, "/admin/api-keys/" + std::to_string(1 + salt % 8),
                               std::string(body))
                 : MakeRequest(http::verb::post, "/admin/api-keys", std::string(body)));
      break;
    case 3:
      Checkpoint(body, h);
      break;
  }
  static uint64_t calls = 0;
  if (++calls % 256 == 0) {
    h.VerifyStore();
  }
  return 0;
}
