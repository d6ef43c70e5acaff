#include "virt/daemon.hpp"

#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <sstream>
#include <system_error>
#include <thread>
#include <vector>

#include "util/files.hpp"
#include "virt/libvirt.hpp"

namespace qmt::virt {

namespace {

// Strings that libvirt allocates and the caller frees with free().
using LibvirtStringPtr = std::unique_ptr<char, decltype(&std::free)>;

DaemonFacts query_daemon(const std::string& uri) {
  DaemonFacts facts;
  auto connection = open_connection(uri, false);
  if (!connection) {
    auto read_only = open_connection(uri, true);
    if (!read_only) {
      facts.error = connection.error().message;
      return facts;
    }
    connection = std::move(read_only);
    facts.read_only = true;
  }
  facts.connected = true;
  virConnectPtr handle = connection->get();

  unsigned long library_version = 0;
  if (virConnectGetLibVersion(handle, &library_version) < 0) {
    facts.version_error = "Failed to read the libvirt version from " + uri +
                          ": " + last_error_text();
  }
  facts.library_version = library_version;
  unsigned long hypervisor_version = 0;
  if (virConnectGetVersion(handle, &hypervisor_version) < 0) {
    facts.version_error = "Failed to read the hypervisor version from " + uri +
                          ": " + last_error_text();
  }
  facts.hypervisor_version = hypervisor_version;
  // virConnectGetType returns a static string that the caller must not
  // free.
  if (const char* type = virConnectGetType(handle)) {
    facts.hypervisor_type = type;
  }

  LibvirtStringPtr capabilities(
      virConnectGetDomainCapabilities(handle, nullptr, nullptr, nullptr,
                                      nullptr, 0),
      &std::free);
  if (!capabilities) {
    facts.domain_capabilities_error =
        "Failed to read the domain capabilities from " + uri + ": " +
        last_error_text();
  } else {
    facts.emulator = emulator_from_domain_capabilities(capabilities.get());
    if (facts.emulator.empty()) {
      facts.domain_capabilities_error =
          "The domain capabilities from " + uri + " name no emulator <path>";
    }
  }
  return facts;
}

// Shared by the caller and the worker, so a worker that outlives the wait
// still writes into live memory.
struct ProbeState {
  std::mutex mutex;
  std::condition_variable finished;
  bool done = false;
  DaemonFacts facts;
};

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

util::Result<std::int64_t> read_boot_time(const std::string& proc) {
  const std::string file = proc + "/stat";
  auto text = util::read_file(file);
  if (!text) return text.error();
  std::istringstream lines(text.value());
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("btime ", 0) != 0) continue;
    const std::string value = trim(line.substr(6));
    if (value.empty() ||
        value.find_first_not_of("0123456789") != std::string::npos) {
      return util::Error{file + " has btime \"" + value +
                         "\", expected Unix seconds"};
    }
    return static_cast<std::int64_t>(std::stoll(value));
  }
  return util::Error{file + " has no btime line, so the boot time is unknown"};
}

}  // namespace

DaemonProbe probe_daemon(const std::string& uri,
                         std::chrono::milliseconds timeout) {
  silence_error_output();
  DaemonProbe probe;
  const auto start = std::chrono::steady_clock::now();
  auto state = std::make_shared<ProbeState>();
  try {
    std::thread worker([state, uri] {
      DaemonFacts facts = query_daemon(uri);
      std::lock_guard<std::mutex> lock(state->mutex);
      state->facts = std::move(facts);
      state->done = true;
      state->finished.notify_all();
    });
    worker.detach();
  } catch (const std::system_error& error) {
    probe.facts.error =
        "Failed to start a thread to connect to " + uri + ": " + error.what();
    return probe;
  }

  std::unique_lock<std::mutex> lock(state->mutex);
  const bool done =
      state->finished.wait_for(lock, timeout, [&state] { return state->done; });
  probe.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  if (!done) {
    probe.timed_out = true;
    return probe;
  }
  probe.facts = std::move(state->facts);
  return probe;
}

std::string emulator_from_domain_capabilities(const std::string& xml) {
  const std::string open = "<path>";
  const auto begin = xml.find(open);
  if (begin == std::string::npos) return "";
  const auto end = xml.find("</path>", begin);
  if (end == std::string::npos) return "";
  return trim(xml.substr(begin + open.size(), end - begin - open.size()));
}

util::Result<DaemonProcess> read_daemon_process(const std::string& pid_file,
                                                const std::string& proc) {
  auto content = util::read_file(pid_file);
  if (!content) return content.error();
  const std::string text = trim(content.value());
  if (text.empty() || text.size() > 9 ||
      text.find_first_not_of("0123456789") != std::string::npos ||
      std::stol(text) <= 0) {
    return util::Error{pid_file + " contains \"" + text +
                       "\", expected a process id"};
  }
  DaemonProcess process;
  process.pid = static_cast<pid_t>(std::stol(text));

  const std::string stat_file = proc + "/" + text + "/stat";
  auto exists = util::stat_path(stat_file);
  if (!exists) return exists.error();
  if (!exists.value()) {
    return util::Error{pid_file + " names process " + text +
                       ", which is not running"};
  }
  auto stat_text = util::read_file(stat_file);
  if (!stat_text) return stat_text.error();

  // The name (field 2) is in parentheses and may contain spaces and
  // parentheses itself, so the fields after it start at the last ')'.
  const std::string& line = stat_text.value();
  const auto open = line.find('(');
  const auto close = line.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) {
    return util::Error{stat_file + " is not in the /proc/PID/stat format"};
  }
  process.name = line.substr(open + 1, close - open - 1);
  std::istringstream fields(line.substr(close + 1));
  std::vector<std::string> rest;
  std::string field;
  while (fields >> field) rest.push_back(field);
  // rest[0] is field 3 (state), so field 22 (starttime) is rest[19].
  if (rest.size() < 20) {
    return util::Error{stat_file + " has " + std::to_string(rest.size() + 2) +
                       " fields, expected at least 22"};
  }
  if (rest[0] == "Z" || rest[0] == "X") {
    return util::Error{pid_file + " names process " + text + " (" +
                       process.name + "), which has exited"};
  }
  if (rest[19].empty() ||
      rest[19].find_first_not_of("0123456789") != std::string::npos) {
    return util::Error{stat_file + " has start time \"" + rest[19] +
                       "\", expected a number of clock ticks"};
  }
  const unsigned long long ticks = std::stoull(rest[19]);

  auto boot_time = read_boot_time(proc);
  if (!boot_time) return boot_time.error();
  const long ticks_per_second = ::sysconf(_SC_CLK_TCK);
  process.start_time =
      boot_time.value() +
      static_cast<std::int64_t>(
          ticks / static_cast<unsigned long long>(
                      ticks_per_second > 0 ? ticks_per_second : 100));
  return process;
}

}  // namespace qmt::virt
