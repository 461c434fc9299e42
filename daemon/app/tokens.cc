#include "daemon/app/tokens.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace tally::daemon {
using core::Status;
using core::StatusOr;

StatusOr<std::string> CheckToken(const std::string& where, std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' ||
                           text.back() == '\t')) {
    text.pop_back();
  }
  if (text.empty()) {
    return Status::InvalidArgument(where + ": must not be empty");
  }
  bool visible = std::all_of(text.begin(), text.end(), [](char c) { return c > ' ' && c < 0x7f; });
  if (!visible || text.size() > kMaxTokenBytes) {
    return Status::InvalidArgument(where + ": a token must be 1 to " +
                                   std::to_string(kMaxTokenBytes) +
                                   " visible ASCII characters (no blank, no control character)");
  }
  return text;
}

StatusOr<std::string> ReadTokenFile(const std::string& option, const std::string& path) {
  std::string where = "--" + option + ": '" + path + "'";
  int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    return Status::InvalidArgument(where + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return Status::InvalidArgument(where + " is not a regular file");
  }
  std::string text(kMaxTokenFileBytes + 1, '\0');
  size_t got = 0;
  while (got < text.size()) {
    ssize_t n = read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    got += static_cast<size_t>(n);
  }
  close(fd);
  if (got > kMaxTokenFileBytes) {
    return Status::InvalidArgument(where + " is larger than " + std::to_string(kMaxTokenFileBytes) +
                                   " bytes");
  }
  text.resize(got);
  StatusOr<std::string> token = CheckToken(where, text.substr(0, text.find('\n')));
  if (!token.ok() && token.status().message().ends_with("must not be empty")) {
    return Status::InvalidArgument(where + " holds no token");
  }
  return token;
}

}  // namespace tally::daemon
