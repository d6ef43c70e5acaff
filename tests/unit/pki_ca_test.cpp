#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "pki/ca.hpp"
#include "pki/ca_config.hpp"
#include "pki/csr.hpp"
#include "pki/index.hpp"
#include "util/files.hpp"
#include "pki_test_support.hpp"

namespace {

using qmt::pki::testing::TempDir;
using qmt::pki::testing::file_mode;
using qmt::pki::testing::write_text;
using qmt::pki::testing::read_text;
using qmt::pki::CaSettings;
using qmt::pki::EvpPkeyPtr;
using qmt::pki::KeyType;
using qmt::pki::SignRequest;
using qmt::pki::X509Ptr;
using qmt::pki::X509ReqPtr;

constexpr std::int64_t k_day = 86400;

// RSA 3072 generation takes up to a second, so each type is made once.
const EVP_PKEY* shared_key(KeyType type) {
  static EvpPkeyPtr rsa = qmt::pki::generate_key(KeyType::rsa3072).value();
  static EvpPkeyPtr ec = qmt::pki::generate_key(KeyType::ec_p256).value();
  return type == KeyType::rsa3072 ? rsa.get() : ec.get();
}

X509Ptr parse_certificate(const std::string& pem) {
  qmt::pki::BioPtr bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free_all);
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr),
                 X509_free);
}

std::int64_t seconds_of(const ASN1_TIME* time) {
  std::tm utc{};
  ASN1_TIME_to_tm(time, &utc);
  return ::timegm(&utc);
}

CaSettings settings_in(const TempDir& dir) {
  CaSettings settings;
  settings.ca_dir = dir.path() + "/ca";
  return settings;
}

// Creates the CA once per settings and fails the test when that fails.
CaSettings make_ca(const TempDir& dir) {
  CaSettings settings = settings_in(dir);
  auto created = qmt::pki::ensure_ca(settings, false);
  EXPECT_TRUE(created.ok()) << created.error().message;
  return settings;
}

SignRequest request_for(const EVP_PKEY* key, const std::string& hostname,
                        const std::vector<std::string>& extra_names) {
  SignRequest request;
  request.csr_pem = qmt::pki::make_csr(key, hostname, {}).value();
  request.hostname = hostname;
  request.extra_names = extra_names;
  return request;
}

// Returns subjectAltName entries as "DNS:name" and "IP:text".
std::vector<std::string> alt_names(const X509* certificate, int* critical) {
  std::vector<std::string> names;
  qmt::pki::GeneralNamesPtr general_names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(
          certificate, NID_subject_alt_name, critical, nullptr)),
      GENERAL_NAMES_free);
  if (!general_names) return names;
  for (int i = 0; i < sk_GENERAL_NAME_num(general_names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(general_names.get(), i);
    if (name->type == GEN_DNS) {
      names.push_back("DNS:" +
                      std::string(reinterpret_cast<const char*>(
                                      ASN1_STRING_get0_data(name->d.dNSName)),
                                  ASN1_STRING_length(name->d.dNSName)));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* address = name->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = {};
      int family = ASN1_STRING_length(address) == 4 ? AF_INET : AF_INET6;
      ::inet_ntop(family, ASN1_STRING_get0_data(address), text, sizeof(text));
      names.push_back(std::string("IP:") + text);
    } else {
      names.push_back("other:" + std::to_string(name->type));
    }
  }
  return names;
}

// Runs X509_verify_cert against `ca` for one purpose, with RFC 5280 strict
// checks, at time `at`. Returns the verification error text, or "ok".
std::string verify_chain(X509* certificate, X509* ca, int purpose,
                         std::int64_t at) {
  qmt::pki::X509StorePtr store(X509_STORE_new(), X509_STORE_free);
  X509_STORE_add_cert(store.get(), ca);
  qmt::pki::X509StoreCtxPtr context(X509_STORE_CTX_new(), X509_STORE_CTX_free);
  X509_STORE_CTX_init(context.get(), store.get(), certificate, nullptr);
  X509_STORE_CTX_set_purpose(context.get(), purpose);
  X509_VERIFY_PARAM* parameters = X509_STORE_CTX_get0_param(context.get());
  X509_VERIFY_PARAM_set_flags(parameters, X509_V_FLAG_X509_STRICT);
  X509_VERIFY_PARAM_set_time(parameters, static_cast<time_t>(at));
  if (X509_verify_cert(context.get()) == 1) return "ok";
  return X509_verify_cert_error_string(X509_STORE_CTX_get_error(context.get()));
}

std::string issuer_key_id(X509* ca) {
  const ASN1_OCTET_STRING* id = X509_get0_subject_key_id(ca);
  if (id == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(id)),
                     ASN1_STRING_length(id));
}

std::string authority_key_id(X509* certificate) {
  const ASN1_OCTET_STRING* id = X509_get0_authority_key_id(certificate);
  if (id == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(id)),
                     ASN1_STRING_length(id));
}

// Checks every field and extension sign_csr promises for a host certificate.
void expect_host_certificate(X509* certificate, X509* ca,
                             const std::string& hostname,
                             const std::vector<std::string>& expected_names,
                             std::uint32_t expected_key_usage) {
  int critical = -1;
  qmt::pki::BasicConstraintsPtr constraints(
      static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(
          certificate, NID_basic_constraints, &critical, nullptr)),
      BASIC_CONSTRAINTS_free);
  ASSERT_TRUE(constraints);
  EXPECT_EQ(constraints->ca, 0);
  EXPECT_EQ(critical, 1);
  EXPECT_EQ(X509_check_ca(certificate), 0);

  EXPECT_EQ(X509_get_key_usage(certificate), expected_key_usage);
  std::unique_ptr<ASN1_BIT_STRING, decltype(&ASN1_BIT_STRING_free)> usage(
      static_cast<ASN1_BIT_STRING*>(
          X509_get_ext_d2i(certificate, NID_key_usage, &critical, nullptr)),
      ASN1_BIT_STRING_free);
  ASSERT_TRUE(usage);
  EXPECT_EQ(critical, 1);

  EXPECT_EQ(X509_get_extended_key_usage(certificate),
            static_cast<std::uint32_t>(XKU_SSL_SERVER | XKU_SSL_CLIENT));
  qmt::pki::ExtendedKeyUsagePtr extended(
      static_cast<EXTENDED_KEY_USAGE*>(
          X509_get_ext_d2i(certificate, NID_ext_key_usage, &critical, nullptr)),
      EXTENDED_KEY_USAGE_free);
  ASSERT_TRUE(extended);
  EXPECT_EQ(critical, 0);
  EXPECT_EQ(sk_ASN1_OBJECT_num(extended.get()), 2);

  EXPECT_EQ(alt_names(certificate, &critical), expected_names);
  EXPECT_EQ(critical, 0);

  const X509_NAME* subject = X509_get_subject_name(certificate);
  EXPECT_EQ(X509_NAME_entry_count(subject), 1);
  char common_name[128] = {};
  X509_NAME_get_text_by_NID(subject, NID_commonName, common_name,
                            sizeof(common_name));
  EXPECT_EQ(std::string(common_name), hostname);
  EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(certificate),
                          X509_get_subject_name(ca)),
            0);

  EXPECT_NE(X509_get0_subject_key_id(certificate), nullptr);
  EXPECT_EQ(authority_key_id(certificate), issuer_key_id(ca));
  EXPECT_FALSE(issuer_key_id(ca).empty());

  qmt::pki::BignumPtr serial(
      ASN1_INTEGER_to_BN(X509_get0_serialNumber(certificate), nullptr),
      BN_free);
  ASSERT_TRUE(serial);
  EXPECT_FALSE(BN_is_negative(serial.get()));
  EXPECT_LE(BN_num_bits(serial.get()), 127);
  // A random 127-bit value has fewer than 96 bits with probability 2^-31.
  EXPECT_GE(BN_num_bits(serial.get()), 96);

  EXPECT_EQ(X509_get_version(certificate), X509_VERSION_3);
  EXPECT_EQ(X509_get_signature_nid(certificate),
            EVP_PKEY_is_a(X509_get0_pubkey(ca), "RSA") == 1
                ? NID_sha256WithRSAEncryption
                : NID_ecdsa_with_SHA256);
  EXPECT_EQ(X509_verify(certificate, X509_get0_pubkey(ca)), 1);

  std::int64_t now = std::time(nullptr);
  EXPECT_EQ(verify_chain(certificate, ca, X509_PURPOSE_SSL_SERVER, now), "ok");
  EXPECT_EQ(verify_chain(certificate, ca, X509_PURPOSE_SSL_CLIENT, now), "ok");
  EXPECT_EQ(X509_check_host(certificate, hostname.c_str(), 0, 0, nullptr), 1);
}

// --- CA creation -----------------------------------------------------------

TEST(EnsureCa, CreatesOnce) {
  TempDir dir;
  CaSettings settings = settings_in(dir);
  auto created = qmt::pki::ensure_ca(settings, false);
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_TRUE(created.value());
  const std::string key_path = settings.ca_dir + "/ca-key.pem";
  const std::string certificate_path = settings.ca_dir + "/ca-cert.pem";
  EXPECT_EQ(file_mode(settings.ca_dir), 0700u);
  EXPECT_EQ(file_mode(key_path), 0600u);
  EXPECT_EQ(file_mode(certificate_path), 0644u);
  const std::string key = read_text(key_path);
  const std::string certificate = read_text(certificate_path);

  auto again = qmt::pki::ensure_ca(settings, false);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_FALSE(again.value());
  EXPECT_EQ(read_text(key_path), key);
  EXPECT_EQ(read_text(certificate_path), certificate);
  auto checked = qmt::pki::ensure_ca(settings, true);
  ASSERT_TRUE(checked.ok()) << checked.error().message;
  EXPECT_FALSE(checked.value());
}

TEST(EnsureCa, CheckModeCreatesNothing) {
  TempDir dir;
  CaSettings settings = settings_in(dir);
  auto would_create = qmt::pki::ensure_ca(settings, true);
  ASSERT_TRUE(would_create.ok()) << would_create.error().message;
  EXPECT_TRUE(would_create.value());
  EXPECT_FALSE(std::filesystem::exists(settings.ca_dir));
}

TEST(EnsureCa, CertificateHasCaExtensions) {
  TempDir dir;
  CaSettings settings = settings_in(dir);
  settings.subject = "/O=Example Org/CN=Test CA";
  settings.validity_days = 30;
  std::int64_t before = std::time(nullptr);
  ASSERT_TRUE(qmt::pki::ensure_ca(settings, false).ok());
  std::int64_t after = std::time(nullptr);

  X509Ptr ca = parse_certificate(read_text(settings.ca_dir + "/ca-cert.pem"));
  ASSERT_TRUE(ca);
  int critical = -1;
  qmt::pki::BasicConstraintsPtr constraints(
      static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(
          ca.get(), NID_basic_constraints, &critical, nullptr)),
      BASIC_CONSTRAINTS_free);
  ASSERT_TRUE(constraints);
  EXPECT_NE(constraints->ca, 0);
  EXPECT_EQ(critical, 1);
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_EQ(X509_get_key_usage(ca.get()),
            static_cast<std::uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  std::unique_ptr<ASN1_BIT_STRING, decltype(&ASN1_BIT_STRING_free)> usage(
      static_cast<ASN1_BIT_STRING*>(
          X509_get_ext_d2i(ca.get(), NID_key_usage, &critical, nullptr)),
      ASN1_BIT_STRING_free);
  ASSERT_TRUE(usage);
  EXPECT_EQ(critical, 1);
  EXPECT_FALSE(issuer_key_id(ca.get()).empty());
  EXPECT_EQ(authority_key_id(ca.get()), issuer_key_id(ca.get()));
  EXPECT_EQ(X509_get_version(ca.get()), X509_VERSION_3);
  EXPECT_EQ(X509_verify(ca.get(), X509_get0_pubkey(ca.get())), 1);
  EXPECT_EQ(X509_NAME_cmp(X509_get_subject_name(ca.get()),
                          X509_get_issuer_name(ca.get())),
            0);

  std::int64_t not_before = seconds_of(X509_get0_notBefore(ca.get()));
  std::int64_t not_after = seconds_of(X509_get0_notAfter(ca.get()));
  EXPECT_GE(not_before, before - qmt::pki::k_clock_skew_seconds);
  EXPECT_LE(not_before, after - qmt::pki::k_clock_skew_seconds);
  EXPECT_EQ(not_after - not_before,
            30 * k_day + qmt::pki::k_clock_skew_seconds);

  auto state = qmt::pki::inspect_ca(settings);
  ASSERT_TRUE(state.ok()) << state.error().message;
  EXPECT_TRUE(state.value().exists);
  EXPECT_EQ(state.value().subject, "CN=Test CA,O=Example Org");
  EXPECT_EQ(state.value().not_before, not_before);
  EXPECT_EQ(state.value().not_after, not_after);
  EXPECT_EQ(state.value().key_description, "EC P-256");
  EXPECT_EQ(state.value().serial_hex, qmt::pki::serial_hex(ca.get()));
  EXPECT_EQ(state.value().certificate_pem,
            read_text(settings.ca_dir + "/ca-cert.pem"));
}

TEST(EnsureCa, CreatesRsaCa) {
  TempDir dir;
  CaSettings settings = settings_in(dir);
  settings.key_type = KeyType::rsa3072;
  ASSERT_TRUE(qmt::pki::ensure_ca(settings, false).ok());
  auto state = qmt::pki::inspect_ca(settings);
  ASSERT_TRUE(state.ok()) << state.error().message;
  EXPECT_EQ(state.value().key_description, "RSA 3072");

  SignRequest request =
      request_for(shared_key(KeyType::ec_p256), "host1", {"10.0.0.1"});
  auto signed_certificate = qmt::pki::sign_csr(settings, request);
  ASSERT_TRUE(signed_certificate.ok()) << signed_certificate.error().message;
  X509Ptr certificate =
      parse_certificate(signed_certificate.value().certificate_pem);
  X509Ptr ca = parse_certificate(state.value().certificate_pem);
  expect_host_certificate(certificate.get(), ca.get(), "host1",
                          {"DNS:host1", "IP:10.0.0.1"}, KU_DIGITAL_SIGNATURE);
}

TEST(EnsureCa, ConcurrentProcessesCreateOneCa) {
  TempDir dir;
  CaSettings settings = settings_in(dir);
  constexpr int k_children = 4;
  std::vector<pid_t> children;
  for (int i = 0; i < k_children; ++i) {
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      auto created = qmt::pki::ensure_ca(settings, false);
      if (!created.ok()) ::_exit(1);
      ::_exit(created.value() ? 10 : 11);
    }
    children.push_back(child);
  }
  int creators = 0;
  for (pid_t child : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_TRUE(WEXITSTATUS(status) == 10 || WEXITSTATUS(status) == 11)
        << WEXITSTATUS(status);
    creators += WEXITSTATUS(status) == 10 ? 1 : 0;
  }
  EXPECT_EQ(creators, 1);
  EXPECT_TRUE(qmt::pki::inspect_ca(settings).ok());
}

TEST(EnsureCa, RejectsInvalidSubjects) {
  TempDir dir;
  const std::vector<std::pair<std::string, std::string>> subjects = {
      {"CN=x",
       "Invalid subject \"CN=x\": it must start with '/', for example "
       "/O=Example/CN=QEMU Migration CA"},
      {"/", "Invalid subject \"/\": it has an empty attribute"},
      {"/CN=a//O=b",
       "Invalid subject \"/CN=a//O=b\": it has an empty attribute"},
      {"/CN", "Invalid subject \"/CN\": attribute \"CN\" has no '='"},
      {"/XYZ=1", "Invalid subject \"/XYZ=1\": unknown attribute \"XYZ\""},
      {"/CN=", "Invalid subject \"/CN=\": attribute CN has an empty value"},
  };
  for (const auto& [subject, message] : subjects) {
    CaSettings settings = settings_in(dir);
    settings.subject = subject;
    auto created = qmt::pki::ensure_ca(settings, false);
    ASSERT_FALSE(created.ok()) << subject;
    EXPECT_EQ(created.error().message, message);
  }
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/ca"));
}

TEST(EnsureCa, RejectsInvalidValidity) {
  TempDir dir;
  CaSettings settings = settings_in(dir);
  settings.validity_days = 0;
  auto created = qmt::pki::ensure_ca(settings, false);
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().message,
            "Invalid CA validity of 0 days: expected a whole number of days "
            "from 1 to 36500");

  settings.validity_days = 7300;
  settings.cert_validity_days = 36501;
  created = qmt::pki::ensure_ca(settings, false);
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().message,
            "Invalid certificate validity of 36501 days: expected a whole "
            "number of days from 1 to 36500");
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/ca"));
}

TEST(EnsureCa, RejectsUnsetFolder) {
  auto created = qmt::pki::ensure_ca(CaSettings{}, false);
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().message, "The CA folder is not set");
}

TEST(Subject, AcceptsEscapedSlash) {
  TempDir dir;
  CaSettings settings = settings_in(dir);
  settings.subject = "/O=A\\/B/CN=CA";
  ASSERT_TRUE(qmt::pki::ensure_ca(settings, false).ok());
  EXPECT_EQ(qmt::pki::inspect_ca(settings).value().subject, "CN=CA,O=A/B");
}

// --- inspect_ca --------------------------------------------------------------

TEST(InspectCa, MissingCaDoesNotExist) {
  TempDir dir;
  auto state = qmt::pki::inspect_ca(settings_in(dir));
  ASSERT_TRUE(state.ok()) << state.error().message;
  EXPECT_FALSE(state.value().exists);
}

TEST(InspectCa, MismatchedKeyIsError) {
  TempDir first_dir;
  TempDir second_dir;
  CaSettings first = make_ca(first_dir);
  CaSettings second = make_ca(second_dir);
  std::filesystem::copy_file(second.ca_dir + "/ca-key.pem",
                             first.ca_dir + "/ca-key.pem",
                             std::filesystem::copy_options::overwrite_existing);
  auto state = qmt::pki::inspect_ca(first);
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.error().message, "CA key " + first.ca_dir +
                                       "/ca-key.pem does not match CA "
                                       "certificate " +
                                       first.ca_dir + "/ca-cert.pem");
  auto ensured = qmt::pki::ensure_ca(first, false);
  ASSERT_FALSE(ensured.ok());
  EXPECT_EQ(ensured.error().message, state.error().message);
}

TEST(InspectCa, MissingCertificateIsNamed) {
  TempDir dir;
  CaSettings settings = make_ca(dir);
  std::filesystem::remove(settings.ca_dir + "/ca-cert.pem");
  const std::string key = read_text(settings.ca_dir + "/ca-key.pem");
  auto state = qmt::pki::inspect_ca(settings);
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.error().message, "Incomplete CA in " + settings.ca_dir +
                                       ": " + settings.ca_dir +
                                       "/ca-cert.pem is missing but " +
                                       settings.ca_dir + "/ca-key.pem exists");
  auto ensured = qmt::pki::ensure_ca(settings, false);
  ASSERT_FALSE(ensured.ok());
  EXPECT_EQ(ensured.error().message, state.error().message);
  EXPECT_EQ(read_text(settings.ca_dir + "/ca-key.pem"), key);
}

TEST(InspectCa, MissingKeyIsNamed) {
  TempDir dir;
  CaSettings settings = make_ca(dir);
  std::filesystem::remove(settings.ca_dir + "/ca-key.pem");
  auto state = qmt::pki::inspect_ca(settings);
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.error().message, "Incomplete CA in " + settings.ca_dir +
                                       ": " + settings.ca_dir +
                                       "/ca-key.pem is missing but " +
                                       settings.ca_dir + "/ca-cert.pem exists");
}

TEST(InspectCa, RejectsNonCaCertificate) {
  TempDir dir;
  CaSettings settings = make_ca(dir);
  // A host certificate and its key replace the CA files.
  auto staged = qmt::pki::load_or_create_staged_key(
      dir.path() + "/host-key.pem", KeyType::ec_p256);
  ASSERT_TRUE(staged.ok()) << staged.error().message;
  SignRequest request = request_for(staged.value().key.get(), "host1", {});
  auto issued = qmt::pki::sign_csr(settings, request);
  ASSERT_TRUE(issued.ok()) << issued.error().message;
  write_text(settings.ca_dir + "/ca-cert.pem", issued.value().certificate_pem);
  write_text(settings.ca_dir + "/ca-key.pem",
             read_text(dir.path() + "/host-key.pem"));
  auto state = qmt::pki::inspect_ca(settings);
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.error().message,
            "CA certificate " + settings.ca_dir +
                "/ca-cert.pem is not a CA certificate: basicConstraints "
                "CA:TRUE is missing");
}

TEST(InspectCa, RejectsCorruptCertificate) {
  TempDir dir;
  CaSettings settings = make_ca(dir);
  write_text(settings.ca_dir + "/ca-cert.pem", "garbage\n");
  auto state = qmt::pki::inspect_ca(settings);
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.error().message.rfind("Failed to parse CA certificate " +
                                            settings.ca_dir + "/ca-cert.pem: ",
                                        0),
            0u);
}

// --- sign_csr --------------------------------------------------------------

TEST(SignCsr, IssuesEcCertificate) {
  TempDir dir;
  CaSettings settings = make_ca(dir);
  SignRequest request =
      request_for(shared_key(KeyType::ec_p256), "host1.example.com",
                  {"host1", "10.0.0.1", "fd00::1", "192.168.122.10"});
  request.now = std::time(nullptr);
  auto issued = qmt::pki::sign_csr(settings, request);
  ASSERT_TRUE(issued.ok()) << issued.error().message;
  X509Ptr certificate = parse_certificate(issued.value().certificate_pem);
  X509Ptr ca = parse_certificate(issued.value().ca_certificate_pem);
  ASSERT_TRUE(certificate);
  ASSERT_TRUE(ca);

  expect_host_certificate(certificate.get(), ca.get(), "host1.example.com",
                          {"DNS:host1.example.com", "DNS:host1", "IP:10.0.0.1",
                           "IP:fd00::1", "IP:192.168.122.10"},
                          KU_DIGITAL_SIGNATURE);

  EXPECT_EQ(X509_check_ip_asc(certificate.get(), "fd00::1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(certificate.get(), "10.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_host(certificate.get(), "host1", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(certificate.get(), "host2", 0, 0, nullptr), 0);
  EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(certificate.get()),
                        shared_key(KeyType::ec_p256)),
            1);
  EXPECT_EQ(issued.value().serial_hex, qmt::pki::serial_hex(certificate.get()));
  EXPECT_EQ(issued.value().ca_certificate_pem,
            read_text(settings.ca_dir + "/ca-cert.pem"));
  EXPECT_EQ(issued.value().names,
            (std::vector<std::string>{"host1.example.com", "host1", "10.0.0.1",
                                      "fd00::1", "192.168.122.10"}));
  EXPECT_FALSE(issued.value().not_after_clipped);
}

TEST(SignCsr, IssuesRsaCertificate) {
  TempDir dir;
  CaSettings settings = make_ca(dir);
  SignRequest request =
      request_for(shared_key(KeyType::rsa3072), "host2", {"fd00::2"});
  auto issued = qmt::pki::sign_csr(settings, request);
  ASSERT_TRUE(issued.ok()) << issued.error().message;
  X509Ptr certificate = parse_certificate(issued.value().certificate_pem);
  X509Ptr ca = parse_certificate(issued.value().ca_certificate_pem);
  expect_host_certificate(certificate.get(), ca.get(), "host2",
                          {"DNS:host2", "IP:fd00::2"},
                          KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
}

TEST(SignCsr, EcKeyEnciphermentOnRequest) {
  TempDir dir;
  CaSettings settings = make_ca(dir);
  SignRequest request = request_for(shared_key(KeyType::ec_p256), "host1", {});
  request.ec_key_encipherment = true;
  auto issued = qmt::pki::sign_csr(settings, request);
  ASSERT_TRUE(issued.ok()) << issued.error().message;
  X509Ptr certificate = parse_certificate(issued.value().certificate_pem);
  EXPECT_EQ(
      X509_get_key_usage(certificate.get()),
      static_cast<std::uint32_t>(KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
}

TEST(SignCsr, IpAddressAsHostName) {
  TempDir dir;
  CaSettings settings = make_ca(dir);
  SignRequest request =
      request_for(shared_key(KeyType::ec_p256), "10.0.0.5", {});
  request.hostname = "FD00:0:0::5";
  auto issued = qmt::pki::sign_csr(settings, request);
  ASSERT_TRUE(issued.ok()) << issued.error().message;
  X509Ptr certificate = parse_certificate(issued.value().certificate_pem);
  X509Ptr ca = parse_certificate(issued.value().ca_certificate_pem);
  int critical = -1;
  EXPECT_EQ(alt_names(certificate.get(), &critical),
            (std::vector<std::string>{"IP:fd00::5"}));
  char common_name[128] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(certificate.get()),
                            NID_commonName, common_name, sizeof(common_name));
  EXPECT_STREQ(common_name, "fd00::5");
  EXPECT_EQ(verify_chain(certificate.get(), ca.get(), X509_PURPOSE_SSL_SERVER,
                         std::time(nullptr)),
            "ok");
}

TEST(SignCsr, SerialsDifferPerCall) {
  TempDir dir;
  CaSettings settings = make_ca(dir);
  SignRequest request = request_for(shared_key(KeyType::ec_p256), "host1", {});
  std::set<std::string> serials;
  for (int i = 0; i < 5; ++i) {
    auto issued = qmt::pki::sign_csr(settings, request);
    ASSERT_TRUE(issued.ok()) << issued.error().message;
    serials.insert(issued.value().serial_hex);
  }
  EXPECT_EQ(serials.size(), 5u);
}

TEST(SignCsr, ValidityBoundaries) {
  TempDir dir;
  CaSettings settings = make_ca(dir);
  SignRequest request = request_for(shared_key(KeyType::ec_p256), "host1", {});
  request.now = std::time(nullptr);
  request.validity_days = 398;
  auto issued = qmt::pki::sign_csr(settings, request);
  ASSERT_TRUE(issued.ok()) << issued.error().message;
  X509Ptr certificate = parse_certificate(issued.value().certificate_pem);
  X509Ptr ca = parse_certificate(issued.value().ca_certificate_pem);
  std::int64_t not_before = seconds_of(X509_get0_notBefore(certificate.get()));
  std::int64_t not_after = seconds_of(X509_get0_notAfter(certificate.get()));
  EXPECT_EQ(not_before, request.now - 300);
  EXPECT_LT(not_before, static_cast<std::int64_t>(std::time(nullptr)));
  EXPECT_EQ(not_after, request.now + 398 * k_day);
  EXPECT_EQ(issued.value().not_before, not_before);
  EXPECT_EQ(issued.value().not_after, not_after);

  // OpenSSL 3.0 treats the notAfter second itself as expired (RFC 5280
  // includes it), so the last accepted second is notAfter - 1.
  EXPECT_EQ(verify_chain(certificate.get(), ca.get(), X509_PURPOSE_SSL_SERVER,
                         not_before),
            "ok");
  EXPECT_EQ(verify_chain(certificate.get(), ca.get(), X509_PURPOSE_SSL_CLIENT,
                         not_after - 1),
            "ok");
  EXPECT_EQ(verify_chain(certificate.get(), ca.get(), X509_PURPOSE_SSL_SERVER,
                         not_before - 1),
            "certificate is not yet valid");
  EXPECT_EQ(verify_chain(certificate.get(), ca.get(), X509_PURPOSE_SSL_SERVER,
                         not_after + 1),
            "certificate has expired");
}

TEST(SignCsr, MovedClock) {
  TempDir dir;
  CaSettings settings = make_ca(dir);
  SignRequest request = request_for(shared_key(KeyType::ec_p256), "host1", {});
  request.now = std::time(nullptr) + 1000 * k_day;
  request.validity_days = 1;
  auto issued = qmt::pki::sign_csr(settings, request);
  ASSERT_TRUE(issued.ok()) << issued.error().message;
  X509Ptr certificate = parse_certificate(issued.value().certificate_pem);
  X509Ptr ca = parse_certificate(issued.value().ca_certificate_pem);
  EXPECT_EQ(seconds_of(X509_get0_notAfter(certificate.get())),
            request.now + k_day);
  EXPECT_EQ(verify_chain(certificate.get(), ca.get(), X509_PURPOSE_SSL_SERVER,
                         request.now),
            "ok");
  EXPECT_EQ(verify_chain(certificate.get(), ca.get(), X509_PURPOSE_SSL_SERVER,
                         std::time(nullptr)),
            "certificate is not yet valid");
  auto entries = qmt::pki::read_index(settings.ca_dir + "/index.yml");
  ASSERT_TRUE(entries.ok()) << entries.error().message;
  ASSERT_EQ(entries.value().size(), 1u);
  EXPECT_EQ(entries.value()[0].issued_at,
            qmt::pki::format_utc_time(request.now));
}

TEST(SignCsr, ClipsToCaExpiry) {
  TempDir dir;
  CaSettings settings = settings_in(dir);
  settings.validity_days = 10;
  ASSERT_TRUE(qmt::pki::ensure_ca(settings, false).ok());
  auto state = qmt::pki::inspect_ca(settings);
  ASSERT_TRUE(state.ok()) << state.error().message;
  SignRequest request = request_for(shared_key(KeyType::ec_p256), "host1", {});
  request.validity_days = 398;
  auto issued = qmt::pki::sign_csr(settings, request);
  ASSERT_TRUE(issued.ok()) << issued.error().message;
  EXPECT_TRUE(issued.value().not_after_clipped);
  EXPECT_EQ(issued.value().not_after, state.value().not_after);
  X509Ptr certificate = parse_certificate(issued.value().certificate_pem);
  EXPECT_EQ(seconds_of(X509_get0_notAfter(certificate.get())),
            state.value().not_after);

  // One second before the CA's end, a one-day request is clipped as well.
  request.now = state.value().not_after - 1;
  request.validity_days = 1;
  issued = qmt::pki::sign_csr(settings, request);
  ASSERT_TRUE(issued.ok()) << issued.error().message;
  EXPECT_TRUE(issued.value().not_after_clipped);
  EXPECT_EQ(issued.value().not_after, state.value().not_after);
}

TEST(SignCsr, ExpiredCaIsError) {
  TempDir dir;
  CaSettings settings = settings_in(dir);
  settings.validity_days = 10;
  ASSERT_TRUE(qmt::pki::ensure_ca(settings, false).ok());
  std::int64_t ca_not_after = qmt::pki::inspect_ca(settings).value().not_after;
  SignRequest request = request_for(shared_key(KeyType::ec_p256), "host1", {});
  request.now = ca_not_after;
  auto issued = qmt::pki::sign_csr(settings, request);
  ASSERT_FALSE(issued.ok());
  EXPECT_EQ(issued.error().message,
            "CA certificate " + settings.ca_dir + "/ca-cert.pem expired at " +
                qmt::pki::format_utc_time(ca_not_after) +
                ": move the CA folder away and create a new CA");
}

TEST(SignCsr, IgnoresRequestedCaAndSubject) {
  TempDir dir;
  CaSettings settings = make_ca(dir);
  // A CSR made by hand that requests CA:TRUE, keyCertSign, another subject
  // and another name.
  EVP_PKEY* key = const_cast<EVP_PKEY*>(shared_key(KeyType::ec_p256));
  X509ReqPtr request(X509_REQ_new(), X509_REQ_free);
  X509_NAME* subject = X509_REQ_get_subject_name(request.get());
  X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("Evil"), -1,
                             -1, 0);
  X509_NAME_add_entry_by_txt(
      subject, "CN", MBSTRING_UTF8,
      reinterpret_cast<const unsigned char*>("evil.example"), -1, -1, 0);
  X509_REQ_set_pubkey(request.get(), key);
  STACK_OF(X509_EXTENSION)* extensions = sk_X509_EXTENSION_new_null();
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, nullptr, nullptr, request.get(), nullptr, 0);
  for (auto [nid, value] :
       {std::pair<int, const char*>{NID_basic_constraints, "critical,CA:TRUE"},
        {NID_key_usage, "critical,keyCertSign,cRLSign"},
        {NID_subject_alt_name, "DNS:evil.example"}}) {
    sk_X509_EXTENSION_push(extensions,
                           X509V3_EXT_nconf_nid(nullptr, &context, nid, value));
  }
  X509_REQ_add_extensions(request.get(), extensions);
  sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
  ASSERT_GT(X509_REQ_sign(request.get(), key, EVP_sha256()), 0);
  qmt::pki::BioPtr bio(BIO_new(BIO_s_mem()), BIO_free_all);
  PEM_write_bio_X509_REQ(bio.get(), request.get());
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);

  SignRequest sign_request;
  sign_request.csr_pem = std::string(data, static_cast<std::size_t>(size));
  sign_request.hostname = "host1";
  auto issued = qmt::pki::sign_csr(settings, sign_request);
  ASSERT_TRUE(issued.ok()) << issued.error().message;
  X509Ptr certificate = parse_certificate(issued.value().certificate_pem);
  X509Ptr ca = parse_certificate(issued.value().ca_certificate_pem);
  expect_host_certificate(certificate.get(), ca.get(), "host1", {"DNS:host1"},
                          KU_DIGITAL_SIGNATURE);
  EXPECT_EQ(X509_check_host(certificate.get(), "evil.example", 0, 0, nullptr),
            0);
}

TEST(SignCsr, RejectsBadSignature) {
  TempDir dir;
  CaSettings settings = make_ca(dir);
  for (KeyType type : {KeyType::ec_p256, KeyType::rsa3072}) {
    SignRequest request = request_for(shared_key(type), "host1", {});
    // The DER form ends inside the signature BIT STRING; flipping its last
    // byte leaves the structure intact but the signature wrong.
    X509ReqPtr csr = qmt::pki::csr_from_pem(request.csr_pem).value();
    unsigned char* der = nullptr;
    int length = i2d_X509_REQ(csr.get(), &der);
    ASSERT_GT(length, 0);
    std::string bytes(reinterpret_cast<char*>(der),
                      static_cast<std::size_t>(length));
    OPENSSL_free(der);
    bytes.back() = static_cast<char>(bytes.back() ^ 0x01);
    const unsigned char* cursor =
        reinterpret_cast<const unsigned char*>(bytes.data());
    X509ReqPtr corrupt(d2i_X509_REQ(nullptr, &cursor, length), X509_REQ_free);
    ASSERT_TRUE(corrupt);
    qmt::pki::BioPtr bio(BIO_new(BIO_s_mem()), BIO_free_all);
    PEM_write_bio_X509_REQ(bio.get(), corrupt.get());
    char* data = nullptr;
    long size = BIO_get_mem_data(bio.get(), &data);
    request.csr_pem = std::string(data, static_cast<std::size_t>(size));

    auto issued = qmt::pki::sign_csr(settings, request);
    ASSERT_FALSE(issued.ok());
    EXPECT_EQ(issued.error().message,
              "Invalid CSR for host1: its signature does not verify with its "
              "public key");
  }
  auto entries = qmt::pki::read_index(settings.ca_dir + "/index.yml");
  ASSERT_TRUE(entries.ok()) << entries.error().message;
  EXPECT_TRUE(entries.value().empty());
}

TEST(SignCsr, RejectsGarbageCsr) {
  TempDir dir;
  CaSettings settings = make_ca(dir);
  SignRequest request;
  request.csr_pem = "garbage";
  request.hostname = "host1";
  auto issued = qmt::pki::sign_csr(settings, request);
  ASSERT_FALSE(issued.ok());
  EXPECT_EQ(issued.error().message.rfind(
                "Invalid CSR for host1: not a PEM certificate request (", 0),
            0u);
}

TEST(SignCsr, RejectsInvalidHostNames) {
  TempDir dir;
  CaSettings settings = make_ca(dir);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "Invalid host name \"\": it is empty"},
      {"host 1", "Invalid host name \"host 1\": it contains whitespace"},
      {"*.example.com",
       "Invalid host name \"*.example.com\": wildcards are not allowed"},
      {"*", "Invalid host name \"*\": wildcards are not allowed"},
  };
  SignRequest request = request_for(shared_key(KeyType::ec_p256), "host1", {});
  for (const auto& [hostname, message] : cases) {
    request.hostname = hostname;
    auto issued = qmt::pki::sign_csr(settings, request);
    ASSERT_FALSE(issued.ok()) << hostname;
    EXPECT_EQ(issued.error().message, message);
  }
  request.hostname = "host1";
  request.extra_names = {"10.0.0.1", "*.example.com"};
  auto issued = qmt::pki::sign_csr(settings, request);
  ASSERT_FALSE(issued.ok());
  EXPECT_EQ(issued.error().message,
            "Invalid subject alternative name \"*.example.com\": wildcards are "
            "not allowed");
}

TEST(SignCsr, RejectsWeakKey) {
  TempDir dir;
  CaSettings settings = make_ca(dir);
  EvpPkeyPtr weak(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{1024}),
                  EVP_PKEY_free);
  ASSERT_TRUE(weak);
  SignRequest request = request_for(weak.get(), "host1", {});
  auto issued = qmt::pki::sign_csr(settings, request);
  ASSERT_FALSE(issued.ok());
  EXPECT_EQ(issued.error().message,
            "Unsupported key in CSR for host1: RSA 1024 (expected RSA of 2048 "
            "to 16384 bits or EC P-256, P-384 or P-521)");
}

TEST(SignCsr, AcceptsP384Key) {
  TempDir dir;
  CaSettings settings = make_ca(dir);
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"),
                 EVP_PKEY_free);
  ASSERT_TRUE(key);
  auto issued =
      qmt::pki::sign_csr(settings, request_for(key.get(), "host1", {}));
  ASSERT_TRUE(issued.ok()) << issued.error().message;
}

TEST(SignCsr, RejectsCaKey) {
  TempDir dir;
  CaSettings settings = make_ca(dir);
  auto ca_key = qmt::pki::private_key_from_pem(
      read_text(settings.ca_dir + "/ca-key.pem"), "ca key");
  ASSERT_TRUE(ca_key.ok()) << ca_key.error().message;
  auto issued = qmt::pki::sign_csr(
      settings, request_for(ca_key.value().get(), "host1", {}));
  ASSERT_FALSE(issued.ok());
  EXPECT_EQ(issued.error().message,
            "Invalid CSR for host1: it carries the CA's own key, which is "
            "never certified for a host");
}

TEST(SignCsr, RejectsInvalidValidity) {
  TempDir dir;
  CaSettings settings = make_ca(dir);
  SignRequest request = request_for(shared_key(KeyType::ec_p256), "host1", {});
  request.validity_days = 0;
  auto issued = qmt::pki::sign_csr(settings, request);
  ASSERT_FALSE(issued.ok());
  EXPECT_EQ(issued.error().message,
            "Invalid certificate validity of 0 days for host1: expected a "
            "whole number of days from 1 to 36500");
}

TEST(SignCsr, MissingCaIsError) {
  TempDir dir;
  CaSettings settings = settings_in(dir);
  SignRequest request = request_for(shared_key(KeyType::ec_p256), "host1", {});
  auto issued = qmt::pki::sign_csr(settings, request);
  ASSERT_FALSE(issued.ok());
  EXPECT_EQ(issued.error().message,
            "No CA exists in " + settings.ca_dir + ": create it first");
  std::filesystem::create_directory(settings.ca_dir);
  issued = qmt::pki::sign_csr(settings, request);
  ASSERT_FALSE(issued.ok());
  EXPECT_EQ(issued.error().message,
            "No CA exists in " + settings.ca_dir + ": create it first");
}

TEST(SignCsr, RecordsIndexEntry) {
  TempDir dir;
  CaSettings settings = make_ca(dir);
  SignRequest request =
      request_for(shared_key(KeyType::ec_p256), "host1", {"fd00::1"});
  auto issued = qmt::pki::sign_csr(settings, request);
  ASSERT_TRUE(issued.ok()) << issued.error().message;
  auto entries = qmt::pki::read_index(settings.ca_dir + "/index.yml");
  ASSERT_TRUE(entries.ok()) << entries.error().message;
  ASSERT_EQ(entries.value().size(), 1u);
  const auto& entry = entries.value()[0];
  EXPECT_EQ(entry.serial_hex, issued.value().serial_hex);
  EXPECT_EQ(entry.subject, "CN=host1");
  EXPECT_EQ(entry.names, (std::vector<std::string>{"host1", "fd00::1"}));
  EXPECT_EQ(entry.not_before, issued.value().not_before);
  EXPECT_EQ(entry.not_after, issued.value().not_after);
  EXPECT_EQ(file_mode(settings.ca_dir + "/index.yml"), 0644u);
}

TEST(SignCsr, UsesConfiguredIndexPath) {
  TempDir dir;
  CaSettings settings = make_ca(dir);
  settings.index_path = dir.path() + "/issued.yml";
  ASSERT_TRUE(
      qmt::pki::sign_csr(settings,
                         request_for(shared_key(KeyType::ec_p256), "host1", {}))
          .ok());
  EXPECT_EQ(qmt::pki::read_index(dir.path() + "/issued.yml").value().size(),
            1u);
  EXPECT_FALSE(std::filesystem::exists(settings.ca_dir + "/index.yml"));
}

TEST(SignCsr, CorruptIndexBlocksSigning) {
  TempDir dir;
  CaSettings settings = make_ca(dir);
  const std::string index = settings.ca_dir + "/index.yml";
  write_text(index, "- [unclosed\n");
  auto issued = qmt::pki::sign_csr(
      settings, request_for(shared_key(KeyType::ec_p256), "host1", {}));
  ASSERT_FALSE(issued.ok());
  EXPECT_EQ(issued.error().message,
            "Invalid YAML in " + index +
                " at line 2, column 1: end of sequence flow not found");
}

TEST(SignCsr, ConcurrentProcessesKeepIndexComplete) {
  TempDir dir;
  CaSettings settings = make_ca(dir);
  SignRequest request = request_for(shared_key(KeyType::ec_p256), "host1", {});
  constexpr int k_children = 4;
  constexpr int k_per_child = 3;

  std::vector<pid_t> children;
  for (int c = 0; c < k_children; ++c) {
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      for (int i = 0; i < k_per_child; ++i) {
        if (!qmt::pki::sign_csr(settings, request).ok()) ::_exit(1);
      }
      ::_exit(0);
    }
    children.push_back(child);
  }
  for (pid_t child : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }

  // Every signature left one entry with its own serial.
  auto entries = qmt::pki::read_index(settings.ca_dir + "/index.yml");
  ASSERT_TRUE(entries.ok()) << entries.error().message;
  std::set<std::string> serials;
  for (const auto& entry : entries.value()) serials.insert(entry.serial_hex);
  EXPECT_EQ(entries.value().size(),
            static_cast<std::size_t>(k_children * k_per_child));
  EXPECT_EQ(serials.size(), static_cast<std::size_t>(k_children * k_per_child));
}

// --- load_ca_config
// -----------------------------------------------------------

std::string config_error(const std::string& path, const std::string& text) {
  write_text(path, text);
  auto settings = qmt::pki::load_ca_config(path, CaSettings{});
  return settings.ok() ? "no error" : settings.error().message;
}

TEST(CaConfig, OverridesDefaults) {
  TempDir dir;
  const std::string path = dir.path() + "/ca.yml";
  write_text(path,
             "subject: /O=Example/CN=Lab CA\n"
             "key_type: rsa\n"
             "validity_days: 3650\n"
             "cert_validity_days: 90\n"
             "index_path: records/issued.yml\n");
  CaSettings defaults;
  defaults.ca_dir = "/srv/ca";
  auto settings = qmt::pki::load_ca_config(path, defaults);
  ASSERT_TRUE(settings.ok()) << settings.error().message;
  EXPECT_EQ(settings.value().ca_dir, "/srv/ca");
  EXPECT_EQ(settings.value().subject, "/O=Example/CN=Lab CA");
  EXPECT_EQ(settings.value().key_type, KeyType::rsa3072);
  EXPECT_EQ(settings.value().validity_days, 3650);
  EXPECT_EQ(settings.value().cert_validity_days, 90);
  EXPECT_EQ(settings.value().index_path, dir.path() + "/records/issued.yml");
}

TEST(CaConfig, EmptyFileKeepsDefaults) {
  TempDir dir;
  const std::string path = dir.path() + "/ca.yml";
  write_text(path, "# nothing set\n");
  CaSettings defaults;
  defaults.validity_days = 1234;
  auto settings = qmt::pki::load_ca_config(path, defaults);
  ASSERT_TRUE(settings.ok()) << settings.error().message;
  EXPECT_EQ(settings.value().validity_days, 1234);
  EXPECT_EQ(settings.value().subject, "/CN=QEMU Migration CA");
  EXPECT_EQ(settings.value().key_type, KeyType::ec_p256);
}

TEST(CaConfig, AbsoluteIndexPathKept) {
  TempDir dir;
  const std::string path = dir.path() + "/ca.yml";
  write_text(path, "index_path: /var/lib/qmt/index.yml\n");
  auto settings = qmt::pki::load_ca_config(path, CaSettings{});
  ASSERT_TRUE(settings.ok()) << settings.error().message;
  EXPECT_EQ(settings.value().index_path, "/var/lib/qmt/index.yml");
}

TEST(CaConfig, RejectsBadKeysAndValues) {
  TempDir dir;
  const std::string path = dir.path() + "/ca.yml";
  const std::string prefix = "Invalid CA config " + path + " at line ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"subject: /CN=x\nvalidty_days: 10\n",
       "2: unknown key \"validty_days\" (valid keys: subject, key_type, "
       "validity_days, cert_validity_days, index_path)"},
      {"validity_days: abc\n",
       "1: key validity_days has \"abc\", expected a whole number of days "
       "from 1 to 36500"},
      {"validity_days: 0\n",
       "1: key validity_days has \"0\", expected a whole number of days from "
       "1 to 36500"},
      {"cert_validity_days: 36501\n",
       "1: key cert_validity_days has \"36501\", expected a whole number of "
       "days from 1 to 36500"},
      {"cert_validity_days: 10.5\n",
       "1: key cert_validity_days has \"10.5\", expected a whole number of "
       "days from 1 to 36500"},
      {"validity_days: [1, 2]\n",
       "1: key validity_days has [1, 2], expected a whole number of days from "
       "1 to 36500"},
      {"validity_days:\n",
       "1: key validity_days has an empty value, expected a whole number of "
       "days from 1 to 36500"},
      {"key_type: dsa\n",
       "1: key key_type: Invalid key type \"dsa\": expected rsa3072, ec-p256, "
       "rsa or ec"},
      {"subject: CN=x\n",
       "1: key subject: Invalid subject \"CN=x\": it must start with '/', for "
       "example /O=Example/CN=QEMU Migration CA"},
      {"subject: {CN: x}\n", "1: key subject has {CN: x}, expected text"},
      {"index_path: \"\"\n", "1: key index_path has \"\", expected text"},
      {"validity_days: 10\nvalidity_days: 20\n",
       "2: key validity_days appears twice"},
      {"[a]: 1\n", "1: key [a] is not a name"},
      {"- subject: /CN=x\n",
       "1: expected a map of settings, found [{subject: /CN=x}]"},
  };
  for (const auto& [text, message] : cases) {
    EXPECT_EQ(config_error(path, text), prefix + message) << text;
  }
}

TEST(CaConfig, InvalidYamlNamesLineAndColumn) {
  TempDir dir;
  const std::string path = dir.path() + "/ca.yml";
  EXPECT_EQ(config_error(path, "subject: /CN=x\nkey_type: [rsa\n"),
            "Invalid YAML in " + path +
                " at line 3, column 1: end of sequence flow not found");
}

TEST(CaConfig, MissingFileIsError) {
  auto settings =
      qmt::pki::load_ca_config("/nonexistent-qmt/ca.yml", CaSettings{});
  ASSERT_FALSE(settings.ok());
  EXPECT_EQ(
      settings.error().message,
      "Failed to read /nonexistent-qmt/ca.yml: No such file or directory");
}

}  // namespace
