#include "pki/yaml_text.hpp"

namespace qmt::pki {

util::Result<YAML::Node> parse_yaml(const std::string& text,
                                    const std::string& path) {
  try {
    return YAML::Load(text);
  } catch (const YAML::ParserException& error) {
    return util::Error{"Invalid YAML in " + path + " at line " +
                       std::to_string(error.mark.line + 1) + ", column " +
                       std::to_string(error.mark.column + 1) + ": " +
                       error.msg};
  }
}

}  // namespace qmt::pki
