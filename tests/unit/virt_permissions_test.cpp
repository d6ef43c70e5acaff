#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "pki_test_support.hpp"
#include "virt/permissions.hpp"

namespace {

using qmt::pki::testing::TempDir;
using qmt::util::Check;
using qmt::util::Checks;
using qmt::util::CheckStatus;
using qmt::util::FileMode;
using qmt::virt::Access;
using qmt::virt::Account;
using qmt::virt::allows;

// Ids that no passwd or group entry on a test machine uses, so the account
// is known by number only, as qemu.conf's "+N" form gives it.
constexpr uid_t k_user = 424242;
constexpr gid_t k_group = 424243;
constexpr gid_t k_other_group = 424244;

Account fake_account() {
  Account account;
  account.user = "+424242";
  account.group = "+424243";
  account.uid = k_user;
  account.gid = k_group;
  account.groups = {k_group};
  return account;
}

std::vector<Check> named(const Checks& checks, const std::string& name) {
  std::vector<Check> found;
  for (const auto& check : checks) {
    if (check.name == name) found.push_back(check);
  }
  return found;
}

std::size_t count(const Checks& checks, CheckStatus status) {
  return qmt::util::count_status(checks, status);
}

// A host root with /etc/pki/qemu-migrate as the role installs it: folders
// 0755 root:root, certificates 0644 and keys 0640 root:QEMU's group.
class CertTree {
 public:
  CertTree() : m_dir("qmt-virt") {
    ::chmod(m_dir.path().c_str(), 0755);
    std::filesystem::create_directories(folder());
    for (const char* path : {"/etc", "/etc/pki", "/etc/pki/qemu-migrate"}) {
      ::chmod((m_dir.path() + path).c_str(), 0755);
    }
    for (const char* name :
         {"ca-cert.pem", "server-cert.pem", "client-cert.pem"}) {
      write(name, 0644, 0, k_group);
    }
    for (const char* name : {"server-key.pem", "client-key.pem"}) {
      write(name, 0640, 0, k_group);
    }
  }

  std::string root() const { return m_dir.path(); }
  std::string folder() const { return m_dir.path() + "/etc/pki/qemu-migrate"; }
  std::string file(const std::string& name) const {
    return folder() + "/" + name;
  }

  void write(const std::string& name, mode_t mode, uid_t uid, gid_t gid) {
    const std::string path = file(name);
    std::ofstream(path) << "-----BEGIN TEST-----\n";
    set(path, mode, uid, gid);
  }
  static void set(const std::string& path, mode_t mode, uid_t uid, gid_t gid) {
    ASSERT_EQ(::chown(path.c_str(), uid, gid), 0) << path;
    ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
  }

  Checks check(const Account& account) const {
    return qmt::virt::check_permissions(
        {root(), "/etc/pki/qemu-migrate", account});
  }

 private:
  TempDir m_dir;
};

TEST(Allows, OwnerBitsOnlyForOwner) {
  const Account account = fake_account();
  EXPECT_FALSE(allows({k_user, k_group, 0077}, account, Access::read));
  EXPECT_TRUE(allows({k_user, k_group, 0400}, account, Access::read));
}

TEST(Allows, GroupBitsForSupplementaryGroup) {
  Account account = fake_account();
  account.groups.push_back(k_other_group);
  EXPECT_TRUE(allows({0, k_other_group, 0640}, account, Access::read));
  EXPECT_FALSE(allows({0, k_other_group, 0604}, account, Access::read));
}

TEST(Allows, OtherBitsForStranger) {
  const Account account = fake_account();
  EXPECT_TRUE(allows({0, 0, 0604}, account, Access::read));
  EXPECT_FALSE(allows({0, 0, 0640}, account, Access::read));
}

TEST(Allows, SearchNeedsExecuteBit) {
  const Account account = fake_account();
  EXPECT_FALSE(allows({0, 0, 0744}, account, Access::search));
  EXPECT_TRUE(allows({0, 0, 0711}, account, Access::search));
}

TEST(Allows, RootWithoutCapabilitiesUsesBits) {
  Account account = fake_account();
  account.uid = 0;
  account.gid = 0;
  account.groups = {0};
  EXPECT_FALSE(allows({0, 0, 0000}, account, Access::read));
  EXPECT_TRUE(allows({0, 0, 0400}, account, Access::read));
  EXPECT_FALSE(allows({k_user, k_group, 0600}, account, Access::read));
  account.bypasses_permissions = true;
  EXPECT_TRUE(allows({k_user, k_group, 0600}, account, Access::read));
}

TEST(ModeText, FourOctalDigits) {
  EXPECT_EQ(qmt::virt::mode_text(0640), "0640");
  EXPECT_EQ(qmt::virt::mode_text(01777), "1777");
  EXPECT_EQ(qmt::virt::mode_text(0), "0000");
}

TEST(OwnerText, NamesOrNumbers) {
  EXPECT_EQ(qmt::virt::owner_text({0, 0, 0}), "root:root");
  EXPECT_EQ(qmt::virt::owner_text({k_user, k_group, 0}), "424242:424243");
}

TEST(ResolveAccount, NumericIdsWithoutEntries) {
  auto account = qmt::virt::resolve_account("+424242", "+424243", false);
  ASSERT_TRUE(account.ok()) << account.error().message;
  EXPECT_EQ(account->uid, k_user);
  EXPECT_EQ(account->gid, k_group);
  EXPECT_EQ(account->groups, std::vector<gid_t>{k_group});
  EXPECT_FALSE(account->bypasses_permissions);
}

TEST(ResolveAccount, RootKeepsCapabilities) {
  auto account = qmt::virt::resolve_account("root", "root", true);
  ASSERT_TRUE(account.ok()) << account.error().message;
  EXPECT_EQ(account->uid, 0u);
  EXPECT_EQ(account->gid, 0u);
  EXPECT_TRUE(account->bypasses_permissions);
}

TEST(ResolveAccount, RootClearedCapabilities) {
  auto account = qmt::virt::resolve_account("root", "root", false);
  ASSERT_TRUE(account.ok()) << account.error().message;
  EXPECT_FALSE(account->bypasses_permissions);
}

TEST(ResolveAccount, UnknownUser) {
  auto account = qmt::virt::resolve_account("qmt-no-such-user", "root", false);
  ASSERT_FALSE(account.ok());
  EXPECT_EQ(account.error().message,
            "User qmt-no-such-user does not exist on this host, so libvirt "
            "cannot start QEMU as that user");
}

TEST(ResolveAccount, UnknownGroup) {
  auto account = qmt::virt::resolve_account("root", "qmt-no-such-group", false);
  ASSERT_FALSE(account.ok());
  EXPECT_EQ(account.error().message,
            "Group qmt-no-such-group does not exist on this host, so libvirt "
            "cannot start QEMU with that group");
}

TEST(AccountText, NamesIdsAndGroups) {
  Account account = fake_account();
  EXPECT_EQ(qmt::virt::account_text(account),
            "user +424242 (uid 424242) and group +424243 (gid 424243)");
  account.groups.push_back(0);
  EXPECT_EQ(qmt::virt::account_text(account),
            "user +424242 (uid 424242) and group +424243 (gid 424243), "
            "supplementary groups root");
}

TEST(CheckPermissions, InstalledTreePasses) {
  CertTree tree;
  const Checks checks = tree.check(fake_account());
  EXPECT_EQ(count(checks, CheckStatus::failed), 0u);
  EXPECT_EQ(count(checks, CheckStatus::warning), 0u);
  ASSERT_EQ(named(checks, "permissions.folder").size(), 1u);
  EXPECT_EQ(named(checks, "permissions.folder")[0].message,
            "QEMU's user +424242 (uid 424242) and group +424243 (gid 424243) "
            "can search every folder on the path: " +
                tree.root() + ", " + tree.root() + "/etc, " + tree.root() +
                "/etc/pki, " + tree.folder());
  ASSERT_EQ(named(checks, "permissions.file").size(), 1u);
  EXPECT_EQ(named(checks, "permissions.file")[0].message,
            "QEMU's user +424242 (uid 424242) and group +424243 (gid 424243) "
            "can read ca-cert.pem, server-cert.pem, server-key.pem, "
            "client-cert.pem, client-key.pem in " +
                tree.folder());
  const auto keys = named(checks, "permissions.key");
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].file, tree.file("client-key.pem"));
  EXPECT_EQ(keys[0].message,
            tree.file("client-key.pem") +
                " (mode 0640, owner root:424243) is a private key that other "
                "users cannot read");
  EXPECT_EQ(keys[1].file, tree.file("server-key.pem"));
}

TEST(CheckPermissions, PrivateFolderOnPath) {
  CertTree tree;
  const std::string pki = tree.root() + "/etc/pki";
  ASSERT_EQ(::chmod(pki.c_str(), 0700), 0);
  const Checks checks = tree.check(fake_account());
  const auto folders = named(checks, "permissions.folder");
  ASSERT_EQ(folders.size(), 1u);
  EXPECT_EQ(folders[0].status, CheckStatus::failed);
  EXPECT_EQ(folders[0].file, pki);
  EXPECT_EQ(folders[0].message,
            pki +
                " (mode 0700, owner root:root) is not searchable by QEMU's "
                "user +424242 (uid 424242) and group +424243 (gid 424243), so "
                "QEMU cannot open the certificate files below it; run chmod "
                "o+x " +
                pki);
}

TEST(CheckPermissions, FolderOwnedByQemuUser) {
  CertTree tree;
  CertTree::set(tree.folder(), 0600, k_user, 0);
  const auto folders = named(tree.check(fake_account()), "permissions.folder");
  ASSERT_EQ(folders.size(), 1u);
  EXPECT_EQ(folders[0].status, CheckStatus::failed);
  EXPECT_NE(folders[0].message.find("; run chmod u+x " + tree.folder()),
            std::string::npos)
      << folders[0].message;
}

TEST(CheckPermissions, FolderOfQemuGroup) {
  CertTree tree;
  CertTree::set(tree.folder(), 0700, 0, k_group);
  const auto folders = named(tree.check(fake_account()), "permissions.folder");
  ASSERT_EQ(folders.size(), 1u);
  EXPECT_NE(folders[0].message.find("; run chmod g+x " + tree.folder()),
            std::string::npos)
      << folders[0].message;
}

TEST(CheckPermissions, RootOnlyKey) {
  CertTree tree;
  tree.write("server-key.pem", 0600, 0, 0);
  const Checks checks = tree.check(fake_account());
  const auto files = named(checks, "permissions.file");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].status, CheckStatus::failed);
  EXPECT_EQ(files[0].file, tree.file("server-key.pem"));
  const std::string key = tree.file("server-key.pem");
  EXPECT_EQ(files[0].message,
            key +
                " (mode 0600, owner root:root) is not readable by QEMU's user "
                "+424242 (uid 424242) and group +424243 (gid 424243), and "
                "QEMU reads it as migration destination; run chgrp +424243 " +
                key + " && chmod g+r " + key);
}

TEST(CheckPermissions, UnreadableCertificate) {
  CertTree tree;
  tree.write("ca-cert.pem", 0640, 0, 0);
  const auto files = named(tree.check(fake_account()), "permissions.file");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].status, CheckStatus::failed);
  EXPECT_NE(files[0].message.find("QEMU reads it on both sides of a "
                                  "migration; run chmod o+r " +
                                  tree.file("ca-cert.pem")),
            std::string::npos)
      << files[0].message;
}

TEST(CheckPermissions, WorldReadableKey) {
  CertTree tree;
  tree.write("client-key.pem", 0644, 0, k_group);
  const auto keys = named(tree.check(fake_account()), "permissions.key");
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].status, CheckStatus::failed);
  EXPECT_EQ(keys[0].message,
            tree.file("client-key.pem") +
                " (mode 0644, owner root:424243) is a private key that every "
                "user on this host can read; run chmod o-rwx " +
                tree.file("client-key.pem"));
  EXPECT_EQ(keys[1].status, CheckStatus::ok);
}

TEST(CheckPermissions, WorldWritableKey) {
  CertTree tree;
  tree.write("server-key.pem", 0642, 0, k_group);
  const auto keys = named(tree.check(fake_account()), "permissions.key");
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[1].status, CheckStatus::failed);
  EXPECT_NE(keys[1].message.find("every user on this host can overwrite"),
            std::string::npos)
      << keys[1].message;
}

TEST(CheckPermissions, KeyOfForeignGroup) {
  CertTree tree;
  tree.write("server-key.pem", 0640, 0, k_other_group);
  const Checks checks = tree.check(fake_account());
  const auto keys = named(checks, "permissions.key");
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[1].status, CheckStatus::warning);
  EXPECT_EQ(keys[1].message,
            tree.file("server-key.pem") +
                " (mode 0640, owner root:424244) is readable by group "
                "424244, which QEMU does not run with, so its members can "
                "read a key QEMU alone needs; run chgrp +424243 " +
                tree.file("server-key.pem"));
  EXPECT_EQ(named(checks, "permissions.file")[0].status, CheckStatus::failed);
}

TEST(CheckPermissions, BackupKeyChecked) {
  CertTree tree;
  tree.write("server-key.pem.2025-01-31@12:00:00~", 0644, 0, 0);
  const auto keys = named(tree.check(fake_account()), "permissions.key");
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_EQ(keys[2].file, tree.file("server-key.pem.2025-01-31@12:00:00~"));
  EXPECT_EQ(keys[2].status, CheckStatus::failed);
}

TEST(CheckPermissions, WorldWritableCertificate) {
  CertTree tree;
  tree.write("ca-cert.pem", 0666, 0, 0);
  const auto files = named(tree.check(fake_account()), "permissions.file");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].status, CheckStatus::failed);
  EXPECT_EQ(files[0].message,
            tree.file("ca-cert.pem") +
                " (mode 0666, owner root:root) is writable by every user on "
                "this host; run chmod o-w " +
                tree.file("ca-cert.pem"));
}

TEST(CheckPermissions, WorldWritableFolder) {
  CertTree tree;
  CertTree::set(tree.folder(), 0777, 0, 0);
  const auto folders = named(tree.check(fake_account()), "permissions.folder");
  ASSERT_EQ(folders.size(), 1u);
  EXPECT_EQ(folders[0].status, CheckStatus::failed);
  EXPECT_NE(folders[0].message.find("could replace the certificates"),
            std::string::npos)
      << folders[0].message;
}

TEST(CheckPermissions, EmptyFolder) {
  CertTree tree;
  for (const char* name : {"ca-cert.pem", "server-cert.pem", "server-key.pem",
                           "client-cert.pem", "client-key.pem"}) {
    std::filesystem::remove(tree.file(name));
  }
  const Checks checks = tree.check(fake_account());
  EXPECT_EQ(named(checks, "permissions.folder").size(), 1u);
  EXPECT_EQ(named(checks, "permissions.file").size(), 0u);
  EXPECT_EQ(named(checks, "permissions.key").size(), 0u);
  EXPECT_EQ(count(checks, CheckStatus::failed), 0u);
}

TEST(CheckPermissions, MissingFolderLeftToOtherChecks) {
  CertTree tree;
  std::filesystem::remove_all(tree.folder());
  const Checks checks = tree.check(fake_account());
  EXPECT_TRUE(checks.empty());
}

TEST(CheckPermissions, RootWithoutCapabilities) {
  CertTree tree;
  tree.write("server-key.pem", 0600, k_user, k_group);
  auto account = qmt::virt::resolve_account("root", "root", false);
  ASSERT_TRUE(account.ok());
  const auto files = named(tree.check(account.value()), "permissions.file");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].status, CheckStatus::failed);
  EXPECT_EQ(files[0].file, tree.file("server-key.pem"));
}

TEST(CheckPermissions, RootWithCapabilities) {
  CertTree tree;
  tree.write("server-key.pem", 0600, k_user, k_group);
  auto account = qmt::virt::resolve_account("root", "root", true);
  ASSERT_TRUE(account.ok());
  const Checks checks = tree.check(account.value());
  EXPECT_EQ(count(checks, CheckStatus::failed), 0u);
  const auto files = named(checks, "permissions.file");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].message,
            "QEMU runs as root and keeps its capabilities "
            "(clear_emulator_capabilities = 0), so permission bits do not "
            "restrict what it reads in " +
                tree.folder());
}

}  // namespace
