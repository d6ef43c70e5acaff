#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pki/openssl.hpp"
#include "util/result.hpp"

namespace qmt::pki {

// The facts about one X.509 certificate that checks and reports use.
struct CertificateInfo {
  std::string subject, issuer;     // RFC 2253 form, as GnuTLS prints it
  std::string serial_hex;          // upper-case hex, no separators
  std::string sha256_fingerprint;  // "AB:CD:..." as `openssl x509` prints it
  std::int64_t not_before = 0, not_after = 0;        // Unix seconds
  std::vector<std::string> dns_names, ip_addresses;  // from subjectAltName
  bool has_subject_alt_name = false;
  bool is_ca = false;  // basicConstraints CA:TRUE
  bool has_basic_constraints = false;
  // Short names ("serverAuth", "clientAuth", "anyExtendedKeyUsage") or
  // dotted OIDs for unnamed purposes.
  std::vector<std::string> extended_key_usage;
  bool has_extended_key_usage = false;
  bool extended_key_usage_critical = false;
  // RFC 5280 names: "digitalSignature", "keyEncipherment", "keyCertSign"...
  std::vector<std::string> key_usage;
  bool has_key_usage = false;
  bool key_usage_critical = false;
  std::string public_key;  // "RSA 2048", "EC P-256", as pki::describe_key
};

// Parses one or more PEM certificates from `pem`. Empty text, text without a
// certificate block and a damaged block are errors that name `label` (a file
// path or an option name).
util::Result<std::vector<X509Ptr>> parse_certificates(const std::string& pem,
                                                      const std::string& label);

// Parses the first PEM private key in `pem`. An encrypted key is an error
// of its own, because QEMU loads one only with a libvirt secret. Errors name
// `label`.
util::Result<EvpPkeyPtr> parse_private_key(const std::string& pem,
                                           const std::string& label);

// Extracts subject, issuer, serial, fingerprint, validity, names and
// extensions of `certificate`.
CertificateInfo describe(const X509* certificate);

// Formats Unix seconds as "2025-01-31 23:59:59 UTC".
std::string format_time(std::int64_t unix_seconds);

// True when `text` contains a PEM private key block of any kind (PKCS#8,
// encrypted PKCS#8, traditional RSA or EC). Used to tell PEM input from a
// path and to mask secrets in output.
bool is_private_key_pem(const std::string& text);

// True when `text` contains a PEM header line ("-----BEGIN ...-----").
bool is_pem_text(const std::string& text);

}  // namespace qmt::pki
