#pragma once

#include "ops/operation.hpp"

namespace qmt::ops {

// qemu_migration_tls_ca / `ca`: creates the QEMU-only certification
// authority once and signs host certificate signing requests with it.
Operation ca_operation();

}  // namespace qmt::ops
