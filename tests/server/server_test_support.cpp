#include "server/server_test_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sstream>

#include <gtest/gtest.h>

namespace wedlm::test {

RunningServer::RunningServer(server::ServerOptions options) {
  options.host = "127.0.0.1";
  options.port = 0;
  server_ = std::make_unique<server::Server>(options);
  thread_ = std::thread([this] { server_->run(); });
}

RunningServer::~RunningServer() {
  server_->shutdown();
  thread_.join();
}

httplib::Client RunningServer::client() const {
  httplib::Client c("127.0.0.1", port());
  c.set_read_timeout(300, 0);  // generous: sanitizer builds run the tiny models ~50x slower
  c.set_write_timeout(60, 0);
  c.set_connection_timeout(10, 0);
  return c;
}

SseBody parse_sse(const std::string& body) {
  SseBody out;
  std::size_t pos = 0;
  while (pos < body.size()) {
    const std::size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) {
      out.well_formed = false;  // trailing bytes without the blank line that ends an event
      break;
    }
    const std::string event = body.substr(pos, end - pos);
    pos = end + 2;
    if (event.rfind(":", 0) == 0) continue;  // comment (keep-alive)
    if (event.rfind("data: ", 0) != 0 || event.find('\n') != std::string::npos || out.done) {
      out.well_formed = false;
      continue;
    }
    const std::string data = event.substr(6);
    if (data == "[DONE]") {
      out.done = true;
      continue;
    }
    try {
      out.events.push_back(nlohmann::json::parse(data));
    } catch (const std::exception&) {
      out.well_formed = false;
    }
  }
  return out;
}

std::string sse_text(const SseBody& sse) {
  std::string text;
  for (const auto& e : sse.events) {
    for (const auto& c : e["choices"]) {
      if (c.contains("text")) text += c["text"].get<std::string>();
      if (c.contains("delta") && c["delta"].contains("content") && c["delta"]["content"].is_string()) {
        text += c["delta"]["content"].get<std::string>();
      }
    }
  }
  return text;
}

std::vector<int> sse_token_ids(const SseBody& sse) {
  std::vector<int> ids;
  for (const auto& e : sse.events) {
    for (const auto& c : e["choices"]) {
      if (c.contains("token_ids")) {
        for (const auto& id : c["token_ids"]) ids.push_back(id.get<int>());
      }
    }
  }
  return ids;
}

double metric_value(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  ADD_FAILURE() << "metric " << name << " missing from /metrics";
  return -1;
}

double fetch_metric(httplib::Client& client, const std::string& name) {
  auto r = client.Get("/metrics");
  if (!r || r->status != 200) {
    ADD_FAILURE() << "GET /metrics failed";
    return -1;
  }
  return metric_value(r->body, name);
}

RawConnection::RawConnection(int port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) ADD_FAILURE() << "connect failed";
}

RawConnection::~RawConnection() { close(); }

void RawConnection::send_post(const std::string& path, const std::string& body, const std::string& extra_headers) {
  std::string request = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
                        extra_headers + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  std::size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      ADD_FAILURE() << "send failed";
      return;
    }
    sent += static_cast<std::size_t>(n);
  }
}

std::string RawConnection::read_until(const std::string& needle, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (received_.find(needle) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) break;
    received_.append(buf, static_cast<std::size_t>(n));
  }
  return received_;
}

void RawConnection::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace wedlm::test
