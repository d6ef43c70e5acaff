#pragma once

#include <optional>
#include <string>
#include <vector>

#include "util/result.hpp"

namespace qmt::virt {

// A per-VM or per-cluster encryption setting as management engines store
// it: on, off, or "inherit" to pass the decision to the next level.
enum class EncryptionSetting { enabled, disabled, inherit };

// Parses "true", "false" or "inherit" (also yes/no, on/off, 1/0). The error
// names `option` and the value.
util::Result<EncryptionSetting> parse_encryption_setting(
    const std::string& option, const std::string& text);

// Returns "true", "false" or "inherit".
const char* to_string(EncryptionSetting setting);

// A cluster compatibility level such as "4.4", compared part by part as
// numbers, so "4.10" is above "4.4" and "5" is above "4.9".
struct ClusterLevel {
  std::string text;
  std::vector<unsigned> parts;
};

// Parses dot-separated decimal numbers ("4", "4.4", "4.10.1"). The error
// names the value.
util::Result<ClusterLevel> parse_cluster_level(const std::string& text);

// Returns a negative number, zero or a positive number as `left` is below,
// equal to or above `right`. Missing parts count as 0 ("4" equals "4.0").
int compare_cluster_levels(const ClusterLevel& left, const ClusterLevel& right);

// The lowest cluster level at which encrypted migration is offered.
inline constexpr const char* k_min_encrypted_cluster_level = "4.4";

// The caller's encryption inputs, as the module options carry them.
struct EncryptionInputs {
  std::optional<bool> encrypted;  // explicit choice; decides alone when set
  EncryptionSetting vm = EncryptionSetting::inherit;
  EncryptionSetting cluster = EncryptionSetting::inherit;
  bool default_encrypted = false;
  std::optional<std::string> cluster_level;  // unset: no level limit applies
};

// Decision of the encryption resolution, with its reason.
struct EncryptionDecision {
  bool encrypted = false;  // what the migration does
  bool requested = false;  // what the settings asked for, before the level
  // The option that decided: encrypted, vm_encrypted, cluster_encrypted or
  // default_encrypted.
  std::string decided_by;
  std::string reason;   // a sentence for `encryption_reason`
  std::string warning;  // set when a request for encryption was not honoured
};

// Resolves whether to encrypt: `encrypted` when given, else vm_encrypted,
// then cluster_encrypted (inherit passes on), then default_encrypted.
// Encryption is only offered at cluster level 4.4 or higher; below it the
// decision is "not encrypted" with a warning. An unparsable cluster level is
// an error.
util::Result<EncryptionDecision> resolve_encryption(
    const EncryptionInputs& inputs);

}  // namespace qmt::virt
