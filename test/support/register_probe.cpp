// SPDX-License-Identifier: Apache-2.0
// A computation process's RegisterProcess, made from wherever it runs: the
// tests start it inside a process's namespace (nsenter --net=), so qocnetd
// sees the caller's credentials and namespace as it would a container's.
//
//   register_probe ADDRESS REQUEST_TEXT_PROTO
// prints the status code on the first line, the message on the second and
// the RegisterProcessResponse (text format) after them. Exit 0 once a call
// was made, 2 for bad arguments.
#include <google/protobuf/text_format.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "qocnet/v1/qoc.grpc.pb.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: register_probe ADDRESS REQUEST_TEXT_PROTO\n");
    return 2;
  }
  qocnet::v1::RegisterProcessRequest req;
  if (!google::protobuf::TextFormat::ParseFromString(argv[2], &req)) {
    std::fprintf(stderr, "register_probe: the request is not a RegisterProcessRequest in text format\n");
    return 2;
  }
  auto stub = qocnet::v1::QocService::NewStub(::grpc::CreateChannel(argv[1], ::grpc::InsecureChannelCredentials()));
  ::grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  qocnet::v1::RegisterProcessResponse resp;
  const ::grpc::Status st = stub->RegisterProcess(&ctx, req, &resp);
  std::string message = st.error_message();
  for (auto& c : message)
    if (c == '\n') c = ' ';
  std::string text;
  google::protobuf::TextFormat::PrintToString(resp, &text);
  std::printf("%d\n%s\n%s", static_cast<int>(st.error_code()), message.c_str(), text.c_str());
  return 0;
}
