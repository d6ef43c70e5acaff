#include "virt/migrate_figures.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace qmt::virt {

std::string progress_line(std::optional<std::uint64_t> remaining_bytes,
                          std::optional<std::uint64_t> total_bytes,
                          std::optional<double> bytes_per_second) {
  std::string amounts;
  // QEMU reports a total of 0 until the migration has set up its streams.
  if (remaining_bytes && total_bytes && *total_bytes > 0) {
    char text[64];
    std::snprintf(
        text, sizeof text, "%.0f/%.0f MiB left",
        std::ceil(static_cast<double>(*remaining_bytes) / k_bytes_per_mib),
        std::ceil(static_cast<double>(*total_bytes) / k_bytes_per_mib));
    amounts = text;
  }
  std::string rate;
  if (bytes_per_second) {
    char text[64];
    std::snprintf(text, sizeof text, "%.1f MiB/s",
                  *bytes_per_second / k_bytes_per_mib);
    rate = text;
  }
  if (amounts.empty()) return "migrating: starting";
  if (rate.empty()) return "migrating: " + amounts;
  return "migrating: " + amounts + ", " + rate;
}

std::optional<double> mib_per_second(std::uint64_t bytes, double seconds) {
  if (!(seconds > 0)) return std::nullopt;
  return static_cast<double>(bytes) / k_bytes_per_mib / seconds;
}

std::optional<double> median(std::vector<double> values) {
  if (values.empty()) return std::nullopt;
  std::sort(values.begin(), values.end());
  const std::size_t middle = values.size() / 2;
  if (values.size() % 2 == 1) return values[middle];
  return (values[middle - 1] + values[middle]) / 2;
}

double round_to(double value, int digits) {
  const double scale = std::pow(10.0, digits);
  return std::round(value * scale) / scale;
}

}  // namespace qmt::virt
