#include "virt/pair.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <ctime>
#include <optional>
#include <vector>

#include "pki/certificate.hpp"
#include "pki/openssl.hpp"
#include "util/strings.hpp"

namespace qmt::virt {

namespace {

using util::Check;
using util::Checks;
using util::CheckStatus;

constexpr std::int64_t k_seconds_per_day = 86400;

struct Parsed {
  std::vector<pki::X509Ptr> certificates;
  std::vector<pki::CertificateInfo> infos;
};

using util::contains;
using util::join;

std::optional<Parsed> parse(const pki::PemFile& file, const std::string& prefix,
                            const std::string& what, Checks& checks) {
  if (file.pem.empty()) {
    checks.push_back({prefix + ".parse", CheckStatus::failed, file.label,
                      file.label +
                          " is missing, so the pair check cannot "
                          "read " +
                          what});
    return std::nullopt;
  }
  auto certificates = pki::parse_certificates(file.pem, file.label);
  if (!certificates) {
    checks.push_back({prefix + ".parse", CheckStatus::failed, file.label,
                      certificates.error().message});
    return std::nullopt;
  }
  Parsed parsed;
  parsed.certificates = std::move(certificates.value());
  for (const auto& certificate : parsed.certificates) {
    parsed.infos.push_back(pki::describe(certificate.get()));
  }
  return parsed;
}

std::vector<std::string> subjects(const Parsed& parsed) {
  std::vector<std::string> names;
  for (const auto& info : parsed.infos) names.push_back(info.subject);
  return names;
}

// Verifies the first certificate of `leaf` against every certificate of
// `cas` as a trust anchor, as GnuTLS does with the certificates of a
// ca-cert.pem. Times are checked apart, so an expired certificate is not
// reported as a chain failure. Returns the anchor's subject, or the
// OpenSSL reason as the error.
util::Result<std::string> verify_chain(const Parsed& leaf, const Parsed& cas) {
  pki::X509StorePtr store(X509_STORE_new(), &X509_STORE_free);
  pki::X509StoreCtxPtr context(X509_STORE_CTX_new(), &X509_STORE_CTX_free);
  if (!store || !context) {
    return util::Error{pki::openssl_error_text()};
  }
  for (const auto& ca : cas.certificates) {
    X509_STORE_add_cert(store.get(), ca.get());
  }
  if (X509_STORE_CTX_init(context.get(), store.get(),
                          leaf.certificates[0].get(), nullptr) != 1) {
    return util::Error{pki::openssl_error_text()};
  }
  X509_VERIFY_PARAM_set_flags(
      X509_STORE_CTX_get0_param(context.get()),
      X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_NO_CHECK_TIME);
  if (X509_verify_cert(context.get()) == 1) {
    STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(context.get());
    return pki::describe(sk_X509_value(chain, sk_X509_num(chain) - 1)).subject;
  }
  const int error = X509_STORE_CTX_get_error(context.get());
  ERR_clear_error();
  return util::Error{X509_verify_cert_error_string(error)};
}

std::string san_text(const pki::CertificateInfo& info) {
  if (!info.has_subject_alt_name) return "no subjectAltName";
  std::vector<std::string> names;
  for (const auto& name : info.dns_names) names.push_back("DNS:" + name);
  for (const auto& address : info.ip_addresses) {
    names.push_back("IP:" + address);
  }
  return names.empty() ? "no DNS or IP entries" : join(names, ", ");
}

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

// Matches `name` the way GnuTLS does on the source: an IP address only
// against iPAddress entries, a DNS name against dNSName entries (no partial
// wildcards), and the subject CN only when there is no subjectAltName.
bool matches_name(const Parsed& parsed, const std::string& name) {
  X509* certificate = parsed.certificates[0].get();
  if (auto address = ip_literal(name)) {
    return X509_check_ip_asc(certificate, address->c_str(), 0) == 1;
  }
  unsigned int flags = X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS;
  if (parsed.infos[0].has_subject_alt_name) {
    flags |= X509_CHECK_FLAG_NEVER_CHECK_SUBJECT;
  }
  return X509_check_host(certificate, name.data(), name.size(), flags,
                         nullptr) == 1;
}

void check_validity(const pki::PemFile& file, const Parsed& parsed,
                    const std::string& name, const std::string& role,
                    std::int64_t now, Checks& checks) {
  const pki::CertificateInfo& info = parsed.infos[0];
  if (now < info.not_before) {
    checks.push_back({name, CheckStatus::failed, file.label,
                      file.label + " is not valid before " +
                          pki::format_time(info.not_before) + ", so " + role +
                          " rejects it until then"});
  } else if (now > info.not_after) {
    checks.push_back({name, CheckStatus::failed, file.label,
                      file.label + " expired on " +
                          pki::format_time(info.not_after) + ", so " + role +
                          " rejects it; renew it"});
  } else {
    checks.push_back(
        {name, CheckStatus::ok, file.label,
         file.label + " is valid until " + pki::format_time(info.not_after) +
             " (" + std::to_string((info.not_after - now) / k_seconds_per_day) +
             " days left)"});
  }
}

void check_purpose(const pki::PemFile& file, const Parsed& parsed,
                   const std::string& name, const std::string& purpose,
                   Checks& checks) {
  const pki::CertificateInfo& info = parsed.infos[0];
  if (!info.has_extended_key_usage) {
    checks.push_back({name, CheckStatus::ok, file.label,
                      file.label +
                          " has no extendedKeyUsage extension, so it "
                          "may be used for " +
                          purpose});
    return;
  }
  const std::string usage = join(info.extended_key_usage, ", ");
  if (contains(info.extended_key_usage, purpose) ||
      contains(info.extended_key_usage, "anyExtendedKeyUsage")) {
    checks.push_back({name, CheckStatus::ok, file.label,
                      file.label + " has extendedKeyUsage " + usage +
                          ", which allows " + purpose});
    return;
  }
  checks.push_back({name, CheckStatus::failed, file.label,
                    file.label + " has extendedKeyUsage " + usage +
                        ", which does not allow " + purpose + "; expected " +
                        purpose});
}

// This host as migration source: QEMU here connects to the peer, checks
// peer_name and verifies the peer's server certificate with ca-cert.pem.
void check_peer_server(const PairInput& input, const Parsed& server,
                       const std::optional<Parsed>& cas, std::int64_t now,
                       Checks& checks) {
  const pki::PemFile& file = input.peer_server_cert;
  const pki::CertificateInfo& info = server.infos[0];
  if (cas) {
    auto anchor = verify_chain(server, *cas);
    if (anchor) {
      checks.push_back({"pair.peer-server-cert.chain", CheckStatus::ok,
                        file.label,
                        file.label + " (" + info.subject + ") is issued by " +
                            anchor.value() + " from " + input.ca_cert.label +
                            ", so this host accepts the peer as migration "
                            "destination"});
    } else {
      checks.push_back(
          {"pair.peer-server-cert.chain", CheckStatus::failed, file.label,
           file.label + " (" + info.subject + ", issuer " + info.issuer +
               ") does not chain to this host's " + input.ca_cert.label + ": " +
               anchor.error().message +
               ". As migration source this host rejects the peer (\"The "
               "certificate hasn't got a known issuer\"); expected both hosts "
               "enrolled by the same CA (" +
               join(subjects(*cas), " or ") + ")"});
    }
  }

  if (input.peer_name.empty()) {
    checks.push_back({"pair.peer-server-cert.hostname", CheckStatus::warning,
                      file.label,
                      "peer_name is not set, so the name this host checks "
                      "when it migrates to the peer is unknown; set "
                      "peer_name to the host name of the peer's migration "
                      "URI"});
  } else if (matches_name(server, input.peer_name)) {
    checks.push_back({"pair.peer-server-cert.hostname", CheckStatus::ok,
                      file.label,
                      file.label + " matches " + input.peer_name + " (" +
                          san_text(info) + ")"});
  } else {
    checks.push_back({"pair.peer-server-cert.hostname", CheckStatus::failed,
                      file.label,
                      file.label + " does not match " + input.peer_name +
                          " (found " + san_text(info) +
                          "). As migration source this host rejects the peer "
                          "(\"Certificate does not match the hostname " +
                          input.peer_name + "\"); expected " +
                          (ip_literal(input.peer_name) ? "IP:" : "DNS:") +
                          input.peer_name + " in the peer's subjectAltName"});
  }

  check_validity(file, server, "pair.peer-server-cert.validity",
                 "this host as migration source", now, checks);
  check_purpose(file, server, "pair.peer-server-cert.purpose", "serverAuth",
                checks);
}

// This host as migration source seen from the peer: QEMU there verifies
// this host's client certificate with the peer's ca-cert.pem.
void check_own_client(const PairInput& input, const Parsed& client,
                      const Parsed& peer_cas, std::int64_t now,
                      Checks& checks) {
  const pki::PemFile& file = input.client_cert;
  const pki::CertificateInfo& info = client.infos[0];
  auto anchor = verify_chain(client, peer_cas);
  if (anchor) {
    checks.push_back({"pair.client-cert.chain", CheckStatus::ok, file.label,
                      file.label + " (" + info.subject + ") is issued by " +
                          anchor.value() + " from " + input.peer_ca_cert.label +
                          ", so the peer accepts this host as migration "
                          "source"});
  } else {
    checks.push_back(
        {"pair.client-cert.chain", CheckStatus::failed, file.label,
         file.label + " (" + info.subject + ", issuer " + info.issuer +
             ") does not chain to the peer's " + input.peer_ca_cert.label +
             ": " + anchor.error().message +
             ". As migration destination the peer rejects this host "
             "(QEMU there reports \"No certificate was found\"); expected "
             "both hosts enrolled by the same CA (" +
             join(subjects(peer_cas), " or ") + ")"});
  }
  check_validity(file, client, "pair.client-cert.validity",
                 "the peer as migration destination", now, checks);
  check_purpose(file, client, "pair.client-cert.purpose", "clientAuth", checks);
}

}  // namespace

util::Checks check_pair(const PairInput& input) {
  const std::int64_t now = input.now != 0
                               ? input.now
                               : static_cast<std::int64_t>(std::time(nullptr));
  Checks checks;
  auto cas = parse(input.ca_cert, "pair.ca-cert",
                   "the CA this host trusts as migration source", checks);
  auto client =
      parse(input.client_cert, "pair.client-cert",
            "the certificate this host presents as migration source", checks);
  auto peer_cas =
      parse(input.peer_ca_cert, "pair.peer-ca-cert",
            "the CA the peer trusts as migration destination", checks);
  auto peer_server = parse(input.peer_server_cert, "pair.peer-server-cert",
                           "the certificate the peer presents as migration "
                           "destination",
                           checks);
  if (peer_server) check_peer_server(input, *peer_server, cas, now, checks);
  if (client && peer_cas) {
    check_own_client(input, *client, *peer_cas, now, checks);
  }
  return checks;
}

}  // namespace qmt::virt
