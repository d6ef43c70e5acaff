#include "virt/migrate_policy.hpp"

#include <algorithm>
#include <cctype>
#include <set>

namespace qmt::virt {

namespace {

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return text;
}

std::string setting_clause(const char* option, EncryptionSetting setting) {
  return std::string(option) + " is " + to_string(setting);
}

}  // namespace

util::Result<EncryptionSetting> parse_encryption_setting(
    const std::string& option, const std::string& text) {
  static const std::set<std::string> k_true = {"true", "yes", "on", "1"};
  static const std::set<std::string> k_false = {"false", "no", "off", "0"};
  const std::string value = lowercase(text);
  if (k_true.count(value)) return EncryptionSetting::enabled;
  if (k_false.count(value)) return EncryptionSetting::disabled;
  if (value == "inherit") return EncryptionSetting::inherit;
  return util::Error{"Invalid value for option " + option + ": '" + text +
                     "' is not one of true, false, inherit"};
}

const char* to_string(EncryptionSetting setting) {
  switch (setting) {
    case EncryptionSetting::enabled:
      return "true";
    case EncryptionSetting::disabled:
      return "false";
    case EncryptionSetting::inherit:
      return "inherit";
  }
  return "inherit";
}

util::Result<ClusterLevel> parse_cluster_level(const std::string& text) {
  ClusterLevel level;
  level.text = text;
  const util::Error invalid{"Invalid cluster_level '" + text +
                            "': expected numbers separated by dots, such as "
                            "4.4"};
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = text.find('.', start);
    const std::string part = text.substr(
        start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty() || part.size() > 9) return invalid;
    for (char c : part) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return invalid;
    }
    level.parts.push_back(static_cast<unsigned>(std::stoul(part)));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return level;
}

int compare_cluster_levels(const ClusterLevel& left,
                           const ClusterLevel& right) {
  const std::size_t count = std::max(left.parts.size(), right.parts.size());
  for (std::size_t i = 0; i < count; ++i) {
    const unsigned a = i < left.parts.size() ? left.parts[i] : 0;
    const unsigned b = i < right.parts.size() ? right.parts[i] : 0;
    if (a != b) return a < b ? -1 : 1;
  }
  return 0;
}

util::Result<EncryptionDecision> resolve_encryption(
    const EncryptionInputs& inputs) {
  EncryptionDecision decision;
  if (inputs.encrypted) {
    decision.requested = *inputs.encrypted;
    decision.decided_by = "encrypted";
    decision.reason =
        std::string("encrypted is ") + (*inputs.encrypted ? "true" : "false");
  } else if (inputs.vm != EncryptionSetting::inherit) {
    decision.requested = inputs.vm == EncryptionSetting::enabled;
    decision.decided_by = "vm_encrypted";
    decision.reason =
        "encrypted is not set and " + setting_clause("vm_encrypted", inputs.vm);
  } else if (inputs.cluster != EncryptionSetting::inherit) {
    decision.requested = inputs.cluster == EncryptionSetting::enabled;
    decision.decided_by = "cluster_encrypted";
    decision.reason = "encrypted is not set, vm_encrypted is inherit and " +
                      setting_clause("cluster_encrypted", inputs.cluster);
  } else {
    decision.requested = inputs.default_encrypted;
    decision.decided_by = "default_encrypted";
    decision.reason =
        std::string(
            "encrypted is not set and vm_encrypted and "
            "cluster_encrypted are inherit, so default_encrypted (") +
        (inputs.default_encrypted ? "true" : "false") + ") applies";
  }
  decision.encrypted = decision.requested;

  if (inputs.cluster_level) {
    auto level = parse_cluster_level(*inputs.cluster_level);
    if (!level) return level.error();
    auto minimum = parse_cluster_level(k_min_encrypted_cluster_level);
    const bool below = compare_cluster_levels(level.value(), *minimum) < 0;
    if (below && decision.requested) {
      decision.encrypted = false;
      decision.warning = "Migration is not encrypted although " +
                         decision.decided_by + " requests it: cluster level " +
                         level->text + " is below " +
                         k_min_encrypted_cluster_level +
                         ", the first level that offers encrypted migration";
      decision.reason += "; cluster level " + level->text + " is below " +
                         k_min_encrypted_cluster_level +
                         ", so encryption is not offered";
    }
  }
  return decision;
}

}  // namespace qmt::virt
