#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "pki/index.hpp"
#include "util/files.hpp"
#include "pki_test_support.hpp"

namespace {

using qmt::pki::testing::TempDir;
using qmt::pki::testing::write_text;
using qmt::pki::IndexEntry;

IndexEntry sample_entry(const std::string& serial) {
  IndexEntry entry;
  entry.serial_hex = serial;
  entry.subject = "CN=host1";
  entry.names = {"host1", "10.0.0.1", "fd00::1"};
  entry.not_before = 1700000000;
  entry.not_after = 1734387200;
  entry.issued_at = "2023-11-14T22:18:20Z";
  return entry;
}

std::string error_of(const std::string& path) {
  auto entries = qmt::pki::read_index(path);
  return entries.ok() ? "no error" : entries.error().message;
}

std::string valid_entry_text() {
  return "- serial: \"01\"\n"
         "  subject: \"CN=host1\"\n"
         "  names: [\"host1\"]\n"
         "  not_before: \"2023-11-14T22:13:20Z\"\n"
         "  not_after: \"2024-12-16T22:13:20Z\"\n"
         "  issued_at: \"2023-11-14T22:18:20Z\"\n";
}

TEST(ReadIndex, MissingFileIsEmpty) {
  TempDir dir;
  auto entries = qmt::pki::read_index(dir.path() + "/index.yml");
  ASSERT_TRUE(entries.ok()) << entries.error().message;
  EXPECT_TRUE(entries.value().empty());
}

TEST(ReadIndex, EmptyFileIsEmpty) {
  TempDir dir;
  write_text(dir.path() + "/index.yml", "");
  auto entries = qmt::pki::read_index(dir.path() + "/index.yml");
  ASSERT_TRUE(entries.ok()) << entries.error().message;
  EXPECT_TRUE(entries.value().empty());
}

TEST(ReadIndex, CorruptYamlNamesLineAndColumn) {
  TempDir dir;
  const std::string path = dir.path() + "/index.yml";
  write_text(path, "- serial: \"a\"\n  names: [a, b\n");
  EXPECT_EQ(error_of(path), "Invalid YAML in " + path +
                                " at line 3, column 1: end of sequence flow "
                                "not found");
}

TEST(ReadIndex, RejectsWrongStructure) {
  TempDir dir;
  const std::string path = dir.path() + "/index.yml";
  const std::string prefix = "Invalid index " + path + ": ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"serial: 1\n", "expected a list of certificates, found a map"},
      {"- just text\n",
       "entry 1 (line 1) is the value \"just text\", "
       "expected a map"},
      {valid_entry_text() + "- subject: \"CN=x\"\n",
       "entry 2 (line 7) has no serial"},
      {"- subject: \"CN=x\"\n", "entry 1 (line 1) has no serial"},
      {"- {serial: [1], subject: x}\n",
       "entry 1 (line 1) has serial a list, expected text"},
      {"- {serial: \"1\", subject: x, names: host1}\n",
       "entry 1 (line 1) has names the value \"host1\", expected a list of "
       "names"},
      {"- {serial: \"1\", subject: x, names: [[a]]}\n",
       "entry 1 (line 1) has names containing a list, expected a name"},
      {"- {serial: \"1\", subject: x, names: [], not_before: yesterday}\n",
       "entry 1 (line 1) has not_before \"yesterday\", expected a UTC time "
       "like 2025-01-31T12:00:00Z"},
      {"- {serial: \"1\", extra: 2}\n",
       "entry 1 (line 1) has unknown key \"extra\" (this version reads "
       "serial, subject, names, not_before, not_after and issued_at)"},
  };
  for (const auto& [text, message] : cases) {
    write_text(path, text);
    EXPECT_EQ(error_of(path), prefix + message) << text;
  }
}

TEST(AppendIndex, RoundTripsEntries) {
  TempDir dir;
  const std::string path = dir.path() + "/index.yml";
  ASSERT_TRUE(qmt::pki::append_index(path, sample_entry("1234")).ok());
  IndexEntry second = sample_entry("7f00aa");
  second.subject = "CN=host2";
  second.names = {"host2"};
  ASSERT_TRUE(qmt::pki::append_index(path, second).ok());

  auto entries = qmt::pki::read_index(path);
  ASSERT_TRUE(entries.ok()) << entries.error().message;
  ASSERT_EQ(entries.value().size(), 2u);
  const IndexEntry& first = entries.value()[0];
  EXPECT_EQ(first.serial_hex, "1234");
  EXPECT_EQ(first.subject, "CN=host1");
  EXPECT_EQ(first.names,
            (std::vector<std::string>{"host1", "10.0.0.1", "fd00::1"}));
  EXPECT_EQ(first.not_before, 1700000000);
  EXPECT_EQ(first.not_after, 1734387200);
  EXPECT_EQ(first.issued_at, "2023-11-14T22:18:20Z");
  EXPECT_EQ(entries.value()[1].serial_hex, "7f00aa");
  EXPECT_EQ(entries.value()[1].names, (std::vector<std::string>{"host2"}));
}

TEST(AppendIndex, WritesQuotedYamlWithMode0644) {
  TempDir dir;
  const std::string path = dir.path() + "/index.yml";
  ASSERT_TRUE(qmt::pki::append_index(path, sample_entry("1234")).ok());
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0644u);
  const std::string text = qmt::util::read_file(path).value();
  EXPECT_NE(text.find("serial: \"1234\""), std::string::npos) << text;
  EXPECT_NE(text.find("not_before: \"2023-11-14T22:13:20Z\""),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("names: [\"host1\", \"10.0.0.1\", \"fd00::1\"]"),
            std::string::npos)
      << text;
}

TEST(AppendIndex, KeepsCorruptFileUntouched) {
  TempDir dir;
  const std::string path = dir.path() + "/index.yml";
  write_text(path, "{ broken\n");
  auto appended = qmt::pki::append_index(path, sample_entry("1234"));
  ASSERT_FALSE(appended.ok());
  EXPECT_EQ(appended.error().message.rfind("Invalid YAML in " + path, 0), 0u);
  EXPECT_EQ(qmt::util::read_file(path).value(), "{ broken\n");
}

TEST(AppendIndex, ConcurrentThreadsLoseNothing) {
  TempDir dir;
  const std::string path = dir.path() + "/index.yml";
  constexpr int k_threads = 8;
  constexpr int k_per_thread = 10;
  std::vector<std::thread> threads;
  std::vector<int> failures(k_threads, 0);
  for (int t = 0; t < k_threads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < k_per_thread; ++i) {
        std::string serial = std::to_string(t * 100 + i);
        if (!qmt::pki::append_index(path, sample_entry(serial)).ok()) {
          ++failures[t];
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < k_threads; ++t) EXPECT_EQ(failures[t], 0);

  auto entries = qmt::pki::read_index(path);
  ASSERT_TRUE(entries.ok()) << entries.error().message;
  std::set<std::string> serials;
  for (const auto& entry : entries.value()) serials.insert(entry.serial_hex);
  EXPECT_EQ(entries.value().size(),
            static_cast<std::size_t>(k_threads * k_per_thread));
  EXPECT_EQ(serials.size(), static_cast<std::size_t>(k_threads * k_per_thread));
}

TEST(AppendIndex, ConcurrentProcessesLoseNothing) {
  TempDir dir;
  const std::string path = dir.path() + "/index.yml";
  constexpr int k_children = 6;
  constexpr int k_per_child = 10;
  std::vector<pid_t> children;
  for (int c = 0; c < k_children; ++c) {
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      for (int i = 0; i < k_per_child; ++i) {
        std::string serial = "c" + std::to_string(c) + "-" + std::to_string(i);
        if (!qmt::pki::append_index(path, sample_entry(serial)).ok()) {
          ::_exit(1);
        }
      }
      ::_exit(0);
    }
    children.push_back(child);
  }
  for (pid_t child : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }

  // Parsed twice: by yaml-cpp directly, and through read_index.
  YAML::Node document = YAML::LoadFile(path);
  EXPECT_TRUE(document.IsSequence());
  EXPECT_EQ(document.size(),
            static_cast<std::size_t>(k_children * k_per_child));
  auto entries = qmt::pki::read_index(path);
  ASSERT_TRUE(entries.ok()) << entries.error().message;
  std::set<std::string> serials;
  for (const auto& entry : entries.value()) serials.insert(entry.serial_hex);
  EXPECT_EQ(serials.size(), static_cast<std::size_t>(k_children * k_per_child));
  // Only the index and its lock file remain: no temporary file was left.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()),
                          std::filesystem::directory_iterator()),
            2);
}

TEST(UtcTime, RoundTrips) {
  EXPECT_EQ(qmt::pki::format_utc_time(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(qmt::pki::format_utc_time(1700000000), "2023-11-14T22:13:20Z");
  EXPECT_EQ(qmt::pki::parse_utc_time("2023-11-14T22:13:20Z").value(),
            1700000000);
  EXPECT_EQ(qmt::pki::parse_utc_time("2100-01-01T00:00:00Z").value(),
            4102444800);
}

TEST(UtcTime, RejectsInvalidText) {
  for (const char* text : {"2023-02-30T00:00:00Z", "2023-11-14 22:13:20",
                           "2023-11-14T22:13:20Zjunk", "1700000000", ""}) {
    auto parsed = qmt::pki::parse_utc_time(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.error().message,
              std::string("Invalid time \"") + text +
                  "\": expected UTC in the form 2025-01-31T12:00:00Z");
  }
}

TEST(LockPath, HiddenBesideFile) {
  EXPECT_EQ(qmt::pki::lock_path_for("/ca/index.yml"), "/ca/.index.yml.lock");
  EXPECT_EQ(qmt::pki::lock_path_for("index.yml"), "./.index.yml.lock");
}

TEST(LockFile, SharedLockDoesNotCreateFile) {
  TempDir dir;
  const std::string path = dir.path() + "/.lock";
  auto lock = qmt::pki::lock_file(path, false);
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  EXPECT_FALSE(lock.value().valid());
  EXPECT_FALSE(std::filesystem::exists(path));
  auto exclusive = qmt::pki::lock_file(path, true);
  ASSERT_TRUE(exclusive.ok()) << exclusive.error().message;
  EXPECT_TRUE(exclusive.value().valid());
  EXPECT_TRUE(std::filesystem::exists(path));
}

}  // namespace
