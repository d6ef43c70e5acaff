#include "virt/libvirt.hpp"

#include <mutex>

namespace qmt::virt {

namespace {

void ignore_error(void*, virErrorPtr) {}

}  // namespace

std::string last_error_text() {
  const char* message = virGetLastErrorMessage();
  if (message == nullptr || std::string(message) == "no error") {
    return "unknown libvirt error";
  }
  return message;
}

void silence_error_output() {
  static std::once_flag once;
  std::call_once(once, [] { virSetErrorFunc(nullptr, ignore_error); });
}

util::Result<ConnectPtr> open_connection(const std::string& uri,
                                         bool read_only) {
  silence_error_output();
  // No credential types and no callback: libvirt then fails an
  // authentication request at once instead of reading from a terminal.
  virConnectAuth auth{nullptr, 0, nullptr, nullptr};
  const unsigned int flags = read_only ? VIR_CONNECT_RO : 0;
  ConnectPtr connection(virConnectOpenAuth(uri.c_str(), &auth, flags),
                        &virConnectClose);
  if (!connection) {
    return util::Error{"Failed to connect to " + uri +
                       (read_only ? " (read-only)" : "") + ": " +
                       last_error_text()};
  }
  return connection;
}

std::string version_text(unsigned long long version) {
  return std::to_string(version / 1000000) + "." +
         std::to_string(version / 1000 % 1000) + "." +
         std::to_string(version % 1000);
}

}  // namespace qmt::virt
