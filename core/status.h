// Status and StatusOr: errors as values on the data path.
//
// Every layer returns these instead of throwing. RocksDB statuses and Asio error codes are
// converted at the edge of the layer that sees them. A Status must be looked at: both types
// are [[nodiscard]]. What a code means to a client (an HTTP status, an exit code) is decided
// by the layer that answers it (daemon's API), not here.
//
// Thread safety: plain values; a const Status or StatusOr may be read from any thread.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <optional>
#include <string>
#include <utility>

namespace tally::core {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk,
    kInvalidArgument,  // the caller's input is wrong
    kNotFound,         // no such record
    kConflict,         // the record exists or is referenced
    kRefused,          // a limit or a rule refused it
    kIoError,          // the disk or the OS failed; retry may help
    kCorruption,       // stored data cannot be read; never retried
    kUnavailable,      // not ready, stopping, or full
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status Conflict(std::string m) { return {Code::kConflict, std::move(m)}; }
  static Status Refused(std::string m) { return {Code::kRefused, std::move(m)}; }
  static Status IoError(std::string m) { return {Code::kIoError, std::move(m)}; }
  static Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "IoError: <message>", for logs and abort messages.
  std::string ToString() const {
    static constexpr const char* kNames[] = {"OK",         "InvalidArgument", "NotFound",
                                             "Conflict",   "Refused",         "IoError",
                                             "Corruption", "Unavailable"};
    static_assert(std::size(kNames) == static_cast<size_t>(Code::kUnavailable) + 1);
    std::string out = kNames[static_cast<int>(code_)];
    if (!message_.empty()) {
      out += ": " + message_;
    }
    return out;
  }

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  Code code_ = Code::kOk;
  std::string message_;
};

// A value or the Status saying why there is none.
//
// value(), * and -> check in every build type: reaching for the value of an error aborts the
// process with a message naming the status (a bug in the caller, which must test ok()
// first), never a read of an empty value. So does building one from an OK Status.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.ok()) {
      Die("StatusOr built from an OK Status, without a value");
    }
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return Checked(); }
  const T& value() const& { return Checked(); }
  T&& value() && { return std::move(Checked()); }
  T* operator->() { return &Checked(); }
  const T* operator->() const { return &Checked(); }
  T& operator*() & { return Checked(); }
  const T& operator*() const& { return Checked(); }

 private:
  T& Checked() {
    if (!value_.has_value()) [[unlikely]] {
      Die("value() of a StatusOr holding " + status_.ToString());
    }
    return *value_;
  }
  const T& Checked() const { return const_cast<StatusOr*>(this)->Checked(); }
  [[noreturn]] static void Die(const std::string& what) {
    std::fprintf(stderr, "tally: fatal: %s\n", what.c_str());
    std::abort();
  }

  Status status_;
  std::optional<T> value_;
};

// Returns the Status of `expr` from the enclosing function when it is not OK. `expr` is
// evaluated once; the enclosing function returns Status or a StatusOr.
#define TALLY_RETURN_IF_ERROR(expr)                                                       \
  do {                                                                                    \
    if (::tally::core::Status tally_status_ = (expr); !tally_status_.ok()) [[unlikely]] { \
      return tally_status_;                                                               \
    }                                                                                     \
  } while (false)

}  // namespace tally::core
