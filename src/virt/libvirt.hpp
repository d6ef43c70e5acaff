#pragma once

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <memory>
#include <string>

namespace qmt::virt {

// Owners for libvirt handles. No code frees one by hand.
using ConnectPtr = std::unique_ptr<virConnect, decltype(&virConnectClose)>;
using DomainPtr = std::unique_ptr<virDomain, decltype(&virDomainFree)>;

// Returns libvirt's last error message for this thread, or "unknown libvirt
// error" when none is set.
std::string last_error_text();

}  // namespace qmt::virt
