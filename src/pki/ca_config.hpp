#pragma once

#include <string>

#include "pki/ca.hpp"
#include "util/result.hpp"

namespace qmt::pki {

// Reads CA settings from the YAML map in `path` on top of `defaults`. Keys:
// subject ("/O=x/CN=y"), key_type (as parse_key_type), validity_days and
// cert_validity_days (whole days, 1 to k_max_validity_days) and index_path
// (a relative path is taken from the config file's folder). An empty file
// changes nothing. An unknown or repeated key, or a value of the wrong type,
// is an error naming the file, the line, the key and the value. An error for
// invalid YAML names yaml-cpp's line and column.
util::Result<CaSettings> load_ca_config(const std::string& path,
                                        CaSettings defaults);

}  // namespace qmt::pki
