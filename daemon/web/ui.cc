#include "daemon/web/ui.h"

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <unordered_map>

#include "daemon/web/assets.h"

namespace tally::daemon {
namespace {

constexpr std::string_view kContentSecurityPolicy = "default-src 'self'; frame-ancestors 'none'";

void SetSecurityHeaders(Response& res) {
  res.set("Content-Security-Policy", kContentSecurityPolicy);
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
  res.set("X-Frame-Options", "DENY");
}

// FNV-1a, 64 bits: the ETag only has to change when the bytes do.
uint64_t Fnv1a(std::string_view bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h = (h ^ c) * 1099511628211ull;
  }
  return h;
}

struct Served {
  std::string_view body;
  std::string etag;
};

// name -> body and ETag, built once (a function-local static: thread-safe initialisation).
const std::unordered_map<std::string_view, Served>& ServedFiles() {
  static const std::unordered_map<std::string_view, Served> files = [] {
    std::unordered_map<std::string_view, Served> m;
    for (const EmbeddedFile& f : EmbeddedFiles()) {
      m[f.name] = Served{f.body, fmt::format("\"{:016x}\"", Fnv1a(f.body))};
    }
    return m;
  }();
  return files;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::string_view UiContentType(std::string_view name) {
  if (EndsWith(name, ".html")) {
    return "text/html; charset=utf-8";
  }
  if (EndsWith(name, ".css")) {
    return "text/css; charset=utf-8";
  }
  if (EndsWith(name, ".js")) {
    return "text/javascript; charset=utf-8";
  }
  if (EndsWith(name, ".svg")) {
    return "image/svg+xml";
  }
  return "application/octet-stream";
}

Response UiFileResponse(const Request& req, std::string_view name) {
  const auto& files = ServedFiles();
  auto it = files.find(name);
  if (it == files.end()) {
    return JsonError(http::status::not_found, "no such endpoint");
  }
  const Served& file = it->second;
  auto match = req.find(http::field::if_none_match);
  const bool fresh = match != req.end() && match->value().find(file.etag) != std::string::npos;
  Response res{fresh ? http::status::not_modified : http::status::ok, 11};
  res.set(http::field::etag, file.etag);
  res.set(http::field::cache_control, "no-cache");
  SetSecurityHeaders(res);
  if (!fresh) {
    res.set(http::field::content_type, UiContentType(name));
    res.body() = std::string(file.body);
  }
  res.prepare_payload();
  return res;
}

Response UiRedirectResponse() {
  Response res{http::status::found, 11};
  res.set(http::field::location, "/ui");
  res.set(http::field::cache_control, "no-cache");
  SetSecurityHeaders(res);
  res.prepare_payload();
  return res;
}

}  // namespace tally::daemon
