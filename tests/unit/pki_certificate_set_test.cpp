#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "pki/certificate_set.hpp"
#include "pki_test_support.hpp"
#include "util/files.hpp"

namespace {

namespace fs = std::filesystem;
using qmt::pki::FileChange;
using qmt::pki::InstallRequest;
using qmt::pki::SetPlan;
using qmt::pki::testing::TempDir;
using qmt::util::Result;

// A request for the five files with contents tagged `version`. The content
// need not be PEM: installing does not parse it.
InstallRequest make_request(const std::string& cert_dir,
                            const std::string& version) {
  InstallRequest request;
  request.cert_dir = cert_dir;
  request.uid = ::getuid();
  request.gid = ::getgid();
  for (const auto& name : qmt::pki::certificate_file_names()) {
    const bool secret = name.find("-key") != std::string::npos;
    request.files.push_back({name, name + " " + version + "\n", secret});
  }
  return request;
}

std::string read_text(const std::string& path) {
  auto content = qmt::util::read_file(path);
  return content ? content.value() : "<" + content.error().message + ">";
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

mode_t mode_of(const std::string& path) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) return 0;
  return info.st_mode & 07777;
}

ino_t inode_of(const std::string& path) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) return 0;
  return info.st_ino;
}

// "name: what" lines, easy to compare and to read in a failure.
std::vector<std::string> change_lines(const SetPlan& plan) {
  std::vector<std::string> lines;
  for (const auto& change : plan.changes) {
    lines.push_back(change.name + ": " + change.what);
  }
  return lines;
}

// Which version of the set the folder holds: "v1", "v2", "none" when no file
// exists, or "mixed".
std::string installed_version(const std::string& cert_dir) {
  std::string version;
  for (const auto& name : qmt::pki::certificate_file_names()) {
    const std::string path = cert_dir + "/" + name;
    std::string found = "none";
    if (fs::exists(path)) {
      std::string content = read_text(path);
      found = content.substr(content.rfind(' ') + 1);
      found.pop_back();  // the newline
    }
    if (version.empty()) {
      version = found;
    } else if (version != found) {
      return "mixed";
    }
  }
  return version;
}

// Siblings of `cert_dir` left by an install: ".<name>.new-XXXXXX".
std::vector<std::string> staging_siblings(const std::string& cert_dir) {
  const fs::path path(cert_dir);
  const std::string prefix = "." + path.filename().string() + ".new-";
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator(path.parent_path())) {
    if (entry.path().filename().string().rfind(prefix, 0) == 0) {
      found.push_back(entry.path().string());
    }
  }
  return found;
}

// Entries that another part of the product keeps in the folder.
void add_unrelated_entries(const std::string& cert_dir) {
  ASSERT_EQ(::mkdir((cert_dir + "/.staging").c_str(), 0700), 0);
  write_text(cert_dir + "/.staging/server-key.pem", "staged key\n");
  write_text(cert_dir + "/notes.txt", "notes\n");
  ASSERT_EQ(::symlink("ca-cert.pem", (cert_dir + "/ca.pem").c_str()), 0);
}

void expect_unrelated_entries(const std::string& cert_dir) {
  EXPECT_EQ(read_text(cert_dir + "/.staging/server-key.pem"), "staged key\n");
  EXPECT_EQ(mode_of(cert_dir + "/.staging"), 0700u);
  EXPECT_EQ(read_text(cert_dir + "/notes.txt"), "notes\n");
  EXPECT_TRUE(fs::is_symlink(cert_dir + "/ca.pem"));
  EXPECT_EQ(fs::read_symlink(cert_dir + "/ca.pem"), "ca-cert.pem");
}

// Sets or clears the immutable attribute, which makes a folder read-only
// even for root. Returns false when the file system or the process cannot.
bool set_immutable(const std::string& path, bool immutable) {
  qmt::util::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY));
  int flags = 0;
  if (!fd.valid() || ::ioctl(fd.get(), FS_IOC_GETFLAGS, &flags) != 0) {
    return false;
  }
  flags = immutable ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
  return ::ioctl(fd.get(), FS_IOC_SETFLAGS, &flags) == 0;
}

TEST(PkiInstall, CreatesMissingFolder) {
  TempDir dir;
  const std::string cert_dir = dir.path() + "/pki/qemu";
  InstallRequest request = make_request(cert_dir, "v1");

  auto plan = qmt::pki::plan_install(request);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_TRUE(plan->changed);
  EXPECT_EQ(change_lines(plan.value()),
            (std::vector<std::string>{
                ".: folder created", "ca-cert.pem: created",
                "server-cert.pem: created", "server-key.pem: created",
                "client-cert.pem: created", "client-key.pem: created"}));
  EXPECT_FALSE(fs::exists(dir.path() + "/pki"));  // planning changes nothing

  const mode_t old_umask = ::umask(077);  // parents still get 0755
  auto installed = qmt::pki::install_set(request);
  ::umask(old_umask);
  ASSERT_TRUE(installed.ok()) << installed.error().message;
  EXPECT_EQ(installed_version(cert_dir), "v1");
  EXPECT_EQ(mode_of(dir.path() + "/pki"), 0755u);
  EXPECT_EQ(mode_of(cert_dir), 0755u);
  EXPECT_EQ(mode_of(cert_dir + "/ca-cert.pem"), 0644u);
  EXPECT_EQ(mode_of(cert_dir + "/server-key.pem"), 0640u);
  EXPECT_EQ(mode_of(cert_dir + "/client-key.pem"), 0640u);
  EXPECT_TRUE(staging_siblings(cert_dir).empty());
}

TEST(PkiInstall, InstallsIntoEmptyFolder) {
  TempDir dir;
  const std::string cert_dir = dir.path() + "/qemu";
  ASSERT_EQ(::mkdir(cert_dir.c_str(), 0700), 0);
  InstallRequest request = make_request(cert_dir, "v1");

  auto plan = qmt::pki::plan_install(request);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->changes.front().name, ".");
  EXPECT_EQ(plan->changes.front().what, "folder mode 0700 -> 0755");

  auto installed = qmt::pki::install_set(request);
  ASSERT_TRUE(installed.ok()) << installed.error().message;
  EXPECT_EQ(installed_version(cert_dir), "v1");
  EXPECT_EQ(mode_of(cert_dir), 0755u);
  EXPECT_EQ(mode_of(cert_dir + "/server-key.pem"), 0640u);
  EXPECT_EQ(mode_of(cert_dir + "/server-cert.pem"), 0644u);
  EXPECT_TRUE(staging_siblings(cert_dir).empty());
}

TEST(PkiInstall, SecondPlanReportsNoChange) {
  TempDir dir;
  const std::string cert_dir = dir.path() + "/qemu";
  InstallRequest request = make_request(cert_dir, "v1");
  ASSERT_TRUE(qmt::pki::install_set(request).ok());
  const ino_t folder = inode_of(cert_dir);
  const ino_t key = inode_of(cert_dir + "/server-key.pem");

  auto plan = qmt::pki::plan_install(request);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_FALSE(plan->changed);
  EXPECT_TRUE(plan->changes.empty());

  ASSERT_TRUE(qmt::pki::install_set(request).ok());
  EXPECT_EQ(inode_of(cert_dir), folder);
  EXPECT_EQ(inode_of(cert_dir + "/server-key.pem"), key);
}

TEST(PkiInstall, DetectsContentChange) {
  TempDir dir;
  const std::string cert_dir = dir.path() + "/qemu";
  ASSERT_TRUE(qmt::pki::install_set(make_request(cert_dir, "v1")).ok());
  InstallRequest request = make_request(cert_dir, "v1");
  request.files[1].content = "server-cert.pem v2\n";

  auto plan = qmt::pki::plan_install(request);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(change_lines(plan.value()),
            std::vector<std::string>{"server-cert.pem: content changed"});

  ASSERT_TRUE(qmt::pki::install_set(request).ok());
  EXPECT_EQ(read_text(cert_dir + "/server-cert.pem"), "server-cert.pem v2\n");
  EXPECT_EQ(read_text(cert_dir + "/server-key.pem"), "server-key.pem v1\n");
  EXPECT_FALSE(qmt::pki::plan_install(request)->changed);
}

TEST(PkiInstall, FixesModeInPlace) {
  TempDir dir;
  const std::string cert_dir = dir.path() + "/qemu";
  InstallRequest request = make_request(cert_dir, "v1");
  ASSERT_TRUE(qmt::pki::install_set(request).ok());
  ASSERT_EQ(::chmod((cert_dir + "/server-key.pem").c_str(), 0644), 0);
  ASSERT_EQ(::chmod(cert_dir.c_str(), 0750), 0);
  const ino_t key = inode_of(cert_dir + "/server-key.pem");

  auto plan = qmt::pki::plan_install(request);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(change_lines(plan.value()),
            (std::vector<std::string>{".: folder mode 0750 -> 0755",
                                      "server-key.pem: mode 0644 -> 0640"}));

  ASSERT_TRUE(qmt::pki::install_set(request).ok());
  EXPECT_EQ(mode_of(cert_dir + "/server-key.pem"), 0640u);
  EXPECT_EQ(mode_of(cert_dir), 0755u);
  EXPECT_EQ(inode_of(cert_dir + "/server-key.pem"), key);
}

TEST(PkiInstall, DetectsOwnerChange) {
  if (::geteuid() != 0) GTEST_SKIP() << "changing owners needs root";
  TempDir dir;
  const std::string cert_dir = dir.path() + "/qemu";
  InstallRequest request = make_request(cert_dir, "v1");
  ASSERT_TRUE(qmt::pki::install_set(request).ok());
  ASSERT_EQ(::chown((cert_dir + "/client-key.pem").c_str(), 1, 1), 0);

  auto plan = qmt::pki::plan_install(request);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(change_lines(plan.value()),
            std::vector<std::string>{"client-key.pem: owner 1:1 -> 0:0"});
  ASSERT_TRUE(qmt::pki::install_set(request).ok());
  struct stat info {};
  ASSERT_EQ(::stat((cert_dir + "/client-key.pem").c_str(), &info), 0);
  EXPECT_EQ(info.st_uid, 0u);
  EXPECT_EQ(info.st_gid, 0u);

  request.gid = 1;
  ASSERT_TRUE(qmt::pki::install_set(request).ok());
  ASSERT_EQ(::stat((cert_dir + "/server-key.pem").c_str(), &info), 0);
  EXPECT_EQ(info.st_gid, 1u);
  ASSERT_EQ(::stat(cert_dir.c_str(), &info), 0);
  EXPECT_EQ(info.st_gid, 1u);
}

TEST(PkiInstall, ReplacesSymbolicLink) {
  TempDir dir;
  const std::string cert_dir = dir.path() + "/qemu";
  InstallRequest request = make_request(cert_dir, "v1");
  ASSERT_TRUE(qmt::pki::install_set(request).ok());
  write_text(dir.path() + "/elsewhere.pem", "server-cert.pem v1\n");
  fs::remove(cert_dir + "/server-cert.pem");
  fs::create_symlink(dir.path() + "/elsewhere.pem",
                     cert_dir + "/server-cert.pem");

  auto plan = qmt::pki::plan_install(request);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(change_lines(plan.value()),
            std::vector<std::string>{
                "server-cert.pem: symbolic link replaced by a file"});
  ASSERT_TRUE(qmt::pki::install_set(request).ok());
  EXPECT_FALSE(fs::is_symlink(cert_dir + "/server-cert.pem"));
  EXPECT_EQ(read_text(dir.path() + "/elsewhere.pem"), "server-cert.pem v1\n");
}

TEST(PkiInstall, CarriesOverUnrelatedEntries) {
  TempDir dir;
  const std::string cert_dir = dir.path() + "/qemu";
  ASSERT_TRUE(qmt::pki::install_set(make_request(cert_dir, "v1")).ok());
  add_unrelated_entries(cert_dir);
  const ino_t notes = inode_of(cert_dir + "/notes.txt");
  const ino_t staging = inode_of(cert_dir + "/.staging");

  auto plan = qmt::pki::plan_install(make_request(cert_dir, "v2"));
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->changes.size(), 5u);  // the five contents, nothing else

  auto installed = qmt::pki::install_set(make_request(cert_dir, "v2"));
  ASSERT_TRUE(installed.ok()) << installed.error().message;
  EXPECT_EQ(installed_version(cert_dir), "v2");
  expect_unrelated_entries(cert_dir);
  EXPECT_EQ(inode_of(cert_dir + "/notes.txt"), notes);
  EXPECT_EQ(inode_of(cert_dir + "/.staging"), staging);
  EXPECT_TRUE(staging_siblings(cert_dir).empty());
}

TEST(PkiInstall, FailedStepKeepsOldSet) {
  // Each step fails once, as a failing system call would; every failure
  // must leave the old set and the unrelated entries as they were.
  for (const std::string failing_step :
       {"stage", "write", "written", "link", "move", "exchange"}) {
    SCOPED_TRACE(failing_step);
    TempDir dir;
    const std::string cert_dir = dir.path() + "/qemu";
    ASSERT_TRUE(qmt::pki::install_set(make_request(cert_dir, "v1")).ok());
    add_unrelated_entries(cert_dir);

    auto hook = [&](const std::string& step,
                    const std::string& path) -> Result<void> {
      if (step != failing_step) return {};
      return qmt::util::Error{"injected failure at " + step + " " + path};
    };
    auto installed =
        qmt::pki::install_set_with_hook(make_request(cert_dir, "v2"), hook);
    ASSERT_FALSE(installed.ok());
    EXPECT_EQ(installed.error().message.rfind(
                  "injected failure at " + failing_step + " ", 0),
              0u)
        << installed.error().message;
    EXPECT_EQ(installed_version(cert_dir), "v1");
    expect_unrelated_entries(cert_dir);
    EXPECT_TRUE(staging_siblings(cert_dir).empty());
  }
}

TEST(PkiInstall, KeyNeverReadableByOthers) {
  TempDir dir;
  const std::string cert_dir = dir.path() + "/qemu";
  ASSERT_TRUE(qmt::pki::install_set(make_request(cert_dir, "v1")).ok());
  std::vector<std::string> seen;
  auto hook = [&](const std::string& step,
                  const std::string& path) -> Result<void> {
    if (step != "written") return {};
    seen.push_back(fs::path(path).filename().string());
    const mode_t mode = mode_of(path);
    const bool secret = path.find("-key.pem") != std::string::npos;
    EXPECT_EQ(mode, secret ? 0640u : 0644u) << path;
    if (secret) {
      EXPECT_EQ(mode & 0007, 0u) << path;
    }
    // The staging folder stays closed to others until it is complete.
    EXPECT_EQ(mode_of(fs::path(path).parent_path().string()), 0700u) << path;
    return {};
  };
  ASSERT_TRUE(
      qmt::pki::install_set_with_hook(make_request(cert_dir, "v2"), hook).ok());
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(mode_of(cert_dir + "/server-key.pem") & 0007, 0u);
}

// Runs install_set_with_hook in a child process that exits abruptly at hook
// call number `crash_at`, as a crash or power cut would end it. Returns the
// child's exit code: 42 for a crash, 0 when the install finished first.
int install_with_crash(const InstallRequest& request, int crash_at) {
  const pid_t child = ::fork();
  if (child == 0) {
    int calls = 0;
    auto hook = [&](const std::string&, const std::string&) -> Result<void> {
      if (calls++ == crash_at) ::_exit(42);
      return {};
    };
    auto installed = qmt::pki::install_set_with_hook(request, hook);
    ::_exit(installed.ok() ? 0 : 1);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void crash_at_every_step(bool existing) {
  int crashes = 0;
  for (int crash_at = 0; crash_at < 100; ++crash_at) {
    SCOPED_TRACE("crash at hook call " + std::to_string(crash_at));
    TempDir dir;
    const std::string cert_dir = dir.path() + "/qemu";
    if (existing) {
      ASSERT_TRUE(qmt::pki::install_set(make_request(cert_dir, "v1")).ok());
      add_unrelated_entries(cert_dir);
    }
    const InstallRequest request = make_request(cert_dir, "v2");
    const int exit_code = install_with_crash(request, crash_at);
    ASSERT_TRUE(exit_code == 42 || exit_code == 0) << exit_code;

    const std::string version = installed_version(cert_dir);
    if (exit_code == 0) {
      EXPECT_EQ(version, "v2");
    } else if (existing) {
      EXPECT_TRUE(version == "v1" || version == "v2") << version;
    } else {
      EXPECT_TRUE(version == "none" || version == "v2") << version;
    }

    // The next install finishes the job and recovers what was carried.
    auto plan = qmt::pki::plan_install(request);
    ASSERT_TRUE(plan.ok()) << plan.error().message;
    auto installed = qmt::pki::install_set(request);
    ASSERT_TRUE(installed.ok()) << installed.error().message;
    EXPECT_EQ(installed_version(cert_dir), "v2");
    if (existing) expect_unrelated_entries(cert_dir);
    EXPECT_TRUE(staging_siblings(cert_dir).empty());
    EXPECT_FALSE(qmt::pki::plan_install(request)->changed);
    if (exit_code == 0) break;
    ++crashes;
  }
  // Every hook call was a crash point before the install completed.
  EXPECT_GE(crashes, existing ? 15 : 10);
}

TEST(PkiInstall, CrashKeepsOldOrNewSet) {
  crash_at_every_step(true);
}

TEST(PkiInstall, CrashWhileCreatingFolder) {
  crash_at_every_step(false);
}

TEST(PkiInstall, LeftoverIsRecovered) {
  TempDir dir;
  const std::string cert_dir = dir.path() + "/qemu";
  InstallRequest request = make_request(cert_dir, "v1");
  ASSERT_TRUE(qmt::pki::install_set(request).ok());
  const std::string leftover = dir.path() + "/.qemu.new-abc123";
  ASSERT_EQ(::mkdir(leftover.c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((leftover + "/.staging").c_str(), 0700), 0);
  write_text(leftover + "/.staging/server-key.pem", "staged key\n");
  write_text(leftover + "/server-cert.pem", "server-cert.pem v0\n");

  auto plan = qmt::pki::plan_install(request);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(change_lines(plan.value()),
            std::vector<std::string>{
                ".qemu.new-abc123: leftover of an interrupted install, "
                "removed"});

  ASSERT_TRUE(qmt::pki::install_set(request).ok());
  EXPECT_FALSE(fs::exists(leftover));
  EXPECT_EQ(read_text(cert_dir + "/.staging/server-key.pem"), "staged key\n");
  EXPECT_EQ(installed_version(cert_dir), "v1");
  EXPECT_FALSE(qmt::pki::plan_install(request)->changed);
}

TEST(PkiInstall, ReadOnlyFolderIsError) {
  TempDir dir;
  const std::string cert_dir = dir.path() + "/qemu";
  ASSERT_TRUE(qmt::pki::install_set(make_request(cert_dir, "v1")).ok());
  if (!set_immutable(cert_dir, true)) {
    GTEST_SKIP() << "cannot set the immutable attribute here";
  }
  auto installed = qmt::pki::install_set(make_request(cert_dir, "v2"));
  set_immutable(cert_dir, false);
  ASSERT_FALSE(installed.ok());
  EXPECT_EQ(installed.error().message, "Failed to write to folder " + cert_dir +
                                           ": Operation not permitted");
  EXPECT_EQ(installed_version(cert_dir), "v1");
  EXPECT_TRUE(staging_siblings(cert_dir).empty());
}

TEST(PkiInstall, SymlinkedFolderKeepsLink) {
  TempDir dir;
  const std::string real_dir = dir.path() + "/real";
  const std::string link = dir.path() + "/qemu";
  ASSERT_TRUE(qmt::pki::install_set(make_request(real_dir, "v1")).ok());
  fs::create_directory_symlink(real_dir, link);
  ASSERT_TRUE(qmt::pki::install_set(make_request(link, "v2")).ok());
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(installed_version(real_dir), "v2");
}

TEST(PkiInstall, InvalidRequestsAreErrors) {
  InstallRequest request = make_request("relative/qemu", "v1");
  auto plan = qmt::pki::plan_install(request);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().message,
            "Invalid certificate folder 'relative/qemu': expected an absolute "
            "path");

  request = make_request("/", "v1");
  ASSERT_FALSE(qmt::pki::install_set(request).ok());
  EXPECT_EQ(qmt::pki::install_set(request).error().message,
            "Invalid certificate folder /: expected a folder below /");

  request = make_request("/nonexistent-qmt/qemu", "v1");
  request.files[0].name = "../ca-cert.pem";
  EXPECT_EQ(qmt::pki::plan_install(request).error().message,
            "Invalid file name '../ca-cert.pem' for certificate folder "
            "/nonexistent-qmt/qemu: expected a plain file name such as "
            "server-cert.pem");

  request = make_request("/nonexistent-qmt/qemu", "v1");
  request.files[1].name = "ca-cert.pem";
  EXPECT_EQ(qmt::pki::plan_install(request).error().message,
            "File name ca-cert.pem appears twice in the request for "
            "certificate folder /nonexistent-qmt/qemu");

  request = make_request("/nonexistent-qmt/qemu", "v1");
  request.key_mode = 0644;
  EXPECT_EQ(qmt::pki::install_set(request).error().message,
            "Invalid key_mode 0644 for /nonexistent-qmt/qemu: private keys "
            "must not be accessible to other users; expected a mode without "
            "permissions for others, such as 0640");
}

TEST(PkiInstall, FileNamedFolderIsError) {
  TempDir dir;
  const std::string cert_dir = dir.path() + "/qemu";
  write_text(cert_dir, "not a folder");
  auto plan = qmt::pki::plan_install(make_request(cert_dir, "v1"));
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().message,
            "Certificate folder " + cert_dir +
                " is not a folder; expected a folder or no entry");
}

TEST(PkiRemove, RemovesFilesAndFolder) {
  TempDir dir;
  const std::string cert_dir = dir.path() + "/qemu";
  ASSERT_TRUE(qmt::pki::install_set(make_request(cert_dir, "v1")).ok());

  auto plan = qmt::pki::plan_removal(cert_dir);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_TRUE(plan->changed);
  EXPECT_EQ(change_lines(plan.value()),
            (std::vector<std::string>{
                "ca-cert.pem: removed", "server-cert.pem: removed",
                "server-key.pem: removed", "client-cert.pem: removed",
                "client-key.pem: removed", ".: folder removed"}));
  ASSERT_TRUE(fs::exists(cert_dir));

  auto removed = qmt::pki::remove_set(cert_dir);
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  EXPECT_FALSE(fs::exists(cert_dir));

  plan = qmt::pki::plan_removal(cert_dir);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_FALSE(plan->changed);
  EXPECT_TRUE(qmt::pki::remove_set(cert_dir).ok());
}

TEST(PkiRemove, KeepsFolderWithOtherEntries) {
  TempDir dir;
  const std::string cert_dir = dir.path() + "/qemu";
  ASSERT_TRUE(qmt::pki::install_set(make_request(cert_dir, "v1")).ok());
  add_unrelated_entries(cert_dir);
  fs::remove(cert_dir + "/client-key.pem");

  auto plan = qmt::pki::plan_removal(cert_dir);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(change_lines(plan.value()),
            (std::vector<std::string>{
                "ca-cert.pem: removed", "server-cert.pem: removed",
                "server-key.pem: removed", "client-cert.pem: removed"}));
  ASSERT_TRUE(qmt::pki::remove_set(cert_dir).ok());
  EXPECT_EQ(installed_version(cert_dir), "none");
  expect_unrelated_entries(cert_dir);
}

}  // namespace
