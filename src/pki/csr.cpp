#include "pki/csr.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <filesystem>

#include "util/files.hpp"

namespace qmt::pki {

namespace {

using util::Error;
using util::Result;

using GeneralNamePtr =
    std::unique_ptr<GENERAL_NAME, decltype(&GENERAL_NAME_free)>;
using Asn1OctetStringPtr =
    std::unique_ptr<ASN1_OCTET_STRING, decltype(&ASN1_OCTET_STRING_free)>;
using X509NamePtr = std::unique_ptr<X509_NAME, decltype(&X509_NAME_free)>;

struct ExtensionStackFree {
  void operator()(STACK_OF(X509_EXTENSION) * stack) const {
    sk_X509_EXTENSION_pop_free(stack, X509_EXTENSION_free);
  }
};
using ExtensionStackPtr =
    std::unique_ptr<STACK_OF(X509_EXTENSION), ExtensionStackFree>;

constexpr std::size_t k_max_name_length = 253;
constexpr std::size_t k_max_label_length = 63;

BioPtr memory_bio() {
  return BioPtr(BIO_new(BIO_s_mem()), BIO_free_all);
}

BioPtr memory_bio_from(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())),
                BIO_free_all);
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return size > 0 ? std::string(data, static_cast<std::size_t>(size))
                  : std::string();
}

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return text;
}

std::string describe_character(char c) {
  if (std::isprint(static_cast<unsigned char>(c))) {
    return std::string("'") + c + "'";
  }
  char buffer[8];
  std::snprintf(buffer, sizeof(buffer), "0x%02x",
                static_cast<unsigned char>(c));
  return buffer;
}

// Returns the canonical text of an IP literal, or an empty string.
std::string canonical_ip(const std::string& name) {
  unsigned char address[sizeof(struct in6_addr)];
  char text[INET6_ADDRSTRLEN];
  if (::inet_pton(AF_INET, name.c_str(), address) == 1) {
    return ::inet_ntop(AF_INET, address, text, sizeof(text));
  }
  if (::inet_pton(AF_INET6, name.c_str(), address) == 1) {
    return ::inet_ntop(AF_INET6, address, text, sizeof(text));
  }
  return {};
}

Result<void> check_dns_name(const std::string& name) {
  if (name.empty()) return Error{"it is empty"};
  for (char c : name) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      return Error{"it contains whitespace"};
    }
  }
  if (name.find('*') != std::string::npos) {
    return Error{"wildcards are not allowed"};
  }
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') {
      return Error{"character " + describe_character(c) +
                   " is not allowed (use letters, digits, '-' and '.')"};
    }
  }

  if (name.size() > k_max_name_length) {
    return Error{"it is longer than " + std::to_string(k_max_name_length) +
                 " characters"};
  }
  if (name.front() == '.' || name.back() == '.') {
    return Error{"it starts or ends with '.'"};
  }

  std::string label;
  std::size_t start = 0;
  while (start <= name.size()) {
    std::size_t end = name.find('.', start);
    if (end == std::string::npos) end = name.size();
    label = name.substr(start, end - start);
    if (label.empty()) return Error{"it has an empty label"};
    if (label.size() > k_max_label_length) {
      return Error{"label \"" + label + "\" is longer than " +
                   std::to_string(k_max_label_length) + " characters"};
    }
    if (label.front() == '-' || label.back() == '-') {
      return Error{"label \"" + label + "\" starts or ends with '-'"};
    }
    start = end + 1;
  }

  // RFC 1123 section 2.1: a valid host name never has the dotted-decimal
  // form because its top-level label is alphabetic. "10.0.0.256" is a
  // mistyped address, not a host name.
  if (label.find_first_not_of("0123456789") == std::string::npos) {
    return Error{
        "it is neither an IP address nor a host name (the last label "
        "is numeric)"};
  }
  return {};
}

bool is_key_of(const EVP_PKEY* key, const char* name) {
  return EVP_PKEY_is_a(key, name) == 1;
}

std::string curve_name(const EVP_PKEY* key) {
  char group[80] = {};
  std::size_t length = 0;
  if (EVP_PKEY_get_group_name(key, group, sizeof(group), &length) != 1) {
    ERR_clear_error();
    return "unknown curve";
  }
  const char* nist = EC_curve_nid2nist(OBJ_sn2nid(group));
  return nist != nullptr ? nist : group;
}

Result<void> write_all(int fd, const std::string& content,
                       const std::string& path) {
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t written = ::write(fd, content.data() + done, content.size() - done);
    if (written < 0) {
      if (errno == EINTR) continue;
      return Error{"Failed to write " + path + ": " + util::errno_text(errno)};
    }
    done += static_cast<std::size_t>(written);
  }
  return {};
}

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> buffer(bytes);
  if (RAND_bytes(buffer.data(), static_cast<int>(buffer.size())) != 1) {
    // A fixed suffix still works: O_EXCL reports a collision as EEXIST.
    ERR_clear_error();
    return "tmp";
  }
  std::string text;
  char digits[3];
  for (unsigned char byte : buffer) {
    std::snprintf(digits, sizeof(digits), "%02x", byte);
    text += digits;
  }
  return text;
}

Result<StagedKey> load_staged_key(const std::string& path, KeyType type) {
  // O_NOFOLLOW: a link planted at the key's path must not redirect the read.
  util::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    return Error{"Failed to read staged key " + path + ": " +
                 util::errno_text(errno)};
  }
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) {
    return Error{"Failed to stat staged key " + path + ": " +
                 util::errno_text(errno)};
  }
  if (!S_ISREG(info.st_mode)) {
    return Error{"Staged key " + path + " is not a regular file"};
  }
  if ((info.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o",
                  static_cast<unsigned>(info.st_mode & 07777));
    return Error{"Staged key " + path + " has mode " + mode +
                 ", but a private key must not be accessible to group or "
                 "others: chmod it to 0600 or remove it"};
  }

  // The key is read from the descriptor just checked, not from a new open
  // that a rename in between could point at another file.
  std::string pem;
  char buffer[4096];
  for (;;) {
    ssize_t got = ::read(fd.get(), buffer, sizeof(buffer));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      return Error{"Failed to read staged key " + path + ": " +
                   util::errno_text(errno)};
    }
    if (got == 0) break;
    pem.append(buffer, static_cast<std::size_t>(got));
  }
  auto key = private_key_from_pem(pem, path);
  if (!key) return key.error();

  auto actual = key_type_of(key.value().get());
  if (!actual || actual.value() != type) {
    return Error{"Staged key " + path + " is an " +
                 describe_key(key.value().get()) + " key, but " +
                 to_string(type) +
                 " was requested: remove it to generate a new key"};
  }
  StagedKey staged;
  staged.key = std::move(key).value();
  staged.created = false;
  return staged;
}

}  // namespace

const char* to_string(KeyType type) {
  switch (type) {
    case KeyType::rsa3072:
      return "rsa3072";
    case KeyType::ec_p256:
      return "ec-p256";
  }
  return "unknown";
}

Result<KeyType> parse_key_type(const std::string& text) {
  if (text == "rsa3072" || text == "rsa") return KeyType::rsa3072;
  if (text == "ec-p256" || text == "ec") return KeyType::ec_p256;
  return Error{"Invalid key type \"" + text +
               "\": expected rsa3072, ec-p256, rsa or ec"};
}

std::string describe_key(const EVP_PKEY* key) {
  if (key == nullptr) return "missing key";
  if (is_key_of(key, "RSA")) {
    return "RSA " + std::to_string(EVP_PKEY_get_bits(key));
  }
  if (is_key_of(key, "EC")) return "EC " + curve_name(key);
  const char* name = EVP_PKEY_get0_type_name(key);
  return std::string(name != nullptr ? name : "unknown") + " " +
         std::to_string(EVP_PKEY_get_bits(key));
}

Result<KeyType> key_type_of(const EVP_PKEY* key) {
  if (key != nullptr && is_key_of(key, "RSA") &&
      EVP_PKEY_get_bits(key) == 3072) {
    return KeyType::rsa3072;
  }
  if (key != nullptr && is_key_of(key, "EC") && curve_name(key) == "P-256") {
    return KeyType::ec_p256;
  }
  return Error{"Unsupported key " + describe_key(key) +
               ": expected RSA 3072 or EC P-256"};
}

Result<EvpPkeyPtr> generate_key(KeyType type) {
  ERR_clear_error();
  EVP_PKEY* raw = nullptr;
  switch (type) {
    case KeyType::rsa3072:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{3072});
      break;
    case KeyType::ec_p256:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
      break;
  }
  EvpPkeyPtr key(raw, EVP_PKEY_free);
  if (!key) {
    return Error{std::string("Failed to generate ") + to_string(type) +
                 " key: " + openssl_error_text()};
  }
  return key;
}

Result<std::string> private_key_to_pem(const EVP_PKEY* key) {
  ERR_clear_error();
  BioPtr bio = memory_bio();
  if (!bio || PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0,
                                            nullptr, nullptr) != 1) {
    return Error{"Failed to encode private key: " + openssl_error_text()};
  }
  return bio_text(bio.get());
}

Result<EvpPkeyPtr> private_key_from_pem(const std::string& pem,
                                        const std::string& source) {
  if (pem.find("ENCRYPTED") != std::string::npos) {
    return Error{"Private key " + source +
                 " is encrypted; only unencrypted keys are supported"};
  }
  ERR_clear_error();
  BioPtr bio = memory_bio_from(pem);
  // The callback returns no password, so OpenSSL never prompts on a terminal.
  pem_password_cb* no_password = [](char*, int, int, void*) { return 0; };
  EvpPkeyPtr key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr),
      EVP_PKEY_free);
  if (!key) {
    return Error{"Failed to parse private key " + source + ": " +
                 openssl_error_text()};
  }
  return key;
}

bool is_ip_literal(const std::string& name) {
  return !canonical_ip(name).empty();
}

Result<void> validate_certificate_name(const std::string& name,
                                       const std::string& name_kind) {
  if (is_ip_literal(name)) return {};
  auto checked = check_dns_name(name);
  if (!checked) {
    return Error{"Invalid " + name_kind + " \"" + name +
                 "\": " + checked.error().message};
  }
  return {};
}

Result<std::vector<std::string>> certificate_names(
    const std::string& hostname, const std::vector<std::string>& extra_names) {
  std::vector<std::string> names;
  std::vector<std::string> seen;
  auto add = [&](const std::string& name,
                 const std::string& name_kind) -> Result<void> {
    if (auto valid = validate_certificate_name(name, name_kind); !valid) {
      return valid.error();
    }
    std::string ip = canonical_ip(name);
    std::string entry = ip.empty() ? name : ip;
    std::string key = lowercase(entry);
    if (std::find(seen.begin(), seen.end(), key) == seen.end()) {
      seen.push_back(key);
      names.push_back(entry);
    }
    return {};
  };
  if (auto added = add(hostname, "host name"); !added) return added.error();
  if (hostname.size() > k_max_common_name_length) {
    return Error{"Invalid host name \"" + hostname + "\": it is longer than " +
                 std::to_string(k_max_common_name_length) +
                 " characters, the maximum for a certificate's CN"};
  }
  for (const auto& extra : extra_names) {
    if (auto added = add(extra, "subject alternative name"); !added) {
      return added.error();
    }
  }
  return names;
}

Result<GeneralNamesPtr> make_general_names(
    const std::vector<std::string>& names) {
  ERR_clear_error();
  GeneralNamesPtr list(sk_GENERAL_NAME_new_null(), GENERAL_NAMES_free);
  if (!list) return Error{"Failed to allocate names: " + openssl_error_text()};
  for (const auto& name : names) {
    GeneralNamePtr entry(GENERAL_NAME_new(), GENERAL_NAME_free);
    if (!entry) {
      return Error{"Failed to allocate name: " + openssl_error_text()};
    }
    if (is_ip_literal(name)) {
      Asn1OctetStringPtr address(a2i_IPADDRESS(name.c_str()),
                                 ASN1_OCTET_STRING_free);
      if (!address) {
        return Error{"Failed to encode IP address " + name + ": " +
                     openssl_error_text()};
      }
      GENERAL_NAME_set0_value(entry.get(), GEN_IPADD, address.release());
    } else {
      Asn1OctetStringPtr text(ASN1_IA5STRING_new(), ASN1_OCTET_STRING_free);
      if (!text || ASN1_STRING_set(text.get(), name.data(),
                                   static_cast<int>(name.size())) != 1) {
        return Error{"Failed to encode DNS name " + name + ": " +
                     openssl_error_text()};
      }
      GENERAL_NAME_set0_value(entry.get(), GEN_DNS, text.release());
    }
    if (sk_GENERAL_NAME_push(list.get(), entry.get()) <= 0) {
      return Error{"Failed to add name " + name + ": " + openssl_error_text()};
    }
    entry.release();
  }
  return list;
}

Result<std::string> make_csr(const EVP_PKEY* key, const std::string& hostname,
                             const std::vector<std::string>& extra_names) {
  auto names = certificate_names(hostname, extra_names);
  if (!names) return names.error();
  auto general_names = make_general_names(names.value());
  if (!general_names) return general_names.error();

  ERR_clear_error();
  auto failed = [&](const std::string& step) -> Result<std::string> {
    return Error{"Failed to make CSR for " + hostname + ": " + step + ": " +
                 openssl_error_text()};
  };
  // OpenSSL 3.0's X509_REQ setters take a non-const key but only add a
  // reference to it.
  EVP_PKEY* mutable_key = const_cast<EVP_PKEY*>(key);
  X509ReqPtr request(X509_REQ_new(), X509_REQ_free);
  if (!request) return failed("allocating the request");
  if (X509_REQ_set_version(request.get(), X509_REQ_VERSION_1) != 1) {
    return failed("setting the version");
  }
  X509NamePtr subject(X509_NAME_new(), X509_NAME_free);
  const std::string& common_name = names.value().front();
  if (!subject ||
      X509_NAME_add_entry_by_txt(
          subject.get(), "CN", MBSTRING_UTF8,
          reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
          0) != 1 ||
      X509_REQ_set_subject_name(request.get(), subject.get()) != 1) {
    return failed("setting the subject CN=" + common_name);
  }
  if (X509_REQ_set_pubkey(request.get(), mutable_key) != 1) {
    return failed("setting the public key");
  }
  ExtensionStackPtr extensions(sk_X509_EXTENSION_new_null());
  STACK_OF(X509_EXTENSION)* stack = extensions.get();
  if (!extensions ||
      X509V3_add1_i2d(&stack, NID_subject_alt_name, general_names.value().get(),
                      0, X509V3_ADD_DEFAULT) != 1 ||
      X509_REQ_add_extensions(request.get(), extensions.get()) != 1) {
    return failed("adding the subjectAltName request");
  }
  if (X509_REQ_sign(request.get(), mutable_key, EVP_sha256()) <= 0) {
    return failed("signing");
  }
  BioPtr bio = memory_bio();
  if (!bio || PEM_write_bio_X509_REQ(bio.get(), request.get()) != 1) {
    return failed("encoding");
  }
  return bio_text(bio.get());
}

Result<X509ReqPtr> csr_from_pem(const std::string& pem,
                                const std::string& hostname) {
  ERR_clear_error();
  BioPtr bio = memory_bio_from(pem);
  X509ReqPtr request(
      PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr),
      X509_REQ_free);
  if (!request) {
    return Error{std::string("Invalid CSR") +
                 (hostname.empty() ? "" : " for " + hostname) +
                 ": not a PEM certificate request (" + openssl_error_text() +
                 ")"};
  }
  return request;
}

Result<StagedKey> load_or_create_staged_key(const std::string& path,
                                            KeyType type) {
  auto existing = util::stat_path(path);
  if (!existing) return existing.error();
  struct stat link_info {};
  bool present =
      existing.value().has_value() || ::lstat(path.c_str(), &link_info) == 0;
  if (present) return load_staged_key(path, type);

  auto key = generate_key(type);
  if (!key) return key.error();
  auto pem = private_key_to_pem(key.value().get());
  if (!pem) return pem.error();

  // The key is written under a temporary name and given its final name with
  // link(2), which fails with EEXIST instead of replacing a file. Concurrent
  // callers therefore never see a partly written key, and the first one wins.
  std::filesystem::path final_path(path);
  std::string folder = final_path.parent_path().string();
  if (folder.empty()) folder = ".";
  std::string temporary =
      folder + "/." + final_path.filename().string() + ".tmp-" + random_hex(8);
  // The mode argument never grants more than 0600, so no umask can widen it;
  // fchmod then sets exactly 0600 whatever the umask removed. The umask
  // itself stays untouched because it is shared by every thread.
  util::UniqueFd fd(::open(temporary.c_str(),
                           O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                           0600));
  if (!fd.valid()) {
    return Error{"Failed to create staged key " + temporary + ": " +
                 util::errno_text(errno)};
  }
  auto remove_temporary = [&](const Error& error) -> Result<StagedKey> {
    ::unlink(temporary.c_str());
    return error;
  };
  if (::fchmod(fd.get(), 0600) != 0) {
    return remove_temporary(Error{"Failed to set mode of " + temporary + ": " +
                                  util::errno_text(errno)});
  }
  if (auto written = write_all(fd.get(), pem.value(), temporary); !written) {
    return remove_temporary(written.error());
  }
  if (::fsync(fd.get()) != 0) {
    return remove_temporary(
        Error{"Failed to sync " + temporary + ": " + util::errno_text(errno)});
  }
  fd.reset();
  if (::link(temporary.c_str(), path.c_str()) != 0) {
    int error_number = errno;
    ::unlink(temporary.c_str());
    if (error_number == EEXIST) return load_staged_key(path, type);
    return Error{"Failed to create staged key " + path + ": " +
                 util::errno_text(error_number)};
  }
  ::unlink(temporary.c_str());
  if (auto synced = util::sync_directory(folder); !synced) {
    return synced.error();
  }
  StagedKey staged;
  staged.key = std::move(key).value();
  staged.created = true;
  return staged;
}

}  // namespace qmt::pki
