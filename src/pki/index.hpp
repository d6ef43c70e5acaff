#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/files.hpp"
#include "util/result.hpp"

namespace qmt::pki {

// One certificate issued by the CA, as recorded in the index file beside it.
// Times are seconds since the Unix epoch; the file shows them in UTC.
struct IndexEntry {
  std::string serial_hex;          // lowercase hexadecimal, as serial_hex()
  std::string subject;             // RFC 2253 text, for example "CN=host1"
  std::vector<std::string> names;  // subjectAltName entries
  std::int64_t not_before = 0;
  std::int64_t not_after = 0;
  std::string issued_at;  // UTC time of signing, "2025-01-31T12:00:00Z"
};

// Reads the index, a YAML list of entries with the keys serial, subject,
// names, not_before, not_after and issued_at. A missing or empty file is an
// empty index. Invalid YAML is an error that names the file and yaml-cpp's
// line and column; a wrong structure names the file and the entry.
util::Result<std::vector<IndexEntry>> read_index(const std::string& path);

// Appends `entry` to the index at `path` and writes the whole file again with
// util::atomic_write_file, mode 0644. An exclusive lock on lock_path_for(path)
// serialises concurrent appends from threads and processes, so no entry is
// lost. A corrupt index is left untouched and reported.
util::Result<void> append_index(const std::string& path,
                                const IndexEntry& entry);

// Returns the lock file that guards `path`: ".NAME.lock" in the same folder.
std::string lock_path_for(const std::string& path);

// Takes an flock(2) lock on `lock_path`, waiting for the current holder. The
// lock lasts until the returned descriptor is closed. An exclusive lock
// creates the file (mode 0644, empty) when missing. A shared lock never
// creates it and returns an invalid descriptor when the file is missing.
util::Result<util::UniqueFd> lock_file(const std::string& lock_path,
                                       bool exclusive);

// Formats seconds since the epoch as UTC ISO 8601: "2025-01-31T12:00:00Z".
std::string format_utc_time(std::int64_t seconds);

// Parses the format_utc_time form back to seconds since the epoch; the error
// names the text and the expected form.
util::Result<std::int64_t> parse_utc_time(const std::string& text);

}  // namespace qmt::pki
