#include "daemon/web/ui.h"

#include <string>

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

// The embedded file of that name, or null. A handful of files: a linear search.
const EmbeddedFile* FindFile(std::string_view name) {
  for (const EmbeddedFile& f : EmbeddedFiles()) {
    if (f.name == name) {
      return &f;
    }
  }
  return nullptr;
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
  const EmbeddedFile* file = FindFile(name);
  if (file == nullptr) {
    return JsonError(http::status::not_found, "no such endpoint");
  }
  auto match = req.find(http::field::if_none_match);
  const bool fresh = match != req.end() && match->value().find(file->etag) != std::string::npos;
  Response res{fresh ? http::status::not_modified : http::status::ok, 11};
  res.set(http::field::etag, file->etag);
  res.set(http::field::cache_control, "no-cache");
  SetSecurityHeaders(res);
  if (!fresh) {
    res.set(http::field::content_type, UiContentType(name));
    res.body() = std::string(file->body);
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
