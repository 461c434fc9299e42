// The status page: GET /ui (index.html), its assets (/ui/app.js, ...) and the redirect of
// GET / to /ui. The router (daemon/api/router.cc) routes to these without auth: the files are
// public, and the data the page shows comes from the admin API with the token the operator
// types in.
//
// Every answer carries the page's security headers: Content-Security-Policy
// "default-src 'self'; frame-ancestors 'none'" (no inline script or style, no other origin,
// never framed), X-Content-Type-Options: nosniff, Referrer-Policy: no-referrer,
// X-Frame-Options: DENY (for browsers without frame-ancestors). Files are sent with
// "Cache-Control: no-cache" and an ETag (a hash of the bytes): a browser revalidates each
// time and gets 304 while the binary is the same, and a new build's page at once. The ETags
// are computed at build time (embed_assets.cmake).
//
// Thread safety: pure functions of the request and static data; callable from any thread.
// Cheap (static bytes, a search among a handful of names): they run on the I/O thread.
#pragma once

#include <string_view>

#include "daemon/http/server.h"

namespace tally::daemon {

// 200 with the embedded file `name` (daemon/web/assets.h) and its Content-Type, or 304 when
// the request's If-None-Match names its ETag; 404 {"error"} when no file has that name.
Response UiFileResponse(const Request& req, std::string_view name);

// 302 to /ui, with the security headers.
Response UiRedirectResponse();

// The Content-Type for a file name, by its extension (text/html, text/css,
// text/javascript, image/svg+xml; application/octet-stream otherwise).
std::string_view UiContentType(std::string_view name);

}  // namespace tally::daemon
