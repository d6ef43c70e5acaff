#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <string>
#include <vector>

#include "pki/certificate.hpp"
#include "pki/checks.hpp"
#include "pki_test_support.hpp"

namespace {

using qmt::pki::CertificateSet;
using qmt::pki::CheckOptions;
using qmt::util::Check;
using qmt::util::Checks;
using qmt::util::CheckStatus;
namespace testing_pki = qmt::pki::testing;
using testing_pki::CertificateSpec;
using testing_pki::k_day;
using testing_pki::KeyType;
using testing_pki::TestCa;

const std::string k_host = "dst.example.test";
constexpr std::int64_t k_now = 1700000000;  // 2023-11-14 22:13:20 UTC

// The checks named `name`, in report order.
std::vector<Check> named(const Checks& checks, const std::string& name) {
  std::vector<Check> found;
  for (const auto& check : checks) {
    if (check.name == name) found.push_back(check);
  }
  return found;
}

// The single check named `name`; fails the test when there is not exactly
// one.
Check only(const Checks& checks, const std::string& name) {
  auto found = named(checks, name);
  EXPECT_EQ(found.size(), 1u) << "checks named " << name;
  return found.empty() ? Check{name, CheckStatus::failed, "", "<absent>"}
                       : found.front();
}

std::string describe_failures(const Checks& checks) {
  std::string text;
  for (const auto& check : checks) {
    if (check.status != CheckStatus::ok) {
      text += check.name + ": " + check.message + "\n";
    }
  }
  return text;
}

// A CA spec valid for a year around k_now.
CertificateSpec ca_spec_at_now(const std::string& common_name) {
  CertificateSpec spec = testing_pki::ca_spec(common_name);
  spec.not_before = k_now - 100 * k_day;
  spec.not_after = k_now + 365 * k_day;
  return spec;
}

// A CA with a fresh EC key, valid around k_now.
TestCa ca_at_now(const std::string& common_name) {
  return TestCa(ca_spec_at_now(common_name),
                testing_pki::generate_key(KeyType::ec));
}

// A consistent set: one CA, a server certificate for k_host with an IPv4
// and an IPv6 address, a client certificate, all valid around k_now.
class SetBuilder {
 public:
  explicit SetBuilder(KeyType type = KeyType::ec)
      : m_type(type),
        m_ca(ca_spec_at_now("QEMU Migration CA"),
             testing_pki::generate_key(type)),
        m_server_key(testing_pki::shared_key(type, 1)),
        m_client_key(testing_pki::shared_key(type, 2)) {
    server = testing_pki::server_spec(k_host);
    server.ip_addresses = {"192.0.2.10", "2001:db8::10"};
    server.not_before = k_now - 10 * k_day;
    server.not_after = k_now + 100 * k_day;
    client = testing_pki::client_spec("src.example.test");
    client.not_before = k_now - 10 * k_day;
    client.not_after = k_now + 100 * k_day;
  }

  CertificateSet build() const {
    CertificateSet set;
    set.ca_cert = {"ca-cert.pem", m_ca.pem()};
    set.server_cert = {"server-cert.pem",
                       m_ca.issue_pem(server, m_server_key.get())};
    set.server_key = {"server-key.pem",
                      testing_pki::private_key_pem(m_server_key.get())};
    set.client_cert = {"client-cert.pem",
                       m_ca.issue_pem(client, m_client_key.get())};
    set.client_key = {"client-key.pem",
                      testing_pki::private_key_pem(m_client_key.get())};
    return set;
  }

  const TestCa& ca() const { return m_ca; }
  EVP_PKEY* server_key() const { return m_server_key.get(); }

  CertificateSpec server;
  CertificateSpec client;

 private:
  KeyType m_type;
  TestCa m_ca;
  qmt::pki::EvpPkeyPtr m_server_key;
  qmt::pki::EvpPkeyPtr m_client_key;
};

CheckOptions options_for(const std::string& hostname = k_host) {
  CheckOptions options;
  options.hostname = hostname;
  options.now = k_now;
  return options;
}

TEST(PkiChecks, EcSetPassesEveryCheck) {
  SetBuilder builder(KeyType::ec);
  CheckOptions options = options_for();
  options.extra_names = {"192.0.2.10", "2001:db8::10"};
  Checks checks = qmt::pki::check_certificate_set(builder.build(), options);
  EXPECT_FALSE(qmt::util::any_failed(checks)) << describe_failures(checks);
  EXPECT_EQ(qmt::util::count_status(checks, CheckStatus::warning), 0u)
      << describe_failures(checks);
  std::vector<std::string> names;
  for (const auto& check : checks) names.push_back(check.name);
  const std::vector<std::string> expected = {"ca-cert.parse",
                                             "ca-cert.validity",
                                             "ca-cert.basic-constraints",
                                             "ca-cert.key-usage",
                                             "server-cert.parse",
                                             "server-key.parse",
                                             "server-key.match",
                                             "server-cert.chain",
                                             "server-cert.validity",
                                             "server-cert.hostname",
                                             "server-cert.extra-name",
                                             "server-cert.extra-name",
                                             "server-cert.extended-key-usage",
                                             "server-cert.basic-constraints",
                                             "server-cert.key-usage",
                                             "client-cert.parse",
                                             "client-key.parse",
                                             "client-key.match",
                                             "client-cert.chain",
                                             "client-cert.validity",
                                             "client-cert.extended-key-usage",
                                             "client-cert.basic-constraints",
                                             "client-cert.key-usage"};
  EXPECT_EQ(names, expected);
}

TEST(PkiChecks, OkMessagesNameWhatPassed) {
  SetBuilder builder(KeyType::ec);
  Checks checks =
      qmt::pki::check_certificate_set(builder.build(), options_for());
  EXPECT_EQ(only(checks, "ca-cert.parse").message,
            "ca-cert.pem contains 1 CA certificate: CN=QEMU Migration CA");
  EXPECT_EQ(only(checks, "server-cert.parse").message,
            "server-cert.pem contains a certificate for CN=dst.example.test "
            "(EC P-256)");
  EXPECT_EQ(only(checks, "server-key.parse").message,
            "server-key.pem contains an unencrypted private key (EC P-256)");
  EXPECT_EQ(only(checks, "server-key.match").message,
            "server-key.pem matches the public key of server-cert.pem");
  EXPECT_EQ(only(checks, "server-cert.chain").message,
            "server-cert.pem is issued by CN=QEMU Migration CA from "
            "ca-cert.pem");
  EXPECT_EQ(only(checks, "server-cert.validity").message,
            "server-cert.pem is valid until 2024-02-22 22:13:20 UTC (100 days "
            "left)");
  EXPECT_EQ(only(checks, "server-cert.hostname").message,
            "server-cert.pem lists host name dst.example.test in "
            "subjectAltName (DNS:dst.example.test, IP:192.0.2.10, "
            "IP:2001:db8::10)");
  EXPECT_EQ(only(checks, "server-cert.extended-key-usage").message,
            "server-cert.pem has extendedKeyUsage serverAuth, clientAuth, "
            "which allows TLS server authentication");
  EXPECT_EQ(only(checks, "server-cert.basic-constraints").message,
            "server-cert.pem is not a CA certificate (basicConstraints "
            "CA:FALSE)");
  EXPECT_EQ(only(checks, "ca-cert.basic-constraints").message,
            "ca-cert.pem has basicConstraints CA:TRUE");
  for (const auto& check : checks) {
    EXPECT_EQ(check.status, CheckStatus::ok)
        << check.name << ": " << check.message;
    EXPECT_FALSE(check.file.empty()) << check.name;
  }
}

TEST(PkiChecks, RsaSetPassesEveryCheck) {
  SetBuilder builder(KeyType::rsa);
  Checks checks =
      qmt::pki::check_certificate_set(builder.build(), options_for());
  EXPECT_FALSE(qmt::util::any_failed(checks)) << describe_failures(checks);
  EXPECT_EQ(only(checks, "server-key.parse").message,
            "server-key.pem contains an unencrypted private key (RSA "
            "2048)");
  EXPECT_EQ(only(checks, "server-key.match").status, CheckStatus::ok);
  EXPECT_EQ(only(checks, "client-key.match").status, CheckStatus::ok);
}

TEST(PkiChecks, GarbageCertificateFails) {
  CertificateSet set = SetBuilder().build();
  set.server_cert.pem = "this is not a certificate\n";
  Checks checks = qmt::pki::check_certificate_set(set, options_for());
  Check parse = only(checks, "server-cert.parse");
  EXPECT_EQ(parse.status, CheckStatus::failed);
  EXPECT_EQ(parse.file, "server-cert.pem");
  EXPECT_EQ(parse.message,
            "Invalid certificate file server-cert.pem: no PEM certificate "
            "block found; expected -----BEGIN CERTIFICATE-----");
  // Checks that need the certificate are skipped.
  EXPECT_TRUE(named(checks, "server-cert.chain").empty());
  EXPECT_TRUE(named(checks, "server-key.match").empty());
  EXPECT_TRUE(named(checks, "server-cert.hostname").empty());
}

TEST(PkiChecks, DamagedPemBlockFails) {
  CertificateSet set = SetBuilder().build();
  set.ca_cert.pem =
      "-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n";
  Checks checks = qmt::pki::check_certificate_set(set, options_for());
  Check parse = only(checks, "ca-cert.parse");
  EXPECT_EQ(parse.status, CheckStatus::failed);
  EXPECT_EQ(parse.message.rfind("Invalid PEM certificate in ca-cert.pem: ", 0),
            0u)
      << parse.message;
  EXPECT_TRUE(named(checks, "server-cert.chain").empty());
}

TEST(PkiChecks, KeyInCertificateFileFails) {
  CertificateSet set = SetBuilder().build();
  set.server_cert.pem = set.server_key.pem;
  Check parse = only(qmt::pki::check_certificate_set(set, options_for()),
                     "server-cert.parse");
  EXPECT_EQ(parse.message,
            "Invalid certificate file server-cert.pem: it contains a private "
            "key, not a certificate; expected -----BEGIN CERTIFICATE-----");
}

TEST(PkiChecks, GarbageKeyFails) {
  CertificateSet set = SetBuilder().build();
  set.server_key.pem = "garbage";
  Check parse = only(qmt::pki::check_certificate_set(set, options_for()),
                     "server-key.parse");
  EXPECT_EQ(parse.status, CheckStatus::failed);
  EXPECT_EQ(parse.message,
            "Invalid private key file server-key.pem: no PEM private key "
            "block found; expected -----BEGIN PRIVATE KEY-----");
}

TEST(PkiChecks, MissingCaFails) {
  CertificateSet set = SetBuilder().build();
  set.ca_cert.pem.clear();
  Checks checks = qmt::pki::check_certificate_set(set, options_for());
  Check parse = only(checks, "ca-cert.parse");
  EXPECT_EQ(parse.status, CheckStatus::failed);
  EXPECT_EQ(parse.message,
            "ca-cert.pem is missing: QEMU requires it on both hosts to verify "
            "the peer's certificate; expected one or more PEM CA "
            "certificates");
  EXPECT_TRUE(named(checks, "server-cert.chain").empty());
  EXPECT_EQ(only(checks, "server-key.match").status, CheckStatus::ok);
}

TEST(PkiChecks, MissingClientPairFails) {
  CertificateSet set = SetBuilder().build();
  set.client_cert.pem.clear();
  set.client_key.pem.clear();
  Checks checks = qmt::pki::check_certificate_set(set, options_for());
  const std::string reason =
      "without the client certificate and key the source host presents no "
      "certificate, so the destination rejects the source (\"No certificate "
      "was found\") while libvirt's migrate_tls_x509_verify is on, which is "
      "the default";
  Check certificate = only(checks, "client-cert.parse");
  EXPECT_EQ(certificate.status, CheckStatus::failed);
  EXPECT_EQ(certificate.message, "client-cert.pem is missing: " + reason +
                                     "; expected a PEM certificate");
  Check key = only(checks, "client-key.parse");
  EXPECT_EQ(key.status, CheckStatus::failed);
  EXPECT_EQ(key.message, "client-key.pem is missing: " + reason +
                             "; expected a PEM private key");
}

TEST(PkiChecks, EncryptedPkcs8KeyFails) {
  SetBuilder builder;
  CertificateSet set = builder.build();
  set.server_key.pem =
      testing_pki::private_key_pem(builder.server_key(), "secret");
  ASSERT_NE(set.server_key.pem.find("ENCRYPTED PRIVATE KEY"),
            std::string::npos);
  Checks checks = qmt::pki::check_certificate_set(set, options_for());
  Check parse = only(checks, "server-key.parse");
  EXPECT_EQ(parse.status, CheckStatus::failed);
  EXPECT_EQ(parse.message,
            "The private key in server-key.pem is encrypted: QEMU cannot load "
            "an encrypted key without a libvirt secret "
            "(migrate_tls_x509_secret_uuid); expected an unencrypted PEM "
            "private key");
  EXPECT_TRUE(named(checks, "server-key.match").empty());
}

TEST(PkiChecks, EncryptedTraditionalKeyFails) {
  SetBuilder builder(KeyType::rsa);
  CertificateSet set = builder.build();
  set.server_key.pem =
      testing_pki::private_key_pem(builder.server_key(), "secret", true);
  ASSERT_NE(set.server_key.pem.find("Proc-Type: 4,ENCRYPTED"),
            std::string::npos);
  Check parse = only(qmt::pki::check_certificate_set(set, options_for()),
                     "server-key.parse");
  EXPECT_EQ(parse.status, CheckStatus::failed);
  EXPECT_NE(parse.message.find("is encrypted"), std::string::npos);
}

TEST(PkiChecks, TraditionalUnencryptedKeyMatches) {
  SetBuilder builder(KeyType::rsa);
  CertificateSet set = builder.build();
  set.server_key.pem =
      testing_pki::private_key_pem(builder.server_key(), "", true);
  ASSERT_NE(set.server_key.pem.find("BEGIN RSA PRIVATE KEY"),
            std::string::npos);
  Checks checks = qmt::pki::check_certificate_set(set, options_for());
  EXPECT_EQ(only(checks, "server-key.match").status, CheckStatus::ok);
}

TEST(PkiChecks, KeyOfOtherCertificateFails) {
  CertificateSet set = SetBuilder().build();
  set.server_key.pem = set.client_key.pem;
  Check match = only(qmt::pki::check_certificate_set(set, options_for()),
                     "server-key.match");
  EXPECT_EQ(match.status, CheckStatus::failed);
  EXPECT_EQ(match.file, "server-key.pem");
  EXPECT_EQ(match.message,
            "server-key.pem does not match server-cert.pem: the key is EC "
            "P-256, the certificate's public key is EC P-256 with a different "
            "value; expected the private key of that certificate");
}

TEST(PkiChecks, KeyOfOtherTypeFails) {
  CertificateSet set = SetBuilder(KeyType::ec).build();
  auto rsa_key = testing_pki::shared_key(KeyType::rsa, 1);
  set.server_key.pem = testing_pki::private_key_pem(rsa_key.get());
  Check match = only(qmt::pki::check_certificate_set(set, options_for()),
                     "server-key.match");
  EXPECT_EQ(match.status, CheckStatus::failed);
  EXPECT_EQ(match.message,
            "server-key.pem does not match server-cert.pem: the key is RSA "
            "2048, the certificate's public key is EC P-256; expected the "
            "private key of that certificate");
}

TEST(PkiChecks, CertificateOfOtherCaFails) {
  SetBuilder builder;
  CertificateSet set = builder.build();
  TestCa other = ca_at_now("Other CA");
  set.server_cert.pem = other.issue_pem(builder.server, builder.server_key());
  Check chain = only(qmt::pki::check_certificate_set(set, options_for()),
                     "server-cert.chain");
  EXPECT_EQ(chain.status, CheckStatus::failed);
  EXPECT_EQ(chain.message,
            "server-cert.pem does not chain to ca-cert.pem: unable to get "
            "local issuer certificate (issuer CN=Other CA); expected a "
            "certificate issued by CN=QEMU Migration CA");
}

TEST(PkiChecks, SameNameOtherCaFails) {
  // A CA recreated with the same name but a new key differs from the old
  // one only in key and signature.
  SetBuilder builder;
  CertificateSet set = builder.build();
  TestCa recreated = ca_at_now("QEMU Migration CA");
  set.ca_cert.pem = recreated.pem();
  Checks checks = qmt::pki::check_certificate_set(set, options_for());
  EXPECT_EQ(only(checks, "server-cert.chain").status, CheckStatus::failed);
  EXPECT_EQ(only(checks, "client-cert.chain").status, CheckStatus::failed);
}

TEST(PkiChecks, CaFileWithTwoCasChainsBoth) {
  // CA rotation: the file contains the old and the new CA, both named alike.
  // The server certificate is already from the new CA, the client one is
  // still from the old.
  SetBuilder builder;
  TestCa new_ca = ca_at_now("QEMU Migration CA");
  CertificateSet set = builder.build();
  set.ca_cert.pem = builder.ca().pem() + new_ca.pem();
  set.server_cert.pem = new_ca.issue_pem(builder.server, builder.server_key());
  Checks checks = qmt::pki::check_certificate_set(set, options_for());
  EXPECT_FALSE(qmt::util::any_failed(checks)) << describe_failures(checks);
  EXPECT_EQ(only(checks, "ca-cert.parse").message,
            "ca-cert.pem contains 2 CA certificates: CN=QEMU Migration CA; "
            "CN=QEMU Migration CA");
  EXPECT_EQ(only(checks, "server-cert.chain").status, CheckStatus::ok);
  EXPECT_EQ(only(checks, "client-cert.chain").status, CheckStatus::ok);
  EXPECT_EQ(only(checks, "ca-cert.basic-constraints").message,
            "ca-cert.pem: every certificate has basicConstraints CA:TRUE");
}

TEST(PkiChecks, IntermediateMustBeInCaFile) {
  // QEMU verifies its own certificate against ca-cert.pem only, so an
  // intermediate CA appended to server-cert.pem does not help.
  SetBuilder builder;
  CertificateSpec intermediate_spec = testing_pki::ca_spec("Intermediate CA");
  auto intermediate_key = testing_pki::generate_key(KeyType::ec);
  auto intermediate =
      builder.ca().issue(intermediate_spec, intermediate_key.get());
  auto leaf =
      testing_pki::make_certificate(builder.server, builder.server_key(),
                                    intermediate.get(), intermediate_key.get());
  CertificateSet set = builder.build();
  set.server_cert.pem = testing_pki::certificate_pem(leaf.get()) +
                        testing_pki::certificate_pem(intermediate.get());
  Checks checks = qmt::pki::check_certificate_set(set, options_for());
  EXPECT_EQ(only(checks, "server-cert.chain").status, CheckStatus::failed);
  EXPECT_EQ(only(checks, "server-cert.parse").message,
            "server-cert.pem contains a certificate for CN=dst.example.test "
            "(EC P-256) followed by 1 more; QEMU checks only the first one "
            "against the CA file");

  set.ca_cert.pem += testing_pki::certificate_pem(intermediate.get());
  checks = qmt::pki::check_certificate_set(set, options_for());
  EXPECT_EQ(only(checks, "server-cert.chain").status, CheckStatus::ok)
      << describe_failures(checks);
}

TEST(PkiChecks, CaWithoutCaTrueFails) {
  SetBuilder builder;
  CertificateSpec spec = ca_spec_at_now("Not A CA");
  spec.ca = false;
  TestCa not_ca(spec, testing_pki::generate_key(KeyType::ec));
  CertificateSet set = builder.build();
  set.ca_cert.pem = not_ca.pem();
  set.server_cert.pem = not_ca.issue_pem(builder.server, builder.server_key());
  Checks checks = qmt::pki::check_certificate_set(set, options_for());
  Check constraints = only(checks, "ca-cert.basic-constraints");
  EXPECT_EQ(constraints.status, CheckStatus::failed);
  EXPECT_EQ(constraints.message,
            "ca-cert.pem has basicConstraints CA:FALSE; expected CA:TRUE, "
            "which QEMU requires of every certificate in the CA file");
  EXPECT_EQ(only(checks, "server-cert.chain").status, CheckStatus::failed);
}

TEST(PkiChecks, CaWithoutBasicConstraintsFails) {
  CertificateSpec spec = ca_spec_at_now("Old CA");
  spec.ca.reset();
  TestCa old_ca(spec, testing_pki::generate_key(KeyType::ec));
  CertificateSet set = SetBuilder().build();
  set.ca_cert.pem += old_ca.pem();
  Check constraints = only(qmt::pki::check_certificate_set(set, options_for()),
                           "ca-cert.basic-constraints");
  EXPECT_EQ(constraints.status, CheckStatus::failed);
  EXPECT_EQ(constraints.message,
            "ca-cert.pem certificate 2 (CN=Old CA) has no basicConstraints "
            "extension; expected CA:TRUE, which QEMU requires of every "
            "certificate in the CA file");
}

TEST(PkiChecks, LeafWithCaTrueFails) {
  SetBuilder builder;
  builder.server.ca = true;
  Check constraints =
      only(qmt::pki::check_certificate_set(builder.build(), options_for()),
           "server-cert.basic-constraints");
  EXPECT_EQ(constraints.status, CheckStatus::failed);
  EXPECT_EQ(constraints.message,
            "server-cert.pem has basicConstraints CA:TRUE, and QEMU rejects a "
            "CA certificate as its server certificate; expected CA:FALSE or "
            "no basicConstraints extension");
}

TEST(PkiChecks, LeafWithoutBasicConstraintsPasses) {
  SetBuilder builder;
  builder.client.ca.reset();
  Check constraints =
      only(qmt::pki::check_certificate_set(builder.build(), options_for()),
           "client-cert.basic-constraints");
  EXPECT_EQ(constraints.status, CheckStatus::ok);
  EXPECT_EQ(constraints.message,
            "client-cert.pem is not a CA certificate (no basicConstraints "
            "extension)");
}

TEST(PkiChecks, ExpiredCertificateFails) {
  SetBuilder builder;
  builder.server.not_after = k_now - 1;
  Check validity =
      only(qmt::pki::check_certificate_set(builder.build(), options_for()),
           "server-cert.validity");
  EXPECT_EQ(validity.status, CheckStatus::failed);
  EXPECT_EQ(validity.message,
            "server-cert.pem expired on 2023-11-14 22:13:19 UTC (0 days ago); "
            "QEMU rejects an expired certificate; expected a certificate "
            "valid now and for at least the next 30 days");
}

TEST(PkiChecks, ExpiringExactlyNowWarns) {
  // QEMU rejects a certificate only when not_after < now.
  SetBuilder builder;
  builder.server.not_after = k_now;
  Check validity =
      only(qmt::pki::check_certificate_set(builder.build(), options_for()),
           "server-cert.validity");
  EXPECT_EQ(validity.status, CheckStatus::warning);
  EXPECT_EQ(validity.message,
            "server-cert.pem expires on 2023-11-14 22:13:20 UTC (0 days left, "
            "less than the warning threshold of 30 days); expected a "
            "certificate valid now and for at least the next 30 days");
}

TEST(PkiChecks, NotYetValidFails) {
  SetBuilder builder;
  builder.client.not_before = k_now + 1;
  Check validity =
      only(qmt::pki::check_certificate_set(builder.build(), options_for()),
           "client-cert.validity");
  EXPECT_EQ(validity.status, CheckStatus::failed);
  EXPECT_EQ(
      validity.message,
      "client-cert.pem is not valid before 2023-11-14 22:13:21 UTC (in 1 "
      "day); QEMU rejects a certificate that is not yet active; "
      "expected a certificate valid now and for at least the next 30 days");
}

TEST(PkiChecks, ValidFromExactlyNowPasses) {
  SetBuilder builder;
  builder.client.not_before = k_now;
  Check validity =
      only(qmt::pki::check_certificate_set(builder.build(), options_for()),
           "client-cert.validity");
  EXPECT_EQ(validity.status, CheckStatus::ok);
}

TEST(PkiChecks, WarnWindowBoundary) {
  SetBuilder builder;
  builder.server.not_after = k_now + 30 * k_day;
  builder.client.not_after = k_now + 30 * k_day - 1;
  Checks checks =
      qmt::pki::check_certificate_set(builder.build(), options_for());
  Check server = only(checks, "server-cert.validity");
  EXPECT_EQ(server.status, CheckStatus::ok);
  EXPECT_EQ(server.message,
            "server-cert.pem is valid until 2023-12-14 22:13:20 UTC (30 days "
            "left)");
  Check client = only(checks, "client-cert.validity");
  EXPECT_EQ(client.status, CheckStatus::warning);
  EXPECT_NE(client.message.find("(29 days left, less than the warning "
                                "threshold of 30 days)"),
            std::string::npos)
      << client.message;

  CheckOptions no_warnings = options_for();
  no_warnings.warn_days = 0;
  checks = qmt::pki::check_certificate_set(builder.build(), no_warnings);
  EXPECT_EQ(only(checks, "client-cert.validity").status, CheckStatus::ok);
}

TEST(PkiChecks, ExpiredCaInBundleFails) {
  // QEMU checks the times of every certificate in ca-cert.pem.
  CertificateSpec spec = testing_pki::ca_spec("Retired CA");
  spec.not_before = k_now - 400 * k_day;
  spec.not_after = k_now - 2 * k_day;
  TestCa retired(spec, testing_pki::generate_key(KeyType::ec));
  SetBuilder builder;
  CertificateSet set = builder.build();
  set.ca_cert.pem += retired.pem();
  Check validity = only(qmt::pki::check_certificate_set(set, options_for()),
                        "ca-cert.validity");
  EXPECT_EQ(validity.status, CheckStatus::failed);
  EXPECT_EQ(
      validity.message,
      "ca-cert.pem certificate 2 (CN=Retired CA) expired on 2023-11-12 "
      "22:13:20 UTC (2 days ago); QEMU rejects an expired certificate; "
      "expected a certificate valid now and for at least the next 30 days");
}

TEST(PkiChecks, MissingHostNameFails) {
  Check hostname =
      only(qmt::pki::check_certificate_set(SetBuilder().build(),
                                           options_for("other.example.test")),
           "server-cert.hostname");
  EXPECT_EQ(hostname.status, CheckStatus::failed);
  EXPECT_EQ(hostname.file, "server-cert.pem");
  EXPECT_EQ(hostname.message,
            "server-cert.pem does not list host name other.example.test in "
            "subjectAltName (found DNS:dst.example.test, IP:192.0.2.10, "
            "IP:2001:db8::10); expected DNS:other.example.test or a wildcard "
            "entry that matches it, because QEMU on the source checks the "
            "name it connects to");
}

TEST(PkiChecks, CommonNameIgnoredWithSan) {
  SetBuilder builder;
  builder.server.common_name = "cn-only.example.test";
  Check hostname =
      only(qmt::pki::check_certificate_set(builder.build(),
                                           options_for("cn-only.example.test")),
           "server-cert.hostname");
  EXPECT_EQ(hostname.status, CheckStatus::failed);
}

TEST(PkiChecks, CommonNameWithoutSanWarns) {
  SetBuilder builder;
  builder.server.dns_names.clear();
  builder.server.ip_addresses.clear();
  Check hostname =
      only(qmt::pki::check_certificate_set(builder.build(), options_for()),
           "server-cert.hostname");
  EXPECT_EQ(hostname.status, CheckStatus::warning);
  EXPECT_EQ(hostname.message,
            "server-cert.pem matches host name dst.example.test only through "
            "its subject CN because it has no subjectAltName extension; "
            "expected DNS:dst.example.test in subjectAltName");
}

TEST(PkiChecks, WildcardMatchesOneLabel) {
  SetBuilder builder;
  builder.server.dns_names = {"*.example.test"};
  Checks checks = qmt::pki::check_certificate_set(
      builder.build(), options_for("a.example.test"));
  EXPECT_EQ(only(checks, "server-cert.hostname").status, CheckStatus::ok);
  checks = qmt::pki::check_certificate_set(builder.build(),
                                           options_for("a.b.example.test"));
  EXPECT_EQ(only(checks, "server-cert.hostname").status, CheckStatus::failed);
}

TEST(PkiChecks, Ipv4ExtraName) {
  CheckOptions options = options_for();
  options.extra_names = {"192.0.2.10", "192.0.2.11"};
  auto extra =
      named(qmt::pki::check_certificate_set(SetBuilder().build(), options),
            "server-cert.extra-name");
  ASSERT_EQ(extra.size(), 2u);
  EXPECT_EQ(extra[0].status, CheckStatus::ok);
  EXPECT_EQ(extra[0].message,
            "server-cert.pem lists IP address 192.0.2.10 in subjectAltName "
            "(DNS:dst.example.test, IP:192.0.2.10, IP:2001:db8::10)");
  EXPECT_EQ(extra[1].status, CheckStatus::failed);
  EXPECT_EQ(extra[1].message,
            "server-cert.pem does not list IP address 192.0.2.11 in "
            "subjectAltName (found DNS:dst.example.test, IP:192.0.2.10, "
            "IP:2001:db8::10); expected IP:192.0.2.11, because an IP address "
            "matches only IP entries");
}

TEST(PkiChecks, Ipv6ExtraName) {
  CheckOptions options = options_for();
  // The same address in full, compressed and bracketed form.
  options.extra_names = {"2001:0db8:0000:0000:0000:0000:0000:0010",
                         "[2001:db8::10]", "2001:db8::11"};
  auto extra =
      named(qmt::pki::check_certificate_set(SetBuilder().build(), options),
            "server-cert.extra-name");
  ASSERT_EQ(extra.size(), 3u);
  EXPECT_EQ(extra[0].status, CheckStatus::ok) << extra[0].message;
  EXPECT_EQ(extra[1].status, CheckStatus::ok) << extra[1].message;
  EXPECT_EQ(extra[2].status, CheckStatus::failed);
}

TEST(PkiChecks, IpHostnameNeedsIpEntry) {
  // An address written as a DNS entry does not match an IP literal.
  SetBuilder builder;
  builder.server.dns_names = {"192.0.2.20"};
  builder.server.ip_addresses.clear();
  Check hostname = only(qmt::pki::check_certificate_set(
                            builder.build(), options_for("192.0.2.20")),
                        "server-cert.hostname");
  EXPECT_EQ(hostname.status, CheckStatus::failed);
  EXPECT_NE(hostname.message.find("expected IP:192.0.2.20"), std::string::npos);
}

TEST(PkiChecks, ServerWithoutServerAuthFails) {
  SetBuilder builder;
  builder.server.extended_key_usage = {"clientAuth"};
  Check usage =
      only(qmt::pki::check_certificate_set(builder.build(), options_for()),
           "server-cert.extended-key-usage");
  EXPECT_EQ(usage.status, CheckStatus::failed);
  EXPECT_EQ(usage.message,
            "server-cert.pem has extendedKeyUsage clientAuth, which does not "
            "allow TLS server authentication; expected serverAuth");
}

TEST(PkiChecks, ClientWithoutClientAuthFails) {
  SetBuilder builder;
  builder.client.extended_key_usage = {"serverAuth"};
  builder.client.extended_key_usage_critical = true;
  Check usage =
      only(qmt::pki::check_certificate_set(builder.build(), options_for()),
           "client-cert.extended-key-usage");
  EXPECT_EQ(usage.status, CheckStatus::failed);
  EXPECT_EQ(usage.message,
            "client-cert.pem has extendedKeyUsage serverAuth, which does not "
            "allow TLS client authentication; expected clientAuth (QEMU "
            "rejects the file at start-up because the extension is critical)");
}

TEST(PkiChecks, NoExtendedKeyUsageAllowsAny) {
  SetBuilder builder;
  builder.server.extended_key_usage.clear();
  Check usage =
      only(qmt::pki::check_certificate_set(builder.build(), options_for()),
           "server-cert.extended-key-usage");
  EXPECT_EQ(usage.status, CheckStatus::ok);
  EXPECT_EQ(usage.message,
            "server-cert.pem has no extendedKeyUsage extension, so it may be "
            "used for any purpose, including TLS server authentication");
}

TEST(PkiChecks, AnyExtendedKeyUsagePasses) {
  SetBuilder builder;
  builder.client.extended_key_usage = {"anyExtendedKeyUsage"};
  Check usage =
      only(qmt::pki::check_certificate_set(builder.build(), options_for()),
           "client-cert.extended-key-usage");
  EXPECT_EQ(usage.status, CheckStatus::ok) << usage.message;
}

TEST(PkiChecks, CriticalKeyUsageWithoutEnciphermentWarns) {
  // Typical for EC certificates; QEMU before 7.2.22 rejects it when critical.
  SetBuilder builder;
  builder.server.key_usage = {"digitalSignature"};
  Check usage =
      only(qmt::pki::check_certificate_set(builder.build(), options_for()),
           "server-cert.key-usage");
  EXPECT_EQ(usage.status, CheckStatus::warning);
  EXPECT_EQ(usage.message,
            "server-cert.pem has keyUsage digitalSignature (critical) without "
            "keyEncipherment; QEMU releases before 7.2.22 and 10.0.7 reject "
            "that at start-up, even for EC keys. Use an RSA host key, or keep "
            "keyUsage not critical, for older QEMU");

  builder.server.key_usage_critical = false;
  usage = only(qmt::pki::check_certificate_set(builder.build(), options_for()),
               "server-cert.key-usage");
  EXPECT_EQ(usage.status, CheckStatus::ok) << usage.message;
}

TEST(PkiChecks, CaKeyUsageWithoutCertSignFails) {
  CertificateSpec spec = ca_spec_at_now("Signing CA");
  spec.key_usage = {"cRLSign"};
  TestCa ca(spec, testing_pki::generate_key(KeyType::ec));
  CertificateSet set = SetBuilder().build();
  set.ca_cert.pem = ca.pem();
  Check usage = only(qmt::pki::check_certificate_set(set, options_for()),
                     "ca-cert.key-usage");
  EXPECT_EQ(usage.status, CheckStatus::failed);
  EXPECT_EQ(usage.message,
            "ca-cert.pem has keyUsage cRLSign without keyCertSign, so TLS "
            "libraries do not accept it as an issuer; expected keyCertSign");
}

TEST(PkiChecks, MoreThanSixteenCasWarns) {
  // The set's own CA comes 17th, beyond what QEMU reads for its check.
  SetBuilder builder;
  CertificateSet set = builder.build();
  std::string bundle;
  for (int i = 0; i < 16; ++i) {
    bundle += ca_at_now("CA " + std::to_string(i)).pem();
  }
  set.ca_cert.pem = bundle + builder.ca().pem();
  Checks checks = qmt::pki::check_certificate_set(set, options_for());
  Check parse = only(checks, "ca-cert.parse");
  EXPECT_EQ(parse.status, CheckStatus::warning);
  EXPECT_NE(parse.message.find("QEMU checks only the first 16 at start-up"),
            std::string::npos)
      << parse.message;
  EXPECT_EQ(only(checks, "server-cert.chain").status, CheckStatus::failed);

  set.ca_cert.pem = builder.ca().pem() + bundle;
  checks = qmt::pki::check_certificate_set(set, options_for());
  EXPECT_EQ(only(checks, "server-cert.chain").status, CheckStatus::ok);
}

TEST(PkiChecks, StructureSkipsNames) {
  Checks checks = qmt::pki::check_structure(SetBuilder().build());
  EXPECT_TRUE(named(checks, "server-cert.hostname").empty());
  EXPECT_FALSE(named(checks, "server-cert.chain").empty());
}

TEST(PkiCertificate, DescribeReadsFields) {
  TestCa ca("QEMU Migration CA");
  auto key = testing_pki::shared_key(KeyType::ec, 1);
  CertificateSpec spec = testing_pki::server_spec(k_host);
  spec.ip_addresses = {"192.0.2.10", "2001:db8::10"};
  spec.serial = 0x1A2B3C;
  spec.not_before = k_now;
  spec.not_after = k_now + 10 * k_day;
  auto certificate = ca.issue(spec, key.get());
  qmt::pki::CertificateInfo info = qmt::pki::describe(certificate.get());
  EXPECT_EQ(info.subject, "CN=dst.example.test");
  EXPECT_EQ(info.issuer, "CN=QEMU Migration CA");
  EXPECT_EQ(info.serial_hex, "1A2B3C");
  EXPECT_EQ(info.sha256_fingerprint.size(), 32u * 3 - 1);
  EXPECT_EQ(info.not_before, k_now);
  EXPECT_EQ(info.not_after, k_now + 10 * k_day);
  EXPECT_EQ(info.dns_names, std::vector<std::string>{k_host});
  EXPECT_EQ(info.ip_addresses,
            (std::vector<std::string>{"192.0.2.10", "2001:db8::10"}));
  EXPECT_FALSE(info.is_ca);
  EXPECT_TRUE(info.has_basic_constraints);
  EXPECT_EQ(info.extended_key_usage,
            (std::vector<std::string>{"serverAuth", "clientAuth"}));
  EXPECT_EQ(info.key_usage,
            (std::vector<std::string>{"digitalSignature", "keyEncipherment"}));
  EXPECT_TRUE(info.key_usage_critical);
  EXPECT_EQ(info.public_key, "EC P-256");
  EXPECT_TRUE(qmt::pki::describe(ca.certificate()).is_ca);
}

TEST(PkiCertificate, ParsesSeveralCertificates) {
  TestCa first("First CA");
  TestCa second("Second CA");
  auto parsed = qmt::pki::parse_certificates(
      "comment before\n" + first.pem() + "text between\n" + second.pem(),
      "bundle.pem");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_EQ(parsed.value().size(), 2u);
  EXPECT_EQ(qmt::pki::describe(parsed.value()[1].get()).subject,
            "CN=Second CA");
}

TEST(PkiCertificate, EmptyInputNamesLabel) {
  auto certificates = qmt::pki::parse_certificates(" \n", "ca_cert");
  ASSERT_FALSE(certificates.ok());
  EXPECT_EQ(certificates.error().message,
            "ca_cert is empty: expected one or more PEM certificates");
  auto key = qmt::pki::parse_private_key("", "key");
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.error().message, "key is empty: expected a PEM private key");
}

TEST(PkiCertificate, DetectsPrivateKeyPem) {
  auto ec = testing_pki::shared_key(KeyType::ec, 1);
  auto rsa = testing_pki::shared_key(KeyType::rsa, 1);
  EXPECT_TRUE(
      qmt::pki::is_private_key_pem(testing_pki::private_key_pem(ec.get())));
  EXPECT_TRUE(qmt::pki::is_private_key_pem(
      testing_pki::private_key_pem(ec.get(), "", true)));
  EXPECT_TRUE(qmt::pki::is_private_key_pem(
      testing_pki::private_key_pem(rsa.get(), "", true)));
  EXPECT_TRUE(qmt::pki::is_private_key_pem(
      testing_pki::private_key_pem(rsa.get(), "secret")));
  TestCa ca("CA");
  EXPECT_FALSE(qmt::pki::is_private_key_pem(ca.pem()));
  EXPECT_FALSE(qmt::pki::is_private_key_pem("/etc/pki/qemu/server-key.pem"));
  EXPECT_TRUE(qmt::pki::is_private_key_pem(
      ca.pem() + testing_pki::private_key_pem(ec.get())));
  EXPECT_TRUE(qmt::pki::is_pem_text(ca.pem()));
  EXPECT_FALSE(qmt::pki::is_pem_text("/etc/pki/qemu/ca-cert.pem"));
}

TEST(PkiCertificate, KeyAfterCertificateParses) {
  SetBuilder builder;
  CertificateSet set = builder.build();
  auto key = qmt::pki::parse_private_key(
      set.server_cert.pem + set.server_key.pem, "combined.pem");
  ASSERT_TRUE(key.ok()) << key.error().message;
}

TEST(PkiReadSet, MissingFilesAreEmpty) {
  testing_pki::TempDir dir;
  CertificateSet set = SetBuilder().build();
  std::ofstream(dir.path() + "/ca-cert.pem") << set.ca_cert.pem;
  auto read = qmt::pki::read_certificate_set(dir.path() + "/");
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read->ca_cert.label, dir.path() + "/ca-cert.pem");
  EXPECT_EQ(read->ca_cert.pem, set.ca_cert.pem);
  EXPECT_EQ(read->server_key.label, dir.path() + "/server-key.pem");
  EXPECT_TRUE(read->server_key.pem.empty());
  EXPECT_TRUE(read->client_cert.pem.empty());

  auto missing = qmt::pki::read_certificate_set(dir.path() + "/absent");
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->ca_cert.pem.empty());
}

TEST(PkiReadSet, UnreadableFileIsError) {
  testing_pki::TempDir dir;
  ASSERT_EQ(::mkdir((dir.path() + "/server-key.pem").c_str(), 0700), 0);
  auto read = qmt::pki::read_certificate_set(dir.path());
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().message, "Failed to read " + dir.path() +
                                      "/server-key.pem: it is a folder, not a "
                                      "file");
}

}  // namespace
