#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

#include "util/result.hpp"

namespace qmt::pki {

// Parses YAML `text` read from `path`. A syntax error names the file, the
// line and the column (counted from 1) and yaml-cpp's message.
util::Result<YAML::Node> parse_yaml(const std::string& text,
                                    const std::string& path);

}  // namespace qmt::pki
