#pragma once

#include <string>

#include "ops/host.hpp"
#include "pki/checks.hpp"
#include "util/result.hpp"

namespace qmt::ops {

// Resolves an option that contains either PEM text or the path of a PEM file
// on this host. The label names the option, or the file, in messages.
// A missing value gives an empty PemFile.
util::Result<pki::PemFile> read_pem_option(const Params& params,
                                           const std::string& option,
                                           const HostPaths& paths);

}  // namespace qmt::ops
