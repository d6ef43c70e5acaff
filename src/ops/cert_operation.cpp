#include "ops/cert_operation.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>

#include "ops/host.hpp"
#include "ops/pem_input.hpp"
#include "pki/certificate.hpp"
#include "pki/certificate_set.hpp"
#include "pki/checks.hpp"
#include "pki/csr.hpp"

namespace qmt::ops {

namespace {

using nlohmann::json;

constexpr const char* k_staging_folder = ".staging";
constexpr const char* k_staged_key = "server-key.pem";

struct CertRequest {
  HostPaths paths;
  std::optional<LoadedQemuConf> loaded;
  std::string cert_dir;  // as qemu.conf names it
  std::string folder;    // as this process opens it
  std::string state;
  std::string hostname;
  std::vector<std::string> extra_names;
  int renew_before_days = 30;
};

util::Result<CertRequest> read_request(const Params& params) {
  CertRequest request;
  request.paths = host_paths(params);
  request.state = params["state"].get<std::string>();
  request.renew_before_days = params["renew_before_days"].get<int>();
  if (request.renew_before_days < 0) {
    return util::Error{"Invalid value for option renew_before_days: " +
                       std::to_string(request.renew_before_days) +
                       " is negative; give a number of days, 0 or more"};
  }

  const std::string conf_file = request.paths.resolve(request.paths.qemu_conf);
  auto exists = util::stat_path(conf_file);
  if (!exists) return exists.error();
  if (exists.value()) {
    auto loaded = load_qemu_conf(request.paths);
    if (!loaded) return loaded.error();
    request.loaded = std::move(loaded.value());
  }

  if (params["cert_dir"].is_string()) {
    request.cert_dir = params["cert_dir"].get<std::string>();
  } else if (request.loaded) {
    request.cert_dir = request.loaded->conf.get(k_cert_dir_key)
                           .value_or(conf::Value{conf::ValueType::string,
                                                 k_default_cert_dir})
                           .text;
  } else {
    request.cert_dir = k_default_cert_dir;
  }
  if (auto absolute = require_absolute("cert_dir", request.cert_dir);
      !absolute) {
    return absolute.error();
  }
  request.cert_dir = util::normalize_path(request.cert_dir);
  request.folder = request.paths.resolve(request.cert_dir);

  request.hostname = params["hostname"].is_string()
                         ? params["hostname"].get<std::string>()
                         : util::host_fqdn();
  if (request.hostname.empty()) {
    return util::Error{"Invalid value for option hostname: it is empty; "
                       "give the name other hosts use to reach this one"};
  }
  for (const auto& name : params["extra_names"]) {
    request.extra_names.push_back(name.get<std::string>());
  }
  return request;
}

std::string staged_key_path(const CertRequest& request) {
  return request.folder + "/" + k_staging_folder + "/" + k_staged_key;
}

// Joins the failed checks' messages. The host certificate also serves as
// the client certificate by default, so the same finding can come twice.
std::string join_failed(const util::Checks& checks) {
  std::vector<std::string> seen;
  std::string text;
  for (const auto& check : checks) {
    if (check.status != util::CheckStatus::failed) continue;
    if (std::find(seen.begin(), seen.end(), check.message) != seen.end()) {
      continue;
    }
    seen.push_back(check.message);
    text += (text.empty() ? "" : "; ") + check.message;
  }
  return text;
}

std::string mode_text(mode_t mode) {
  char buffer[8];
  std::snprintf(buffer, sizeof(buffer), "%04o", mode & 07777);
  return buffer;
}

// A readable summary of one file of the set for --diff. Keys never show
// their content: only that a key is there, its mode and owner.
std::string describe_file(const std::string& name, const std::string& content,
                          const std::string& mode_line) {
  if (content.empty()) return "";
  std::string text;
  if (pki::is_private_key_pem(content)) {
    text = std::string(k_masked) + " (private key)\n";
  } else {
    auto certificates = pki::parse_certificates(content, name);
    if (certificates) {
      for (const auto& certificate : certificates.value()) {
        auto info = pki::describe(certificate.get());
        text += "subject: " + info.subject + "\nissuer: " + info.issuer +
                "\nserial: " + info.serial_hex + "\nsha256: " +
                info.sha256_fingerprint + "\n";
      }
    } else {
      text = content;
    }
  }
  return text + mode_line + "\n";
}

util::Result<std::pair<uid_t, gid_t>> owner_ids(const Params& params,
                                                const CertRequest& request,
                                                json& data) {
  QemuAccount account = qemu_account(request.loaded, request.paths);
  std::string owner = params["owner"].get<std::string>();
  std::string group = params["group"].is_string()
                          ? params["group"].get<std::string>()
                          : account.group;
  auto uid = util::lookup_user(owner);
  if (!uid) return util::Error{"Option owner: " + uid.error().message};
  auto gid = util::lookup_group(group);
  if (!gid) {
    return util::Error{"Group " + group + " (" +
                       (params["group"].is_string() ? std::string("option group")
                                                    : "QEMU group, " +
                                                          account.source) +
                       ") does not exist on this host; set the group option"};
  }
  data["owner"] = owner;
  data["group"] = group;
  return std::make_pair(uid.value(), gid.value());
}

void add_set_diffs(const pki::InstallRequest& install,
                   const pki::SetPlan& plan, Outcome& outcome) {
  auto current = pki::read_certificate_set(install.cert_dir);
  for (const auto& file : install.files) {
    bool touched = false;
    for (const auto& change : plan.changes) {
      if (change.name == file.name) touched = true;
    }
    if (!touched) continue;
    std::string path = install.cert_dir + "/" + file.name;
    std::string before;
    if (auto content = util::read_file(path)) {
      auto mode = util::stat_path(path);
      std::string mode_line =
          mode && mode.value()
              ? "mode: " + mode_text(mode.value()->mode) + " owner: " +
                    std::to_string(mode.value()->uid) + ":" +
                    std::to_string(mode.value()->gid)
              : "";
      before = describe_file(file.name, content.value(), mode_line);
    }
    mode_t mode = file.secret ? install.key_mode : install.cert_mode;
    std::string after = describe_file(
        file.name, file.content,
        "mode: " + mode_text(mode) + " owner: " + std::to_string(install.uid) +
            ":" + std::to_string(install.gid));
    outcome.diffs.push_back({path + " (before)", path + " (after)", before,
                             after});
  }
}

json changes_to_json(const pki::SetPlan& plan) {
  json list = json::array();
  for (const auto& change : plan.changes) {
    list.push_back(change.name + ": " + change.what);
  }
  return list;
}

Outcome run_present(const Params& params, const Context& context,
                    const CertRequest& request) {
  Outcome outcome;
  pki::CertificateSet set;
  const std::pair<const char*, pki::PemFile*> inputs[] = {
      {"ca_cert", &set.ca_cert},         {"cert", &set.server_cert},
      {"key", &set.server_key},          {"client_cert", &set.client_cert},
      {"client_key", &set.client_key}};
  for (const auto& [option, target] : inputs) {
    auto pem = read_pem_option(params, option, request.paths);
    if (!pem) return failure(pem.error().message);
    *target = pem.value();
  }

  for (const pki::PemFile* file :
       {&set.ca_cert, &set.server_cert, &set.client_cert}) {
    if (holds_private_key(file->pem)) {
      return failure(
          file->label + " contains a private key. Certificate files are "
          "installed readable by every user (0644), so give only "
          "certificates there and the key in the key or client_key option");
    }
  }

  bool staged = false;
  if (set.server_key.pem.empty() && !set.server_cert.pem.empty()) {
    auto key = util::read_file(staged_key_path(request));
    if (key) {
      set.server_key = {staged_key_path(request), key.value()};
      staged = true;
    } else if (auto installed = pki::read_certificate_set(request.folder);
               installed && !installed->server_key.pem.empty()) {
      // A repeated install of the same certificate keeps the installed
      // key; the key checks below reject it if it does not match.
      set.server_key = installed->server_key;
    }
  }
  if (set.server_cert.pem.empty() && set.server_key.pem.empty() &&
      set.client_cert.pem.empty() && set.client_key.pem.empty()) {
    // Without a new certificate the installed set is checked again and
    // its modes and owner are repaired. A given ca_cert still replaces the
    // installed one, so a CA rotation reaches hosts that keep their keys.
    auto installed = pki::read_certificate_set(request.folder);
    if (!installed) return failure(installed.error().message);
    if (installed->server_cert.pem.empty()) {
      return failure("Option cert is required: no certificate set is "
                     "installed in " + request.cert_dir + " to keep");
    }
    if (set.ca_cert.pem.empty()) set.ca_cert = installed->ca_cert;
    set.server_cert = installed->server_cert;
    set.server_key = installed->server_key;
    set.client_cert = installed->client_cert;
    set.client_key = installed->client_key;
  }
  for (const auto& [option, target] : {std::pair{"ca_cert", &set.ca_cert},
                                       std::pair{"cert", &set.server_cert},
                                       std::pair{"key", &set.server_key}}) {
    if (target->pem.empty()) {
      return failure(std::string("Option ") + option +
                     " is required with state present" +
                     (std::string(option) == "key"
                          ? " (or a staged key from state csr in " +
                                staged_key_path(request) + ")"
                          : ""));
    }
  }
  if (set.client_cert.pem.empty() != set.client_key.pem.empty()) {
    return failure(
        "Options client_cert and client_key go together: give both, or "
        "neither to use the host certificate as the client certificate");
  }
  if (set.client_cert.pem.empty()) {
    set.client_cert = set.server_cert;
    set.client_key = set.server_key;
  }

  pki::CheckOptions check_options;
  check_options.hostname = request.hostname;
  check_options.extra_names = request.extra_names;
  check_options.warn_days = request.renew_before_days;
  outcome.checks = pki::check_certificate_set(set, check_options);
  if (util::any_failed(outcome.checks)) {
    outcome.failed = true;
    outcome.msg = "The certificate set was not installed: " +
                  join_failed(outcome.checks);
    return outcome;
  }

  auto ids = owner_ids(params, request, outcome.data);
  if (!ids) return failure(ids.error().message);

  pki::InstallRequest install;
  install.cert_dir = request.folder;
  install.uid = ids->first;
  install.gid = ids->second;
  install.files = {{"ca-cert.pem", set.ca_cert.pem, false},
                   {"server-cert.pem", set.server_cert.pem, false},
                   {"server-key.pem", set.server_key.pem, true},
                   {"client-cert.pem", set.client_cert.pem, false},
                   {"client-key.pem", set.client_key.pem, true}};
  auto plan = pki::plan_install(install);
  if (!plan) return failure(plan.error().message);

  outcome.changed = plan->changed || staged;
  outcome.data["cert_dir"] = request.cert_dir;
  outcome.data["changes"] = changes_to_json(plan.value());
  if (auto certificates = pki::parse_certificates(set.server_cert.pem, "cert")) {
    auto info = pki::describe(certificates.value().front().get());
    outcome.data["certificate"] = {
        {"subject", info.subject},        {"issuer", info.issuer},
        {"serial", info.serial_hex},      {"not_after", info.not_after},
        {"dns_names", info.dns_names},    {"ip_addresses", info.ip_addresses},
        {"days_left", (info.not_after - std::time(nullptr)) / 86400}};
  }
  if (context.diff) add_set_diffs(install, plan.value(), outcome);

  if (outcome.changed && !context.check_mode) {
    if (plan->changed) {
      auto installed = pki::install_set(install);
      if (!installed) return failure(installed.error().message);
    }
    if (staged) {
      // The key is now part of the installed set; the staged copy goes.
      std::error_code ignored;
      std::filesystem::remove(request.folder + "/" + k_staging_folder + "/" +
                                  k_staged_key,
                              ignored);
      std::filesystem::remove(request.folder + "/" + k_staging_folder,
                              ignored);
    }
  }
  outcome.msg = !outcome.changed ? "The certificate set in " +
                                       request.cert_dir + " is up to date"
                : context.check_mode
                    ? "The certificate set in " + request.cert_dir +
                          " would be installed"
                    : "Installed the certificate set in " + request.cert_dir;
  return outcome;
}

Outcome run_absent(const Context& context, const CertRequest& request) {
  Outcome outcome;
  auto plan = pki::plan_removal(request.folder);
  if (!plan) return failure(plan.error().message);
  outcome.changed = plan->changed;
  outcome.data["cert_dir"] = request.cert_dir;
  outcome.data["changes"] = changes_to_json(plan.value());
  if (context.diff) {
    for (const auto& change : plan->changes) {
      std::string path = request.folder + "/" + change.name;
      auto content = util::read_file(path);
      outcome.diffs.push_back(
          {path + " (before)", path + " (after)",
           content ? describe_file(change.name, content.value(), "") : "",
           ""});
    }
  }
  if (outcome.changed && !context.check_mode) {
    auto removed = pki::remove_set(request.folder);
    if (!removed) return failure(removed.error().message);
  }
  outcome.msg = !outcome.changed ? "No certificate set in " + request.cert_dir
                : context.check_mode
                    ? "Would remove the certificate set from " +
                          request.cert_dir
                    : "Removed the certificate set from " + request.cert_dir;
  return outcome;
}

// Decides whether the installed set must be re-issued, and why.
std::vector<std::string> enrollment_reasons(const Params& params,
                                            const CertRequest& request,
                                            util::Checks& checks) {
  std::vector<std::string> reasons;
  auto installed = pki::read_certificate_set(request.folder);
  if (!installed || installed->server_cert.pem.empty()) {
    reasons.push_back("no certificate is installed in " + request.cert_dir);
    return reasons;
  }
  pki::CheckOptions options;
  options.hostname = request.hostname;
  options.extra_names = request.extra_names;
  options.warn_days = request.renew_before_days;
  checks = pki::check_certificate_set(installed.value(), options);
  for (const auto& check : checks) {
    if (check.status == util::CheckStatus::ok) continue;
    // An expiry warning means the certificate is inside the renewal window.
    reasons.push_back(check.message);
  }

  auto signer = read_pem_option(params, "ca_cert", request.paths);
  if (signer && !signer->pem.empty()) {
    pki::CertificateSet against = installed.value();
    against.ca_cert = signer.value();
    pki::CheckOptions chain_only;
    chain_only.hostname = request.hostname;
    for (const auto& check : pki::check_certificate_set(against, chain_only)) {
      if (check.status == util::CheckStatus::failed &&
          check.name.find("chain") != std::string::npos) {
        reasons.push_back("the installed certificate was not issued by the "
                          "given ca_cert (the CA changed): " + check.message);
        break;
      }
    }
  }
  return reasons;
}

Outcome run_csr(const Params& params, const Context& context,
                const CertRequest& request) {
  Outcome outcome;
  auto key_type = pki::parse_key_type(params["key_type"].get<std::string>());
  if (!key_type) return failure("Option key_type: " + key_type.error().message);

  // A ca_cert that cannot be read would otherwise make every installed
  // certificate look current.
  auto signer = read_pem_option(params, "ca_cert", request.paths);
  if (!signer) return failure(signer.error().message);
  if (!signer->pem.empty()) {
    auto parsed = pki::parse_certificates(signer->pem, signer->label);
    if (!parsed) return failure("Option ca_cert: " + parsed.error().message);
  }

  std::vector<std::string> reasons =
      enrollment_reasons(params, request, outcome.checks);
  outcome.data["cert_dir"] = request.cert_dir;
  outcome.data["enrollment_needed"] = !reasons.empty();
  outcome.data["reasons"] = reasons;
  outcome.data["csr"] = nullptr;
  if (reasons.empty()) {
    outcome.checks.clear();
    outcome.msg = "The installed certificate is good for " +
                  request.hostname + "; no enrolment needed";
    return outcome;
  }
  outcome.checks.clear();

  const std::string key_path = staged_key_path(request);
  auto staged = util::stat_path(key_path);
  if (!staged) return failure(staged.error().message);
  if (!staged.value() && context.check_mode) {
    outcome.changed = true;
    outcome.msg = "Would create a host key in " + key_path +
                  " and a certificate signing request for " + request.hostname;
    return outcome;
  }

  if (!staged.value()) {
    // The staging folder keeps the key private to root until it is
    // installed. It lives inside cert_dir, so the key never crosses a file
    // system when it moves into the set.
    std::error_code error;
    std::filesystem::create_directories(request.folder, error);
    if (!error) {
      ::mkdir((request.folder + "/" + k_staging_folder).c_str(), 0700);
    }
  }
  auto key = pki::load_or_create_staged_key(key_path, key_type.value());
  if (!key) return failure(key.error().message);
  auto csr = pki::make_csr(key->key.get(), request.hostname,
                           request.extra_names);
  if (!csr) return failure(csr.error().message);

  outcome.changed = key->created;
  outcome.data["csr"] = csr.value();
  outcome.data["staged_key"] = request.cert_dir + "/" + k_staging_folder +
                               "/" + k_staged_key;
  outcome.msg = std::string(key->created ? "Created a host key and a"
                                         : "Reused the staged host key for a") +
                " certificate signing request for " + request.hostname + ": " +
                reasons.front();
  return outcome;
}

Outcome run_cert(const Params& params, const Context& context) {
  auto request = read_request(params);
  if (!request) return failure(request.error().message);
  if (request->state == "absent") return run_absent(context, request.value());
  if (request->state == "csr") return run_csr(params, context, request.value());
  return run_present(params, context, request.value());
}

}  // namespace

Operation cert_operation() {
  Operation operation;
  operation.module_name = "qemu_migration_tls_cert";
  operation.command_name = "install";
  operation.summary =
      "Install, request or remove the QEMU migration certificate set";
  operation.options = qemu_conf_options();
  OptionSpecs own = {
      {"cert_dir", OptionType::path,
       "Folder of the certificate set. Default: migrate_tls_x509_cert_dir "
       "from qemu.conf, else /etc/pki/qemu-migrate.",
       nullptr, {}, false, false, {}},
      {"state", OptionType::str,
       "present installs the set; csr creates (or reuses) a staged host key "
       "and returns a certificate signing request; absent removes the set.",
       "present", {"present", "absent", "csr"}, false, false, {}},
      {"ca_cert", OptionType::str,
       "CA certificate(s) as PEM text or a path on this host. With state "
       "csr: the CA that must have issued the installed certificate.",
       nullptr, {}, false, false, {}},
      {"cert", OptionType::str,
       "Host certificate (serverAuth and clientAuth) as PEM text or a path.",
       nullptr, {}, false, false, {}},
      {"key", OptionType::str,
       "Host private key as PEM text or a path. Default with state present: "
       "the key staged by state csr.",
       nullptr, {}, false, true, {}},
      {"client_cert", OptionType::str,
       "Separate client certificate; default: the host certificate.",
       nullptr, {}, false, false, {}},
      {"client_key", OptionType::str,
       "Private key of client_cert; default: the host key.",
       nullptr, {}, false, true, {}},
      {"hostname", OptionType::str,
       "Name the certificate must carry. Default: this host's FQDN.",
       nullptr, {}, false, false, {}},
      {"extra_names", OptionType::list,
       "More DNS names or IP addresses this host is reached by.",
       nlohmann::json::array(), {}, false, false, {}},
      {"owner", OptionType::str, "Owner of the installed files.", "root",
       {}, false, false, {}},
      {"group", OptionType::str,
       "Group of the installed files. Default: the QEMU group from qemu.conf "
       "or the distribution's default.",
       nullptr, {}, false, false, {}},
      {"renew_before_days", OptionType::integer,
       "A certificate that expires within this many days needs renewal.",
       30, {}, false, false, {}},
      {"key_type", OptionType::str,
       "Type of a new host key (state csr). RSA works with every QEMU; "
       "EC P-256 needs a QEMU that does not require keyEncipherment.",
       "rsa3072", {"rsa3072", "ec-p256"}, false, false, {}},
  };
  operation.options.insert(operation.options.end(), own.begin(), own.end());
  operation.run = run_cert;
  return operation;
}

}  // namespace qmt::ops
