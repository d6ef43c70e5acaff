#pragma once

#include "ops/operation.hpp"

namespace qmt::ops {

// qemu_migration_tls_cert / `install`: installs, requests (CSR) or removes
// the certificate set in cert_dir.
Operation cert_operation();

}  // namespace qmt::ops
