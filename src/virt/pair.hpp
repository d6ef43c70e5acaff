#pragma once

#include <cstdint>
#include <string>

#include "pki/checks.hpp"
#include "util/check.hpp"

namespace qmt::virt {

// This host's files and the peer's certificates for one migration pair.
struct PairInput {
  pki::PemFile ca_cert;           // this host's ca-cert.pem
  pki::PemFile client_cert;       // this host's client-cert.pem
  pki::PemFile peer_ca_cert;      // the peer's ca-cert.pem
  pki::PemFile peer_server_cert;  // the peer's server-cert.pem
  std::string peer_name;          // the name this host migrates to
  std::int64_t now = 0;           // Unix seconds; 0 = current time
};

// Checks both directions of the TLS handshake of a migration from this host
// to the peer. As source, QEMU here accepts the peer's server certificate:
// "pair.peer-server-cert.chain" (issued by a CA in this host's ca-cert.pem),
// ".hostname" (peer_name in its subjectAltName), ".validity" and
// ".purpose" (serverAuth). As destination, QEMU on the peer accepts this
// host's client certificate: "pair.client-cert.chain" (issued by a CA in
// the peer's ca-cert.pem), ".validity" and ".purpose" (clientAuth).
// A missing or unparsable input gives one failed "....parse" check instead.
util::Checks check_pair(const PairInput& input);

}  // namespace qmt::virt
