// `wedlm serve` as a process: the "listening on" line, serving, and SIGINT draining an
// in-flight stream before a clean exit.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>

#include "server/server_test_support.h"
#include "support/test_support.h"

namespace wedlm {
namespace {

class ServeProcess {
 public:
  explicit ServeProcess(const std::vector<std::string>& args) {
    int pipe_fds[2];
    if (::pipe(pipe_fds) != 0) throw std::runtime_error("pipe");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(pipe_fds[1], STDERR_FILENO);
      ::close(pipe_fds[0]);
      ::close(pipe_fds[1]);
      std::vector<char*> argv;
      std::string cli = WEDLM_CLI_PATH;
      argv.push_back(cli.data());
      std::vector<std::string> copy = args;
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(cli.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(pipe_fds[1]);
    err_fd_ = pipe_fds[0];
  }
  ~ServeProcess() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (err_fd_ >= 0) ::close(err_fd_);
  }
  // Reads stderr until `pattern` matches (or `seconds` pass); returns the match's first group.
  std::string wait_for(const std::regex& pattern, double seconds = 30) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    std::smatch m;
    while (!std::regex_search(stderr_, m, pattern)) {
      if (std::chrono::steady_clock::now() > deadline) return "";
      pollfd p{err_fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[1024];
      const ssize_t n = ::read(err_fd_, buf, sizeof buf);
      if (n <= 0) return "";
      stderr_.append(buf, static_cast<std::size_t>(n));
    }
    return m[1];
  }
  // Exit status, or -1 when it did not exit normally within `seconds`.
  int wait_exit(double seconds = 30) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    int status = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      read_available();
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped_ = true;
        read_available();
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
  pid_t pid() const { return pid_; }
  // Takes whatever stderr holds now, without waiting.
  void read_available() {
    pollfd p{err_fd_, POLLIN, 0};
    while (::poll(&p, 1, 0) > 0) {
      char buf[1024];
      const ssize_t n = ::read(err_fd_, buf, sizeof buf);
      if (n <= 0) return;
      stderr_.append(buf, static_cast<std::size_t>(n));
    }
  }
  const std::string& err() const { return stderr_; }

 private:
  pid_t pid_ = -1;
  int err_fd_ = -1;
  bool reaped_ = false;
  std::string stderr_;
};

TEST(ServeCli, ServesThenDrainsOnSigint) {
  ServeProcess p({"serve", "--model", test::fixtures_dir() + "/decode_models/qwen3_tiny", "--port", "0", "--host",
                  "127.0.0.1", "--max-sequences", "4", "--served-model-name", "tiny"});
  const std::string port_text = p.wait_for(std::regex(R"(listening on http://127\.0\.0\.1:(\d+)\n)"));
  ASSERT_FALSE(port_text.empty()) << p.err();
  const int port = std::stoi(port_text);
  ASSERT_GT(port, 0);

  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(30, 0);
  auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  c.stop();  // an idle keep-alive connection would hold shutdown for httplib's keep-alive timeout

  // A stream in flight when SIGINT comes is finished, not cut.
  test::RawConnection raw(port);
  const nlohmann::json body = {{"prompt", {1, 2, 3}}, {"max_tokens", 400}, {"mode", "ar"}, {"ignore_eos", true},
                               {"stream", true}, {"return_token_ids", true}};
  raw.send_post("/v1/completions", body.dump());
  ASSERT_NE(raw.read_until("data: {").find("200 OK"), std::string::npos);
  ASSERT_EQ(::kill(p.pid(), SIGINT), 0);
  const auto signalled = std::chrono::steady_clock::now();
  const std::string all = raw.read_until("data: [DONE]\n\n", 60);
  EXPECT_NE(all.find("\"finish_reason\":\"length\""), std::string::npos);
  EXPECT_NE(all.find("\"completion_tokens\":400"), std::string::npos);
  EXPECT_NE(all.find("data: [DONE]\n\n"), std::string::npos);
  raw.close();  // an idle keep-alive connection holds shutdown until httplib's keep-alive timeout (5 s)
  EXPECT_EQ(p.wait_exit(), 0) << p.err();
  std::printf("[serve] SIGINT to exit: %.2f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - signalled).count());
  EXPECT_NE(p.err().find("draining"), std::string::npos) << p.err();
  EXPECT_NE(p.err().find("server stopped"), std::string::npos) << p.err();
}

TEST(ServeCli, BadFlagsAndBusyPortFail) {
  auto r = test::run_cli("serve --model " + test::fixtures_dir() + "/decode_models/qwen3_tiny --port 70000");
  EXPECT_NE(r.exit_code, 0);
  ServeProcess first({"serve", "--model", test::fixtures_dir() + "/decode_models/qwen3_tiny", "--port", "0"});
  const std::string port = first.wait_for(std::regex(R"(listening on http://127\.0\.0\.1:(\d+)\n)"));
  ASSERT_FALSE(port.empty()) << first.err();
  auto busy = test::run_cli("serve --model " + test::fixtures_dir() + "/decode_models/qwen3_tiny --port " + port);
  EXPECT_EQ(busy.exit_code, 1);
  EXPECT_NE(busy.err.find("cannot bind"), std::string::npos) << busy.err;
  ::kill(first.pid(), SIGTERM);
  EXPECT_EQ(first.wait_exit(), 0) << first.err();
}

}  // namespace
}  // namespace wedlm
