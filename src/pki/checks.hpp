#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/check.hpp"
#include "util/result.hpp"

namespace qmt::pki {

// One PEM input. `label` is the file path or option name used in messages;
// an empty `pem` means the input is missing.
struct PemFile {
  std::string label;
  std::string pem;
};

// The five files QEMU reads from migrate_tls_x509_cert_dir.
struct CertificateSet {
  PemFile ca_cert, server_cert, server_key, client_cert, client_key;
};

// Expectations that check_certificate_set compares the set against.
struct CheckOptions {
  std::string hostname;                  // must be in the server cert SAN
  std::vector<std::string> extra_names;  // DNS names or IP literals
  int warn_days = 30;                    // expiring within: warning
  std::int64_t now = 0;                  // Unix seconds; 0 = current time
};

// Checks `set` the way QEMU's tls-creds-x509 start-up checks and the TLS
// handshake will, and returns one util::Check per finding, passed ones
// included. Names are "<file>.<check>", for example "server-cert.chain",
// "server-key.match", "ca-cert.validity" (see checks.cpp for the list).
// A check whose input failed to parse is skipped.
util::Checks check_certificate_set(const CertificateSet& set,
                                   const CheckOptions& options);

// Runs the checks that need no host name: check_certificate_set with default
// options. Used before qemu.conf is pointed at an installed folder.
util::Checks check_structure(const CertificateSet& set);

// Reads the five files from `cert_dir`, labelled with their paths. A missing
// file (or folder) gives an empty pem; any other read failure is an error.
util::Result<CertificateSet> read_certificate_set(const std::string& cert_dir);

}  // namespace qmt::pki
