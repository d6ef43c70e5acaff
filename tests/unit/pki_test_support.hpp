#pragma once

// Test helpers that build CAs, certificates and keys in memory with the
// OpenSSL 3.0 API, and temporary folders. Header-only: the build compiles
// only tests/unit/LAYER_*_test.cpp files, so every test file that includes
// this gets its own inline copy.

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "pki/openssl.hpp"
#include "util/files.hpp"

namespace qmt::pki::testing {

enum class KeyType { rsa, ec };

constexpr std::int64_t k_day = 86400;

inline std::int64_t now_seconds() {
  return static_cast<std::int64_t>(std::time(nullptr));
}

// Generates a fresh key: RSA with `rsa_bits`, or EC on the named curve.
inline EvpPkeyPtr generate_key(KeyType type, unsigned int rsa_bits = 2048,
                               const std::string& ec_curve = "P-256") {
  EVP_PKEY* key =
      type == KeyType::rsa
          ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA",
                              static_cast<std::size_t>(rsa_bits))
          : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", ec_curve.c_str());
  if (key == nullptr) {
    throw std::runtime_error("key generation failed: " + openssl_error_text());
  }
  return EvpPkeyPtr(key, &EVP_PKEY_free);
}

// Returns a key shared by all tests of the process: number `index` of that
// type. RSA generation takes tens of milliseconds, so tests reuse keys where
// a distinct key does not matter.
inline EvpPkeyPtr shared_key(KeyType type, int index = 0) {
  static std::map<std::pair<KeyType, int>, EvpPkeyPtr> keys;
  auto found = keys.find({type, index});
  if (found == keys.end()) {
    found = keys.emplace(std::make_pair(type, index), generate_key(type)).first;
  }
  EVP_PKEY_up_ref(found->second.get());
  return EvpPkeyPtr(found->second.get(), &EVP_PKEY_free);
}

// What make_certificate puts into a certificate.
struct CertificateSpec {
  std::string common_name = "test";
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  std::optional<bool> ca;  // basicConstraints CA:TRUE/FALSE; none if nullopt
  bool basic_constraints_critical = true;
  std::vector<std::string>
      extended_key_usage;  // "serverAuth"...; none if empty
  bool extended_key_usage_critical = false;
  std::vector<std::string> key_usage;  // "digitalSignature"...; none if empty
  bool key_usage_critical = true;
  std::int64_t not_before = 0;  // Unix seconds; 0 = one day ago
  std::int64_t not_after = 0;   // Unix seconds; 0 = in 365 days
  std::uint64_t serial = 0;     // 0 = random
  bool key_identifiers = true;  // subject and authority key identifiers
};

// A CA certificate spec as a CA tool would issue it.
inline CertificateSpec ca_spec(const std::string& common_name) {
  CertificateSpec spec;
  spec.common_name = common_name;
  spec.ca = true;
  spec.key_usage = {"keyCertSign", "cRLSign"};
  return spec;
}

// A server certificate spec for `host` (DNS) with serverAuth and clientAuth,
// as libvirt's documentation suggests for migration certificates.
inline CertificateSpec server_spec(const std::string& host) {
  CertificateSpec spec;
  spec.common_name = host;
  spec.dns_names = {host};
  spec.ca = false;
  spec.extended_key_usage = {"serverAuth", "clientAuth"};
  spec.key_usage = {"digitalSignature", "keyEncipherment"};
  return spec;
}

// A client certificate spec with clientAuth only.
inline CertificateSpec client_spec(const std::string& common_name) {
  CertificateSpec spec;
  spec.common_name = common_name;
  spec.ca = false;
  spec.extended_key_usage = {"clientAuth"};
  spec.key_usage = {"digitalSignature", "keyEncipherment"};
  return spec;
}

inline std::string join_values(const std::vector<std::string>& values) {
  std::string text;
  for (const auto& value : values) text += (text.empty() ? "" : ",") + value;
  return text;
}

inline void add_extension(X509* certificate, X509V3_CTX* context, int nid,
                          const std::string& value) {
  X509ExtensionPtr extension(
      X509V3_EXT_nconf_nid(nullptr, context, nid, value.c_str()),
      &X509_EXTENSION_free);
  if (!extension || X509_add_ext(certificate, extension.get(), -1) != 1) {
    throw std::runtime_error("extension " + value +
                             " failed: " + openssl_error_text());
  }
}

// Builds and signs a certificate for `subject_key`. Without an issuer the
// certificate is self-signed with `subject_key`.
inline X509Ptr make_certificate(const CertificateSpec& spec,
                                EVP_PKEY* subject_key, X509* issuer = nullptr,
                                EVP_PKEY* issuer_key = nullptr) {
  X509Ptr certificate(X509_new(), &X509_free);
  X509_set_version(certificate.get(), X509_VERSION_3);

  std::uint64_t serial = spec.serial;
  if (serial == 0) {
    RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof(serial));
    serial = (serial >> 1) | 1;  // positive and non-zero
  }
  ASN1_INTEGER_set_uint64(X509_get_serialNumber(certificate.get()), serial);

  const std::int64_t now = now_seconds();
  ASN1_TIME_set(X509_getm_notBefore(certificate.get()),
                static_cast<time_t>(spec.not_before != 0 ? spec.not_before
                                                         : now - k_day));
  ASN1_TIME_set(X509_getm_notAfter(certificate.get()),
                static_cast<time_t>(spec.not_after != 0 ? spec.not_after
                                                        : now + 365 * k_day));

  X509_NAME* name = X509_get_subject_name(certificate.get());
  X509_NAME_add_entry_by_txt(
      name, "CN", MBSTRING_UTF8,
      reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1, -1,
      0);
  X509_set_issuer_name(certificate.get(),
                       issuer ? X509_get_subject_name(issuer) : name);
  X509_set_pubkey(certificate.get(), subject_key);

  X509V3_CTX context;
  X509V3_set_ctx(&context, issuer ? issuer : certificate.get(),
                 certificate.get(), nullptr, nullptr, 0);
  if (issuer == nullptr) X509V3_set_issuer_pkey(&context, subject_key);

  if (spec.ca) {
    add_extension(
        certificate.get(), &context, NID_basic_constraints,
        std::string(spec.basic_constraints_critical ? "critical," : "") +
            (*spec.ca ? "CA:TRUE" : "CA:FALSE"));
  }
  if (!spec.key_usage.empty()) {
    add_extension(certificate.get(), &context, NID_key_usage,
                  std::string(spec.key_usage_critical ? "critical," : "") +
                      join_values(spec.key_usage));
  }
  if (!spec.extended_key_usage.empty()) {
    add_extension(
        certificate.get(), &context, NID_ext_key_usage,
        std::string(spec.extended_key_usage_critical ? "critical," : "") +
            join_values(spec.extended_key_usage));
  }
  std::vector<std::string> names;
  for (const auto& dns : spec.dns_names) names.push_back("DNS:" + dns);
  for (const auto& ip : spec.ip_addresses) names.push_back("IP:" + ip);
  if (!names.empty()) {
    add_extension(certificate.get(), &context, NID_subject_alt_name,
                  join_values(names));
  }
  if (spec.key_identifiers) {
    add_extension(certificate.get(), &context, NID_subject_key_identifier,
                  "hash");
    add_extension(certificate.get(), &context, NID_authority_key_identifier,
                  "keyid:always");
  }

  EVP_PKEY* signer = issuer_key ? issuer_key : subject_key;
  if (X509_sign(certificate.get(), signer, EVP_sha256()) <= 0) {
    throw std::runtime_error("signing failed: " + openssl_error_text());
  }
  return certificate;
}

inline std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(size));
}

inline std::string certificate_pem(const X509* certificate) {
  BioPtr bio(BIO_new(BIO_s_mem()), &BIO_free_all);
  PEM_write_bio_X509(bio.get(), certificate);
  return bio_text(bio.get());
}

// The PKCS#8 PEM of `key`; encrypted with AES-256-CBC when `passphrase` is
// given, or in the traditional "BEGIN RSA/EC PRIVATE KEY" form on request.
inline std::string private_key_pem(const EVP_PKEY* key,
                                   const std::string& passphrase = "",
                                   bool traditional = false) {
  BioPtr bio(BIO_new(BIO_s_mem()), &BIO_free_all);
  const EVP_CIPHER* cipher = passphrase.empty() ? nullptr : EVP_aes_256_cbc();
  void* user =
      passphrase.empty() ? nullptr : const_cast<char*>(passphrase.c_str());
  const int written =
      traditional ? PEM_write_bio_PrivateKey_traditional(
                        bio.get(), key, cipher, nullptr, 0, nullptr, user)
                  : PEM_write_bio_PrivateKey(bio.get(), key, cipher, nullptr, 0,
                                             nullptr, user);
  if (written != 1) {
    throw std::runtime_error("key export failed: " + openssl_error_text());
  }
  return bio_text(bio.get());
}

// A test CA: key and self-signed certificate, issuing leaf certificates.
class TestCa {
 public:
  // A CA with a fresh key, so two CAs never verify each other's
  // certificates.
  explicit TestCa(const std::string& common_name, KeyType type = KeyType::ec)
      : TestCa(ca_spec(common_name), generate_key(type)) {}
  TestCa(const CertificateSpec& spec, EvpPkeyPtr key)
      : m_key(std::move(key)),
        m_certificate(make_certificate(spec, m_key.get())) {}

  // Issues a certificate for `subject_key`, signed by this CA.
  X509Ptr issue(const CertificateSpec& spec, EVP_PKEY* subject_key) const {
    return make_certificate(spec, subject_key, m_certificate.get(),
                            m_key.get());
  }
  std::string issue_pem(const CertificateSpec& spec,
                        EVP_PKEY* subject_key) const {
    return certificate_pem(issue(spec, subject_key).get());
  }

  X509* certificate() const { return m_certificate.get(); }
  EVP_PKEY* key() const { return m_key.get(); }
  std::string pem() const { return certificate_pem(m_certificate.get()); }

 private:
  EvpPkeyPtr m_key;
  X509Ptr m_certificate;
};

// A folder under /tmp removed with its content when the object goes.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "qmt-pki") {
    std::string pattern = "/tmp/" + prefix + "-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (::mkdtemp(buffer.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed for " + pattern);
    }
    m_path = buffer.data();
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(m_path, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return m_path; }

 private:
  std::string m_path;
};

// Returns the permission bits of `path`, or 0 when it cannot be read.
inline mode_t file_mode(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return 0;
  return info.st_mode & 07777;
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// Returns the content of `path`, or "" when it cannot be read.
inline std::string read_text(const std::string& path) {
  auto text = qmt::util::read_file(path);
  return text.ok() ? text.value() : "";
}

}  // namespace qmt::pki::testing
