// An HTTP door for hostile networks: the coordinator's dashboard, /metrics and health, and the
// worker's health port. Built on GNU libmicrohttpd (docs/decisions.md says why) with a thread per
// connection, so that a client that connects and sends nothing, or one byte a second, holds only
// its own thread and never delays another client's answer. What bounds it (Limits):
//   - connections: all peers together, and per peer address (over the cap: closed at accept);
//   - time: a connection idle for idle_timeout_s is closed;
//   - size: request line and headers together, the URL, the number of query parameters and the
//     body; over a bound the answer is 414, 431, 400 or 413 naming the bound, never a crash.
// Only GET and HEAD are served (405 otherwise): every route reads.
// Answers of 1 KiB or more are gzipped for clients that accept gzip. Every answer carries the
// door's default headers, and Strict-Transport-Security when serving TLS.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <utility>
#include <vector>

namespace http_door {

// Every name=value pair of the query, decoded, in order; a name may repeat.
using QueryParams = std::multimap<std::string, std::string>;

struct Request {
  std::string method;  // GET or HEAD
  std::string path;    // decoded, without the query
  QueryParams params;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string peer_address;                    // numeric: "127.0.0.1", "::1"
  int peer_port = 0;
  std::vector<std::string> matches;  // the route's groups; [0] is the whole path
  bool tls = false;

  // The header's value ("" when absent); `name` in any case.
  std::string header(const std::string& name) const;
  bool has_param(const std::string& name) const { return params.count(name) > 0; }
};

// Writes one piece of a streamed answer; throws ClientGone once the client has gone.
using StreamSink = std::function<void(const std::string& piece)>;
struct ClientGone : std::exception {
  const char* what() const noexcept override { return "the client closed the connection"; }
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // A long answer made while it is sent (chunked): run on a thread of its own while the client
  // reads, at most 1 MiB ahead of it. Empty for an answer held in `body`.
  std::function<void(const StreamSink&)> stream;

  void set_content(std::string text, std::string type) {
    body = std::move(text);
    content_type = std::move(type);
  }
  void set_header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

using Handler = std::function<void(const Request&, Response&)>;
// Runs before routing, for every request; returns true when it has answered (no route runs).
using Guard = std::function<bool(const Request&, Response&)>;

struct Limits {
  unsigned max_connections = 1000;         // all peers together
  unsigned max_connections_per_peer = 32;  // per client address
  unsigned idle_timeout_s = 10;            // no byte in or out for this long: closed
  size_t max_head_bytes = 16 * 1024;       // request line and headers together: 431 beyond
  size_t max_url_bytes = 4 * 1024;         // path and query as sent: 414 beyond
  size_t max_query_params = 64;            // 400 beyond
  size_t max_body_bytes = 0;               // a GET has no body: 413 beyond
};

// The bounds of a probe listener (liveness and readiness): a kubelet or a load balancer asks a
// few times a minute.
constexpr Limits kProbeLimits{.max_connections = 64, .max_connections_per_peer = 16};

// PEM texts of the certificate chain and its key; both empty: plain HTTP.
struct Tls {
  std::string cert_pem;
  std::string key_pem;
  bool enabled() const { return !cert_pem.empty(); }
};

class Door {
 public:
  // `name` prefixes the door's log lines ("coordinator http", "worker health").
  explicit Door(std::string name, Limits limits = {});
  ~Door();
  Door(const Door&) = delete;
  Door& operator=(const Door&) = delete;

  // Register before start(). `pattern` is a regular expression the whole path must match; its
  // groups land in Request::matches. The first route that matches answers; none: 404.
  void get(const std::string& pattern, Handler handler);
  void set_guard(Guard guard);
  void set_default_headers(std::vector<std::pair<std::string, std::string>> headers);

  // Binds host:port (port 0 picks one) and serves on threads of its own; returns the port.
  // Throws std::runtime_error saying why when it cannot listen.
  int start(const std::string& host, int port, const Tls& tls = {});
  void stop();  // closes every connection; idempotent
  const Limits& limits() const { return limits_; }

  struct Daemon;  // libmicrohttpd's side (http_door.cpp)

 private:
  struct Route {
    std::regex pattern;
    Handler handler;
  };
  friend struct Daemon;

  std::string name_;
  Limits limits_;
  std::vector<Route> routes_;
  Guard guard_;
  std::vector<std::pair<std::string, std::string>> default_headers_;
  bool tls_ = false;
  std::unique_ptr<Daemon> daemon_;
};

// Liveness and readiness on `door`: /healthz answers 200 "ok" while the process serves; /readyz
// 200 "ready", or 503 with the reason `not_ready` gives (empty: ready; no callback: always ready).
// Meant for a listener of its own, so that no client of the public door can fail a probe.
void add_health_routes(Door& door, std::function<std::string()> not_ready = {});

// The bytes gzipped (RFC 1952), as Content-Encoding: gzip sends them.
std::string gzip_bytes(const std::string& bytes);

}  // namespace http_door
