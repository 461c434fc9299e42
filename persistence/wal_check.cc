#include "persistence/wal_check.h"

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string_view>

namespace tally::persistence {
namespace {

// RocksDB's log format (db/log_format.h): 32 KiB blocks of records, each a 7-byte header
// (masked CRC32C of the type byte and the payload, 4 bytes little-endian; payload length,
// 2 bytes little-endian; type) and its payload. Types 1..4 are full, first, middle and last
// fragments; a block's last < 7 bytes are padding; type 0 with length 0 is preallocated
// space.
constexpr size_t kBlock = 32768;
constexpr size_t kHeader = 7;

uint32_t Crc32c(uint32_t crc, std::string_view data) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) {
        c = (c & 1) != 0 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      }
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (char ch : data) {
    crc = table[(crc ^ static_cast<uint8_t>(ch)) & 0xFF] ^ (crc >> 8);
  }
  return ~crc;
}

uint32_t Unmask(uint32_t masked) {  // RocksDB's crc32c::Unmask
  uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

uint32_t Le32(std::string_view b, size_t at) {
  return static_cast<uint32_t>(static_cast<uint8_t>(b[at])) |
         static_cast<uint32_t>(static_cast<uint8_t>(b[at + 1])) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(b[at + 2])) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(b[at + 3])) << 24;
}

size_t Length(std::string_view b, size_t at) {
  return static_cast<size_t>(static_cast<uint8_t>(b[at + 4])) |
         static_cast<size_t>(static_cast<uint8_t>(b[at + 5])) << 8;
}

// A whole, checksummed fragment starts at `at` of the block `b`.
bool ValidRecordAt(std::string_view b, size_t at) {
  if (at + kHeader > b.size()) {
    return false;
  }
  const size_t len = Length(b, at);
  const auto type = static_cast<uint8_t>(b[at + 6]);
  if (type < 1 || type > 4 || at + kHeader + len > b.size()) {
    return false;
  }
  uint32_t crc = Crc32c(0, b.substr(at + 6, 1));
  crc = Crc32c(crc, b.substr(at + kHeader, len));
  return crc == Unmask(Le32(b, at));
}

std::string CheckLastBlock(const std::filesystem::path& file) {
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(file, ec);
  if (ec || size == 0) {
    return {};
  }
  const uint64_t start = (size - 1) / kBlock * kBlock;
  std::ifstream in(file, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(start));
  std::string block(static_cast<size_t>(size - start), '\0');
  if (!in.read(block.data(), static_cast<std::streamsize>(block.size()))) {
    return {};
  }
  const std::string_view b = block;
  for (size_t at = 0; at + kHeader <= b.size();) {
    const size_t len = Length(b, at);
    if (static_cast<uint8_t>(b[at + 6]) == 0 && len == 0) {
      return {};  // preallocated zeros: the end
    }
    if (at + kHeader + len <= b.size()) {
      at += kHeader + len;
      continue;
    }
    // Runs past the end of the file: a torn write, unless a valid record follows.
    for (size_t next = at + 1; next + kHeader <= b.size(); ++next) {
      if (ValidRecordAt(b, next)) {
        return file.filename().string() + ": the record at offset " + std::to_string(start + at) +
               " claims " + std::to_string(len) + " bytes, past the end of the file, but a " +
               "valid record follows at offset " + std::to_string(start + next) +
               " (a damaged length, not a torn write)";
      }
    }
    return {};
  }
  return {};
}

}  // namespace

std::string FindDamageLikeATornTail(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= 4 || !name.ends_with(".log") ||
        name.find_first_not_of("0123456789") != name.size() - 4) {
      continue;
    }
    if (std::string damage = CheckLastBlock(entry.path()); !damage.empty()) {
      return damage;
    }
  }
  return {};
}

}  // namespace tally::persistence
