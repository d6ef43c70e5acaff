#include <gtest/gtest.h>

#include <string>

#include "pki_test_support.hpp"
#include "virt/pair.hpp"

namespace {

using qmt::pki::testing::client_spec;
using qmt::pki::testing::k_day;
using qmt::pki::testing::KeyType;
using qmt::pki::testing::now_seconds;
using qmt::pki::testing::server_spec;
using qmt::pki::testing::shared_key;
using qmt::pki::testing::TestCa;
using qmt::util::Check;
using qmt::util::Checks;
using qmt::util::CheckStatus;

const Check* find(const Checks& checks, const std::string& name) {
  for (const auto& check : checks) {
    if (check.name == name) return &check;
  }
  return nullptr;
}

// Two hosts enrolled by `ca` (this host) and `peer_ca` (the peer), which may
// be the same CA.
qmt::virt::PairInput pair_input(const TestCa& ca, const TestCa& peer_ca) {
  auto key = shared_key(KeyType::ec, 0);
  auto peer_key = shared_key(KeyType::ec, 1);
  qmt::virt::PairInput input;
  input.ca_cert = {"/etc/pki/qemu-migrate/ca-cert.pem", ca.pem()};
  input.client_cert = {"/etc/pki/qemu-migrate/client-cert.pem",
                       ca.issue_pem(server_spec("h1.lab.test"), key.get())};
  input.peer_ca_cert = {"peer_ca_cert", peer_ca.pem()};
  input.peer_server_cert = {
      "peer_server_cert",
      peer_ca.issue_pem(server_spec("h2.lab.test"), peer_key.get())};
  input.peer_name = "h2.lab.test";
  return input;
}

TEST(CheckPair, SameCaPasses) {
  TestCa ca("QEMU Migration CA");
  const Checks checks = qmt::virt::check_pair(pair_input(ca, ca));
  EXPECT_EQ(qmt::util::count_status(checks, CheckStatus::failed), 0u);
  EXPECT_EQ(qmt::util::count_status(checks, CheckStatus::warning), 0u);
  ASSERT_EQ(checks.size(), 7u);
  const Check* chain = find(checks, "pair.peer-server-cert.chain");
  ASSERT_NE(chain, nullptr);
  EXPECT_EQ(chain->message,
            "peer_server_cert (CN=h2.lab.test) is issued by CN=QEMU Migration "
            "CA from /etc/pki/qemu-migrate/ca-cert.pem, so this host accepts "
            "the peer as migration destination");
  const Check* hostname = find(checks, "pair.peer-server-cert.hostname");
  ASSERT_NE(hostname, nullptr);
  EXPECT_EQ(hostname->message,
            "peer_server_cert matches h2.lab.test (DNS:h2.lab.test)");
  const Check* client = find(checks, "pair.client-cert.chain");
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->message,
            "/etc/pki/qemu-migrate/client-cert.pem (CN=h1.lab.test) is issued "
            "by CN=QEMU Migration CA from peer_ca_cert, so the peer accepts "
            "this host as migration source");
  EXPECT_NE(find(checks, "pair.peer-server-cert.validity"), nullptr);
  EXPECT_NE(find(checks, "pair.peer-server-cert.purpose"), nullptr);
  EXPECT_NE(find(checks, "pair.client-cert.validity"), nullptr);
  EXPECT_NE(find(checks, "pair.client-cert.purpose"), nullptr);
}

TEST(CheckPair, PeerOfOtherCa) {
  TestCa ca("QEMU Migration CA");
  TestCa other("Other CA");
  const Checks checks = qmt::virt::check_pair(pair_input(ca, other));
  const Check* chain = find(checks, "pair.peer-server-cert.chain");
  ASSERT_NE(chain, nullptr);
  EXPECT_EQ(chain->status, CheckStatus::failed);
  EXPECT_EQ(chain->message,
            "peer_server_cert (CN=h2.lab.test, issuer CN=Other CA) does not "
            "chain to this host's /etc/pki/qemu-migrate/ca-cert.pem: unable "
            "to get local issuer certificate. As migration source this host "
            "rejects the peer (\"The certificate hasn't got a known "
            "issuer\"); expected both hosts enrolled by the same CA (CN=QEMU "
            "Migration CA)");
  const Check* client = find(checks, "pair.client-cert.chain");
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->status, CheckStatus::failed);
  EXPECT_EQ(client->message,
            "/etc/pki/qemu-migrate/client-cert.pem (CN=h1.lab.test, issuer "
            "CN=QEMU Migration CA) does not chain to the peer's peer_ca_cert: "
            "unable to get local issuer certificate. As migration destination "
            "the peer rejects this host (QEMU there reports \"No certificate "
            "was found\"); expected both hosts enrolled by the same CA "
            "(CN=Other CA)");
  EXPECT_EQ(find(checks, "pair.peer-server-cert.hostname")->status,
            CheckStatus::ok);
}

TEST(CheckPair, WrongPeerName) {
  TestCa ca("QEMU Migration CA");
  auto input = pair_input(ca, ca);
  input.peer_name = "h3.lab.test";
  const Checks checks = qmt::virt::check_pair(input);
  const Check* hostname = find(checks, "pair.peer-server-cert.hostname");
  ASSERT_NE(hostname, nullptr);
  EXPECT_EQ(hostname->status, CheckStatus::failed);
  EXPECT_EQ(hostname->message,
            "peer_server_cert does not match h3.lab.test (found "
            "DNS:h2.lab.test). As migration source this host rejects the peer "
            "(\"Certificate does not match the hostname h3.lab.test\"); "
            "expected DNS:h3.lab.test in the peer's subjectAltName");
}

TEST(CheckPair, PeerNameIpAddress) {
  TestCa ca("QEMU Migration CA");
  auto input = pair_input(ca, ca);
  auto spec = server_spec("h2.lab.test");
  spec.ip_addresses = {"10.213.7.12"};
  auto key = shared_key(KeyType::ec, 1);
  input.peer_server_cert.pem = ca.issue_pem(spec, key.get());
  input.peer_name = "10.213.7.12";
  const Checks matching = qmt::virt::check_pair(input);
  EXPECT_EQ(find(matching, "pair.peer-server-cert.hostname")->status,
            CheckStatus::ok);
  input.peer_name = "10.213.7.13";
  const Checks checks = qmt::virt::check_pair(input);
  const Check* hostname = find(checks, "pair.peer-server-cert.hostname");
  EXPECT_EQ(hostname->status, CheckStatus::failed);
  EXPECT_NE(hostname->message.find("expected IP:10.213.7.13"),
            std::string::npos)
      << hostname->message;
}

TEST(CheckPair, PeerNameUnset) {
  TestCa ca("QEMU Migration CA");
  auto input = pair_input(ca, ca);
  input.peer_name.clear();
  const Checks checks = qmt::virt::check_pair(input);
  const Check* hostname = find(checks, "pair.peer-server-cert.hostname");
  ASSERT_NE(hostname, nullptr);
  EXPECT_EQ(hostname->status, CheckStatus::warning);
}

TEST(CheckPair, ClientCertWithoutClientAuth) {
  TestCa ca("QEMU Migration CA");
  auto input = pair_input(ca, ca);
  auto spec = server_spec("h1.lab.test");
  spec.extended_key_usage = {"serverAuth"};
  auto key = shared_key(KeyType::ec, 0);
  input.client_cert.pem = ca.issue_pem(spec, key.get());
  const Checks checks = qmt::virt::check_pair(input);
  const Check* purpose = find(checks, "pair.client-cert.purpose");
  ASSERT_NE(purpose, nullptr);
  EXPECT_EQ(purpose->status, CheckStatus::failed);
  EXPECT_EQ(purpose->message,
            "/etc/pki/qemu-migrate/client-cert.pem has extendedKeyUsage "
            "serverAuth, which does not allow clientAuth; expected "
            "clientAuth");
}

TEST(CheckPair, ClientOnlyCertificateAccepted) {
  TestCa ca("QEMU Migration CA");
  auto input = pair_input(ca, ca);
  auto key = shared_key(KeyType::ec, 0);
  input.client_cert.pem = ca.issue_pem(client_spec("h1"), key.get());
  const Checks checks = qmt::virt::check_pair(input);
  EXPECT_EQ(find(checks, "pair.client-cert.purpose")->status, CheckStatus::ok);
}

TEST(CheckPair, ExpiredPeerCertificate) {
  TestCa ca("QEMU Migration CA");
  auto input = pair_input(ca, ca);
  auto spec = server_spec("h2.lab.test");
  spec.not_before = now_seconds() - 10 * k_day;
  spec.not_after = now_seconds() - 2 * k_day;
  auto key = shared_key(KeyType::ec, 1);
  input.peer_server_cert.pem = ca.issue_pem(spec, key.get());
  const Checks checks = qmt::virt::check_pair(input);
  const Check* validity = find(checks, "pair.peer-server-cert.validity");
  ASSERT_NE(validity, nullptr);
  EXPECT_EQ(validity->status, CheckStatus::failed);
  EXPECT_NE(validity->message.find(", so this host as migration source "
                                   "rejects it; renew it"),
            std::string::npos)
      << validity->message;
  EXPECT_EQ(find(checks, "pair.peer-server-cert.chain")->status,
            CheckStatus::ok);
}

TEST(CheckPair, MissingPeerCa) {
  TestCa ca("QEMU Migration CA");
  auto input = pair_input(ca, ca);
  input.peer_ca_cert.pem.clear();
  const Checks checks = qmt::virt::check_pair(input);
  const Check* parse = find(checks, "pair.peer-ca-cert.parse");
  ASSERT_NE(parse, nullptr);
  EXPECT_EQ(parse->status, CheckStatus::failed);
  EXPECT_EQ(parse->message,
            "peer_ca_cert is missing, so the pair check cannot read the CA "
            "the peer trusts as migration destination");
  EXPECT_EQ(find(checks, "pair.client-cert.chain"), nullptr);
  EXPECT_NE(find(checks, "pair.peer-server-cert.chain"), nullptr);
}

TEST(CheckPair, DamagedPeerCertificate) {
  TestCa ca("QEMU Migration CA");
  auto input = pair_input(ca, ca);
  input.peer_server_cert.pem = "not a certificate";
  const Checks checks = qmt::virt::check_pair(input);
  const Check* parse = find(checks, "pair.peer-server-cert.parse");
  ASSERT_NE(parse, nullptr);
  EXPECT_EQ(parse->status, CheckStatus::failed);
  EXPECT_EQ(find(checks, "pair.peer-server-cert.chain"), nullptr);
}

}  // namespace
