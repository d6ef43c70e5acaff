#pragma once

#include <optional>
#include <string>

#include "ops/host.hpp"
#include "ops/operation.hpp"
#include "pki/checks.hpp"

namespace qmt::ops {

// Inputs the info operation already read, passed to the libvirt checks.
struct ReadinessInput {
  const Params& params;
  const HostPaths& paths;
  const std::optional<LoadedQemuConf>& loaded;
  const MigrationSettings& settings;
  const QemuAccount& account;
  const std::string& cert_dir;
  const pki::CertificateSet& set;
};

// Options of the libvirt readiness checks, appended to the info operation.
OptionSpecs readiness_options();

// Runs the libvirt readiness checks (daemon, versions, file permissions for
// the QEMU account, peer pair check) and adds facts to `data`.
util::Checks readiness_checks(const ReadinessInput& input,
                              const Context& context, nlohmann::json& data);

}  // namespace qmt::ops
