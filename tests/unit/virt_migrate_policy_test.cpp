#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "virt/migrate_policy.hpp"

namespace {

using qmt::virt::EncryptionDecision;
using qmt::virt::EncryptionInputs;
using qmt::virt::EncryptionSetting;

EncryptionDecision resolve(const EncryptionInputs& inputs) {
  auto decision = qmt::virt::resolve_encryption(inputs);
  EXPECT_TRUE(decision.ok()) << decision.error().message;
  return decision.ok() ? decision.value() : EncryptionDecision{};
}

int compare_levels(const std::string& left, const std::string& right) {
  auto a = qmt::virt::parse_cluster_level(left);
  auto b = qmt::virt::parse_cluster_level(right);
  EXPECT_TRUE(a.ok()) << left;
  EXPECT_TRUE(b.ok()) << right;
  return qmt::virt::compare_cluster_levels(a.value(), b.value());
}

TEST(MigratePolicy, ParsesSettings) {
  EXPECT_EQ(qmt::virt::parse_encryption_setting("vm_encrypted", "true").value(),
            EncryptionSetting::enabled);
  EXPECT_EQ(qmt::virt::parse_encryption_setting("vm_encrypted", "No").value(),
            EncryptionSetting::disabled);
  EXPECT_EQ(
      qmt::virt::parse_encryption_setting("vm_encrypted", "inherit").value(),
      EncryptionSetting::inherit);
  auto invalid = qmt::virt::parse_encryption_setting("cluster_encrypted", "x");
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(invalid.error().message,
            "Invalid value for option cluster_encrypted: 'x' is not one of "
            "true, false, inherit");
}

TEST(MigratePolicy, ComparesLevelsNumerically) {
  EXPECT_GT(compare_levels("4.10", "4.4"), 0);
  EXPECT_LT(compare_levels("4.3", "4.4"), 0);
  EXPECT_EQ(compare_levels("4.4", "4.4"), 0);
  EXPECT_EQ(compare_levels("4.4.0", "4.4"), 0);
  EXPECT_EQ(compare_levels("4", "4.0"), 0);
  EXPECT_GT(compare_levels("5", "4.9"), 0);
  EXPECT_LT(compare_levels("3.99", "4.4"), 0);
  EXPECT_GT(compare_levels("4.4.1", "4.4"), 0);
}

TEST(MigratePolicy, RejectsInvalidLevels) {
  for (const std::string text :
       {"", "4.", ".4", "4..4", "4.x", "v4.4", "4.4 ", "-4.4", "1234567890"}) {
    auto level = qmt::virt::parse_cluster_level(text);
    ASSERT_FALSE(level.ok()) << text;
    EXPECT_EQ(level.error().message,
              "Invalid cluster_level '" + text +
                  "': expected numbers separated by dots, such as 4.4");
  }
}

TEST(MigratePolicy, ExplicitChoiceDecides) {
  EncryptionInputs inputs;
  inputs.encrypted = true;
  inputs.vm = EncryptionSetting::disabled;
  inputs.cluster = EncryptionSetting::disabled;
  EncryptionDecision decision = resolve(inputs);
  EXPECT_TRUE(decision.encrypted);
  EXPECT_EQ(decision.decided_by, "encrypted");
  EXPECT_EQ(decision.reason, "encrypted is true");
  EXPECT_EQ(decision.warning, "");
}

TEST(MigratePolicy, MissingMeansUnencrypted) {
  EncryptionDecision decision = resolve(EncryptionInputs{});
  EXPECT_FALSE(decision.encrypted);
  EXPECT_EQ(decision.decided_by, "default_encrypted");
  EXPECT_EQ(decision.reason,
            "encrypted is not set and vm_encrypted and cluster_encrypted are "
            "inherit, so default_encrypted (false) applies");
}

TEST(MigratePolicy, VmSettingBeforeCluster) {
  EncryptionInputs inputs;
  inputs.vm = EncryptionSetting::enabled;
  inputs.cluster = EncryptionSetting::disabled;
  EncryptionDecision decision = resolve(inputs);
  EXPECT_TRUE(decision.encrypted);
  EXPECT_EQ(decision.decided_by, "vm_encrypted");
  EXPECT_EQ(decision.reason, "encrypted is not set and vm_encrypted is true");
}

TEST(MigratePolicy, ClusterSettingWhenVmInherits) {
  EncryptionInputs inputs;
  inputs.cluster = EncryptionSetting::enabled;
  inputs.default_encrypted = false;
  EncryptionDecision decision = resolve(inputs);
  EXPECT_TRUE(decision.encrypted);
  EXPECT_EQ(decision.decided_by, "cluster_encrypted");
  EXPECT_EQ(decision.reason,
            "encrypted is not set, vm_encrypted is inherit and "
            "cluster_encrypted is true");
}

TEST(MigratePolicy, LowLevelDowngrades) {
  EncryptionInputs inputs;
  inputs.encrypted = true;
  inputs.cluster_level = "4.3";
  EncryptionDecision decision = resolve(inputs);
  EXPECT_FALSE(decision.encrypted);
  EXPECT_TRUE(decision.requested);
  EXPECT_EQ(decision.reason,
            "encrypted is true; cluster level 4.3 is below 4.4, so "
            "encryption is not offered");
  EXPECT_EQ(decision.warning,
            "Migration is not encrypted although encrypted requests it: "
            "cluster level 4.3 is below 4.4, the first level that offers "
            "encrypted migration");
}

TEST(MigratePolicy, HighLevelKeepsEncryption) {
  EncryptionInputs inputs;
  inputs.vm = EncryptionSetting::enabled;
  inputs.cluster_level = "4.10";
  EncryptionDecision decision = resolve(inputs);
  EXPECT_TRUE(decision.encrypted);
  EXPECT_EQ(decision.warning, "");
}

TEST(MigratePolicy, InvalidLevelIsError) {
  EncryptionInputs inputs;
  inputs.cluster_level = "four";
  auto decision = qmt::virt::resolve_encryption(inputs);
  ASSERT_FALSE(decision.ok());
  EXPECT_EQ(decision.error().message,
            "Invalid cluster_level 'four': expected numbers separated by "
            "dots, such as 4.4");
}

// Every combination of the five inputs against the rule written out: the
// first set value of encrypted, vm_encrypted, cluster_encrypted (inherit
// passes on) and default_encrypted decides, and below level 4.4 nothing is
// encrypted.
TEST(MigratePolicy, EveryCombination) {
  const std::vector<std::optional<bool>> explicit_values = {std::nullopt, true,
                                                            false};
  const std::vector<EncryptionSetting> settings = {EncryptionSetting::enabled,
                                                   EncryptionSetting::disabled,
                                                   EncryptionSetting::inherit};
  const std::vector<std::optional<std::string>> levels = {
      std::nullopt, "4.3", "4.4", "4.10", "3", "5.0"};
  int cases = 0;
  for (const auto& encrypted : explicit_values) {
    for (const auto vm : settings) {
      for (const auto cluster : settings) {
        for (const bool fallback : {false, true}) {
          for (const auto& level : levels) {
            EncryptionInputs inputs;
            inputs.encrypted = encrypted;
            inputs.vm = vm;
            inputs.cluster = cluster;
            inputs.default_encrypted = fallback;
            inputs.cluster_level = level;

            bool requested = fallback;
            std::string decided_by = "default_encrypted";
            if (encrypted) {
              requested = *encrypted;
              decided_by = "encrypted";
            } else if (vm != EncryptionSetting::inherit) {
              requested = vm == EncryptionSetting::enabled;
              decided_by = "vm_encrypted";
            } else if (cluster != EncryptionSetting::inherit) {
              requested = cluster == EncryptionSetting::enabled;
              decided_by = "cluster_encrypted";
            }
            const bool low = level && (*level == "4.3" || *level == "3");
            const std::string label =
                "encrypted=" +
                std::string(encrypted ? (*encrypted ? "true" : "false")
                                      : "unset") +
                " vm=" + qmt::virt::to_string(vm) +
                " cluster=" + qmt::virt::to_string(cluster) +
                " default=" + (fallback ? "true" : "false") +
                " level=" + level.value_or("unset");

            EncryptionDecision decision = resolve(inputs);
            EXPECT_EQ(decision.requested, requested) << label;
            EXPECT_EQ(decision.encrypted, requested && !low) << label;
            EXPECT_EQ(decision.decided_by, decided_by) << label;
            EXPECT_EQ(decision.warning.empty(), !(requested && low)) << label;
            EXPECT_FALSE(decision.reason.empty()) << label;
            ++cases;
          }
        }
      }
    }
  }
  EXPECT_EQ(cases, 3 * 3 * 3 * 2 * 6);
}

}  // namespace
