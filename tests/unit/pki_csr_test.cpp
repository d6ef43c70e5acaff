#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "pki/csr.hpp"
#include "util/files.hpp"
#include "pki_test_support.hpp"

namespace {

using qmt::pki::testing::TempDir;
using qmt::pki::testing::write_text;
using qmt::pki::EvpPkeyPtr;
using qmt::pki::KeyType;

// RSA 3072 generation takes up to a second, so each type is made once.
const EVP_PKEY* shared_key(KeyType type) {
  static EvpPkeyPtr rsa = qmt::pki::generate_key(KeyType::rsa3072).value();
  static EvpPkeyPtr ec = qmt::pki::generate_key(KeyType::ec_p256).value();
  return type == KeyType::rsa3072 ? rsa.get() : ec.get();
}

mode_t file_mode(const std::string& path) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) return 0;
  return info.st_mode & 07777;
}

std::vector<std::string> requested_names(X509_REQ* request) {
  std::vector<std::string> names;
  STACK_OF(X509_EXTENSION)* extensions = X509_REQ_get_extensions(request);
  qmt::pki::GeneralNamesPtr general_names(
      static_cast<GENERAL_NAMES*>(
          X509V3_get_d2i(extensions, NID_subject_alt_name, nullptr, nullptr)),
      GENERAL_NAMES_free);
  sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
  if (!general_names) return names;
  for (int i = 0; i < sk_GENERAL_NAME_num(general_names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(general_names.get(), i);
    if (name->type == GEN_DNS) {
      names.push_back("DNS:" +
                      std::string(reinterpret_cast<const char*>(
                                      ASN1_STRING_get0_data(name->d.dNSName)),
                                  ASN1_STRING_length(name->d.dNSName)));
    } else if (name->type == GEN_IPADD) {
      names.push_back("IP bytes:" +
                      std::to_string(ASN1_STRING_length(name->d.iPAddress)));
    }
  }
  return names;
}

TEST(KeyType, ParsesNamesAndAliases) {
  EXPECT_EQ(qmt::pki::parse_key_type("rsa3072").value(), KeyType::rsa3072);
  EXPECT_EQ(qmt::pki::parse_key_type("rsa").value(), KeyType::rsa3072);
  EXPECT_EQ(qmt::pki::parse_key_type("ec-p256").value(), KeyType::ec_p256);
  EXPECT_EQ(qmt::pki::parse_key_type("ec").value(), KeyType::ec_p256);
  EXPECT_STREQ(qmt::pki::to_string(KeyType::rsa3072), "rsa3072");
  EXPECT_STREQ(qmt::pki::to_string(KeyType::ec_p256), "ec-p256");
}

TEST(KeyType, RejectsUnknownName) {
  auto parsed = qmt::pki::parse_key_type("dsa");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().message,
            "Invalid key type \"dsa\": expected rsa3072, ec-p256, rsa or ec");
}

TEST(GenerateKey, MakesRequestedTypes) {
  const EVP_PKEY* rsa = shared_key(KeyType::rsa3072);
  const EVP_PKEY* ec = shared_key(KeyType::ec_p256);
  EXPECT_EQ(qmt::pki::describe_key(rsa), "RSA 3072");
  EXPECT_EQ(qmt::pki::describe_key(ec), "EC P-256");
  EXPECT_EQ(qmt::pki::key_type_of(rsa).value(), KeyType::rsa3072);
  EXPECT_EQ(qmt::pki::key_type_of(ec).value(), KeyType::ec_p256);
}

TEST(KeyTypeOf, RejectsOtherSizes) {
  EvpPkeyPtr small(
      EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048}),
      EVP_PKEY_free);
  ASSERT_TRUE(small);
  auto type = qmt::pki::key_type_of(small.get());
  ASSERT_FALSE(type.ok());
  EXPECT_EQ(type.error().message,
            "Unsupported key RSA 2048: expected RSA 3072 or EC P-256");
}

TEST(PrivateKeyPem, RoundTripsPkcs8) {
  for (KeyType type : {KeyType::rsa3072, KeyType::ec_p256}) {
    auto pem = qmt::pki::private_key_to_pem(shared_key(type));
    ASSERT_TRUE(pem.ok()) << pem.error().message;
    EXPECT_EQ(pem.value().rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u);
    auto key = qmt::pki::private_key_from_pem(pem.value(), "test");
    ASSERT_TRUE(key.ok()) << key.error().message;
    EXPECT_EQ(EVP_PKEY_eq(key.value().get(), shared_key(type)), 1);
  }
}

TEST(PrivateKeyPem, RejectsEncryptedKey) {
  auto key = qmt::pki::private_key_from_pem(
      "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n"
      "-----END ENCRYPTED PRIVATE KEY-----\n",
      "/x/key.pem");
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.error().message,
            "Private key /x/key.pem is encrypted; only unencrypted keys are "
            "supported");
}

TEST(PrivateKeyPem, RejectsGarbage) {
  auto key = qmt::pki::private_key_from_pem("not a key", "/x/key.pem");
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(
      key.error().message.rfind("Failed to parse private key /x/key.pem: ", 0),
      0u);
}

TEST(CertificateName, AcceptsHostsAndAddresses) {
  for (const char* name :
       {"host1", "host-1.example.com", "HOST1.Example.COM", "10.0.0.1",
        "fd00::1", "::1", "::ffff:10.0.0.1", "a.b-c.d1", "1host.example"}) {
    auto valid = qmt::pki::validate_certificate_name(name);
    EXPECT_TRUE(valid.ok()) << name << ": " << valid.error().message;
  }
}

TEST(CertificateName, RejectsInvalidNames) {
  const std::string long_label(64, 'a');
  const std::string long_name =
      std::string(63, 'a') + "." + std::string(63, 'b') + "." +
      std::string(63, 'c') + "." + std::string(63, 'd');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "Invalid host name \"\": it is empty"},
      {"host 1", "Invalid host name \"host 1\": it contains whitespace"},
      {"host1\n", "Invalid host name \"host1\n\": it contains whitespace"},
      {"*.example.com",
       "Invalid host name \"*.example.com\": wildcards are not allowed"},
      {"host_1",
       "Invalid host name \"host_1\": character '_' is not allowed (use "
       "letters, digits, '-' and '.')"},
      {"h\xc3\xa9",
       "Invalid host name \"h\xc3\xa9\": character 0xc3 is not allowed (use "
       "letters, digits, '-' and '.')"},
      {"fe80::1%eth0",
       "Invalid host name \"fe80::1%eth0\": character ':' is not allowed (use "
       "letters, digits, '-' and '.')"},
      {"[fd00::1]",
       "Invalid host name \"[fd00::1]\": character '[' is not allowed (use "
       "letters, digits, '-' and '.')"},
      {".example.com",
       "Invalid host name \".example.com\": it starts or ends with '.'"},
      {"host1.", "Invalid host name \"host1.\": it starts or ends with '.'"},
      {"a..b", "Invalid host name \"a..b\": it has an empty label"},
      {"-a.example",
       "Invalid host name \"-a.example\": label \"-a\" starts or ends with "
       "'-'"},
      {"a-.example",
       "Invalid host name \"a-.example\": label \"a-\" starts or ends with "
       "'-'"},
      {long_label + ".example", "Invalid host name \"" + long_label +
                                    ".example\": label \"" + long_label +
                                    "\" is longer than 63 characters"},
      {long_name, "Invalid host name \"" + long_name +
                      "\": it is longer than 253 characters"},
      {"10.0.0.256",
       "Invalid host name \"10.0.0.256\": it is neither an IP address nor a "
       "host name (the last label is numeric)"},
  };
  for (const auto& [name, message] : cases) {
    auto valid = qmt::pki::validate_certificate_name(name);
    ASSERT_FALSE(valid.ok()) << name;
    EXPECT_EQ(valid.error().message, message);
  }
}

TEST(CertificateNames, CanonicalisesAndDeduplicates) {
  auto names = qmt::pki::certificate_names(
      "host1", {"HOST1", "FD00:0::1", "10.0.0.1", "fd00::1",
                "host1.example.com", "10.0.0.1"});
  ASSERT_TRUE(names.ok()) << names.error().message;
  EXPECT_EQ(names.value(),
            (std::vector<std::string>{"host1", "fd00::1", "10.0.0.1",
                                      "host1.example.com"}));
}

TEST(CertificateNames, NamesTheFailingExtraName) {
  auto names = qmt::pki::certificate_names("host1", {"ok.example", "a b"});
  ASSERT_FALSE(names.ok());
  EXPECT_EQ(names.error().message,
            "Invalid subject alternative name \"a b\": it contains whitespace");
}

TEST(CertificateNames, RejectsHostTooLongForCn) {
  const std::string host = std::string(40, 'a') + "." + std::string(24, 'b');
  auto names = qmt::pki::certificate_names(host, {});
  ASSERT_FALSE(names.ok());
  EXPECT_EQ(names.error().message,
            "Invalid host name \"" + host +
                "\": it is longer than 64 characters, the maximum for a "
                "certificate's CN");
}

TEST(MakeCsr, SignsSubjectAndRequestedNames) {
  for (KeyType type : {KeyType::rsa3072, KeyType::ec_p256}) {
    const EVP_PKEY* key = shared_key(type);
    auto pem = qmt::pki::make_csr(key, "host1.example.com",
                                  {"10.0.0.1", "fd00::1", "host1"});
    ASSERT_TRUE(pem.ok()) << pem.error().message;
    EXPECT_EQ(pem.value().rfind("-----BEGIN CERTIFICATE REQUEST-----\n", 0),
              0u);
    auto request = qmt::pki::csr_from_pem(pem.value());
    ASSERT_TRUE(request.ok()) << request.error().message;
    EVP_PKEY* public_key = X509_REQ_get0_pubkey(request.value().get());
    EXPECT_EQ(EVP_PKEY_eq(public_key, key), 1);
    EXPECT_EQ(X509_REQ_verify(request.value().get(), public_key), 1);
    EXPECT_EQ(X509_REQ_get_signature_nid(request.value().get()),
              type == KeyType::rsa3072 ? NID_sha256WithRSAEncryption
                                       : NID_ecdsa_with_SHA256);
    char common_name[128] = {};
    X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(request.value().get()),
                              NID_commonName, common_name, sizeof(common_name));
    EXPECT_STREQ(common_name, "host1.example.com");
    EXPECT_EQ(requested_names(request.value().get()),
              (std::vector<std::string>{"DNS:host1.example.com", "IP bytes:4",
                                        "IP bytes:16", "DNS:host1"}));
  }
}

TEST(MakeCsr, RejectsWildcardHost) {
  auto pem =
      qmt::pki::make_csr(shared_key(KeyType::ec_p256), "*.example.com", {});
  ASSERT_FALSE(pem.ok());
  EXPECT_EQ(pem.error().message,
            "Invalid host name \"*.example.com\": wildcards are not allowed");
}

TEST(CsrFromPem, RejectsGarbage) {
  auto request = qmt::pki::csr_from_pem("garbage", "host1");
  ASSERT_FALSE(request.ok());
  EXPECT_EQ(request.error().message.rfind(
                "Invalid CSR for host1: not a PEM certificate request (", 0),
            0u);
}

TEST(StagedKey, CreatedWithMode0600) {
  TempDir dir;
  const std::string path = dir.path() + "/host-key.pem";
  // A permissive umask must not widen the key's mode.
  mode_t old_umask = ::umask(0);
  auto staged = qmt::pki::load_or_create_staged_key(path, KeyType::ec_p256);
  ::umask(old_umask);
  ASSERT_TRUE(staged.ok()) << staged.error().message;
  EXPECT_TRUE(staged.value().created);
  EXPECT_EQ(file_mode(path), 0600u);
  EXPECT_EQ(qmt::pki::key_type_of(staged.value().key.get()).value(),
            KeyType::ec_p256);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()),
                          std::filesystem::directory_iterator()),
            1);
}

TEST(StagedKey, ReusedOnSecondCall) {
  TempDir dir;
  const std::string path = dir.path() + "/host-key.pem";
  auto first = qmt::pki::load_or_create_staged_key(path, KeyType::rsa3072);
  ASSERT_TRUE(first.ok()) << first.error().message;
  std::string content = qmt::util::read_file(path).value();
  auto second = qmt::pki::load_or_create_staged_key(path, KeyType::rsa3072);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_TRUE(first.value().created);
  EXPECT_FALSE(second.value().created);
  EXPECT_EQ(EVP_PKEY_eq(first.value().key.get(), second.value().key.get()), 1);
  EXPECT_EQ(qmt::util::read_file(path).value(), content);
}

TEST(StagedKey, RejectsOtherKeyType) {
  TempDir dir;
  const std::string path = dir.path() + "/host-key.pem";
  ASSERT_TRUE(qmt::pki::load_or_create_staged_key(path, KeyType::ec_p256).ok());
  auto staged = qmt::pki::load_or_create_staged_key(path, KeyType::rsa3072);
  ASSERT_FALSE(staged.ok());
  EXPECT_EQ(staged.error().message,
            "Staged key " + path +
                " is an EC P-256 key, but rsa3072 was requested: remove it to "
                "generate a new key");
}

TEST(StagedKey, RejectsReadableByOthers) {
  TempDir dir;
  const std::string path = dir.path() + "/host-key.pem";
  ASSERT_TRUE(qmt::pki::load_or_create_staged_key(path, KeyType::ec_p256).ok());
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  auto staged = qmt::pki::load_or_create_staged_key(path, KeyType::ec_p256);
  ASSERT_FALSE(staged.ok());
  EXPECT_EQ(staged.error().message,
            "Staged key " + path +
                " has mode 0644, but a private key must not be accessible to "
                "group or others: chmod it to 0600 or remove it");
}

TEST(StagedKey, RejectsSymbolicLink) {
  TempDir dir;
  const std::string target = dir.path() + "/real-key.pem";
  const std::string path = dir.path() + "/host-key.pem";
  ASSERT_TRUE(
      qmt::pki::load_or_create_staged_key(target, KeyType::ec_p256).ok());
  ASSERT_EQ(::symlink(target.c_str(), path.c_str()), 0);
  auto staged = qmt::pki::load_or_create_staged_key(path, KeyType::ec_p256);
  ASSERT_FALSE(staged.ok());
  EXPECT_EQ(staged.error().message, "Failed to read staged key " + path +
                                        ": Too many levels of symbolic links");
}

TEST(StagedKey, RejectsCorruptFile) {
  TempDir dir;
  const std::string path = dir.path() + "/host-key.pem";
  write_text(path, "not a key\n");
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  auto staged = qmt::pki::load_or_create_staged_key(path, KeyType::ec_p256);
  ASSERT_FALSE(staged.ok());
  EXPECT_EQ(staged.error().message.rfind(
                "Failed to parse private key " + path + ": ", 0),
            0u);
}

TEST(StagedKey, MissingFolderNamesPath) {
  auto staged = qmt::pki::load_or_create_staged_key(
      "/nonexistent-qmt/host-key.pem", KeyType::ec_p256);
  ASSERT_FALSE(staged.ok());
  EXPECT_EQ(staged.error().message.rfind(
                "Failed to create staged key /nonexistent-qmt/.host-key.pem."
                "tmp-",
                0),
            0u);
  EXPECT_NE(staged.error().message.find(": No such file or directory"),
            std::string::npos);
}

TEST(StagedKey, ConcurrentProcessesShareOneKey) {
  TempDir dir;
  const std::string path = dir.path() + "/host-key.pem";
  constexpr int k_children = 6;
  std::vector<pid_t> children;
  for (int i = 0; i < k_children; ++i) {
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      auto staged = qmt::pki::load_or_create_staged_key(path, KeyType::ec_p256);
      if (!staged.ok()) ::_exit(1);
      // Each child records the public half of the key it ended up with.
      qmt::pki::BioPtr bio(BIO_new(BIO_s_mem()), BIO_free_all);
      PEM_write_bio_PUBKEY(bio.get(), staged.value().key.get());
      char* data = nullptr;
      long size = BIO_get_mem_data(bio.get(), &data);
      write_text(dir.path() + "/public-" + std::to_string(i),
                 std::string(data, static_cast<std::size_t>(size)));
      ::_exit(staged.value().created ? 10 : 11);
    }
    children.push_back(child);
  }
  int created = 0;
  for (pid_t child : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_TRUE(WEXITSTATUS(status) == 10 || WEXITSTATUS(status) == 11);
    created += WEXITSTATUS(status) == 10 ? 1 : 0;
  }
  EXPECT_EQ(created, 1);
  const std::string first =
      qmt::util::read_file(dir.path() + "/public-0").value();
  for (int i = 1; i < k_children; ++i) {
    EXPECT_EQ(qmt::util::read_file(dir.path() + "/public-" + std::to_string(i))
                  .value(),
              first);
  }
  EXPECT_EQ(file_mode(path), 0600u);
}

}  // namespace
