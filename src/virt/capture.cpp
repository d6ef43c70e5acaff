#include "virt/capture.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <thread>
#include <vector>

#include "util/files.hpp"

extern char** environ;

namespace qmt::virt {

namespace {

using Clock = std::chrono::steady_clock;

// Owns a posix_spawn_file_actions_t.
class SpawnActions {
 public:
  SpawnActions() { posix_spawn_file_actions_init(&m_actions); }
  ~SpawnActions() { posix_spawn_file_actions_destroy(&m_actions); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
  posix_spawn_file_actions_t* get() { return &m_actions; }

 private:
  posix_spawn_file_actions_t m_actions;
};

std::string read_log(const std::string& path) {
  auto text = util::read_file(path);
  return text ? text.value() : std::string();
}

// Returns tshark's messages without its warning about running as root, on
// one line.
std::string log_excerpt(const std::string& text) {
  std::string excerpt;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty() || line.find("could be dangerous") != std::string::npos ||
        line.rfind("Running as user", 0) == 0) {
      continue;
    }
    excerpt += (excerpt.empty() ? "" : " ") + line;
  }
  return excerpt.empty() ? "no output" : excerpt;
}

std::optional<std::uint64_t> read_count(const std::string& text,
                                        const char* what) {
  const std::regex pattern(std::string("([0-9]+) packets? ") + what);
  std::smatch match;
  if (!std::regex_search(text, match, pattern)) return std::nullopt;
  return std::stoull(match[1].str());
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) {
    return "exited with status " + std::to_string(WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    return "was killed by signal " + std::to_string(WTERMSIG(status));
  }
  return "stopped";
}

// Waits up to `seconds` for `pid`; returns its status, or nullopt.
std::optional<int> wait_for_exit(pid_t pid, double seconds) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  while (true) {
    int status = 0;
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) return status;
    if (done < 0 && errno != EINTR) return status;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

Capture::Capture(Capture&& other) noexcept {
  *this = std::move(other);
}

Capture& Capture::operator=(Capture&& other) noexcept {
  if (this == &other) return *this;
  terminate();
  remove_files();
  m_pid = other.m_pid;
  m_file = std::move(other.m_file);
  m_keep_file = other.m_keep_file;
  m_folder = std::move(other.m_folder);
  m_log = std::move(other.m_log);
  other.m_pid = -1;
  other.m_folder.clear();
  other.m_file.clear();
  return *this;
}

Capture::~Capture() {
  terminate();
  remove_files();
}

util::Result<Capture> Capture::start(const CaptureSettings& settings) {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string folder_template =
      std::string(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp") +
      "/qmt-capture-XXXXXX";
  std::vector<char> folder_buffer(folder_template.begin(),
                                  folder_template.end());
  folder_buffer.push_back('\0');
  if (::mkdtemp(folder_buffer.data()) == nullptr) {
    return util::Error{"Failed to create a folder for the capture from " +
                       folder_template + ": " + util::errno_text(errno)};
  }
  Capture capture;
  capture.m_folder = folder_buffer.data();
  capture.m_log = capture.m_folder + "/tshark.log";
  capture.m_keep_file = !settings.file.empty();
  capture.m_file = capture.m_keep_file ? settings.file
                                       : capture.m_folder + "/migration.pcap";

  const std::vector<std::string> arguments = {
      settings.tshark,
      "-q",
      "-B",
      std::to_string(settings.buffer_mib),
      "-i",
      settings.interface,
      "-f",
      settings.filter,
      "-F",
      "pcap",
      "-w",
      capture.m_file};
  std::string command;
  for (const auto& argument : arguments) {
    const bool quote = argument.find(' ') != std::string::npos;
    command += (command.empty() ? "" : " ") +
               (quote ? "'" + argument + "'" : argument);
  }
  std::vector<char*> argv;
  for (const auto& argument : arguments) {
    argv.push_back(const_cast<char*>(argument.c_str()));
  }
  argv.push_back(nullptr);

  SpawnActions actions;
  posix_spawn_file_actions_addopen(actions.get(), STDIN_FILENO, "/dev/null",
                                   O_RDONLY, 0);
  posix_spawn_file_actions_addopen(actions.get(), STDOUT_FILENO, "/dev/null",
                                   O_WRONLY, 0);
  posix_spawn_file_actions_addopen(actions.get(), STDERR_FILENO,
                                   capture.m_log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = -1;
  const int spawned =
      ::posix_spawnp(&pid, settings.tshark.c_str(), actions.get(), nullptr,
                     argv.data(), environ);
  if (spawned != 0) {
    return util::Error{"Failed to start " + command + ": " +
                       util::errno_text(spawned)};
  }
  capture.m_pid = pid;

  const auto deadline = Clock::now() + std::chrono::duration<double>(
                                           settings.start_timeout_seconds);
  while (true) {
    const std::string log = read_log(capture.m_log);
    if (log.find("Capturing on") != std::string::npos) break;
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      capture.m_pid = -1;
      return util::Error{"tshark " + describe_status(status) +
                         " before capturing (" + command +
                         "): " + log_excerpt(log)};
    }
    if (Clock::now() >= deadline) {
      return util::Error{
          "tshark did not start capturing within " +
          std::to_string(static_cast<int>(settings.start_timeout_seconds)) +
          " s (" + command + "): " + log_excerpt(log)};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(
      std::chrono::duration<double>(settings.settle_seconds));
  return capture;
}

util::Result<CaptureSummary> Capture::stop() {
  if (m_pid <= 0) return util::Error{"The capture is not running"};
  ::kill(m_pid, SIGINT);
  auto status = wait_for_exit(m_pid, 60);
  if (!status) {
    terminate();
    return util::Error{
        "tshark did not stop within 60 s of SIGINT and was "
        "killed; the capture " +
        m_file + " may be incomplete"};
  }
  m_pid = -1;
  const std::string log = read_log(m_log);
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    return util::Error{"tshark " + describe_status(*status) +
                       " while capturing: " + log_excerpt(log)};
  }
  CaptureSummary summary;
  summary.file = m_file;
  summary.packets_captured = read_count(log, "captured");
  summary.packets_dropped = read_count(log, "dropped");
  // tshark prints the dropped count only when packets were dropped.
  if (summary.packets_captured && !summary.packets_dropped) {
    summary.packets_dropped = 0;
  }
  return summary;
}

void Capture::terminate() {
  if (m_pid <= 0) return;
  ::kill(m_pid, SIGTERM);
  if (!wait_for_exit(m_pid, 10)) {
    ::kill(m_pid, SIGKILL);
    wait_for_exit(m_pid, 10);
  }
  m_pid = -1;
}

void Capture::remove_files() {
  if (m_folder.empty()) return;
  std::error_code ignored;
  // The folder holds only what this object wrote: the log and, unless
  // settings.file named another place, the capture file.
  std::filesystem::remove_all(m_folder, ignored);
  m_folder.clear();
}

}  // namespace qmt::virt
