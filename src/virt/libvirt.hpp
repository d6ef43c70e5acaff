#pragma once

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <memory>
#include <string>

#include "util/result.hpp"

namespace qmt::virt {

// Owners for libvirt handles. No code frees one by hand.
using ConnectPtr = std::unique_ptr<virConnect, decltype(&virConnectClose)>;
using DomainPtr = std::unique_ptr<virDomain, decltype(&virDomainFree)>;

// Returns libvirt's last error message for this thread, or "unknown libvirt
// error" when none is set.
std::string last_error_text();

// Stops libvirt from printing each error to stderr, which it does by default
// and which would corrupt a module's JSON output. Errors stay readable with
// last_error_text(). Safe to call more than once and from any thread.
void silence_error_output();

// Opens a connection to `uri` without interactive authentication: a daemon
// that asks for credentials fails the call instead of prompting. The error
// names the URI and carries libvirt's message. Blocks as long as libvirt
// does; callers that need a deadline run it in a worker thread.
util::Result<ConnectPtr> open_connection(const std::string& uri,
                                         bool read_only);

// Formats a libvirt version number (major * 1000000 + minor * 1000 +
// release) as "9.0.0".
std::string version_text(unsigned long long version);

}  // namespace qmt::virt
