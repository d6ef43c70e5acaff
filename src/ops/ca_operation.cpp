#include "ops/ca_operation.hpp"

#include <optional>

#include "ops/host.hpp"
#include "ops/pem_input.hpp"
#include "pki/ca.hpp"
#include "pki/ca_config.hpp"
#include "pki/csr.hpp"

namespace qmt::ops {

namespace {

using nlohmann::json;

// Builds the CA settings: defaults, then the YAML file, then options.
util::Result<pki::CaSettings> read_settings(const Params& params) {
  pki::CaSettings settings;
  settings.ca_dir = util::normalize_path(params["ca_dir"].get<std::string>());
  if (params["config_file"].is_string()) {
    auto loaded = pki::load_ca_config(params["config_file"].get<std::string>(),
                                      settings);
    if (!loaded) return loaded.error();
    settings = loaded.value();
  }
  if (params["subject"].is_string()) {
    settings.subject = params["subject"].get<std::string>();
  }
  if (params["key_type"].is_string()) {
    auto type = pki::parse_key_type(params["key_type"].get<std::string>());
    if (!type) return util::Error{"Option key_type: " + type.error().message};
    settings.key_type = type.value();
  }
  if (params["validity_days"].is_number()) {
    settings.validity_days = params["validity_days"].get<int>();
  }
  if (params["index_path"].is_string()) {
    settings.index_path = params["index_path"].get<std::string>();
  }
  if (settings.validity_days <= 0) {
    return util::Error{"Option validity_days: " +
                       std::to_string(settings.validity_days) +
                       " is not a positive number of days"};
  }
  return settings;
}

Outcome run_ca(const Params& params, const Context& context) {
  auto settings = read_settings(params);
  if (!settings) return failure(settings.error().message);
  Outcome outcome;
  outcome.data["ca_dir"] = settings->ca_dir;

  // A broken CA or request is reported before ensure_ca creates anything.
  if (auto existing = pki::inspect_ca(settings.value()); !existing) {
    return failure(existing.error().message);
  }
  std::optional<pki::PemFile> csr;
  if (params["csr"].is_string()) {
    if (!params["hostname"].is_string()) {
      return failure("Option hostname is required to sign a csr");
    }
    const HostPaths paths{"/", "", ""};
    auto read = read_pem_option(params, "csr", paths);
    if (!read) return failure(read.error().message);
    auto parsed = pki::csr_from_pem(read->pem,
                                    params["hostname"].get<std::string>());
    if (!parsed) return failure(read->label + ": " + parsed.error().message);
    csr = read.value();
  }
  auto created = pki::ensure_ca(settings.value(), context.check_mode);
  if (!created) return failure(created.error().message);
  outcome.changed = created.value();

  auto state = pki::inspect_ca(settings.value());
  if (!state) return failure(state.error().message);
  outcome.data["ca_certificate"] =
      state->exists ? json(state->certificate_pem) : json();

  if (!csr) {
    outcome.msg = created.value()
                      ? (context.check_mode ? "Would create the CA in "
                                            : "Created the CA in ") +
                            settings->ca_dir
                      : "The CA in " + settings->ca_dir + " exists";
    return outcome;
  }

  outcome.changed = true;
  outcome.data["certificate"] = nullptr;
  std::vector<std::string> extra_names;
  for (const auto& name : params["extra_names"]) {
    extra_names.push_back(name.get<std::string>());
  }
  auto names = pki::certificate_names(params["hostname"].get<std::string>(),
                                      extra_names);
  if (!names) return failure(names.error().message);
  const int validity = params["cert_validity_days"].get<int>();
  if (validity < 1 || validity > pki::k_max_validity_days) {
    return failure("Invalid value for option cert_validity_days: " +
                   std::to_string(validity) + " is not between 1 and " +
                   std::to_string(pki::k_max_validity_days) + " days");
  }
  if (context.check_mode) {
    outcome.msg = "Would sign a certificate for " +
                  params["hostname"].get<std::string>();
    return outcome;
  }
  pki::SignRequest request;
  request.csr_pem = csr->pem;
  request.hostname = params["hostname"].get<std::string>();
  for (const auto& name : params["extra_names"]) {
    request.extra_names.push_back(name.get<std::string>());
  }
  request.validity_days = params["cert_validity_days"].get<int>();
  if (params["now"].is_number()) request.now = params["now"].get<long long>();
  auto signed_certificate = pki::sign_csr(settings.value(), request);
  if (!signed_certificate) {
    return failure(csr->label + ": " + signed_certificate.error().message);
  }
  outcome.data["certificate"] = signed_certificate->certificate_pem;
  outcome.data["ca_certificate"] = signed_certificate->ca_certificate_pem;
  outcome.data["serial"] = signed_certificate->serial_hex;
  outcome.data["not_after"] = signed_certificate->not_after;
  if (signed_certificate->not_after_clipped) {
    outcome.warnings.push_back(
        "The certificate for " + request.hostname +
        " expires with the CA, before the requested " +
        std::to_string(request.validity_days) +
        " days; rotate the CA before then");
  }
  outcome.msg = "Signed a certificate for " + request.hostname + ", serial " +
                signed_certificate->serial_hex;
  return outcome;
}

}  // namespace

Operation ca_operation() {
  Operation operation;
  operation.module_name = "qemu_migration_tls_ca";
  operation.command_name = "ca";
  operation.summary =
      "Create the QEMU migration CA and sign host certificate requests";
  operation.options = {
      {"ca_dir", OptionType::path,
       "Folder of the CA: ca-key.pem, ca-cert.pem, index.yml.",
       nullptr, {}, true, false, {}},
      {"config_file", OptionType::path,
       "YAML file with subject, key_type, validity_days, cert_validity_days "
       "and index_path; options override it.",
       nullptr, {}, false, false, {}},
      {"subject", OptionType::str,
       "Subject of a new CA, as /O=Example/CN=QEMU Migration CA.", nullptr,
       {}, false, false, {}},
      {"key_type", OptionType::str, "Key type of a new CA.", nullptr,
       {"ec-p256", "rsa3072"}, false, false, {}},
      {"validity_days", OptionType::integer,
       "Validity of a new CA certificate, in days (default 7300).", nullptr,
       {}, false, false, {}},
      {"index_path", OptionType::path,
       "YAML index of issued certificates. Default: ca_dir/index.yml.",
       nullptr, {}, false, false, {}},
      {"csr", OptionType::str,
       "Certificate signing request to sign, as PEM text or a path.",
       nullptr, {}, false, false, {}},
      {"hostname", OptionType::str,
       "Host name of the certificate to issue (CN and subjectAltName).",
       nullptr, {}, false, false, {}},
      {"extra_names", OptionType::list,
       "More DNS names or IP addresses for the subjectAltName.",
       nlohmann::json::array(), {}, false, false, {}},
      {"cert_validity_days", OptionType::integer,
       "Validity of an issued certificate, in days.", 398, {}, false, false,
       {}},
      {"now", OptionType::integer,
       "Signing time as Unix seconds, to test renewal; default: the clock.",
       nullptr, {}, false, false, {}},
  };
  operation.run = run_ca;
  return operation;
}

}  // namespace qmt::ops
