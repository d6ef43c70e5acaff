#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pki/csr.hpp"
#include "pki/openssl.hpp"
#include "util/result.hpp"

namespace qmt::pki {

// Location, subject and validity policy of the QEMU migration CA.
struct CaSettings {
  // Folder of ca-key.pem (0600), ca-cert.pem, index.yml and .lock.
  std::string ca_dir;
  std::string subject = "/CN=QEMU Migration CA";  // "/O=x/CN=y" form
  KeyType key_type = KeyType::ec_p256;            // used when creating the CA
  int validity_days = 7300;                       // CA lifetime, 20 years
  int cert_validity_days = 398;  // default SignRequest::validity_days
  std::string index_path;        // empty: ca_dir/index.yml
};

// Largest validity accepted for the CA and for issued certificates.
constexpr int k_max_validity_days = 36500;

// Backdating of notBefore, so that hosts whose clocks run a little behind the
// controller's accept a certificate at once.
constexpr std::int64_t k_clock_skew_seconds = 300;

// Paths of the CA's files for `settings`.
std::string ca_key_path(const CaSettings& settings);
std::string ca_certificate_path(const CaSettings& settings);
std::string ca_index_path(const CaSettings& settings);
std::string ca_lock_path(const CaSettings& settings);

// Checks a "/O=Example/CN=QEMU Migration CA" subject: it starts with '/',
// every attribute is known to OpenSSL and has a value. "\/" stands for a '/'
// inside a value.
util::Result<void> validate_subject(const std::string& subject);

// Returns the serial number of `certificate` in lowercase hexadecimal without
// leading zeros or separators, as the index records it.
std::string serial_hex(const X509* certificate);

// The CA as inspect_ca read it. Only `exists` is set when the CA folder
// contains neither ca-key.pem nor ca-cert.pem.
struct CaState {
  bool exists = false;
  std::string certificate_pem;
  std::string subject;  // RFC 2253 text, for example "CN=QEMU ..."
  std::string serial_hex;
  std::int64_t not_before = 0;  // seconds since the Unix epoch
  std::int64_t not_after = 0;
  std::string key_description;  // for example "EC P-256"
};

// Reads the CA's key and certificate under a shared lock. Errors: only one of
// the two files exists (the message names the missing one), either cannot be
// parsed, the certificate lacks basicConstraints CA:TRUE, or the key does not
// match the certificate.
util::Result<CaState> inspect_ca(const CaSettings& settings);

// Creates the CA unless it exists and returns true when it created it, or in
// check mode when it would. An existing CA is never replaced, and a broken
// one is the inspect_ca error. The certificate is self-signed with
// basicConstraints critical CA:TRUE, keyUsage critical keyCertSign and
// cRLSign, subject and authority key identifiers, a random positive 16-byte
// serial and notBefore k_clock_skew_seconds in the past. Missing folders are
// made with mode 0700. ca-key.pem (0600) and ca-cert.pem (0644) are written
// atomically while holding the exclusive lock on ca_lock_path.
util::Result<bool> ensure_ca(const CaSettings& settings, bool check_mode);

// A request to certify a host key.
struct SignRequest {
  std::string csr_pem;
  std::string hostname;  // becomes CN and the first subjectAltName
  std::vector<std::string> extra_names;  // DNS names and IPv4/IPv6 literals
  int validity_days = 398;
  std::int64_t now = 0;  // seconds since the epoch; 0 means the current time
  // Also sets keyEncipherment on certificates for EC keys. QEMU's x509 TLS
  // credentials reject a certificate whose critical keyUsage lacks that bit
  // ("usage does not permit key encipherment") unless the QEMU build has the
  // change "crypto: stop requiring key encipherment usage in x509 certs",
  // which reached the 7.2.22 and 10.0.7 stable releases and Debian 12's
  // 1:7.2+dfsg-7+deb12u18. RFC 8813 forbids the bit for EC keys.
  bool ec_key_encipherment = false;
};

// A certificate issued by sign_csr.
struct SignedCertificate {
  std::string certificate_pem;
  std::string ca_certificate_pem;
  std::string serial_hex;
  std::vector<std::string> names;  // subjectAltName entries, host name first
  std::int64_t not_before = 0;
  std::int64_t not_after = 0;
  // True when notAfter was clipped to the CA certificate's notAfter because
  // now + validity_days lies beyond it; callers should warn.
  bool not_after_clipped = false;
};

// Issues a certificate for the key in `request.csr_pem` and appends it to the
// index. The CSR's signature must verify; its subject and extensions are
// ignored. The certificate has subject CN=hostname, basicConstraints
// critical CA:FALSE, keyUsage critical digitalSignature (plus
// keyEncipherment for RSA keys), extendedKeyUsage serverAuth and clientAuth,
// subjectAltName with every name, subject and authority key identifiers, a
// random positive 16-byte serial (127 random bits), notBefore = now -
// k_clock_skew_seconds and notAfter = now + validity_days, clipped to the CA's
// notAfter. Accepted keys: RSA of 2048 to 16384 bits and EC P-256, P-384 and
// P-521. An expired CA, the CA's own key and an unreadable index are errors.
// Signing holds the exclusive lock on ca_lock_path.
util::Result<SignedCertificate> sign_csr(const CaSettings& settings,
                                         const SignRequest& request);

}  // namespace qmt::pki
