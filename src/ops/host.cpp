#include "ops/host.hpp"

#include <filesystem>
#include <sstream>

namespace qmt::ops {

OptionSpecs qemu_conf_options() {
  return {
      {"path", OptionType::path, "Path of libvirt's qemu.conf.",
       k_default_qemu_conf, {}, false, false, {"dest"}},
      {"root", OptionType::path,
       "Folder that stands in for / when opening files, for sandboxes and "
       "tests. Paths written into qemu.conf are not prefixed.",
       "/", {}, false, false, {}},
      {"lens_dir", OptionType::path,
       "Extra folder of augeas lenses, searched before the standard ones.",
       nullptr, {}, false, false, {}},
  };
}

std::string HostPaths::resolve(const std::string& path) const {
  return util::under_root(root, path);
}

HostPaths host_paths(const Params& params) {
  HostPaths paths;
  paths.root = params.value("root", std::string("/"));
  if (params.contains("lens_dir") && params["lens_dir"].is_string()) {
    paths.lens_dir = params["lens_dir"].get<std::string>();
  }
  paths.qemu_conf = params.value("path", std::string(k_default_qemu_conf));
  return paths;
}

util::Result<void> require_absolute(const std::string& option,
                                    const std::string& path) {
  if (!path.empty() && path.front() == '/') return {};
  return util::Error{"Invalid value for option " + option + ": '" + path +
                     "' is not an absolute path"};
}

util::Result<LoadedQemuConf> load_qemu_conf(const HostPaths& paths) {
  std::string file = paths.resolve(paths.qemu_conf);
  // A symbolic link is followed, so the atomic write replaces its target
  // and the link stays, as ansible.builtin modules do.
  std::error_code error;
  if (std::filesystem::is_symlink(file, error)) {
    auto target = std::filesystem::canonical(file, error);
    if (!error) file = target.string();
  }
  auto text = util::read_file(file);
  if (!text) return text.error();
  auto mode = util::stat_path(file);
  if (!mode) return mode.error();

  conf::AugeasSettings settings;
  settings.lens_dir = paths.lens_dir;
  auto parsed = conf::QemuConf::parse(text.value(), file, settings);
  if (!parsed) return parsed.error();
  return LoadedQemuConf{file, std::move(text.value()),
                        mode.value().value_or(util::FileMode{0, 0, 0600}),
                        std::move(parsed.value())};
}

util::Result<MigrationSettings> read_migration_settings(
    const LoadedQemuConf& loaded) {
  MigrationSettings settings;
  for (const char* key : {k_verify_key, k_force_key}) {
    if (!loaded.conf.get(key)) continue;
    auto typed = conf::check_value_type(loaded.conf, key,
                                        conf::ValueType::boolean, loaded.file);
    if (!typed) return typed.error();
    auto value = loaded.conf.get(key).value();
    if (value.text != "0" && value.text != "1") {
      return util::Error{loaded.file + ": " + key + " is " + value.text +
                         ", but libvirt expects 0 or 1"};
    }
    (std::string(key) == k_verify_key ? settings.verify : settings.force) =
        value.text == "1";
  }
  if (loaded.conf.get(k_cert_dir_key)) {
    auto typed = conf::check_value_type(loaded.conf, k_cert_dir_key,
                                        conf::ValueType::string, loaded.file);
    if (!typed) return typed.error();
    settings.cert_dir = loaded.conf.get(k_cert_dir_key)->text;
  }
  return settings;
}

namespace {

bool is_fedora_like(const HostPaths& paths) {
  auto release = util::read_file(paths.resolve("/etc/os-release"));
  if (!release) return false;
  std::istringstream lines(release.value());
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("ID=", 0) == 0 || line.rfind("ID_LIKE=", 0) == 0) {
      if (line.find("fedora") != std::string::npos ||
          line.find("rhel") != std::string::npos ||
          line.find("centos") != std::string::npos) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace

QemuAccount qemu_account(const std::optional<LoadedQemuConf>& loaded,
                         const HostPaths& paths) {
  QemuAccount account;
  if (is_fedora_like(paths)) {
    account = {"qemu", "qemu", "distribution default"};
  } else {
    account = {"libvirt-qemu", "kvm", "distribution default"};
  }
  if (!loaded) return account;
  if (auto user = loaded->conf.get("user")) {
    account.user = user->text;
    account.source = "qemu.conf";
  }
  if (auto group = loaded->conf.get("group")) {
    account.group = group->text;
    account.source = "qemu.conf";
  }
  return account;
}

}  // namespace qmt::ops
