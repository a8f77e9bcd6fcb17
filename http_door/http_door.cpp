#include "http_door/http_door.h"

#include <microhttpd.h>
#include <netdb.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace http_door {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string trim(const std::string& s) {
  const size_t first = s.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

// Whether Accept-Encoding lists gzip without q=0.
bool accepts_gzip(const std::string& accept_encoding) {
  size_t start = 0;
  while (start <= accept_encoding.size()) {
    const size_t comma = std::min(accept_encoding.find(',', start), accept_encoding.size());
    const std::string coding = accept_encoding.substr(start, comma - start);
    const size_t semi = coding.find(';');
    if (lower(trim(coding.substr(0, semi))) == "gzip") {
      const std::string q = semi == std::string::npos ? "" : lower(trim(coding.substr(semi + 1)));
      return !(q.rfind("q=0", 0) == 0 && q.find_first_of("123456789", 3) == std::string::npos);
    }
    start = comma + 1;
  }
  return false;
}

// Bytes already compressed or not worth it (images, archives) are sent as they are.
bool worth_gzip(const Response& res) {
  if (res.body.size() < 1024) return false;
  for (const auto& [name, value] : res.headers)
    if (lower(name) == "content-encoding") return false;
  const std::string type = lower(res.content_type);
  return type.rfind("image/", 0) != 0 || type.rfind("image/svg", 0) == 0;
}

// One request's bookkeeping, from its URL (MHD's URI log callback) to its end.
struct Exchange {
  size_t url_bytes = 0;
  bool head_seen = false;  // the access handler has run once: the headers are complete
  size_t body_bytes = 0;
};

// A streamed answer (Response::stream): the producer runs on a thread of its own, started at the
// first read (never for a HEAD, whose body MHD does not read), and stays at most kAhead bytes
// ahead of the connection's thread, which reads through read_stream. A reader that waits longer
// than the door's idle timeout for the next piece ends the answer with an error.
struct Stream {
  static constexpr size_t kAhead = 1 << 20;
  std::function<void(const StreamSink&)> produce;
  std::string door_name;
  std::chrono::seconds patience{10};
  std::mutex mu;
  std::condition_variable cv;
  std::string buffer;
  size_t offset = 0;  // bytes of buffer already sent
  bool done = false;
  bool failed = false;
  bool gone = false;  // the connection let go of the answer
  std::thread producer;

  void write(const std::string& piece) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return buffer.size() - offset < kAhead || gone; });
    if (gone) throw ClientGone();
    if (offset > kAhead) {
      buffer.erase(0, offset);
      offset = 0;
    }
    buffer += piece;
    cv.notify_all();
  }
  void run() {
    bool ok = true;
    try {
      produce([this](const std::string& piece) { write(piece); });
    } catch (const ClientGone&) {
    } catch (const std::exception& e) {
      spdlog::warn("{}: a streamed answer failed midway: {}", door_name, e.what());
      ok = false;
    } catch (...) {
      ok = false;
    }
    std::lock_guard lock(mu);
    failed = !ok;
    done = true;
    cv.notify_all();
  }
};

ssize_t read_stream(void* cls, uint64_t, char* out, size_t max) {
  auto* s = static_cast<Stream*>(cls);
  std::unique_lock lock(s->mu);
  if (!s->producer.joinable()) try {
      s->producer = std::thread([s] { s->run(); });
    } catch (const std::system_error&) {
      return MHD_CONTENT_READER_END_WITH_ERROR;  // no thread to be had: the answer fails
    }
  if (!s->cv.wait_for(lock, s->patience, [&] { return s->buffer.size() > s->offset || s->done; }))
    return MHD_CONTENT_READER_END_WITH_ERROR;
  const size_t n = std::min(max, s->buffer.size() - s->offset);
  if (n == 0)
    return s->failed ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
  std::memcpy(out, s->buffer.data() + s->offset, n);
  s->offset += n;
  s->cv.notify_all();
  return ssize_t(n);
}

// When MHD lets go of the answer: the producer is told (its next write throws ClientGone) and
// joined, which waits at most for the piece it is making.
void free_stream(void* cls) {
  auto* s = static_cast<Stream*>(cls);
  {
    std::lock_guard lock(s->mu);
    s->gone = true;
    s->cv.notify_all();
  }
  if (s->producer.joinable()) s->producer.join();
  delete s;
}

MHD_Response* stream_response(std::function<void(const StreamSink&)> produce,
                              const std::string& door_name, unsigned idle_timeout_s) {
  auto* s = new Stream;
  s->produce = std::move(produce);
  s->door_name = door_name;
  s->patience = std::chrono::seconds(idle_timeout_s);
  MHD_Response* r =
      MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, read_stream, s, free_stream);
  if (!r) delete s;
  return r;
}

std::string numeric_host(const sockaddr* address, int* port) {
  if (!address) return "";
  const socklen_t length =
      address->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  char host[NI_MAXHOST] = "", service[NI_MAXSERV] = "";
  if (getnameinfo(address, length, host, sizeof host, service, sizeof service,
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return "";
  *port = std::atoi(service);
  return host;
}

Response refusal(int status, const std::string& why) {
  Response res;
  res.status = status;
  res.set_content(why + "\n", "text/plain");
  return res;
}

// No exception may unwind into MHD's C frames: a failure here is a null exchange, which the
// access handler answers by closing the connection.
void* on_uri(void*, const char* uri, MHD_Connection*) {
  try {
    auto* exchange = new Exchange;
    exchange->url_bytes = std::strlen(uri);
    return exchange;
  } catch (...) {
    return nullptr;
  }
}

void on_completed(void*, MHD_Connection*, void** con_cls, MHD_RequestTerminationCode) {
  delete static_cast<Exchange*>(*con_cls);
  *con_cls = nullptr;
}

// MHD's own messages (a peer over its cap, a timeout, a TLS handshake that failed) come at an
// attacker's pace: debug level, so that they cannot fill a disk.
void on_log(void* cls, const char* format, va_list args) {
  char line[512];
  std::vsnprintf(line, sizeof line, format, args);
  std::string text = line;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  spdlog::debug("{}: {}", *static_cast<const std::string*>(cls), text);
}

// A bound listening socket for host:port (port 0: any); returns it and sets `port`.
int listen_on(const std::string& host, int& port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc =
          getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &found);
      rc != 0)
    throw std::runtime_error("cannot resolve '" + host + "': " + gai_strerror(rc));
  std::string why = "no address";
  int fd = -1;
  for (addrinfo* a = found; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
      why = std::strerror(errno);
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  if (fd < 0) throw std::runtime_error("cannot listen on " + host + ":" + service + ": " + why);
  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
  numeric_host(reinterpret_cast<sockaddr*>(&bound), &port);
  return fd;
}

}  // namespace

std::string Request::header(const std::string& name) const {
  const auto it = headers.find(lower(name));
  return it == headers.end() ? "" : it->second;
}

struct Door::Daemon {
  MHD_Daemon* mhd = nullptr;

  // The request read from MHD, checked against the door's bounds, guarded and routed.
  static Response answer(const Door& door, MHD_Connection* c, const char* url, const char* method,
                         const Exchange& exchange, Request& req) {
    req.method = method;
    req.path = url;
    req.tls = door.tls_;
    if (exchange.url_bytes > door.limits_.max_url_bytes)
      return refusal(414, "the URL has " + std::to_string(exchange.url_bytes) + " bytes; at most " +
                              std::to_string(door.limits_.max_url_bytes) + " are read");
    MHD_get_connection_values(
        c, MHD_GET_ARGUMENT_KIND,
        [](void* cls, MHD_ValueKind, const char* key, const char* value) noexcept {
          try {  // no exception may unwind through MHD's C frames
            static_cast<QueryParams*>(cls)->emplace(key, value ? value : "");
            return MHD_YES;
          } catch (...) {
            return MHD_NO;
          }
        },
        &req.params);
    if (req.params.size() > door.limits_.max_query_params)
      return refusal(400, "the query has " + std::to_string(req.params.size()) +
                              " parameters; at most " +
                              std::to_string(door.limits_.max_query_params) + " are read");
    // Every field counts toward the bound; a repeated name's values are joined (RFC 9110 5.3).
    struct HeadReading {
      Request& req;
      size_t bytes;
    } reading{req, exchange.url_bytes};
    MHD_get_connection_values(
        c, MHD_HEADER_KIND,
        [](void* cls, MHD_ValueKind, const char* key, const char* value) noexcept {
          try {
            auto& r = *static_cast<HeadReading*>(cls);
            const std::string v = value ? value : "";
            r.bytes += std::strlen(key) + v.size() + 4;
            auto [it, fresh] = r.req.headers.try_emplace(lower(key), v);
            if (!fresh) it->second += ", " + v;
            return MHD_YES;
          } catch (...) {
            return MHD_NO;
          }
        },
        &reading);
    const size_t head_bytes = reading.bytes;
    if (head_bytes > door.limits_.max_head_bytes)
      return refusal(431, "the request's headers have " + std::to_string(head_bytes) +
                              " bytes; at most " + std::to_string(door.limits_.max_head_bytes) +
                              " are read");
    const auto* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    req.peer_address = numeric_host(info ? info->client_addr : nullptr, &req.peer_port);
    Response res;
    if (door.guard_ && door.guard_(req, res)) return res;
    for (const Route& route : door.routes_) {
      std::smatch m;
      if (!std::regex_match(req.path, m, route.pattern)) continue;
      req.matches.assign(m.begin(), m.end());
      try {
        route.handler(req, res);
      } catch (const std::exception& e) {
        spdlog::error("{}: {} {} failed: {}", door.name_, req.method, req.path, e.what());
        return refusal(500, "internal error");
      }
      return res;
    }
    return refusal(404, "not found");
  }

  static MHD_Result queue(const Door& door, MHD_Connection* c, const Request& req, Response& res) {
    if (req.method == "HEAD") res.stream = nullptr;  // MHD sends no body: nothing to produce
    const bool compressible = !res.stream && worth_gzip(res);
    const bool gzip = compressible && accepts_gzip(req.header("accept-encoding"));
    if (gzip) {
      res.body = gzip_bytes(res.body);
      res.set_header("Content-Encoding", "gzip");
    }
    MHD_Response* r =
        res.stream ? stream_response(std::move(res.stream), door.name_, door.limits_.idle_timeout_s)
                   : MHD_create_response_from_buffer(res.body.size(), res.body.data(),
                                                     MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", res.content_type.c_str());
    if (compressible) MHD_add_response_header(r, "Vary", "Accept-Encoding");
    for (const auto& [name, value] : door.default_headers_)
      MHD_add_response_header(r, name.c_str(), value.c_str());
    // A year; not includeSubDomains: other services may share the coordinator's domain.
    if (door.tls_) MHD_add_response_header(r, "Strict-Transport-Security", "max-age=31536000");
    for (const auto& [name, value] : res.headers)
      MHD_add_response_header(r, name.c_str(), value.c_str());
    const MHD_Result queued = MHD_queue_response(c, unsigned(res.status), r);
    MHD_destroy_response(r);
    return queued;
  }

  // MHD's access handler. No exception unwinds into MHD's C frames: one that escapes a guard,
  // a route's match or the answer's making closes the connection (MHD_NO), logged.
  static MHD_Result on_request(void* cls, MHD_Connection* c, const char* url, const char* method,
                               const char*, const char*, size_t* upload_data_size,
                               void** con_cls) noexcept {
    const Door& door = *static_cast<const Door*>(cls);
    try {
      return handle(door, c, url, method, upload_data_size, static_cast<Exchange*>(*con_cls));
    } catch (const std::exception& e) {
      spdlog::error("{}: {} {}: {}", door.name_, method, url, e.what());
    } catch (...) {
    }
    return MHD_NO;
  }

  static MHD_Result handle(const Door& door, MHD_Connection* c, const char* url, const char* method,
                           size_t* upload_data_size, Exchange* exchange) {
    if (!exchange) return MHD_NO;
    Request req;
    if (!exchange->head_seen) {
      exchange->head_seen = true;
      // Refused before any body is read (MHD then closes): a method other than GET or HEAD, and
      // a declared body over the bound.
      if (std::strcmp(method, "GET") != 0 && std::strcmp(method, "HEAD") != 0) {
        Response res = refusal(405, "only GET and HEAD are served here");
        res.set_header("Allow", "GET, HEAD");
        return queue(door, c, req, res);
      }
      const char* length = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
      if (length && std::strtoull(length, nullptr, 10) > door.limits_.max_body_bytes) {
        Response res = refusal(413, "the request's body is over " +
                                        std::to_string(door.limits_.max_body_bytes) + " bytes");
        return queue(door, c, req, res);
      }
      return MHD_YES;
    }
    if (*upload_data_size > 0) {  // a chunked body: counted, never kept; over the bound, closed
      exchange->body_bytes += *upload_data_size;
      *upload_data_size = 0;
      return exchange->body_bytes > door.limits_.max_body_bytes ? MHD_NO : MHD_YES;
    }
    Response res = answer(door, c, url, method, *exchange, req);
    return queue(door, c, req, res);
  }
};

Door::Door(std::string name, Limits limits) : name_(std::move(name)), limits_(limits) {}

Door::~Door() { stop(); }

void Door::get(const std::string& pattern, Handler handler) {
  routes_.push_back({std::regex(pattern), std::move(handler)});
}

void Door::set_guard(Guard guard) { guard_ = std::move(guard); }

void Door::set_default_headers(std::vector<std::pair<std::string, std::string>> headers) {
  default_headers_ = std::move(headers);
}

int Door::start(const std::string& host, int port, const Tls& tls) {
  if (daemon_) throw std::logic_error(name_ + ": started twice");
  tls_ = tls.enabled();
  // MHD gets a duplicate: on some failures it closes the socket it was given and on others it
  // does not, so ours is closed here either way, and never twice.
  const int bound = listen_on(host, port);
  const int fd = dup(bound);
  close(bound);
  if (fd < 0) throw std::runtime_error(name_ + ": " + std::strerror(errno));
  // The memory MHD may use per connection holds the request's head and the answer's headers:
  // the head bound plus room for the answer.
  const size_t memory = limits_.max_head_bytes + 16 * 1024;
  std::vector<MHD_OptionItem> options = {
      // The logger first: MHD logs through it only from the option after it on.
      {MHD_OPTION_EXTERNAL_LOGGER, reinterpret_cast<intptr_t>(&on_log), &name_},
      {MHD_OPTION_LISTEN_SOCKET, fd, nullptr},
      {MHD_OPTION_CONNECTION_LIMIT, intptr_t(limits_.max_connections), nullptr},
      {MHD_OPTION_PER_IP_CONNECTION_LIMIT, intptr_t(limits_.max_connections_per_peer), nullptr},
      {MHD_OPTION_CONNECTION_TIMEOUT, intptr_t(limits_.idle_timeout_s), nullptr},
      {MHD_OPTION_CONNECTION_MEMORY_LIMIT, intptr_t(memory), nullptr},
      {MHD_OPTION_URI_LOG_CALLBACK, reinterpret_cast<intptr_t>(&on_uri), this},
      {MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<intptr_t>(&on_completed), this},
  };
  if (tls_) {
    options.push_back({MHD_OPTION_HTTPS_MEM_CERT, 0, const_cast<char*>(tls.cert_pem.c_str())});
    options.push_back({MHD_OPTION_HTTPS_MEM_KEY, 0, const_cast<char*>(tls.key_pem.c_str())});
  }
  options.push_back({MHD_OPTION_END, 0, nullptr});
  // A thread per connection (polled, not select()ed: no 1024-descriptor ceiling): a connection
  // that waits on its client holds only its own thread.
  const unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                         MHD_USE_POLL | MHD_USE_ERROR_LOG | (tls_ ? MHD_USE_TLS : 0);
  auto daemon = std::make_unique<Daemon>();
  daemon->mhd = MHD_start_daemon(flags, 0, nullptr, nullptr, &Daemon::on_request, this,
                                 MHD_OPTION_ARRAY, options.data(), MHD_OPTION_END);
  if (!daemon->mhd) {
    throw std::runtime_error(name_ + ": cannot serve on " + host + ":" + std::to_string(port) +
                             (tls_ ? " (is the TLS certificate and key PEM, and a pair?)" : ""));
  }
  daemon_ = std::move(daemon);
  return port;
}

void Door::stop() {
  if (!daemon_) return;
  MHD_stop_daemon(daemon_->mhd);  // closes the listening socket and every connection
  daemon_.reset();
}

void add_health_routes(Door& door, std::function<std::string()> not_ready) {
  door.get("/healthz",
           [](const Request&, Response& res) { res.set_content("ok\n", "text/plain"); });
  door.get("/readyz", [not_ready = std::move(not_ready)](const Request&, Response& res) {
    const std::string why = not_ready ? not_ready() : "";
    res.status = why.empty() ? 200 : 503;
    res.set_content(why.empty() ? "ready\n" : why + "\n", "text/plain");
  });
}

std::string gzip_bytes(const std::string& bytes) {
  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("gzip: deflateInit2 failed");
  std::string out(deflateBound(&z, uLong(bytes.size())) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = uInt(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = uInt(out.size());
  const int rc = deflate(&z, Z_FINISH);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) throw std::runtime_error("gzip: deflate did not finish");
  out.resize(z.total_out);
  return out;
}

}  // namespace http_door
