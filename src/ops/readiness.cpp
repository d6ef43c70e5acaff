#include "ops/readiness.hpp"

#include <chrono>

#include "ops/pem_input.hpp"
#include "pki/certificate.hpp"
#include "virt/daemon.hpp"
#include "virt/libvirt.hpp"
#include "virt/pair.hpp"
#include "virt/permissions.hpp"
#include "virt/readiness.hpp"

namespace qmt::ops {

namespace {

using nlohmann::json;
using util::CheckStatus;

constexpr const char* k_default_pid_file = "/run/libvirtd.pid";
// Pid file of the modular QEMU daemon, tried when the default pid file of
// the monolithic libvirtd is missing.
constexpr const char* k_virtqemud_pid_file = "/run/virtqemud.pid";

std::string string_param(const Params& params, const std::string& name) {
  return params.contains(name) && params[name].is_string()
             ? params[name].get<std::string>()
             : std::string();
}

// True for URIs without a host ("qemu:///system", "qemu+unix:///system"),
// which name the daemon on this host.
bool is_local_uri(const std::string& uri) {
  const auto scheme_end = uri.find("://");
  return scheme_end != std::string::npos &&
         uri.compare(scheme_end + 3, 1, "/") == 0;
}

void add_permission_checks(const ReadinessInput& input, util::Checks& checks) {
  bool keeps_capabilities = false;
  if (input.loaded) {
    auto clear = input.loaded->conf.get("clear_emulator_capabilities");
    keeps_capabilities = clear && clear->text == "0";
  }
  const std::string source = input.account.source;
  // NOTE: the user and group are looked up in this host's name service,
  // also when root is a sandbox with an /etc/passwd of its own.
  auto account = virt::resolve_account(input.account.user, input.account.group,
                                       keeps_capabilities);
  if (!account) {
    checks.push_back(
        {"permissions.account", CheckStatus::failed,
         input.loaded ? input.loaded->file : "",
         account.error().message + " (QEMU's account from " + source + ")"});
    return;
  }
  checks.push_back({"permissions.account", CheckStatus::ok,
                    input.loaded ? input.loaded->file : "",
                    "QEMU runs as " + virt::account_text(account.value()) +
                        " (from " + source + ")"});
  auto permissions = virt::check_permissions(
      {input.paths.root, input.cert_dir, account.value()});
  checks.insert(checks.end(), permissions.begin(), permissions.end());
}

void add_pair_checks(const ReadinessInput& input, util::Checks& checks) {
  const Params& params = input.params;
  auto peer_ca = read_pem_option(params, "peer_ca_cert", input.paths);
  auto peer_server = read_pem_option(params, "peer_server_cert", input.paths);
  if (!peer_ca) {
    checks.push_back({"pair.peer-ca-cert.parse", CheckStatus::failed,
                      "peer_ca_cert", peer_ca.error().message});
  }
  if (!peer_server) {
    checks.push_back({"pair.peer-server-cert.parse", CheckStatus::failed,
                      "peer_server_cert", peer_server.error().message});
  }
  if (!peer_ca || !peer_server) return;

  virt::PairInput pair;
  pair.ca_cert = input.set.ca_cert;
  pair.client_cert = input.set.client_cert;
  if (pair.ca_cert.label.empty())
    pair.ca_cert.label = "this host's ca-cert.pem";
  if (pair.client_cert.label.empty()) {
    pair.client_cert.label = "this host's client-cert.pem";
  }
  pair.peer_ca_cert = peer_ca.value();
  pair.peer_server_cert = peer_server.value();
  pair.peer_name = string_param(params, "peer_name");
  auto pair_checks = virt::check_pair(pair);
  checks.insert(checks.end(), pair_checks.begin(), pair_checks.end());
}

util::Result<virt::DaemonProcess> find_daemon(const std::string& pid_file,
                                              const HostPaths& paths,
                                              std::string& used_pid_file) {
  used_pid_file = paths.resolve(pid_file);
  auto process = virt::read_daemon_process(used_pid_file);
  if (process || pid_file != k_default_pid_file) return process;
  const std::string modular = paths.resolve(k_virtqemud_pid_file);
  auto exists = util::stat_path(modular);
  if (!exists || !exists.value()) return process;
  used_pid_file = modular;
  return virt::read_daemon_process(modular);
}

void add_config_loaded_check(const ReadinessInput& input, json& libvirt,
                             util::Checks& checks) {
  const std::string qemu_conf =
      input.loaded ? input.loaded->file
                   : input.paths.resolve(input.paths.qemu_conf);
  auto conf_time = virt::read_file_time(qemu_conf);
  if (!conf_time || !conf_time.value()) return;  // qemu.conf.parse reports it

  std::vector<virt::FileTime> certificates;
  for (const pki::PemFile* file :
       {&input.set.ca_cert, &input.set.server_cert, &input.set.server_key,
        &input.set.client_cert, &input.set.client_key}) {
    if (file->pem.empty()) continue;
    auto time = virt::read_file_time(file->label);
    if (time && time.value()) certificates.push_back(*time.value());
  }

  std::string pid_file;
  auto process = find_daemon(string_param(input.params, "libvirtd_pid_file"),
                             input.paths, pid_file);
  if (process) {
    libvirt["daemon_pid"] = process->pid;
    libvirt["daemon_started"] = pki::format_time(process->start_time);
  }
  checks.push_back(virt::check_config_loaded(process, pid_file,
                                             *conf_time.value(), certificates));
}

void add_daemon_checks(const ReadinessInput& input, const Context& context,
                       json& data, util::Checks& checks) {
  const Params& params = input.params;
  json& libvirt = data["libvirt"];
  libvirt = {{"checked", false}};
  if (!params["check_libvirt"].get<bool>()) return;
  // The daemon and its pid file belong to the real host, so comparing them
  // with a sandbox's qemu.conf would report on two different systems.
  if (util::under_root(input.paths.root, "/") != "/") {
    libvirt["reason"] = "root is " + input.paths.root +
                        ", a sandbox, and the daemon checks concern the "
                        "libvirt of this host's own /";
    return;
  }
  libvirt["checked"] = true;

  const std::string uri = string_param(params, "libvirt_uri");
  const int timeout_seconds = params["libvirt_timeout"].get<int>();
  libvirt["uri"] = uri;
  if (timeout_seconds <= 0) {
    checks.push_back({"libvirt.connect", CheckStatus::failed, "",
                      "libvirt_timeout is " + std::to_string(timeout_seconds) +
                          "; expected a number of seconds greater than 0"});
    return;
  }
  if (context.progress) context.progress("Connecting to " + uri);
  const std::chrono::milliseconds timeout =
      std::chrono::seconds(timeout_seconds);
  const virt::DaemonProbe probe = virt::probe_daemon(uri, timeout);
  auto daemon_checks = virt::check_daemon(uri, probe, timeout);
  checks.insert(checks.end(), daemon_checks.begin(), daemon_checks.end());

  const virt::DaemonFacts& facts = probe.facts;
  libvirt["connected"] = facts.connected;
  libvirt["timed_out"] = probe.timed_out;
  libvirt["seconds"] = probe.seconds;
  if (!facts.connected) return;
  libvirt["read_only"] = facts.read_only;
  libvirt["version"] = virt::version_text(facts.library_version);
  libvirt["qemu_version"] = virt::version_text(facts.hypervisor_version);
  libvirt["emulator"] = facts.emulator.empty() ? json() : json(facts.emulator);
  // The pid file and /proc describe the daemon on this host only.
  if (is_local_uri(uri)) add_config_loaded_check(input, libvirt, checks);
}

}  // namespace

OptionSpecs readiness_options() {
  return {
      {"libvirt_uri",
       OptionType::str,
       "URI of the libvirt daemon to check.",
       "qemu:///system",
       {},
       false,
       false,
       {}},
      {"libvirt_timeout",
       OptionType::integer,
       "Seconds to wait for libvirt to connect and respond before the "
       "libvirt.connect check fails.",
       30,
       {},
       false,
       false,
       {}},
      {"check_libvirt",
       OptionType::boolean,
       "Check the libvirt daemon: connection, versions and whether it runs "
       "with qemu.conf as on disk. false skips those checks, and so does a "
       "root other than /.",
       true,
       {},
       false,
       false,
       {}},
      {"libvirtd_pid_file",
       OptionType::path,
       "Pid file of the libvirt daemon, to find when it started. When the "
       "default is missing, /run/virtqemud.pid is tried.",
       k_default_pid_file,
       {},
       false,
       false,
       {}},
      {"peer_ca_cert",
       OptionType::str,
       "The peer host's ca-cert.pem, as PEM text or a path on this host. With "
       "peer_server_cert, checks that the two hosts accept each other.",
       nullptr,
       {},
       false,
       false,
       {}},
      {"peer_server_cert",
       OptionType::str,
       "The peer host's server-cert.pem, as PEM text or a path on this host.",
       nullptr,
       {},
       false,
       false,
       {}},
      {"peer_name",
       OptionType::str,
       "Host name this host connects to when it migrates to the peer; the "
       "peer's server certificate must carry it.",
       nullptr,
       {},
       false,
       false,
       {}},
  };
}

util::Checks readiness_checks(const ReadinessInput& input,
                              const Context& context, nlohmann::json& data) {
  util::Checks checks;
  add_daemon_checks(input, context, data, checks);

  // The certificate set was read only when cert_dir exists; the labels are
  // set then, even for missing files.
  const bool set_read = !input.set.ca_cert.label.empty();
  if (!input.cert_dir.empty() && set_read) {
    add_permission_checks(input, checks);
    const std::string qemu_conf =
        input.loaded ? input.loaded->file
                     : input.paths.resolve(input.paths.qemu_conf);
    checks.push_back(
        virt::check_client_auth(input.set, input.settings.verify, qemu_conf));
  }

  const Params& params = input.params;
  if (!string_param(params, "peer_ca_cert").empty() ||
      !string_param(params, "peer_server_cert").empty() ||
      !string_param(params, "peer_name").empty()) {
    add_pair_checks(input, checks);
  }
  return checks;
}

}  // namespace qmt::ops
