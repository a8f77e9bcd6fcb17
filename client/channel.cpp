#include "client/channel.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace orchestrator_client {

std::shared_ptr<grpc::Channel> make_channel(const Endpoint& endpoint) {
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (!endpoint.tls_ca.empty()) {
    std::ifstream in(endpoint.tls_ca);
    if (!in) throw std::runtime_error("cannot read TLS CA file " + endpoint.tls_ca);
    std::stringstream ss;
    ss << in.rdbuf();
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ss.str();
    creds = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  // A restarted coordinator is found within a second or two (gRPC's defaults wait up to 20 s).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 500);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  args.SetMaxReceiveMessageSize(kMaxReplyBytes);
  args.SetMaxSendMessageSize(kMaxRequestBytes);
  return grpc::CreateCustomChannel(endpoint.address, creds, args);
}

std::string describe(const grpc::Status& status, const Endpoint& endpoint) {
  switch (status.error_code()) {
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      if (status.error_message().find("larger than max") != std::string::npos)
        return "message too large for gRPC's limits (requests " +
               std::to_string(kMaxRequestBytes >> 20) + " MiB, replies " +
               std::to_string(kMaxReplyBytes >> 20) + " MiB): " + status.error_message();
      return status.error_message();
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "the coordinator at " + endpoint.address +
             " did not answer before the call's deadline (" + status.error_message() + ")";
    case grpc::StatusCode::UNAVAILABLE:
      return "coordinator at " + endpoint.address + " is unreachable: " + status.error_message();
    default:
      return status.error_message();
  }
}

std::unique_ptr<grpc::ClientContext> make_context(const Endpoint& endpoint,
                                                  std::chrono::milliseconds timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!endpoint.token.empty()) ctx->AddMetadata("authorization", "Bearer " + endpoint.token);
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  return ctx;
}

}  // namespace orchestrator_client
