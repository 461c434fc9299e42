// The status page's files (daemon/web/assets/), compiled into the binary: the build runs
// embed_assets.cmake, which generates the definition of EmbeddedFiles() from them, so tallyd
// serves its page with no file on disk and no build step beyond CMake.
#pragma once

#include <span>
#include <string_view>

namespace tally::daemon {

struct EmbeddedFile {
  std::string_view name;  // the file's name under daemon/web/assets/ ("app.js")
  std::string_view body;  // its bytes, static
  std::string_view etag;  // "\"<hex>\"": the start of the bytes' SHA-256, quoted
};

// Every embedded file, in the order daemon/CMakeLists.txt lists them. Static data: callable
// from any thread, costs nothing.
std::span<const EmbeddedFile> EmbeddedFiles();

}  // namespace tally::daemon
