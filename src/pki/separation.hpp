#pragma once

#include "pki/checks.hpp"
#include "util/check.hpp"

namespace qmt::pki {

// Checks that the QEMU certificate set is separate from the CA that
// libvirt's own TLS trusts: ca-cert.pem must not contain that CA and the
// host certificate must not verify against it. Otherwise a QEMU process,
// which can read its key, could connect to libvirtd.
util::Checks check_separation(const CertificateSet& set,
                              const PemFile& libvirt_ca);

}  // namespace qmt::pki
