#pragma once

#include "ops/operation.hpp"

namespace qmt::ops {

// qemu_migration_tls_info / `verify`: read-only checks of qemu.conf, the
// certificate set and libvirt, returned as a list of named checks.
Operation info_operation();

}  // namespace qmt::ops
