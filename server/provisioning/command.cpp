#include "server/provisioning/command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace server {

namespace {
constexpr size_t kMaxOutputBytes = size_t(4) << 20;

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}
}  // namespace

std::string CommandResult::describe() const {
  if (timed_out) return "timed out";
  std::string first = err.empty() ? out : err;
  first = first.substr(0, first.find('\n'));
  return "exit " + std::to_string(exit_code) + (first.empty() ? "" : ": " + first);
}

std::map<std::string, std::string> environment_without(const std::vector<std::string>& names) {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string entry(*e);
    const auto eq = entry.find('=');
    if (eq == std::string::npos) continue;
    const std::string name = entry.substr(0, eq);
    if (std::find(names.begin(), names.end(), name) == names.end())
      env[name] = entry.substr(eq + 1);
  }
  return env;
}

CommandResult run_command(const std::vector<std::string>& argv,
                          const std::map<std::string, std::string>& environment,
                          const std::string& stdin_text, std::chrono::milliseconds timeout) {
  if (argv.empty()) throw std::invalid_argument("run_command: no program");
  int in[2], out[2], err[2], exec_err[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) ||
      pipe2(exec_err, O_CLOEXEC))
    throw std::runtime_error(std::string("run_command: pipe: ") + std::strerror(errno));
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<std::string> env_text;
  for (const auto& [k, v] : environment) env_text.push_back(k + "=" + v);
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (auto& e : env_text) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("run_command: fork: ") + std::strerror(errno));
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    setpgid(0, 0);  // its own group: a timeout kills what it started too
    execvpe(args[0], args.data(), envp.data());
    const int e = errno;
    (void)!write(exec_err[1], &e, sizeof e);
    _exit(127);
  }
  setpgid(pid, pid);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  ::close(exec_err[1]);
  int exec_errno = 0;
  const bool exec_failed = read(exec_err[0], &exec_errno, sizeof exec_errno) == sizeof exec_errno;
  ::close(exec_err[0]);

  CommandResult result;
  int fds[3] = {in[1], out[0], err[0]};
  size_t written = 0;
  if (stdin_text.empty() || exec_failed) close_fd(fds[0]);
  for (int& fd : fds)
    if (fd >= 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (fds[0] >= 0 || fds[1] >= 0 || fds[2] >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      break;
    }
    pollfd p[3];
    for (int i = 0; i < 3; ++i) p[i] = {fds[i], short(i == 0 ? POLLOUT : POLLIN), 0};
    if (poll(p, 3, int(std::min<int64_t>(left.count(), 1000))) < 0 && errno != EINTR) break;
    if (fds[0] >= 0 && (p[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t n = write(fds[0], stdin_text.data() + written, stdin_text.size() - written);
      if (n > 0) written += size_t(n);
      if (n < 0 || written == stdin_text.size()) close_fd(fds[0]);
    }
    for (int i = 1; i < 3; ++i) {
      if (fds[i] < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      const ssize_t n = read(fds[i], buf, sizeof buf);
      if (n <= 0) {
        close_fd(fds[i]);
        continue;
      }
      std::string& sink = i == 1 ? result.out : result.err;
      sink.append(buf,
                  std::min(size_t(n), kMaxOutputBytes - std::min(kMaxOutputBytes, sink.size())));
    }
  }
  for (int& fd : fds) close_fd(fd);
  if (result.timed_out) kill(-pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (exec_failed)
    throw std::runtime_error("cannot run " + argv[0] + ": " + std::strerror(exec_errno));
  result.exit_code = WIFEXITED(status) && !result.timed_out ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace server
