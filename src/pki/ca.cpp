#include "pki/ca.hpp"

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <ctime>
#include <filesystem>

#include "pki/index.hpp"
#include "util/files.hpp"

namespace qmt::pki {

namespace {

using util::Error;
using util::Result;

using X509NamePtr = std::unique_ptr<X509_NAME, decltype(&X509_NAME_free)>;

struct OpensslFree {
  void operator()(char* text) const { OPENSSL_free(text); }
};
using OpensslStringPtr = std::unique_ptr<char, OpensslFree>;

constexpr std::int64_t k_seconds_per_day = 86400;
constexpr int k_serial_bytes = 16;
constexpr int k_min_rsa_bits = 2048;
constexpr int k_max_rsa_bits = 16384;

// A CA read from disk. `state.exists` is false when neither file exists.
struct LoadedCa {
  CaState state;
  X509Ptr certificate{nullptr, X509_free};
  EvpPkeyPtr key{nullptr, EVP_PKEY_free};
};

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return size > 0 ? std::string(data, static_cast<std::size_t>(size))
                  : std::string();
}

std::string name_text(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()), BIO_free_all);
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) {
    ERR_clear_error();
    return "";
  }
  return bio_text(bio.get());
}

std::int64_t asn1_time_seconds(const ASN1_TIME* time) {
  std::tm utc{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &utc) != 1) {
    ERR_clear_error();
    return 0;
  }
  return ::timegm(&utc);
}

std::int64_t current_time(std::int64_t now) {
  return now != 0 ? now : static_cast<std::int64_t>(std::time(nullptr));
}

std::string days_range_text() {
  return "a whole number of days from 1 to " +
         std::to_string(k_max_validity_days);
}

bool valid_days(int days) {
  return days >= 1 && days <= k_max_validity_days;
}

// Splits "/O=a\/b/CN=c" into {"O=a/b", "CN=c"}.
std::vector<std::string> subject_components(const std::string& text) {
  std::vector<std::string> components(1);
  for (std::size_t i = 1; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size()) {
      components.back() += text[++i];
    } else if (text[i] == '/') {
      components.emplace_back();
    } else {
      components.back() += text[i];
    }
  }
  return components;
}

Result<X509NamePtr> parse_subject(const std::string& text) {
  auto invalid = [&](const std::string& problem) {
    return Error{"Invalid subject \"" + text + "\": " + problem};
  };
  if (text.empty() || text.front() != '/') {
    return invalid(
        "it must start with '/', for example /O=Example/CN=QEMU Migration CA");
  }
  X509NamePtr name(X509_NAME_new(), X509_NAME_free);
  if (!name) return Error{"Failed to allocate a name: " + openssl_error_text()};
  for (const auto& component : subject_components(text)) {
    if (component.empty()) return invalid("it has an empty attribute");
    std::size_t equals = component.find('=');
    if (equals == std::string::npos) {
      return invalid("attribute \"" + component + "\" has no '='");
    }
    std::string field = component.substr(0, equals);
    std::string value = component.substr(equals + 1);
    if (OBJ_txt2nid(field.c_str()) == NID_undef) {
      ERR_clear_error();
      return invalid("unknown attribute \"" + field + "\"");
    }
    if (value.empty()) {
      return invalid("attribute " + field + " has an empty value");
    }
    ERR_clear_error();
    if (X509_NAME_add_entry_by_txt(
            name.get(), field.c_str(), MBSTRING_UTF8,
            reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
            0) != 1) {
      return invalid("attribute " + field +
                     " is rejected by OpenSSL: " + openssl_error_text());
    }
  }
  return name;
}

Result<Asn1IntegerPtr> random_serial() {
  unsigned char bytes[k_serial_bytes];
  bool zero = true;
  while (zero) {
    if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
      return Error{"Failed to generate a serial number: " +
                   openssl_error_text()};
    }
    // A cleared top bit keeps the DER INTEGER positive within 16 octets.
    bytes[0] &= 0x7f;
    zero = std::all_of(std::begin(bytes), std::end(bytes),
                       [](unsigned char byte) { return byte == 0; });
  }
  BignumPtr number(BN_bin2bn(bytes, sizeof(bytes), nullptr), BN_free);
  Asn1IntegerPtr serial(
      number ? BN_to_ASN1_INTEGER(number.get(), nullptr) : nullptr,
      ASN1_INTEGER_free);
  if (!serial) {
    return Error{"Failed to encode a serial number: " + openssl_error_text()};
  }
  return serial;
}

// Sets the fields every certificate issued here shares.
Result<void> set_common_fields(X509* certificate, const X509_NAME* issuer,
                               const X509_NAME* subject, EVP_PKEY* key,
                               std::int64_t not_before,
                               std::int64_t not_after) {
  auto serial = random_serial();
  if (!serial) return serial.error();
  if (X509_set_version(certificate, X509_VERSION_3) != 1 ||
      X509_set_serialNumber(certificate, serial.value().get()) != 1 ||
      X509_set_issuer_name(certificate, issuer) != 1 ||
      X509_set_subject_name(certificate, subject) != 1 ||
      X509_set_pubkey(certificate, key) != 1 ||
      ASN1_TIME_set(X509_getm_notBefore(certificate),
                    static_cast<time_t>(not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(certificate),
                    static_cast<time_t>(not_after)) == nullptr) {
    return Error{"Failed to fill in the certificate: " + openssl_error_text()};
  }
  return {};
}

Result<void> add_extension(X509* certificate, X509V3_CTX* context, int nid,
                           const std::string& value) {
  X509ExtensionPtr extension(
      X509V3_EXT_nconf_nid(nullptr, context, nid, value.c_str()),
      X509_EXTENSION_free);
  if (!extension || X509_add_ext(certificate, extension.get(), -1) != 1) {
    return Error{std::string("Failed to add extension ") + OBJ_nid2sn(nid) +
                 " " + value + ": " + openssl_error_text()};
  }
  return {};
}

Result<void> add_extensions(
    X509* certificate, X509V3_CTX* context,
    const std::vector<std::pair<int, std::string>>& extensions) {
  for (const auto& [nid, value] : extensions) {
    if (auto added = add_extension(certificate, context, nid, value); !added) {
      return added.error();
    }
  }
  return {};
}

// Ed25519 and Ed448 sign without a separate digest, so X509_sign gets NULL.
const EVP_MD* digest_for(const EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "ED25519") == 1 || EVP_PKEY_is_a(key, "ED448") == 1) {
    return nullptr;
  }
  return EVP_sha256();
}

Result<void> sign_certificate(X509* certificate, EVP_PKEY* key) {
  if (X509_sign(certificate, key, digest_for(key)) <= 0) {
    return Error{"Failed to sign the certificate: " + openssl_error_text()};
  }
  return {};
}

Result<std::string> certificate_to_pem(X509* certificate) {
  BioPtr bio(BIO_new(BIO_s_mem()), BIO_free_all);
  if (!bio || PEM_write_bio_X509(bio.get(), certificate) != 1) {
    return Error{"Failed to encode the certificate: " + openssl_error_text()};
  }
  return bio_text(bio.get());
}

Result<LoadedCa> load_ca(const CaSettings& settings) {
  const std::string folder = util::normalize_path(settings.ca_dir);
  const std::string key_path = ca_key_path(settings);
  const std::string certificate_path = ca_certificate_path(settings);
  auto key_present = util::stat_path(key_path);
  if (!key_present) return key_present.error();
  auto certificate_present = util::stat_path(certificate_path);
  if (!certificate_present) return certificate_present.error();

  LoadedCa loaded;
  if (!key_present.value() && !certificate_present.value()) return loaded;
  if (!certificate_present.value()) {
    return Error{"Incomplete CA in " + folder + ": " + certificate_path +
                 " is missing but " + key_path + " exists"};
  }
  if (!key_present.value()) {
    return Error{"Incomplete CA in " + folder + ": " + key_path +
                 " is missing but " + certificate_path + " exists"};
  }

  auto certificate_pem = util::read_file(certificate_path);
  if (!certificate_pem) return certificate_pem.error();
  ERR_clear_error();
  BioPtr bio(BIO_new_mem_buf(certificate_pem.value().data(),
                             static_cast<int>(certificate_pem.value().size())),
             BIO_free_all);
  loaded.certificate.reset(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!loaded.certificate) {
    return Error{"Failed to parse CA certificate " + certificate_path + ": " +
                 openssl_error_text()};
  }
  // QEMU rejects a CA certificate without basicConstraints CA:TRUE, and
  // X509_check_ca returns 1 only for that case.
  if (X509_check_ca(loaded.certificate.get()) != 1) {
    return Error{"CA certificate " + certificate_path +
                 " is not a CA certificate: basicConstraints CA:TRUE is "
                 "missing"};
  }
  auto key_pem = util::read_file(key_path);
  if (!key_pem) return key_pem.error();
  auto key = private_key_from_pem(key_pem.value(), key_path);
  if (!key) return key.error();
  loaded.key = std::move(key).value();
  if (EVP_PKEY_eq(X509_get0_pubkey(loaded.certificate.get()),
                  loaded.key.get()) != 1) {
    ERR_clear_error();
    return Error{"CA key " + key_path + " does not match CA certificate " +
                 certificate_path};
  }

  const X509* certificate = loaded.certificate.get();
  loaded.state.exists = true;
  loaded.state.certificate_pem = certificate_pem.value();
  loaded.state.subject = name_text(X509_get_subject_name(certificate));
  loaded.state.serial_hex = serial_hex(certificate);
  loaded.state.not_before = asn1_time_seconds(X509_get0_notBefore(certificate));
  loaded.state.not_after = asn1_time_seconds(X509_get0_notAfter(certificate));
  loaded.state.key_description = describe_key(loaded.key.get());
  return loaded;
}

Result<void> validate_settings(const CaSettings& settings) {
  if (settings.ca_dir.empty()) return Error{"The CA folder is not set"};
  if (!valid_days(settings.validity_days)) {
    return Error{"Invalid CA validity of " +
                 std::to_string(settings.validity_days) + " days: expected " +
                 days_range_text()};
  }
  if (!valid_days(settings.cert_validity_days)) {
    return Error{"Invalid certificate validity of " +
                 std::to_string(settings.cert_validity_days) +
                 " days: expected " + days_range_text()};
  }
  return validate_subject(settings.subject);
}

// Makes `path` and its missing parents with mode 0700.
Result<void> make_folders(const std::string& path) {
  std::filesystem::path partial;
  for (const auto& component : std::filesystem::path(path)) {
    partial /= component;
    if (::mkdir(partial.c_str(), 0700) == 0 || errno == EEXIST) continue;
    return Error{"Failed to create folder " + partial.string() + ": " +
                 util::errno_text(errno)};
  }
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
    return Error{"Failed to create folder " + path +
                 ": a file that is not a folder is in the way"};
  }
  return {};
}

Result<void> create_ca(const CaSettings& settings) {
  auto subject = parse_subject(settings.subject);
  if (!subject) return subject.error();
  auto key = generate_key(settings.key_type);
  if (!key) return key.error();

  ERR_clear_error();
  X509Ptr certificate(X509_new(), X509_free);
  if (!certificate) {
    return Error{"Failed to allocate a certificate: " + openssl_error_text()};
  }
  std::int64_t now = current_time(0);
  auto filled = set_common_fields(
      certificate.get(), subject.value().get(), subject.value().get(),
      key.value().get(), now - k_clock_skew_seconds,
      now + settings.validity_days * k_seconds_per_day);
  if (!filled) return filled.error();

  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, certificate.get(), certificate.get(), nullptr,
                 nullptr, 0);
  // The subject key identifier goes first: the authority key identifier of a
  // self-signed certificate copies it.
  auto extended =
      add_extensions(certificate.get(), &context,
                     {{NID_basic_constraints, "critical,CA:TRUE"},
                      {NID_key_usage, "critical,keyCertSign,cRLSign"},
                      {NID_subject_key_identifier, "hash"},
                      {NID_authority_key_identifier, "keyid:always"}});
  if (!extended) return extended.error();
  if (auto signed_ok = sign_certificate(certificate.get(), key.value().get());
      !signed_ok) {
    return signed_ok.error();
  }

  auto key_pem = private_key_to_pem(key.value().get());
  if (!key_pem) return key_pem.error();
  auto certificate_pem = certificate_to_pem(certificate.get());
  if (!certificate_pem) return certificate_pem.error();

  const std::string key_path = ca_key_path(settings);
  util::WriteOptions key_options;
  key_options.mode = {::getuid(), ::getgid(), 0600};
  if (auto written =
          util::atomic_write_file(key_path, key_pem.value(), key_options);
      !written) {
    return written.error();
  }
  util::WriteOptions certificate_options;
  certificate_options.mode = {::getuid(), ::getgid(), 0644};
  if (auto written =
          util::atomic_write_file(ca_certificate_path(settings),
                                  certificate_pem.value(), certificate_options);
      !written) {
    // A key without its certificate would make every later run fail as an
    // incomplete CA. Nothing was issued with this key, so it is removed.
    ::unlink(key_path.c_str());
    return written.error();
  }
  return {};
}

Result<bool> is_rsa_host_key(const EVP_PKEY* key, const std::string& hostname) {
  std::string description = describe_key(key);
  if (EVP_PKEY_is_a(key, "RSA") == 1) {
    int bits = EVP_PKEY_get_bits(key);
    if (bits >= k_min_rsa_bits && bits <= k_max_rsa_bits) return true;
  } else if (EVP_PKEY_is_a(key, "EC") == 1) {
    if (description == "EC P-256" || description == "EC P-384" ||
        description == "EC P-521") {
      return false;
    }
  }
  return Error{"Unsupported key in CSR for " + hostname + ": " + description +
               " (expected RSA of " + std::to_string(k_min_rsa_bits) + " to " +
               std::to_string(k_max_rsa_bits) +
               " bits or EC P-256, P-384 or P-521)"};
}

// Checks the CSR and returns its public key, owned by `request`.
Result<EVP_PKEY*> checked_public_key(X509_REQ* request, const LoadedCa& ca,
                                     const std::string& hostname) {
  EVP_PKEY* key = X509_REQ_get0_pubkey(request);
  if (key == nullptr) {
    return Error{"Invalid CSR for " + hostname +
                 ": its public key cannot be decoded (" + openssl_error_text() +
                 ")"};
  }
  if (X509_REQ_verify(request, key) != 1) {
    ERR_clear_error();
    return Error{"Invalid CSR for " + hostname +
                 ": its signature does not verify with its public key"};
  }
  if (EVP_PKEY_eq(key, ca.key.get()) == 1) {
    return Error{"Invalid CSR for " + hostname +
                 ": it carries the CA's own key, which is never certified "
                 "for a host"};
  }
  ERR_clear_error();
  return key;
}

Result<X509Ptr> issue_certificate(const LoadedCa& ca, EVP_PKEY* host_key,
                                  bool rsa_key,
                                  const std::vector<std::string>& names,
                                  const SignRequest& request,
                                  std::int64_t not_before,
                                  std::int64_t not_after) {
  ERR_clear_error();
  X509NamePtr subject(X509_NAME_new(), X509_NAME_free);
  const std::string& common_name = names.front();
  if (!subject ||
      X509_NAME_add_entry_by_txt(
          subject.get(), "CN", MBSTRING_UTF8,
          reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
          0) != 1) {
    return Error{"Failed to set subject CN=" + common_name + ": " +
                 openssl_error_text()};
  }
  X509Ptr certificate(X509_new(), X509_free);
  if (!certificate) {
    return Error{"Failed to allocate a certificate: " + openssl_error_text()};
  }
  auto filled = set_common_fields(
      certificate.get(), X509_get_subject_name(ca.certificate.get()),
      subject.get(), host_key, not_before, not_after);
  if (!filled) return filled.error();

  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, ca.certificate.get(), certificate.get(), nullptr,
                 nullptr, 0);
  // keyEncipherment is meaningful only for RSA key transport; RFC 8813
  // forbids it for EC keys.
  std::string key_usage = "critical,digitalSignature";
  if (rsa_key || request.ec_key_encipherment) key_usage += ",keyEncipherment";
  auto extended =
      add_extensions(certificate.get(), &context,
                     {{NID_basic_constraints, "critical,CA:FALSE"},
                      {NID_key_usage, key_usage},
                      {NID_ext_key_usage, "serverAuth,clientAuth"}});
  if (!extended) return extended.error();
  auto general_names = make_general_names(names);
  if (!general_names) return general_names.error();
  if (X509_add1_ext_i2d(certificate.get(), NID_subject_alt_name,
                        general_names.value().get(), 0,
                        X509V3_ADD_DEFAULT) != 1) {
    return Error{"Failed to add extension subjectAltName: " +
                 openssl_error_text()};
  }
  extended = add_extensions(certificate.get(), &context,
                            {{NID_subject_key_identifier, "hash"},
                             {NID_authority_key_identifier, "keyid:always"}});
  if (!extended) return extended.error();
  if (auto signed_ok = sign_certificate(certificate.get(), ca.key.get());
      !signed_ok) {
    return signed_ok.error();
  }
  return certificate;
}

}  // namespace

std::string ca_key_path(const CaSettings& settings) {
  return util::normalize_path(settings.ca_dir) + "/ca-key.pem";
}

std::string ca_certificate_path(const CaSettings& settings) {
  return util::normalize_path(settings.ca_dir) + "/ca-cert.pem";
}

std::string ca_index_path(const CaSettings& settings) {
  if (!settings.index_path.empty()) return settings.index_path;
  return util::normalize_path(settings.ca_dir) + "/index.yml";
}

std::string ca_lock_path(const CaSettings& settings) {
  return util::normalize_path(settings.ca_dir) + "/.lock";
}

Result<void> validate_subject(const std::string& subject) {
  auto name = parse_subject(subject);
  if (!name) return name.error();
  return {};
}

std::string serial_hex(const X509* certificate) {
  BignumPtr number(
      ASN1_INTEGER_to_BN(X509_get0_serialNumber(certificate), nullptr),
      BN_free);
  OpensslStringPtr hex(number ? BN_bn2hex(number.get()) : nullptr);
  if (!hex) {
    ERR_clear_error();
    return "";
  }
  std::string text = hex.get();
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return text;
}

Result<CaState> inspect_ca(const CaSettings& settings) {
  if (settings.ca_dir.empty()) return Error{"The CA folder is not set"};
  // The shared lock waits for a concurrent ensure_ca, which writes the key
  // and the certificate one after the other under the exclusive lock.
  auto lock = lock_file(ca_lock_path(settings), false);
  if (!lock) return lock.error();
  auto loaded = load_ca(settings);
  if (!loaded && !lock.value().valid()) {
    // No lock file existed, so the CA was not being created when this call
    // began; one that appeared since may have been caught half written.
    lock = lock_file(ca_lock_path(settings), false);
    if (!lock) return lock.error();
    if (lock.value().valid()) loaded = load_ca(settings);
  }
  if (!loaded) return loaded.error();
  return std::move(loaded.value().state);
}

Result<bool> ensure_ca(const CaSettings& settings, bool check_mode) {
  if (auto valid = validate_settings(settings); !valid) return valid.error();
  auto state = inspect_ca(settings);
  if (!state) return state.error();
  if (state.value().exists) return false;
  if (check_mode) return true;

  const std::string folder = util::normalize_path(settings.ca_dir);
  if (auto made = make_folders(folder); !made) return made.error();
  auto lock = lock_file(ca_lock_path(settings), true);
  if (!lock) return lock.error();
  // Another process may have created the CA while this one waited.
  auto loaded = load_ca(settings);
  if (!loaded) return loaded.error();
  if (loaded.value().state.exists) return false;
  if (auto created = create_ca(settings); !created) return created.error();
  return true;
}

Result<SignedCertificate> sign_csr(const CaSettings& settings,
                                   const SignRequest& request) {
  if (settings.ca_dir.empty()) return Error{"The CA folder is not set"};
  if (!valid_days(request.validity_days)) {
    return Error{"Invalid certificate validity of " +
                 std::to_string(request.validity_days) + " days for " +
                 request.hostname + ": expected " + days_range_text()};
  }
  auto names = certificate_names(request.hostname, request.extra_names);
  if (!names) return names.error();
  auto csr = csr_from_pem(request.csr_pem, request.hostname);
  if (!csr) return csr.error();

  const std::string folder = util::normalize_path(settings.ca_dir);
  auto folder_present = util::stat_path(folder);
  if (!folder_present) return folder_present.error();
  if (!folder_present.value()) {
    return Error{"No CA exists in " + folder + ": create it first"};
  }
  auto lock = lock_file(ca_lock_path(settings), true);
  if (!lock) return lock.error();
  auto ca = load_ca(settings);
  if (!ca) return ca.error();
  if (!ca.value().state.exists) {
    return Error{"No CA exists in " + folder + ": create it first"};
  }
  auto host_key =
      checked_public_key(csr.value().get(), ca.value(), request.hostname);
  if (!host_key) return host_key.error();
  auto rsa_key = is_rsa_host_key(host_key.value(), request.hostname);
  if (!rsa_key) return rsa_key.error();

  const std::int64_t now = current_time(request.now);
  const std::int64_t ca_not_after = ca.value().state.not_after;
  if (ca_not_after <= now) {
    return Error{"CA certificate " + ca_certificate_path(settings) +
                 " expired at " + format_utc_time(ca_not_after) +
                 ": move the CA folder away and create a new CA"};
  }
  SignedCertificate result;
  result.names = names.value();
  result.not_before = now - k_clock_skew_seconds;
  result.not_after = now + request.validity_days * k_seconds_per_day;
  if (result.not_after > ca_not_after) {
    // Clipping keeps the certificate usable until the CA itself expires;
    // verifiers reject a chain once the CA has expired in any case.
    result.not_after = ca_not_after;
    result.not_after_clipped = true;
  }

  // An unreadable index fails the request before a certificate exists, so
  // that nothing is issued without a record.
  const std::string index_path = ca_index_path(settings);
  if (auto index = read_index(index_path); !index) return index.error();

  auto certificate = issue_certificate(ca.value(), host_key.value(),
                                       rsa_key.value(), names.value(), request,
                                       result.not_before, result.not_after);
  if (!certificate) return certificate.error();
  auto pem = certificate_to_pem(certificate.value().get());
  if (!pem) return pem.error();
  result.certificate_pem = pem.value();
  result.ca_certificate_pem = ca.value().state.certificate_pem;
  result.serial_hex = serial_hex(certificate.value().get());

  IndexEntry entry;
  entry.serial_hex = result.serial_hex;
  entry.subject = name_text(X509_get_subject_name(certificate.value().get()));
  entry.names = result.names;
  entry.not_before = result.not_before;
  entry.not_after = result.not_after;
  entry.issued_at = format_utc_time(now);
  if (auto appended = append_index(index_path, entry); !appended) {
    return appended.error();
  }
  return result;
}

}  // namespace qmt::pki
