#pragma once

#include <string>
#include <vector>

#include "pki/openssl.hpp"
#include "util/result.hpp"

namespace qmt::pki {

// Key algorithms this tool generates, for host keys and for the CA key.
enum class KeyType { rsa3072, ec_p256 };

// Returns the configuration spelling of `type`: "rsa3072" or "ec-p256".
const char* to_string(KeyType type);

// Parses "rsa3072" or "ec-p256", or the aliases "rsa" and "ec". The error
// names the value and the accepted spellings.
util::Result<KeyType> parse_key_type(const std::string& text);

// Describes a key for messages: "RSA 3072", "EC P-256", "ED25519 256".
std::string describe_key(const EVP_PKEY* key);

// Returns the KeyType that `key` is an instance of. Any other algorithm, RSA
// size or curve is an error that describes the key.
util::Result<KeyType> key_type_of(const EVP_PKEY* key);

// Generates a new private key with OpenSSL's default random generator.
util::Result<EvpPkeyPtr> generate_key(KeyType type);

// Encodes `key` as unencrypted PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----").
util::Result<std::string> private_key_to_pem(const EVP_PKEY* key);

// Decodes an unencrypted PEM private key. `source` (a path, usually) names
// the key in errors. Encrypted keys are rejected without a password prompt.
util::Result<EvpPkeyPtr> private_key_from_pem(const std::string& pem,
                                              const std::string& source);

// Maximum length of a CN attribute (ub-common-name in RFC 5280).
constexpr std::size_t k_max_common_name_length = 64;

// True when `name` is an IPv4 or IPv6 address literal (no zone index, no
// brackets), which certificates carry as iPAddress entries.
bool is_ip_literal(const std::string& name);

// Checks that `name` can be a certificate name: an IPv4 or IPv6 literal, or a
// DNS host name of letters, digits, '-' and '.', at most 253 characters and
// 63 per label, without wildcards and with a non-numeric last label. The
// error begins with `name_kind` ("Invalid host name \"a b\": ...").
util::Result<void> validate_certificate_name(
    const std::string& name, const std::string& name_kind = "host name");

// Validates `hostname` and every extra name and returns the names for the
// subjectAltName extension: `hostname` first, IP literals in canonical form
// ("FD00:0::1" gives "fd00::1"), duplicates dropped (DNS names compared
// without regard to case). `hostname` also becomes the subject's CN, so it
// may have at most k_max_common_name_length characters.
util::Result<std::vector<std::string>> certificate_names(
    const std::string& hostname, const std::vector<std::string>& extra_names);

// Builds a GENERAL_NAMES list from names returned by certificate_names: IP
// literals become iPAddress entries and all others dNSName entries.
util::Result<GeneralNamesPtr> make_general_names(
    const std::vector<std::string>& names);

// Makes a PEM certificate signing request signed by `key` with SHA-256: the
// subject is CN=hostname and a subjectAltName extension requests the names
// from certificate_names(hostname, extra_names). The CA ignores both and
// decides the certificate's contents itself.
util::Result<std::string> make_csr(const EVP_PKEY* key,
                                   const std::string& hostname,
                                   const std::vector<std::string>& extra_names);

// Decodes a PEM certificate request ("CERTIFICATE REQUEST" or the older
// "NEW CERTIFICATE REQUEST" label). The signature is not checked here.
// A non-empty `hostname` is named in the error ("Invalid CSR for host1: ...").
util::Result<X509ReqPtr> csr_from_pem(const std::string& pem,
                                      const std::string& hostname = "");

// A host key kept on the host between making its CSR and installing its
// certificate.
struct StagedKey {
  EvpPkeyPtr key{nullptr, EVP_PKEY_free};
  bool created = false;  // true when this call generated and wrote the key
};

// Returns the key stored at `path`, or generates one of `type` and stores it
// when `path` does not exist. A new file is created with O_CREAT|O_EXCL and
// mode 0600, fully written and fsync'ed before link(2) gives it its name, so
// that concurrent callers all end up with the same complete key. An existing
// key must be a regular file (not a symbolic link) that group and others
// cannot access, and must be of `type`. Otherwise the error names the file
// and the fix.
util::Result<StagedKey> load_or_create_staged_key(const std::string& path,
                                                  KeyType type);

}  // namespace qmt::pki
