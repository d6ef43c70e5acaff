#include "ops/info_operation.hpp"

#include <ctime>

#include "ops/host.hpp"
#include "ops/pem_input.hpp"
#include "ops/readiness.hpp"
#include "pki/certificate.hpp"
#include "pki/checks.hpp"
#include "pki/separation.hpp"

namespace qmt::ops {

namespace {

using nlohmann::json;
using util::Check;
using util::CheckStatus;

// More CA certificates than this in ca-cert.pem looks like a copy of a
// trust bundle: two are normal while the CA is being rotated.
constexpr std::size_t k_max_ca_certificates = 3;

void check_settings(const MigrationSettings& settings, const std::string& file,
                    util::Checks& checks) {
  if (settings.cert_dir) {
    checks.push_back({"qemu.conf.cert_dir", CheckStatus::ok, file,
                      std::string(k_cert_dir_key) + " is " + *settings.cert_dir});
  } else {
    checks.push_back(
        {"qemu.conf.cert_dir", CheckStatus::failed, file,
         std::string(k_cert_dir_key) +
             " is not set, so migrations would use default_tls_x509_cert_dir, "
             "whose CA is shared with other TLS uses; this host is not "
             "enrolled for migration TLS"});
  }
  if (settings.verify.value_or(true)) {
    checks.push_back({"qemu.conf.verify", CheckStatus::ok, file,
                      std::string(k_verify_key) + " is " +
                          (settings.verify ? "1" : "unset (libvirt's default "
                                                   "is 1)") +
                          ": the destination verifies the source's client "
                          "certificate"});
  } else {
    checks.push_back({"qemu.conf.verify", CheckStatus::warning, file,
                      std::string(k_verify_key) +
                          " is 0: the destination accepts any client, so a "
                          "host without a certificate can send a migration"});
  }
  checks.push_back(
      {"qemu.conf.force", CheckStatus::ok, file,
       std::string(k_force_key) + " is " +
           (settings.force ? (*settings.force ? "1: every migration uses TLS"
                                              : "0: TLS only when requested")
                           : "unset: TLS only when requested")});
}

void check_separation(const Params& params, const HostPaths& paths,
                      const pki::CertificateSet& set, util::Checks& checks) {
  const std::string option = params["libvirt_ca_cert"].get<std::string>();
  const std::string file = paths.resolve(option);
  auto libvirt_ca = util::read_file(file);
  if (!libvirt_ca) {
    checks.push_back({"separation.libvirt_ca", CheckStatus::ok, file,
                      "No libvirt CA at " + file + " to compare with"});
    return;
  }
  auto verdict = pki::check_separation(set, {file, libvirt_ca.value()});
  checks.insert(checks.end(), verdict.begin(), verdict.end());
}

void check_trust_bundle(const pki::CertificateSet& set, util::Checks& checks) {
  auto certificates = pki::parse_certificates(set.ca_cert.pem,
                                              set.ca_cert.label);
  if (!certificates) return;
  const std::size_t count = certificates->size();
  if (count > k_max_ca_certificates) {
    checks.push_back(
        {"ca-cert.count", CheckStatus::failed, set.ca_cert.label,
         set.ca_cert.label + " holds " + std::to_string(count) +
             " CA certificates; expected the QEMU CA alone (two while it is "
             "rotated). A copy of a trust bundle would let any of those CAs' "
             "certificates into migrations"});
  } else {
    checks.push_back({"ca-cert.count", CheckStatus::ok, set.ca_cert.label,
                      set.ca_cert.label + " holds " + std::to_string(count) +
                          " CA certificate" + (count == 1 ? "" : "s")});
  }
}

json certificate_json(const pki::CertificateSet& set) {
  auto certificates = pki::parse_certificates(set.server_cert.pem,
                                              set.server_cert.label);
  if (!certificates || certificates->empty()) return nullptr;
  auto info = pki::describe(certificates->front().get());
  return {{"subject", info.subject},
          {"issuer", info.issuer},
          {"serial", info.serial_hex},
          {"not_before", info.not_before},
          {"not_after", info.not_after},
          {"days_left", (info.not_after - std::time(nullptr)) / 86400},
          {"dns_names", info.dns_names},
          {"ip_addresses", info.ip_addresses}};
}

std::string summary(const util::Checks& checks) {
  const auto failed = util::count_status(checks, CheckStatus::failed);
  const auto warnings = util::count_status(checks, CheckStatus::warning);
  const auto passed = util::count_status(checks, CheckStatus::ok);
  std::string text = std::to_string(passed) + " checks passed, " +
                     std::to_string(warnings) + " warnings, " +
                     std::to_string(failed) + " failed";
  for (const auto& check : checks) {
    if (check.status == CheckStatus::failed) {
      text += "; " + check.name + ": " + check.message;
    }
  }
  return text;
}

Outcome run_info(const Params& params, const Context& context) {
  Outcome outcome;
  const HostPaths paths = host_paths(params);
  util::Checks& checks = outcome.checks;
  json& data = outcome.data;
  data["enrolled"] = false;

  std::optional<LoadedQemuConf> loaded;
  MigrationSettings settings;
  auto read = load_qemu_conf(paths);
  if (!read) {
    checks.push_back({"qemu.conf.parse", CheckStatus::failed,
                      paths.resolve(paths.qemu_conf), read.error().message});
  } else {
    auto parsed = read_migration_settings(read.value());
    if (!parsed) {
      checks.push_back({"qemu.conf.parse", CheckStatus::failed,
                        read->file, parsed.error().message});
    } else {
      checks.push_back({"qemu.conf.parse", CheckStatus::ok, read->file,
                        read->file + " parses with the Libvirtd_qemu lens"});
      settings = parsed.value();
      check_settings(settings, read->file, checks);
    }
    loaded = std::move(read.value());
  }
  data["settings"] = {
      {k_cert_dir_key, settings.cert_dir ? json(*settings.cert_dir) : json()},
      {k_verify_key, settings.verify ? json(*settings.verify) : json()},
      {k_force_key, settings.force ? json(*settings.force) : json()}};
  QemuAccount account = qemu_account(loaded, paths);
  data["qemu_user"] = account.user;
  data["qemu_group"] = account.group;

  std::string cert_dir;
  if (params["cert_dir"].is_string()) {
    cert_dir = params["cert_dir"].get<std::string>();
  } else if (settings.cert_dir) {
    cert_dir = *settings.cert_dir;
  }
  data["cert_dir"] = cert_dir.empty() ? json() : json(cert_dir);

  pki::CertificateSet set;
  if (!cert_dir.empty()) {
    const std::string folder = paths.resolve(util::normalize_path(cert_dir));
    auto exists = util::stat_path(folder);
    if (!exists || !exists.value()) {
      checks.push_back({"cert_dir.exists", CheckStatus::failed, folder,
                        "The certificate folder " + folder +
                            " does not exist; libvirt refuses to start its "
                            "QEMU driver while qemu.conf names it"});
    } else if (auto read_set = pki::read_certificate_set(folder); !read_set) {
      checks.push_back({"cert_dir.read", CheckStatus::failed, folder,
                        read_set.error().message});
    } else {
      set = read_set.value();
      data["enrolled"] = !set.server_cert.pem.empty();
      pki::CheckOptions options;
      options.hostname = params["hostname"].is_string()
                             ? params["hostname"].get<std::string>()
                             : util::host_fqdn();
      for (const auto& name : params["extra_names"]) {
        options.extra_names.push_back(name.get<std::string>());
      }
      options.warn_days = params["renew_before_days"].get<int>();
      if (options.hostname.empty()) {
        return failure("Invalid value for option hostname: it is empty; "
                       "give the name other hosts use to reach this one");
      }
      data["hostname"] = options.hostname;
      auto set_checks = pki::check_certificate_set(set, options);
      checks.insert(checks.end(), set_checks.begin(), set_checks.end());
      for (const pki::PemFile* file :
           {&set.ca_cert, &set.server_cert, &set.client_cert}) {
        if (holds_private_key(file->pem)) {
          checks.push_back(
              {"permissions.key-in-certificate", CheckStatus::failed,
               file->label,
               file->label + " contains a private key, and certificate files "
                             "are readable by every user; reinstall the set "
                             "with the key in server-key.pem only"});
        }
      }
      check_trust_bundle(set, checks);
      check_separation(params, paths, set, checks);
      data["certificate"] = certificate_json(set);
    }
  }

  ReadinessInput readiness{params, paths, loaded, settings, account, cert_dir,
                           set};
  auto libvirt_checks = readiness_checks(readiness, context, data);
  checks.insert(checks.end(), libvirt_checks.begin(), libvirt_checks.end());

  outcome.failed = params["fail_on_error"].get<bool>() && util::any_failed(checks);
  outcome.msg = summary(checks);
  return outcome;
}

}  // namespace

Operation info_operation() {
  Operation operation;
  operation.module_name = "qemu_migration_tls_info";
  operation.command_name = "verify";
  operation.summary =
      "Check qemu.conf, the certificate set and libvirt (read-only)";
  operation.options = qemu_conf_options();
  OptionSpecs own = {
      {"cert_dir", OptionType::path,
       "Folder of the certificate set. Default: what qemu.conf names.",
       nullptr, {}, false, false, {}},
      {"hostname", OptionType::str,
       "Name the host certificate must carry. Default: this host's FQDN.",
       nullptr, {}, false, false, {}},
      {"extra_names", OptionType::list,
       "More DNS names or IP addresses this host is reached by.",
       nlohmann::json::array(), {}, false, false, {}},
      {"fail_on_error", OptionType::boolean,
       "Fail when any check failed; false only reports.", true, {}, false,
       false, {}},
      {"renew_before_days", OptionType::integer,
       "A certificate that expires within this many days is a warning.", 30,
       {}, false, false, {}},
      {"libvirt_ca_cert", OptionType::path,
       "CA certificate of libvirt's own TLS; the QEMU certificate must not "
       "verify against it.",
       "/etc/pki/CA/cacert.pem", {}, false, false, {}},
  };
  operation.options.insert(operation.options.end(), own.begin(), own.end());
  OptionSpecs readiness = readiness_options();
  operation.options.insert(operation.options.end(), readiness.begin(),
                           readiness.end());
  operation.run = run_info;
  return operation;
}

}  // namespace qmt::ops
