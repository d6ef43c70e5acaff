#include "pki/checks.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <ctime>
#include <optional>

#include "pki/certificate.hpp"
#include "pki/csr.hpp"
#include "pki/openssl.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

// Check names, in the order they are reported:
//   ca-cert.parse, ca-cert.validity, ca-cert.basic-constraints,
//   ca-cert.key-usage,
//   server-cert.parse, server-key.parse, server-key.match, server-cert.chain,
//   server-cert.validity, server-cert.hostname, server-cert.extra-name,
//   server-cert.extended-key-usage, server-cert.basic-constraints,
//   server-cert.key-usage,
//   and the same for client-cert and client-key without the name checks.
// QEMU's rules quoted below come from crypto/tlscredsx509.c (QEMU 7.2 and
// later): its start-up check of tls-creds-x509 rejects an object whose files
// fail them, before any migration starts.

namespace qmt::pki {

namespace {

using util::Check;
using util::Checks;
using util::CheckStatus;

constexpr std::int64_t k_seconds_per_day = 86400;

// Maximum number of certificates QEMU imports from ca-cert.pem for its
// start-up check (MAX_CERTS in crypto/tlscredsx509.c). Later ones are not
// checked there, and QEMU does not verify its own certificate against them.
constexpr std::size_t k_qemu_max_ca_certificates = 16;

enum class Role { server, client };

struct ParsedFile {
  std::vector<X509Ptr> certificates;
  std::vector<CertificateInfo> infos;
};

CheckStatus worst(CheckStatus a, CheckStatus b) {
  return static_cast<int>(a) > static_cast<int>(b) ? a : b;
}

using util::contains;
using util::join;

void add(Checks& checks, const std::string& name, CheckStatus status,
         const std::string& file, const std::string& message) {
  checks.push_back(Check{name, status, file, message});
}

// A certificate is named by its file alone when the file contains one, and
// by file, position and subject otherwise.
std::string certificate_label(const PemFile& file, const ParsedFile& parsed,
                              std::size_t index) {
  if (parsed.infos.size() == 1) return file.label;
  return file.label + " certificate " + std::to_string(index + 1) + " (" +
         parsed.infos[index].subject + ")";
}

std::string san_text(const CertificateInfo& info) {
  if (!info.has_subject_alt_name) {
    return "no subjectAltName extension, subject " + info.subject;
  }
  std::vector<std::string> names;
  for (const auto& name : info.dns_names) names.push_back("DNS:" + name);
  for (const auto& address : info.ip_addresses) {
    names.push_back("IP:" + address);
  }
  if (names.empty()) return "a subjectAltName without DNS or IP entries";
  return join(names, ", ");
}

std::optional<ParsedFile> check_certificate_file(
    const PemFile& file, const std::string& prefix, bool is_ca_file,
    const std::string& missing_reason, Checks& checks) {
  const std::string name = prefix + ".parse";
  if (file.pem.empty()) {
    add(checks, name, CheckStatus::failed, file.label,
        file.label + " is missing: " + missing_reason + "; expected " +
            (is_ca_file ? "one or more PEM CA certificates"
                        : "a PEM certificate"));
    return std::nullopt;
  }
  auto certificates = parse_certificates(file.pem, file.label);
  if (!certificates) {
    add(checks, name, CheckStatus::failed, file.label,
        certificates.error().message);
    return std::nullopt;
  }
  ParsedFile parsed;
  parsed.certificates = std::move(certificates.value());
  for (const auto& certificate : parsed.certificates) {
    parsed.infos.push_back(describe(certificate.get()));
  }
  const std::size_t count = parsed.infos.size();
  if (is_ca_file) {
    std::vector<std::string> subjects;
    for (const auto& info : parsed.infos) subjects.push_back(info.subject);
    std::string message = file.label + " contains " + std::to_string(count) +
                          " CA certificate" + (count == 1 ? "" : "s") + ": " +
                          join(subjects, "; ");
    if (count > k_qemu_max_ca_certificates) {
      add(checks, name, CheckStatus::warning, file.label,
          message + ". QEMU checks only the first " +
              std::to_string(k_qemu_max_ca_certificates) +
              " at start-up and rejects its own certificate unless one of "
              "them issued it; expected at most " +
              std::to_string(k_qemu_max_ca_certificates));
    } else {
      add(checks, name, CheckStatus::ok, file.label, message);
    }
  } else {
    const CertificateInfo& first = parsed.infos.front();
    std::string message = file.label + " contains a certificate for " +
                          first.subject + " (" + first.public_key + ")";
    if (count > 1) {
      message += " followed by " + std::to_string(count - 1) +
                 " more; QEMU checks only the first one against the CA file";
    }
    add(checks, name, CheckStatus::ok, file.label, message);
  }
  return parsed;
}

std::optional<EvpPkeyPtr> check_key_file(const PemFile& file,
                                         const std::string& prefix,
                                         const std::string& missing_reason,
                                         Checks& checks) {
  const std::string name = prefix + ".parse";
  if (file.pem.empty()) {
    add(checks, name, CheckStatus::failed, file.label,
        file.label + " is missing: " + missing_reason +
            "; expected a PEM private key");
    return std::nullopt;
  }
  auto key = parse_private_key(file.pem, file.label);
  if (!key) {
    add(checks, name, CheckStatus::failed, file.label, key.error().message);
    return std::nullopt;
  }
  add(checks, name, CheckStatus::ok, file.label,
      file.label + " contains an unencrypted private key (" +
          describe_key(key.value().get()) + ")");
  return std::move(key.value());
}

void check_key_match(const PemFile& cert_file, const ParsedFile& parsed,
                     const PemFile& key_file, const EVP_PKEY* key,
                     const std::string& prefix, Checks& checks) {
  const EVP_PKEY* public_key = X509_get0_pubkey(parsed.certificates[0].get());
  // 1 means equal; 0, -1 (different types) and -2 (not comparable) do not.
  if (public_key != nullptr && EVP_PKEY_eq(public_key, key) == 1) {
    add(checks, prefix + ".match", CheckStatus::ok, key_file.label,
        key_file.label + " matches the public key of " + cert_file.label);
    return;
  }
  ERR_clear_error();
  const std::string key_text = describe_key(key);
  const std::string certificate_key = parsed.infos[0].public_key;
  add(checks, prefix + ".match", CheckStatus::failed, key_file.label,
      key_file.label + " does not match " + cert_file.label + ": the key is " +
          key_text + ", the certificate's public key is " + certificate_key +
          (key_text == certificate_key ? " with a different value" : "") +
          "; expected the private key of that certificate");
}

// Verifies the first certificate of `parsed` against the CA file the way
// QEMU's start-up check does with gnutls_x509_crt_list_verify. Every CA file
// entry is a trust anchor and further certificates in the leaf file are not
// used, nor are CA file entries after the first 16. Times are left to the
// validity check.
void check_chain(const PemFile& cert_file, const ParsedFile& parsed,
                 const PemFile& ca_file, const ParsedFile& cas,
                 const std::string& prefix, Checks& checks) {
  X509StorePtr store(X509_STORE_new(), &X509_STORE_free);
  X509StoreCtxPtr context(X509_STORE_CTX_new(), &X509_STORE_CTX_free);
  if (!store || !context) {
    add(checks, prefix + ".chain", CheckStatus::failed, cert_file.label,
        "Failed to check " + cert_file.label + " against " + ca_file.label +
            ": " + openssl_error_text());
    return;
  }
  const std::size_t anchors =
      std::min(cas.certificates.size(), k_qemu_max_ca_certificates);
  for (std::size_t i = 0; i < anchors; ++i) {
    X509_STORE_add_cert(store.get(), cas.certificates[i].get());
  }
  X509* leaf = parsed.certificates[0].get();
  if (X509_STORE_CTX_init(context.get(), store.get(), leaf, nullptr) != 1) {
    add(checks, prefix + ".chain", CheckStatus::failed, cert_file.label,
        "Failed to check " + cert_file.label + " against " + ca_file.label +
            ": " + openssl_error_text());
    return;
  }
  X509_VERIFY_PARAM_set_flags(
      X509_STORE_CTX_get0_param(context.get()),
      X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_NO_CHECK_TIME);
  if (X509_verify_cert(context.get()) == 1) {
    STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(context.get());
    const std::string message =
        sk_X509_num(chain) > 1
            ? cert_file.label + " is issued by " +
                  describe(sk_X509_value(chain, 1)).subject + " from " +
                  ca_file.label
            : cert_file.label + " is itself listed in " + ca_file.label;
    add(checks, prefix + ".chain", CheckStatus::ok, cert_file.label, message);
    return;
  }
  const int error = X509_STORE_CTX_get_error(context.get());
  ERR_clear_error();
  std::vector<std::string> subjects;
  for (std::size_t i = 0; i < anchors; ++i) {
    subjects.push_back(cas.infos[i].subject);
  }
  add(checks, prefix + ".chain", CheckStatus::failed, cert_file.label,
      cert_file.label + " does not chain to " + ca_file.label + ": " +
          X509_verify_cert_error_string(error) + " (issuer " +
          parsed.infos[0].issuer + "); expected a certificate issued by " +
          join(subjects, " or "));
}

std::string days_text(std::int64_t days) {
  return std::to_string(days) + (days == 1 ? " day" : " days");
}

// Returns a problem sentence for a certificate that is not valid at `now` or
// expires within `warn_days`, with its status, or nullopt when it is fine.
// Matches QEMU: a certificate is valid from not_before through not_after
// inclusive, so "expires exactly now" is still valid.
std::optional<std::pair<CheckStatus, std::string>> validity_problem(
    const CertificateInfo& info, const std::string& label, std::int64_t now,
    int warn_days) {
  if (now < info.not_before) {
    const std::int64_t days =
        (info.not_before - now + k_seconds_per_day - 1) / k_seconds_per_day;
    return std::make_pair(
        CheckStatus::failed,
        label + " is not valid before " + format_time(info.not_before) +
            " (in " + days_text(days) +
            "); QEMU rejects a certificate that is not yet active");
  }
  if (now > info.not_after) {
    const std::int64_t days = (now - info.not_after) / k_seconds_per_day;
    return std::make_pair(CheckStatus::failed,
                          label + " expired on " + format_time(info.not_after) +
                              " (" + days_text(days) +
                              " ago); QEMU rejects an expired certificate");
  }
  const std::int64_t days_left = (info.not_after - now) / k_seconds_per_day;
  if (days_left >= warn_days) return std::nullopt;
  return std::make_pair(CheckStatus::warning,
                        label + " expires on " + format_time(info.not_after) +
                            " (" + days_text(days_left) +
                            " left, less than the warning threshold of " +
                            days_text(warn_days) + ")");
}

void check_validity(const PemFile& file, const ParsedFile& parsed,
                    const std::string& prefix, std::int64_t now, int warn_days,
                    Checks& checks) {
  CheckStatus status = CheckStatus::ok;
  std::vector<std::string> problems;
  std::size_t earliest = 0;
  for (std::size_t i = 0; i < parsed.infos.size(); ++i) {
    const CertificateInfo& info = parsed.infos[i];
    if (info.not_after < parsed.infos[earliest].not_after) earliest = i;
    auto problem = validity_problem(info, certificate_label(file, parsed, i),
                                    now, warn_days);
    if (!problem) continue;
    status = worst(status, problem->first);
    problems.push_back(problem->second);
  }

  if (status != CheckStatus::ok) {
    add(checks, prefix + ".validity", status, file.label,
        join(problems, "; ") + "; expected a certificate valid now" +
            (warn_days > 0
                 ? " and for at least the next " + days_text(warn_days)
                 : ""));
    return;
  }
  const CertificateInfo& info = parsed.infos[earliest];
  add(checks, prefix + ".validity", CheckStatus::ok, file.label,
      certificate_label(file, parsed, earliest) + " is valid until " +
          format_time(info.not_after) + " (" +
          days_text((info.not_after - now) / k_seconds_per_day) + " left)");
}

// Returns `name` without brackets when it is an IPv4 or IPv6 literal, which
// may be bracketed ("[::1]"), or nullopt for a DNS name.
std::optional<std::string> ip_literal(const std::string& name) {
  std::string address = name;
  if (address.size() > 2 && address.front() == '[' && address.back() == ']') {
    address = address.substr(1, address.size() - 2);
  }
  unsigned char bytes[16];
  if (::inet_pton(AF_INET, address.c_str(), bytes) == 1 ||
      ::inet_pton(AF_INET6, address.c_str(), bytes) == 1) {
    return address;
  }
  return std::nullopt;
}

void check_name(const PemFile& file, const ParsedFile& parsed,
                const std::string& name, const std::string& check_name,
                Checks& checks) {
  X509* certificate = parsed.certificates[0].get();
  const CertificateInfo& info = parsed.infos[0];
  if (auto address = ip_literal(name)) {
    // X509_check_ip_asc looks only at iPAddress entries, never at DNS
    // entries or the subject CN, as RFC 6125 requires for IP addresses.
    if (X509_check_ip_asc(certificate, address->c_str(), 0) == 1) {
      add(checks, check_name, CheckStatus::ok, file.label,
          file.label + " lists IP address " + *address +
              " in subjectAltName (" + san_text(info) + ")");
    } else {
      add(checks, check_name, CheckStatus::failed, file.label,
          file.label + " does not list IP address " + *address +
              " in subjectAltName (found " + san_text(info) +
              "); expected IP:" + *address +
              ", because an IP address matches only IP entries");
    }
    return;
  }
  // GnuTLS ignores the subject CN when a subjectAltName exists. Without
  // one it still falls back to the CN, so a CN match passes with a warning.
  unsigned int flags = X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS;
  if (info.has_subject_alt_name) flags |= X509_CHECK_FLAG_NEVER_CHECK_SUBJECT;
  const bool matched = X509_check_host(certificate, name.data(), name.size(),
                                       flags, nullptr) == 1;
  if (matched && !info.has_subject_alt_name) {
    add(checks, check_name, CheckStatus::warning, file.label,
        file.label + " matches host name " + name +
            " only through its subject CN because it has no subjectAltName "
            "extension; expected DNS:" +
            name + " in subjectAltName");
  } else if (matched) {
    add(checks, check_name, CheckStatus::ok, file.label,
        file.label + " lists host name " + name + " in subjectAltName (" +
            san_text(info) + ")");
  } else {
    add(checks, check_name, CheckStatus::failed, file.label,
        file.label + " does not list host name " + name +
            " in subjectAltName (found " + san_text(info) +
            "); expected DNS:" + name +
            " or a wildcard entry that matches it, because QEMU on the "
            "source checks the name it connects to");
  }
}

void check_extended_key_usage(const PemFile& file, const ParsedFile& parsed,
                              Role role, const std::string& prefix,
                              Checks& checks) {
  const CertificateInfo& info = parsed.infos[0];
  const std::string purpose =
      role == Role::server ? "serverAuth" : "clientAuth";
  const std::string purpose_text = role == Role::server
                                       ? "TLS server authentication"
                                       : "TLS client authentication";
  const std::string name = prefix + ".extended-key-usage";
  if (!info.has_extended_key_usage) {
    add(checks, name, CheckStatus::ok, file.label,
        file.label +
            " has no extendedKeyUsage extension, so it may be used "
            "for any purpose, including " +
            purpose_text);
    return;
  }
  const std::string usage = join(info.extended_key_usage, ", ");
  if (contains(info.extended_key_usage, purpose) ||
      contains(info.extended_key_usage, "anyExtendedKeyUsage")) {
    add(checks, name, CheckStatus::ok, file.label,
        file.label + " has extendedKeyUsage " + usage + ", which allows " +
            purpose_text);
    return;
  }
  add(checks, name, CheckStatus::failed, file.label,
      file.label + " has extendedKeyUsage " + usage +
          ", which does not allow " + purpose_text + "; expected " + purpose +
          (info.extended_key_usage_critical
               ? " (QEMU rejects the file at start-up because the extension "
                 "is critical)"
               : ""));
}

void check_ca_basic_constraints(const PemFile& file, const ParsedFile& parsed,
                                Checks& checks) {
  std::vector<std::string> problems;
  for (std::size_t i = 0; i < parsed.infos.size(); ++i) {
    const CertificateInfo& info = parsed.infos[i];
    if (info.is_ca) continue;
    problems.push_back(certificate_label(file, parsed, i) +
                       (info.has_basic_constraints
                            ? " has basicConstraints CA:FALSE"
                            : " has no basicConstraints extension"));
  }
  if (problems.empty()) {
    add(checks, "ca-cert.basic-constraints", CheckStatus::ok, file.label,
        file.label + (parsed.infos.size() == 1
                          ? " has basicConstraints CA:TRUE"
                          : ": every certificate has basicConstraints "
                            "CA:TRUE"));
    return;
  }
  add(checks, "ca-cert.basic-constraints", CheckStatus::failed, file.label,
      join(problems, "; ") +
          "; expected CA:TRUE, which QEMU requires of every certificate in "
          "the CA file");
}

void check_leaf_basic_constraints(const PemFile& file, const ParsedFile& parsed,
                                  Role role, const std::string& prefix,
                                  Checks& checks) {
  const CertificateInfo& info = parsed.infos[0];
  const std::string name = prefix + ".basic-constraints";
  if (info.is_ca) {
    add(checks, name, CheckStatus::failed, file.label,
        file.label +
            " has basicConstraints CA:TRUE, and QEMU rejects a CA "
            "certificate as its " +
            (role == Role::server ? "server" : "client") +
            " certificate; expected CA:FALSE or no basicConstraints "
            "extension");
    return;
  }
  add(checks, name, CheckStatus::ok, file.label,
      file.label + " is not a CA certificate (" +
          (info.has_basic_constraints ? "basicConstraints CA:FALSE"
                                      : "no basicConstraints extension") +
          ")");
}

void check_key_usage(const PemFile& file, const ParsedFile& parsed,
                     bool is_ca_file, const std::string& prefix,
                     Checks& checks) {
  const std::string name = prefix + ".key-usage";
  CheckStatus status = CheckStatus::ok;
  std::vector<std::string> findings;
  const std::size_t count = is_ca_file ? parsed.infos.size() : 1;
  for (std::size_t i = 0; i < count; ++i) {
    const CertificateInfo& info = parsed.infos[i];
    if (!info.has_key_usage) continue;
    const std::string label = certificate_label(file, parsed, i) +
                              " has keyUsage " + join(info.key_usage, ", ");
    const std::string critical =
        info.key_usage_critical ? "critical" : "not critical";
    if (is_ca_file) {
      if (!contains(info.key_usage, "keyCertSign")) {
        status = worst(status, CheckStatus::failed);
        findings.push_back(label +
                           " without keyCertSign, so TLS libraries do not "
                           "accept it as an issuer; expected keyCertSign");
      }
      continue;
    }
    if (!contains(info.key_usage, "digitalSignature")) {
      status = worst(status, info.key_usage_critical ? CheckStatus::failed
                                                     : CheckStatus::warning);
      findings.push_back(
          label + " (" + critical +
          ") without digitalSignature; QEMU rejects that when the extension "
          "is critical, and TLS libraries may refuse to sign the handshake "
          "with the key; expected digitalSignature");
    }
    if (!contains(info.key_usage, "keyEncipherment") &&
        info.key_usage_critical) {
      // QEMU dropped this start-up check in 7.2.22 and 10.0.7 (Debian 12
      // has it from 1:7.2+dfsg-7+deb12u18); older builds still apply it.
      status = worst(status, CheckStatus::warning);
      findings.push_back(label +
                         " (critical) without keyEncipherment; QEMU releases "
                         "before 7.2.22 and 10.0.7 reject that at start-up, "
                         "even for EC keys. Use an RSA host key, or keep "
                         "keyUsage not critical, for older QEMU");
    }
  }
  if (status != CheckStatus::ok) {
    add(checks, name, status, file.label, join(findings, "; "));
    return;
  }
  const CertificateInfo& first = parsed.infos[0];
  if (!first.has_key_usage && count == 1) {
    add(checks, name, CheckStatus::ok, file.label,
        file.label +
            " has no keyUsage extension, so every key usage is "
            "allowed");
  } else {
    add(checks, name, CheckStatus::ok, file.label,
        file.label + " allows the key usages QEMU requires" +
            (first.has_key_usage ? " (" + join(first.key_usage, ", ") + ")"
                                 : ""));
  }
}

struct LeafFiles {
  Role role;
  std::string prefix;  // "server" or "client"
  const PemFile* certificate;
  const PemFile* key;
  std::string missing_reason;
};

void check_leaf(const LeafFiles& leaf, const std::optional<ParsedFile>& cas,
                const PemFile& ca_file, const CheckOptions& options,
                std::int64_t now, Checks& checks) {
  const std::string cert_prefix = leaf.prefix + "-cert";
  const std::string key_prefix = leaf.prefix + "-key";
  auto parsed = check_certificate_file(*leaf.certificate, cert_prefix, false,
                                       leaf.missing_reason, checks);
  auto key = check_key_file(*leaf.key, key_prefix, leaf.missing_reason, checks);
  if (!parsed) return;
  if (key) {
    check_key_match(*leaf.certificate, *parsed, *leaf.key, key->get(),
                    key_prefix, checks);
  }
  if (cas) {
    check_chain(*leaf.certificate, *parsed, ca_file, *cas, cert_prefix, checks);
  }
  check_validity(*leaf.certificate, *parsed, cert_prefix, now,
                 options.warn_days, checks);
  if (leaf.role == Role::server) {
    if (!options.hostname.empty()) {
      check_name(*leaf.certificate, *parsed, options.hostname,
                 cert_prefix + ".hostname", checks);
    }
    for (const auto& name : options.extra_names) {
      check_name(*leaf.certificate, *parsed, name, cert_prefix + ".extra-name",
                 checks);
    }
  }
  check_extended_key_usage(*leaf.certificate, *parsed, leaf.role, cert_prefix,
                           checks);
  check_leaf_basic_constraints(*leaf.certificate, *parsed, leaf.role,
                               cert_prefix, checks);
  check_key_usage(*leaf.certificate, *parsed, false, cert_prefix, checks);
}

}  // namespace

util::Checks check_certificate_set(const CertificateSet& set,
                                   const CheckOptions& options) {
  const std::int64_t now = options.now != 0
                               ? options.now
                               : static_cast<std::int64_t>(std::time(nullptr));
  Checks checks;
  auto cas = check_certificate_file(
      set.ca_cert, "ca-cert", true,
      "QEMU requires it on both hosts to verify the peer's certificate",
      checks);
  if (cas) {
    check_validity(set.ca_cert, *cas, "ca-cert", now, options.warn_days,
                   checks);
    check_ca_basic_constraints(set.ca_cert, *cas, checks);
    check_key_usage(set.ca_cert, *cas, true, "ca-cert", checks);
  }
  check_leaf({Role::server, "server", &set.server_cert, &set.server_key,
              "QEMU on the destination host requires it to accept an "
              "incoming TLS migration"},
             cas, set.ca_cert, options, now, checks);
  check_leaf({Role::client, "client", &set.client_cert, &set.client_key,
              "without the client certificate and key the source host "
              "presents no certificate, so the destination rejects the source "
              "(\"No certificate was found\") while libvirt's "
              "migrate_tls_x509_verify is on, which is the default"},
             cas, set.ca_cert, options, now, checks);
  return checks;
}

util::Checks check_structure(const CertificateSet& set) {
  return check_certificate_set(set, CheckOptions{});
}

util::Result<CertificateSet> read_certificate_set(const std::string& cert_dir) {
  const std::string folder = util::normalize_path(cert_dir);
  CertificateSet set;
  const std::pair<const char*, PemFile*> files[] = {
      {"ca-cert.pem", &set.ca_cert},
      {"server-cert.pem", &set.server_cert},
      {"server-key.pem", &set.server_key},
      {"client-cert.pem", &set.client_cert},
      {"client-key.pem", &set.client_key}};
  for (const auto& [name, file] : files) {
    file->label = folder + "/" + name;
    auto mode = util::stat_path(file->label);
    if (!mode) return mode.error();
    if (!mode.value()) continue;
    auto content = util::read_file(file->label);
    if (!content) return content.error();
    file->pem = std::move(content.value());
  }
  return set;
}

}  // namespace qmt::pki
