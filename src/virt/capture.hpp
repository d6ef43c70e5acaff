#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "util/result.hpp"

namespace qmt::virt {

// QEMU's default migration ports (libvirt's migration_port_min and
// migration_port_max, 49152 to 49215).
inline constexpr const char* k_default_capture_filter =
    "tcp portrange 49152-49215";

// How to capture migration traffic with tshark.
struct CaptureSettings {
  std::string interface = "any";
  std::string filter = k_default_capture_filter;  // a capture (BPF) filter
  std::string file;  // pcap file to write; empty: a temporary file
  std::string tshark = "tshark";
  int buffer_mib = 512;  // tshark -B: without it tshark drops packets
  // Seconds to wait after tshark reports that it captures: packets sent
  // earlier can still be missed.
  double settle_seconds = 2.0;
  double start_timeout_seconds = 30.0;
};

// Counts tshark reported when it stopped.
struct CaptureSummary {
  std::string file;
  std::optional<std::uint64_t> packets_captured;
  std::optional<std::uint64_t> packets_dropped;
};

// A tshark process started by this program. Destruction stops tshark if it
// still runs and removes the temporary folder, with the capture file unless
// settings.file named it.
class Capture {
 public:
  Capture() = default;
  Capture(Capture&& other) noexcept;
  Capture& operator=(Capture&& other) noexcept;
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;
  ~Capture();

  // Starts `tshark -B N -i IFACE -f FILTER -F pcap -w FILE` and returns once
  // tshark reports "Capturing on" and settle_seconds have passed. Errors
  // name the command and quote tshark's messages.
  static util::Result<Capture> start(const CaptureSettings& settings);

  // Stops tshark with SIGINT, waits for it, and returns its counts. A
  // temporary file stays readable until the Capture is destroyed.
  util::Result<CaptureSummary> stop();

  const std::string& file() const { return m_file; }

 private:
  void terminate();
  void remove_files();

  pid_t m_pid = -1;
  std::string m_file;
  bool m_keep_file = false;  // settings.file was given
  std::string m_folder;      // temporary folder for the log (and the file)
  std::string m_log;         // tshark's standard error
};

}  // namespace qmt::virt
