#pragma once

#include "ops/operation.hpp"

namespace qmt::ops {

// qemu_migration_tls_migrate / `migrate`: live-migrates a domain peer to
// peer with or without QEMU native TLS, reports the figures, and on request
// compares both modes or proves the encryption on the wire.
Operation migrate_operation();

}  // namespace qmt::ops
