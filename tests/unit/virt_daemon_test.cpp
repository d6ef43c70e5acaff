#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>

#include "pki_test_support.hpp"
#include "util/files.hpp"
#include "virt/daemon.hpp"
#include "virt/readiness.hpp"

namespace {

using qmt::pki::testing::TempDir;
using qmt::util::CheckStatus;

void write_text(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(
      std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

// A /proc/PID/stat line with `name`, `state` and start time `ticks`.
std::string stat_line(const std::string& pid, const std::string& name,
                      const std::string& state, const std::string& ticks) {
  std::string line = pid + " (" + name + ") " + state;
  // Fields 4 to 21 do not matter here.
  for (int field = 4; field <= 21; ++field) line += " 0";
  return line + " " + ticks + " 0 0\n";
}

// A fake /proc with a boot time and one process.
class FakeProc {
 public:
  FakeProc() : m_dir("qmt-virt-proc") {
    write_text(proc() + "/stat", "cpu  1 2 3\nbtime 1700000000\nprocesses 9\n");
  }
  std::string proc() const { return m_dir.path() + "/proc"; }
  std::string pid_file() const { return m_dir.path() + "/libvirtd.pid"; }
  void add(const std::string& pid, const std::string& line) {
    write_text(proc() + "/" + pid + "/stat", line);
  }

 private:
  TempDir m_dir;
};

TEST(ReadDaemonProcess, StartTimeFromTicks) {
  FakeProc fake;
  write_text(fake.pid_file(), "1234\n");
  fake.add("1234", stat_line("1234", "libvirtd", "S", "12345"));
  auto process = qmt::virt::read_daemon_process(fake.pid_file(), fake.proc());
  ASSERT_TRUE(process.ok()) << process.error().message;
  EXPECT_EQ(process->pid, 1234);
  EXPECT_EQ(process->name, "libvirtd");
  const long ticks_per_second = ::sysconf(_SC_CLK_TCK);
  EXPECT_EQ(process->start_time, 1700000000 + 12345 / ticks_per_second);
}

TEST(ReadDaemonProcess, NameWithParentheses) {
  FakeProc fake;
  write_text(fake.pid_file(), "77");
  fake.add("77", stat_line("77", "a) (b c", "S", "100"));
  auto process = qmt::virt::read_daemon_process(fake.pid_file(), fake.proc());
  ASSERT_TRUE(process.ok()) << process.error().message;
  EXPECT_EQ(process->name, "a) (b c");
}

TEST(ReadDaemonProcess, MissingPidFile) {
  FakeProc fake;
  auto process = qmt::virt::read_daemon_process(fake.pid_file(), fake.proc());
  ASSERT_FALSE(process.ok());
  EXPECT_EQ(process.error().message, "Failed to read " + fake.pid_file() +
                                         ": No such file or directory");
}

TEST(ReadDaemonProcess, InvalidPidFile) {
  FakeProc fake;
  write_text(fake.pid_file(), "libvirtd\n");
  auto process = qmt::virt::read_daemon_process(fake.pid_file(), fake.proc());
  ASSERT_FALSE(process.ok());
  EXPECT_EQ(process.error().message,
            fake.pid_file() + " contains \"libvirtd\", expected a process id");
}

TEST(ReadDaemonProcess, ProcessNotRunning) {
  FakeProc fake;
  write_text(fake.pid_file(), "4321\n");
  auto process = qmt::virt::read_daemon_process(fake.pid_file(), fake.proc());
  ASSERT_FALSE(process.ok());
  EXPECT_EQ(process.error().message,
            fake.pid_file() + " names process 4321, which is not running");
}

TEST(ReadDaemonProcess, ZombieProcess) {
  FakeProc fake;
  write_text(fake.pid_file(), "55\n");
  fake.add("55", stat_line("55", "libvirtd", "Z", "100"));
  auto process = qmt::virt::read_daemon_process(fake.pid_file(), fake.proc());
  ASSERT_FALSE(process.ok());
  EXPECT_EQ(process.error().message,
            fake.pid_file() + " names process 55 (libvirtd), which has exited");
}

TEST(ReadDaemonProcess, ShortStatLine) {
  FakeProc fake;
  write_text(fake.pid_file(), "56\n");
  fake.add("56", "56 (libvirtd) S 1 2 3\n");
  auto process = qmt::virt::read_daemon_process(fake.pid_file(), fake.proc());
  ASSERT_FALSE(process.ok());
  EXPECT_EQ(process.error().message,
            fake.proc() + "/56/stat has 6 fields, expected at least 22");
}

TEST(ReadDaemonProcess, OwnProcess) {
  TempDir dir("qmt-virt-pid");
  const std::string pid_file = dir.path() + "/self.pid";
  write_text(pid_file, std::to_string(::getpid()) + "\n");
  auto process = qmt::virt::read_daemon_process(pid_file);
  ASSERT_TRUE(process.ok()) << process.error().message;
  EXPECT_EQ(process->pid, ::getpid());
  EXPECT_EQ(process->name, "qmt-unit-tests");
  const std::int64_t now = std::time(nullptr);
  EXPECT_LE(process->start_time, now);
  EXPECT_GT(process->start_time, now - 3600);
}

TEST(EmulatorFromDomainCapabilities, ReadsPath) {
  EXPECT_EQ(qmt::virt::emulator_from_domain_capabilities(
                "<domainCapabilities>\n  <path>/usr/bin/qemu-system-x86_64"
                "</path>\n  <domain>kvm</domain>\n</domainCapabilities>"),
            "/usr/bin/qemu-system-x86_64");
  EXPECT_EQ(
      qmt::virt::emulator_from_domain_capabilities("<domainCapabilities/>"),
      "");
}

TEST(ProbeDaemon, TestDriver) {
  auto probe =
      qmt::virt::probe_daemon("test:///default", std::chrono::seconds(30));
  ASSERT_FALSE(probe.timed_out);
  ASSERT_TRUE(probe.facts.connected) << probe.facts.error;
  EXPECT_FALSE(probe.facts.read_only);
  EXPECT_GE(probe.facts.library_version, 3002000u);
  EXPECT_EQ(probe.facts.hypervisor_type, "TEST");

  auto checks = qmt::virt::check_daemon("test:///default", probe,
                                        std::chrono::seconds(30));
  ASSERT_EQ(checks.size(), 3u);
  EXPECT_EQ(checks[0].name, "libvirt.connect");
  EXPECT_EQ(checks[0].status, CheckStatus::ok);
  EXPECT_EQ(checks[1].name, "libvirt.version");
  EXPECT_EQ(checks[2].name, "libvirt.qemu-version");
  EXPECT_EQ(checks[2].status, CheckStatus::failed);
  EXPECT_EQ(checks[2].message,
            "test:///default is a TEST connection, not QEMU; expected a URI "
            "of libvirt's QEMU driver such as qemu:///system");
}

TEST(ProbeDaemon, MissingSocket) {
  TempDir dir("qmt-virt-sock");
  const std::string socket_path = dir.path() + "/libvirt-sock";
  const std::string uri = "qemu+unix:///system?socket=" + socket_path;
  auto probe = qmt::virt::probe_daemon(uri, std::chrono::seconds(30));
  EXPECT_FALSE(probe.timed_out);
  EXPECT_FALSE(probe.facts.connected);
  EXPECT_EQ(probe.facts.error,
            "Failed to connect to " + uri + ": Failed to connect socket to '" +
                socket_path + "': No such file or directory");
}

// A socket that accepts connections into its backlog and never replies,
// like a daemon that hangs.
TEST(ProbeDaemon, SilentDaemonTimesOut) {
  TempDir dir("qmt-virt-sock");
  const std::string socket_path = dir.path() + "/libvirt-sock";
  qmt::util::UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_TRUE(listener.valid());
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  socket_path.copy(address.sun_path, sizeof(address.sun_path) - 1);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&address),
                   sizeof(address)),
            0);
  ASSERT_EQ(::listen(listener.get(), 8), 0);

  const std::string uri = "qemu+unix:///system?socket=" + socket_path;
  const auto start = std::chrono::steady_clock::now();
  auto probe = qmt::virt::probe_daemon(uri, std::chrono::milliseconds(500));
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  EXPECT_TRUE(probe.timed_out);
  EXPECT_FALSE(probe.facts.connected);
  EXPECT_GE(waited, 0.5);
  EXPECT_LT(waited, 2.0);

  auto checks =
      qmt::virt::check_daemon(uri, probe, std::chrono::milliseconds(500));
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0].status, CheckStatus::failed);
  EXPECT_EQ(checks[0].message,
            "libvirt at " + uri +
                " did not respond within 0.5 s (libvirt_timeout): the daemon "
                "accepted no connection or sent no reply; check that it runs "
                "and responds (virsh -c " +
                uri + " version)");
  // Closing the listener resets the queued connection, which ends the
  // worker's blocked call.
}

}  // namespace
