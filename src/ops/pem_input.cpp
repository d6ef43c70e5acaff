#include "ops/pem_input.hpp"

namespace qmt::ops {

util::Result<pki::PemFile> read_pem_option(const Params& params,
                                           const std::string& option,
                                           const HostPaths& paths) {
  if (!params.contains(option) || !params[option].is_string()) {
    return pki::PemFile{option, ""};
  }
  const std::string value = params[option].get<std::string>();
  if (value.find("-----BEGIN") != std::string::npos) {
    return pki::PemFile{option, value};
  }
  const std::string file = paths.resolve(value);
  auto content = util::read_file(file);
  if (!content) {
    return util::Error{"Option " + option + ": " + content.error().message};
  }
  return pki::PemFile{file, content.value()};
}

}  // namespace qmt::ops
