#include "ops/config_operation.hpp"

#include "ops/host.hpp"
#include "pki/checks.hpp"

namespace qmt::ops {

namespace {

using nlohmann::json;

struct ConfigRequest {
  HostPaths paths;
  std::string state;
  std::string cert_dir;
  bool verify_peer = true;
  std::optional<bool> force_tls;
  bool backup = false;
  bool check_cert_dir = true;
};

ConfigRequest read_request(const Params& params) {
  ConfigRequest request;
  request.paths = host_paths(params);
  request.state = params["state"].get<std::string>();
  request.cert_dir = util::normalize_path(params["cert_dir"].get<std::string>());
  request.verify_peer = params["verify_peer"].get<bool>();
  if (params["force_tls"].is_boolean()) {
    request.force_tls = params["force_tls"].get<bool>();
  }
  request.backup = params["backup"].get<bool>();
  request.check_cert_dir = params["check_cert_dir"].get<bool>();
  return request;
}

json settings_to_json(const MigrationSettings& settings) {
  json result = json::object();
  result[k_cert_dir_key] =
      settings.cert_dir ? json(*settings.cert_dir) : json(nullptr);
  result[k_verify_key] = settings.verify ? json(*settings.verify) : json(nullptr);
  result[k_force_key] = settings.force ? json(*settings.force) : json(nullptr);
  return result;
}

// Checks that qemu.conf may point at the folder: libvirt refuses to start
// its QEMU driver when migrate_tls_x509_cert_dir names a missing folder.
// Returns an error, or a warning text in check mode.
util::Result<std::string> check_target_folder(const ConfigRequest& request,
                                              bool check_mode) {
  const std::string folder = request.paths.resolve(request.cert_dir);
  auto mode = util::stat_path(folder);
  if (!mode) return mode.error();
  if (!mode.value()) {
    std::string text = "cert_dir " + request.cert_dir +
                       " does not exist; libvirt refuses to start its QEMU "
                       "driver when " + k_cert_dir_key +
                       " names a missing folder";
    if (check_mode) {
      return text + " (an earlier task of the same play may create it)";
    }
    return util::Error{text + ". Install the certificate set first, or set "
                              "check_cert_dir to false"};
  }
  auto set = pki::read_certificate_set(folder);
  if (!set) return set.error();
  std::string problems;
  for (const auto& check : pki::check_structure(set.value())) {
    if (check.status != util::CheckStatus::failed) continue;
    problems += (problems.empty() ? "" : "; ") + check.message;
  }
  if (!problems.empty()) {
    return util::Error{"cert_dir " + request.cert_dir +
                       " does not hold a valid certificate set: " + problems +
                       ". Set check_cert_dir to false to write it anyway"};
  }
  return std::string();
}

Outcome run_config(const Params& params, const Context& context) {
  const ConfigRequest request = read_request(params);
  Outcome outcome;
  if (auto absolute = require_absolute("cert_dir", request.cert_dir);
      !absolute) {
    return failure(absolute.error().message);
  }

  auto loaded = load_qemu_conf(request.paths);
  if (!loaded) return failure(loaded.error().message);
  auto before = read_migration_settings(loaded.value());
  if (!before) return failure(before.error().message);
  conf::QemuConf& document = loaded->conf;

  std::vector<std::string> changes;
  auto apply = [&](const std::string& key,
                   const std::optional<conf::Value>& value) -> util::Result<void> {
    auto current = document.get(key);
    const std::size_t count = document.count(key);
    if (!value) {
      if (count == 0) return {};
      changes.push_back("removed " + key);
      return document.remove(key);
    }
    bool same = current && current->text == value->text && count == 1;
    if (same && value->type == conf::ValueType::string) {
      same = util::normalize_path(current->text) == value->text;
    }
    if (same) return {};
    if (count > 1) {
      changes.push_back("set " + key + " and removed " +
                        std::to_string(count - 1) + " later duplicate(s)");
    } else {
      changes.push_back("set " + key + " = " +
                        (value->type == conf::ValueType::string
                             ? "\"" + value->text + "\""
                             : value->text));
    }
    return document.set(key, *value);
  };

  util::Result<void> applied;
  if (request.state == "present") {
    if (request.check_cert_dir) {
      auto folder = check_target_folder(request, context.check_mode);
      if (!folder) return failure(folder.error().message);
      if (!folder.value().empty()) outcome.warnings.push_back(folder.value());
    }
    applied = apply(k_cert_dir_key,
                    conf::Value{conf::ValueType::string, request.cert_dir});
    if (applied) {
      applied = apply(k_verify_key, conf::Value{conf::ValueType::boolean,
                                                request.verify_peer ? "1" : "0"});
    }
    if (applied && request.force_tls) {
      applied = apply(k_force_key, conf::Value{conf::ValueType::boolean,
                                               *request.force_tls ? "1" : "0"});
    }
  } else {
    for (const char* key : {k_cert_dir_key, k_verify_key, k_force_key}) {
      if (applied) applied = apply(key, std::nullopt);
    }
  }
  if (!applied) {
    return failure(loaded->file + ": " + applied.error().message);
  }

  // Rendering and re-parsing cost about as much as the first parse, so a
  // run that set nothing keeps the text it read.
  util::Result<std::string> after_text = loaded->text;
  if (!changes.empty()) after_text = document.render();
  if (!after_text) return failure(loaded->file + ": " + after_text.error().message);
  outcome.changed = after_text.value() != loaded->text;
  outcome.data["path"] = loaded->file;
  outcome.data["changes"] = changes;

  if (outcome.changed && context.diff) {
    outcome.diffs.push_back({loaded->file + " (before)",
                             loaded->file + " (after)", loaded->text,
                             after_text.value()});
  }
  if (outcome.changed && !context.check_mode) {
    if (request.backup) {
      auto backup = util::backup_file(loaded->file);
      if (!backup) return failure(backup.error().message);
      outcome.data["backup_file"] = backup.value();
    }
    util::WriteOptions options{loaded->mode, loaded->file};
    auto written = util::atomic_write_file(loaded->file, after_text.value(),
                                           options);
    if (!written) return failure(written.error().message);
  }

  if (!outcome.changed) {
    outcome.data["settings"] = settings_to_json(before.value());
  } else if (auto reparsed = conf::QemuConf::parse(
                 after_text.value(), loaded->file,
                 conf::AugeasSettings{request.paths.lens_dir})) {
    LoadedQemuConf after{loaded->file, after_text.value(), loaded->mode,
                         std::move(reparsed.value())};
    auto settings = read_migration_settings(after);
    if (settings) outcome.data["settings"] = settings_to_json(settings.value());
  }
  outcome.data["settings_before"] = settings_to_json(before.value());
  if (!outcome.changed) {
    outcome.msg = loaded->file + " already has the requested settings";
  } else if (context.check_mode) {
    outcome.msg = loaded->file + " would change: " + changes.front() +
                  (changes.size() > 1 ? " and more" : "");
  } else {
    outcome.msg = loaded->file + " updated; restart libvirtd to apply it";
  }
  return outcome;
}

}  // namespace

Operation config_operation() {
  Operation operation;
  operation.module_name = "qemu_migration_tls_config";
  operation.command_name = "config";
  operation.summary =
      "Set or remove the migration TLS settings of libvirt's qemu.conf";
  operation.options = qemu_conf_options();
  OptionSpecs own = {
      {"cert_dir", OptionType::path,
       "Folder holding the certificate set, written as "
       "migrate_tls_x509_cert_dir.",
       k_default_cert_dir, {}, false, false, {}},
      {"verify_peer", OptionType::boolean,
       "Require and verify the peer's certificate "
       "(migrate_tls_x509_verify).",
       true, {}, false, false, {}},
      {"force_tls", OptionType::boolean,
       "Make libvirt use TLS for every migration (migrate_tls_force). "
       "Left as it is when unset.",
       nullptr, {}, false, false, {}},
      {"state", OptionType::str,
       "present sets the keys; absent removes them.",
       "present", {"present", "absent"}, false, false, {}},
      {"backup", OptionType::boolean,
       "Keep a dated copy of qemu.conf before changing it.",
       false, {}, false, false, {}},
      {"check_cert_dir", OptionType::boolean,
       "Reject a cert_dir that does not exist or lacks a valid certificate "
       "set; libvirt will not start its QEMU driver otherwise.",
       true, {}, false, false, {}},
  };
  operation.options.insert(operation.options.end(), own.begin(), own.end());
  operation.run = run_config;
  return operation;
}

}  // namespace qmt::ops
