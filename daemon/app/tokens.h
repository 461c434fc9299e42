// Tokens: what a bearer token may hold, whichever source gave it (the command line, the
// environment, the --config file or a token file; docs/operations.md, "Tokens").
//
// A token is 1..kMaxTokenBytes visible ASCII characters (0x21..0x7E) once its trailing
// newline (LF or CRLF) and blanks are trimmed: a leading blank, an inner space, a NUL or any
// other control character is refused, since no client could send it in a header. Error
// messages never echo the token.
#pragma once

#include <string>

#include "core/status.h"

namespace tally::daemon {

inline constexpr size_t kMaxTokenBytes = 4096;
inline constexpr size_t kMaxTokenFileBytes = 4096;

// `text` with its trailing newline and blanks trimmed, if it then is a valid token; else
// InvalidArgument "WHERE: ..." (`where` names the source, e.g. "--admin-token").
core::StatusOr<std::string> CheckToken(const std::string& where, std::string text);

// The token in the file `path` given by --OPTION: a regular file of at most
// kMaxTokenFileBytes, opened non-blocking (a FIFO or a device never holds start-up), whose
// first line, trimmed as above, is a valid token (the lines after it are not read).
core::StatusOr<std::string> ReadTokenFile(const std::string& option, const std::string& path);

}  // namespace tally::daemon
