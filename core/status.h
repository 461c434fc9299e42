// Status and StatusOr: errors as values on the data path.
//
// Every layer returns these instead of throwing. RocksDB statuses and Asio error codes are
// converted at the edge of the layer that sees them. A Status must be looked at: both types
// are [[nodiscard]].
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace tally::core {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk,
    kInvalidArgument,  // the caller's input is wrong (HTTP 400)
    kNotFound,         // no such record (HTTP 404)
    kConflict,         // the record exists or is referenced (HTTP 409)
    kRefused,          // a limit or a rule refused it (HTTP 409 or a counted refusal)
    kIoError,          // the disk or the OS failed; retry may help (HTTP 503)
    kCorruption,       // stored data cannot be read; never retried
    kUnavailable,      // not ready, stopping, or full (HTTP 503)
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

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  Code code_ = Code::kOk;
  std::string message_;
};

// A value or the Status saying why there is none.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  StatusOr(Status status) : status_(std::move(status)) { assert(!status_.ok()); }  // NOLINT

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace tally::core
