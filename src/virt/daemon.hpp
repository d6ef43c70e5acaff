#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "util/result.hpp"

namespace qmt::virt {

// Facts a libvirt daemon reported about itself over one connection.
struct DaemonFacts {
  bool connected = false;
  bool read_only = false;                  // the read-write connection failed
  std::string error;                       // why the connection failed
  unsigned long long library_version = 0;  // virConnectGetLibVersion
  unsigned long long hypervisor_version = 0;  // virConnectGetVersion
  std::string hypervisor_type;                // virConnectGetType: "QEMU"
  std::string version_error;  // a failed version call, else empty
  // Emulator binary from the domain capabilities of the default virt type,
  // or empty with the reason in domain_capabilities_error.
  std::string emulator;
  std::string domain_capabilities_error;
};

// The outcome of probe_daemon.
struct DaemonProbe {
  bool timed_out = false;  // facts is empty when true
  double seconds = 0;      // time spent waiting, at most the timeout
  DaemonFacts facts;
};

// Connects to `uri` (read-write, then read-only when that fails) and reads
// the versions and the domain capabilities. libvirt has no timeout for a
// daemon that accepts the connection and then never replies, so the calls
// run in a worker thread and the caller waits at most `timeout`. A worker
// that is still blocked then is left behind; it owns everything it touches
// and closes its connection if libvirt ever returns.
DaemonProbe probe_daemon(const std::string& uri,
                         std::chrono::milliseconds timeout);

// Extracts the text of the first <path> element of a domain capabilities
// document, or an empty string when there is none.
std::string emulator_from_domain_capabilities(const std::string& xml);

// A running daemon process and when it started.
struct DaemonProcess {
  pid_t pid = 0;
  std::string name;             // from /proc/PID/stat, "libvirtd"
  std::int64_t start_time = 0;  // Unix seconds, rounded down
};

// Reads the pid from `pid_file` and the process's start time from
// PROC/PID/stat (field 22, in clock ticks after boot) and PROC/stat (btime,
// the boot time in Unix seconds). Errors name the pid file and the pid: a
// missing or invalid pid file, or a pid that no longer runs.
util::Result<DaemonProcess> read_daemon_process(
    const std::string& pid_file, const std::string& proc = "/proc");

}  // namespace qmt::virt
