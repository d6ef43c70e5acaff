#include <gtest/gtest.h>

#include <string>

#include "virt/migrate.hpp"
#include "virt/migrate_figures.hpp"
#include "virt/migrate_leg.hpp"

namespace {

constexpr std::uint64_t k_mib = 1024 * 1024;

TEST(MigrateFigures, ProgressLineFull) {
  EXPECT_EQ(qmt::virt::progress_line(123 * k_mib, 256 * k_mib, 95.3 * k_mib),
            "migrating: 123/256 MiB left, 95.3 MiB/s");
}

TEST(MigrateFigures, ProgressLineRoundsUp) {
  // Half a MiB left is still shown as 1, so the line reaches 0 only at the
  // end.
  EXPECT_EQ(qmt::virt::progress_line(k_mib / 2, 256 * k_mib, std::nullopt),
            "migrating: 1/256 MiB left");
}

TEST(MigrateFigures, ProgressLinePartial) {
  EXPECT_EQ(qmt::virt::progress_line(std::nullopt, std::nullopt, 2.5 * k_mib),
            "migrating: starting");
  EXPECT_EQ(qmt::virt::progress_line(0, 0, 0.0), "migrating: starting");
  EXPECT_EQ(qmt::virt::progress_line(std::nullopt, std::nullopt, std::nullopt),
            "migrating: starting");
  EXPECT_EQ(qmt::virt::progress_line(0, 256 * k_mib, 0.0),
            "migrating: 0/256 MiB left, 0.0 MiB/s");
}

TEST(MigrateFigures, MibPerSecond) {
  EXPECT_DOUBLE_EQ(*qmt::virt::mib_per_second(256 * k_mib, 2.0), 128.0);
  EXPECT_FALSE(qmt::virt::mib_per_second(k_mib, 0.0).has_value());
}

TEST(MigrateFigures, Median) {
  EXPECT_FALSE(qmt::virt::median({}).has_value());
  EXPECT_DOUBLE_EQ(*qmt::virt::median({3.0}), 3.0);
  EXPECT_DOUBLE_EQ(*qmt::virt::median({5.0, 1.0, 3.0}), 3.0);
  EXPECT_DOUBLE_EQ(*qmt::virt::median({4.0, 1.0, 3.0, 2.0}), 2.5);
}

TEST(MigrateFigures, RoundTo) {
  EXPECT_DOUBLE_EQ(qmt::virt::round_to(3.14159, 2), 3.14);
  EXPECT_DOUBLE_EQ(qmt::virt::round_to(2.5, 0), 3.0);
}

TEST(MigrateUri, Host) {
  EXPECT_EQ(qmt::virt::uri_host("qemu+tcp://h2.lab.test/system"),
            "h2.lab.test");
  EXPECT_EQ(qmt::virt::uri_host("qemu+ssh://root@h2.lab.test:2222/system"),
            "h2.lab.test");
  EXPECT_EQ(qmt::virt::uri_host("tcp://10.213.7.12"), "10.213.7.12");
  EXPECT_EQ(qmt::virt::uri_host("tcp://10.213.7.12:49152"), "10.213.7.12");
  EXPECT_EQ(qmt::virt::uri_host("tcp://[fd00::2]:49152"), "fd00::2");
  EXPECT_EQ(qmt::virt::uri_host("qemu:///system"), "");
  EXPECT_EQ(qmt::virt::uri_host("h2.lab.test"), "");
  EXPECT_EQ(qmt::virt::uri_host("qemu+tcp://h2?x=1"), "h2");
}

TEST(MigrateUri, ReplaceHost) {
  EXPECT_EQ(qmt::virt::replace_uri_host("qemu+tcp://h2.lab.test/system",
                                        "h1.lab.test"),
            "qemu+tcp://h1.lab.test/system");
  EXPECT_EQ(qmt::virt::replace_uri_host(
                "qemu+ssh://root@h2.lab.test:2222/system?no_verify=1", "h1"),
            "qemu+ssh://root@h1:2222/system?no_verify=1");
  EXPECT_EQ(qmt::virt::replace_uri_host("qemu+tls://h2/system", "fd00::1"),
            "qemu+tls://[fd00::1]/system");
  EXPECT_EQ(qmt::virt::replace_uri_host("qemu+tls://[fd00::2]/system", "h1"),
            "qemu+tls://h1/system");
  EXPECT_EQ(qmt::virt::replace_uri_host("qemu:///system", "h1"), "");
}

TEST(MigrateRequest, Flags) {
  qmt::virt::MigrationRequest request;
  EXPECT_EQ(qmt::virt::migration_flags(request),
            static_cast<unsigned>(VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_LIVE));
  request.encrypted = true;
  request.parallel_connections = 4;
  request.unsafe = true;
  EXPECT_EQ(qmt::virt::migration_flags(request),
            static_cast<unsigned>(VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_LIVE |
                                  VIR_MIGRATE_TLS | VIR_MIGRATE_PARALLEL |
                                  VIR_MIGRATE_UNSAFE));
  request.parallel_connections = 1;
  EXPECT_EQ(qmt::virt::migration_flags(request) & VIR_MIGRATE_PARALLEL, 0u);
}

TEST(MigrateRequest, ParamsEncrypted) {
  qmt::virt::MigrationRequest request;
  request.migration_address = "tcp://10.213.7.12";
  request.tls_destination = "h2.lab.test";
  request.encrypted = true;
  request.bandwidth_mib_s = 119;
  request.parallel_connections = 4;
  auto params = qmt::virt::migration_params(request);
  ASSERT_TRUE(params.ok()) << params.error().message;
  EXPECT_EQ(params->size(), 4);
  EXPECT_EQ(params->get_string(VIR_MIGRATE_PARAM_URI), "tcp://10.213.7.12");
  EXPECT_EQ(params->get_string(VIR_MIGRATE_PARAM_TLS_DESTINATION),
            "h2.lab.test");
  EXPECT_EQ(params->get_unsigned(VIR_MIGRATE_PARAM_BANDWIDTH), 119u);
  EXPECT_EQ(params->get_unsigned(VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS), 4u);
}

TEST(MigrateRequest, ParamsPlainSkipsTlsName) {
  qmt::virt::MigrationRequest request;
  request.tls_destination = "h2.lab.test";
  auto params = qmt::virt::migration_params(request);
  ASSERT_TRUE(params.ok()) << params.error().message;
  EXPECT_EQ(params->size(), 0);
  EXPECT_FALSE(
      params->get_string(VIR_MIGRATE_PARAM_TLS_DESTINATION).has_value());
}

TEST(MigrateRequest, StateNames) {
  EXPECT_STREQ(qmt::virt::domain_state_name(VIR_DOMAIN_RUNNING), "running");
  EXPECT_STREQ(qmt::virt::domain_state_name(VIR_DOMAIN_PAUSED), "paused");
  EXPECT_STREQ(qmt::virt::domain_state_name(VIR_DOMAIN_SHUTOFF), "shut off");
  EXPECT_STREQ(qmt::virt::domain_state_name(99), "unknown");
}

TEST(MigrateMessages, SourceLog) {
  const std::string log =
      "2026-12-04 17:20:14.452+0000: Domain id=1 is tainted: high-privileges\n"
      "2026-12-04 17:20:17.047+0000: initiating migration\n"
      "Certificate does not match the hostname 10.213.7.12\n";
  EXPECT_EQ(qmt::virt::summarize_qemu_messages(log),
            "Certificate does not match the hostname 10.213.7.12");
}

TEST(MigrateMessages, ClientError) {
  const std::string error =
      "internal error: qemu unexpectedly closed the monitor: "
      "2026-12-04T17:20:17.103930Z qemu-system-x86_64: Cannot read from TLS "
      "channel: Input/output error\n"
      "2026-12-04T17:20:17.104098Z qemu-system-x86_64: Cannot read from TLS "
      "channel: Input/output error\n"
      "2026-12-04T17:20:17.104117Z qemu-system-x86_64: Not a migration "
      "stream\r\n";
  EXPECT_EQ(qmt::virt::summarize_qemu_messages(error),
            "internal error: qemu unexpectedly closed the monitor: Cannot read "
            "from TLS channel: Input/output error; Cannot read from TLS "
            "channel: Input/output error; Not a migration stream");
}

TEST(MigrateMessages, RepeatsAndBlanks) {
  EXPECT_EQ(qmt::virt::summarize_qemu_messages("a\n\na\nb\n"), "a; b");
  EXPECT_EQ(qmt::virt::summarize_qemu_messages(""), "");
}

}  // namespace
