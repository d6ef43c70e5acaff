#include "pki/certificate.hpp"

#include <arpa/inet.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include <ctime>

#include "pki/csr.hpp"

namespace qmt::pki {

namespace {

struct OpensslStringFree {
  void operator()(char* text) const { OPENSSL_free(text); }
};
using OpensslStringPtr = std::unique_ptr<char, OpensslStringFree>;
using Asn1BitStringPtr =
    std::unique_ptr<ASN1_BIT_STRING, decltype(&ASN1_BIT_STRING_free)>;

BioPtr memory_bio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())),
                &BIO_free_all);
}

bool is_blank(const std::string& text) {
  return text.find_first_not_of(" \t\r\n") == std::string::npos;
}

// True when the last queued OpenSSL error is PEM's "no start line", which is
// how PEM_read_bio_* reports that no further block of the type exists.
bool last_error_is_no_start_line() {
  unsigned long code = ERR_peek_last_error();
  return ERR_GET_LIB(code) == ERR_LIB_PEM &&
         ERR_GET_REASON(code) == PEM_R_NO_START_LINE;
}

// Returns the labels of all "-----BEGIN LABEL-----" lines in `text`.
std::vector<std::string> pem_labels(const std::string& text) {
  static const std::string k_begin = "-----BEGIN ";
  std::vector<std::string> labels;
  std::size_t position = 0;
  while ((position = text.find(k_begin, position)) != std::string::npos) {
    std::size_t start = position + k_begin.size();
    std::size_t end = text.find("-----", start);
    if (end == std::string::npos) break;
    std::string label = text.substr(start, end - start);
    if (label.find('\n') == std::string::npos) labels.push_back(label);
    position = end;
  }
  return labels;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// PKCS#8 encrypted keys have their own PEM label; traditional (OpenSSL 1.x
// "BEGIN RSA PRIVATE KEY") encrypted keys carry a Proc-Type header instead.
bool is_encrypted_key_pem(const std::string& text) {
  return text.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") !=
             std::string::npos ||
         text.find("Proc-Type: 4,ENCRYPTED") != std::string::npos;
}

util::Error encrypted_key_error(const std::string& label) {
  return util::Error{
      "The private key in " + label +
      " is encrypted: QEMU cannot load an encrypted key without a libvirt "
      "secret (migrate_tls_x509_secret_uuid); expected an unencrypted PEM "
      "private key"};
}

struct PassphraseRequest {
  bool requested = false;
};

// Declines to supply a passphrase. Without a callback OpenSSL would prompt
// on the terminal, which a module must never do.
int decline_passphrase(char* /*buffer*/, int /*size*/, int /*rwflag*/,
                       void* data) {
  static_cast<PassphraseRequest*>(data)->requested = true;
  return -1;
}

std::string name_text(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()), &BIO_free_all);
  // RFC 2253 order and escaping, but UTF-8 kept readable instead of \XX.
  X509_NAME_print_ex(bio.get(), name, 0,
                     XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return size > 0 ? std::string(data, static_cast<std::size_t>(size)) : "";
}

std::string serial_text(const X509* certificate) {
  BignumPtr number(
      ASN1_INTEGER_to_BN(X509_get0_serialNumber(certificate), nullptr),
      &BN_free);
  if (!number) return "";
  OpensslStringPtr hex(BN_bn2hex(number.get()));
  return hex ? std::string(hex.get()) : "";
}

std::string fingerprint_text(const X509* certificate) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (X509_digest(certificate, EVP_sha256(), digest, &size) != 1) return "";
  static const char k_hex[] = "0123456789ABCDEF";
  std::string text;
  for (unsigned int i = 0; i < size; ++i) {
    if (i > 0) text += ':';
    text += k_hex[digest[i] >> 4];
    text += k_hex[digest[i] & 0x0f];
  }
  return text;
}

std::int64_t time_seconds(const ASN1_TIME* time) {
  std::tm parts{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &parts) != 1) return 0;
  return static_cast<std::int64_t>(::timegm(&parts));
}

std::string ip_text(const ASN1_OCTET_STRING* address) {
  const unsigned char* bytes = ASN1_STRING_get0_data(address);
  const int size = ASN1_STRING_length(address);
  char text[INET6_ADDRSTRLEN] = {};
  if (size == 4 && ::inet_ntop(AF_INET, bytes, text, sizeof(text))) {
    return text;
  }
  if (size == 16 && ::inet_ntop(AF_INET6, bytes, text, sizeof(text))) {
    return text;
  }
  // NOTE: a malformed iPAddress entry (neither 4 nor 16 bytes) is listed
  // by size only; no TLS library matches it against an address.
  return "invalid (" + std::to_string(size) + " bytes)";
}

void read_subject_alt_names(const X509* certificate, CertificateInfo& info) {
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(
          certificate, NID_subject_alt_name, nullptr, nullptr)),
      &GENERAL_NAMES_free);
  if (!names) return;
  info.has_subject_alt_name = true;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type == GEN_DNS) {
      const ASN1_IA5STRING* dns = name->d.dNSName;
      info.dns_names.emplace_back(
          reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
          static_cast<std::size_t>(ASN1_STRING_length(dns)));
    } else if (name->type == GEN_IPADD) {
      info.ip_addresses.push_back(ip_text(name->d.iPAddress));
    }
  }
}

void read_basic_constraints(const X509* certificate, CertificateInfo& info) {
  BasicConstraintsPtr constraints(
      static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(
          certificate, NID_basic_constraints, nullptr, nullptr)),
      &BASIC_CONSTRAINTS_free);
  info.has_basic_constraints = constraints != nullptr;
  info.is_ca = constraints && constraints->ca != 0;
}

std::string object_name(const ASN1_OBJECT* object) {
  int nid = OBJ_obj2nid(object);
  if (nid != NID_undef) return OBJ_nid2sn(nid);
  char text[128] = {};
  OBJ_obj2txt(text, sizeof(text), object, 1);
  return text;
}

void read_extended_key_usage(const X509* certificate, CertificateInfo& info) {
  int critical = 0;
  ExtendedKeyUsagePtr usage(
      static_cast<EXTENDED_KEY_USAGE*>(
          X509_get_ext_d2i(certificate, NID_ext_key_usage, &critical, nullptr)),
      &EXTENDED_KEY_USAGE_free);
  if (!usage) return;
  info.has_extended_key_usage = true;
  info.extended_key_usage_critical = critical == 1;
  for (int i = 0; i < sk_ASN1_OBJECT_num(usage.get()); ++i) {
    info.extended_key_usage.push_back(
        object_name(sk_ASN1_OBJECT_value(usage.get(), i)));
  }
}

void read_key_usage(const X509* certificate, CertificateInfo& info) {
  // Bit order of the KeyUsage BIT STRING, RFC 5280 section 4.2.1.3.
  static const char* const k_usage_names[] = {
      "digitalSignature", "nonRepudiation", "keyEncipherment",
      "dataEncipherment", "keyAgreement",   "keyCertSign",
      "cRLSign",          "encipherOnly",   "decipherOnly"};
  int critical = 0;
  Asn1BitStringPtr usage(static_cast<ASN1_BIT_STRING*>(X509_get_ext_d2i(
                             certificate, NID_key_usage, &critical, nullptr)),
                         &ASN1_BIT_STRING_free);
  if (!usage) return;
  info.has_key_usage = true;
  info.key_usage_critical = critical == 1;
  for (int bit = 0; bit < 9; ++bit) {
    if (ASN1_BIT_STRING_get_bit(usage.get(), bit)) {
      info.key_usage.push_back(k_usage_names[bit]);
    }
  }
}

}  // namespace

util::Result<std::vector<X509Ptr>> parse_certificates(
    const std::string& pem, const std::string& label) {
  if (is_blank(pem)) {
    return util::Error{label +
                       " is empty: expected one or more PEM "
                       "certificates"};
  }
  BioPtr bio = memory_bio(pem);
  ERR_clear_error();
  std::vector<X509Ptr> certificates;
  for (;;) {
    X509Ptr certificate(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr),
                        &X509_free);
    if (certificate) {
      certificates.push_back(std::move(certificate));
      continue;
    }
    if (!last_error_is_no_start_line()) {
      return util::Error{"Invalid PEM certificate in " + label + ": " +
                         openssl_error_text()};
    }
    ERR_clear_error();
    break;
  }
  if (certificates.empty()) {
    std::string found = is_private_key_pem(pem)
                            ? "it contains a private key, not a certificate"
                            : "no PEM certificate block found";
    return util::Error{"Invalid certificate file " + label + ": " + found +
                       "; expected -----BEGIN CERTIFICATE-----"};
  }
  return certificates;
}

util::Result<EvpPkeyPtr> parse_private_key(const std::string& pem,
                                           const std::string& label) {
  if (is_blank(pem)) {
    return util::Error{label + " is empty: expected a PEM private key"};
  }
  if (is_encrypted_key_pem(pem)) {
    return encrypted_key_error(label);
  }
  // OpenSSL 3.0 reports text without a key block as a DECODER error, not
  // as PEM's "no start line", so look for the block first.
  if (!is_private_key_pem(pem)) {
    return util::Error{"Invalid private key file " + label +
                       ": no PEM private key block found; expected "
                       "-----BEGIN PRIVATE KEY-----"};
  }
  BioPtr bio = memory_bio(pem);
  ERR_clear_error();
  PassphraseRequest passphrase;
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, decline_passphrase,
                                         &passphrase),
                 &EVP_PKEY_free);
  if (key) return key;
  if (passphrase.requested) {
    ERR_clear_error();
    return encrypted_key_error(label);
  }
  return util::Error{"Invalid PEM private key in " + label + ": " +
                     openssl_error_text()};
}

CertificateInfo describe(const X509* certificate) {
  CertificateInfo info;
  info.subject = name_text(X509_get_subject_name(certificate));
  info.issuer = name_text(X509_get_issuer_name(certificate));
  info.serial_hex = serial_text(certificate);
  info.sha256_fingerprint = fingerprint_text(certificate);
  info.not_before = time_seconds(X509_get0_notBefore(certificate));
  info.not_after = time_seconds(X509_get0_notAfter(certificate));
  read_subject_alt_names(certificate, info);
  read_basic_constraints(certificate, info);
  read_extended_key_usage(certificate, info);
  read_key_usage(certificate, info);
  // X509_get0_pubkey takes a non-const X509 because it may cache the
  // decoded key; it does not change the certificate.
  info.public_key =
      describe_key(X509_get0_pubkey(const_cast<X509*>(certificate)));
  return info;
}

std::string format_time(std::int64_t unix_seconds) {
  std::time_t seconds = static_cast<std::time_t>(unix_seconds);
  std::tm parts{};
  ::gmtime_r(&seconds, &parts);
  char text[64];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &parts);
  return text;
}

bool is_private_key_pem(const std::string& text) {
  for (const auto& label : pem_labels(text)) {
    if (ends_with(label, "PRIVATE KEY")) return true;
  }
  return false;
}

bool is_pem_text(const std::string& text) {
  return !pem_labels(text).empty();
}

}  // namespace qmt::pki
