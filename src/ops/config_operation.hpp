#pragma once

#include "ops/operation.hpp"

namespace qmt::ops {

// qemu_migration_tls_config / `config`: sets or removes the migration TLS
// keys of qemu.conf through augeas.
Operation config_operation();

}  // namespace qmt::ops
