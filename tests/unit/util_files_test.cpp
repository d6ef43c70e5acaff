#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "util/files.hpp"

namespace {

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/qmt-util-XXXXXX";
    m_path = ::mkdtemp(pattern);
  }
  ~TempDir() { std::filesystem::remove_all(m_path); }
  const std::string& path() const { return m_path; }

 private:
  std::string m_path;
};

TEST(AtomicWrite, CreatesFileWithRequestedMode) {
  TempDir dir;
  std::string path = dir.path() + "/key.pem";
  qmt::util::WriteOptions options;
  options.mode = {::getuid(), ::getgid(), 0640};
  ASSERT_TRUE(qmt::util::atomic_write_file(path, "secret", options).ok());
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0640u);
  EXPECT_EQ(qmt::util::read_file(path).value(), "secret");
}

TEST(AtomicWrite, MissingFolderIsErrorNamingPath) {
  qmt::util::WriteOptions options;
  options.mode = {::getuid(), ::getgid(), 0644};
  auto result = qmt::util::atomic_write_file("/nonexistent-qmt/x", "a", options);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("/nonexistent-qmt/"), std::string::npos);
}

TEST(NormalizePath, DropsTrailingSlashAndDot) {
  EXPECT_EQ(qmt::util::normalize_path("/etc/pki/qemu-migrate/"),
            "/etc/pki/qemu-migrate");
  EXPECT_EQ(qmt::util::normalize_path("/etc/pki/./qemu-migrate/."),
            "/etc/pki/qemu-migrate");
  EXPECT_EQ(qmt::util::normalize_path("/"), "/");
}

TEST(ReadFile, MissingFileNamesPathAndReason) {
  auto result = qmt::util::read_file("/nonexistent-qmt/file");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message,
            "Failed to read /nonexistent-qmt/file: No such file or directory");
}

}  // namespace
