#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qmt::virt {

inline constexpr double k_bytes_per_mib = 1024.0 * 1024.0;

// Formats one progress line, "migrating: 123/256 MiB left, 95.3 MiB/s".
// Until the amounts are known (a total of 0 or unset) the line is
// "migrating: starting", and an unknown rate is left out.
std::string progress_line(std::optional<std::uint64_t> remaining_bytes,
                          std::optional<std::uint64_t> total_bytes,
                          std::optional<double> bytes_per_second);

// Returns `bytes` per second in MiB/s, or nullopt when `seconds` is not
// positive.
std::optional<double> mib_per_second(std::uint64_t bytes, double seconds);

// Returns the median of `values` (the mean of the middle two for an even
// count), or nullopt for an empty list.
std::optional<double> median(std::vector<double> values);

// Rounds `value` to `digits` decimal places, for result values.
double round_to(double value, int digits);

}  // namespace qmt::virt
