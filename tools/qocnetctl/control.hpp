// SPDX-License-Identifier: Apache-2.0
// qocnetctl's ControlService commands: one function per subcommand, each
// making one call (watch: one stream) with a deadline and printing the answer
// as a table or, with -o json, as one JSON object per response.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "qocnet/v1/control.grpc.pb.h"
#include "qocnet_client/channel.hpp"

namespace qocnet::ctl {

struct Globals {
  std::string address = client::kDefaultAddress;
  client::TlsFiles tls;
  double timeout_seconds = 5.0;
  std::string output = "table";  // or "json"
};

class Control {
 public:
  // The channel is made here (nothing is dialled until the first call);
  // bad addresses or TLS files fail with the library's error.
  static Result<Control> open(const Globals& globals);

  int port_attach(const std::string& port);
  int port_detach(const std::string& port);
  int port_list();
  int pair_set(const std::string& ingress, const std::string& egress);
  int pair_remove(const std::string& ingress);
  int pair_list();
  int counters(const std::vector<std::string>& ports);
  int process_add(const v1::ProcessSpec& spec);
  int process_remove(const std::string& name);
  int process_list();
  int targets_set(const std::string& stream, const std::vector<std::string>& processes);
  int policy_set(const std::string& process, const std::string& stream, const std::string& policy);
  int stats(const std::string& stream);
  int require(const std::string& process, const std::string& stream, double required);
  int effective(const std::string& stream);
  int bandwidth(const std::string& stream);
  int table_get();
  int table_set(const std::string& file);
  int streams();
  int streams_reset();
  int dpi();
  int sensor_add(const std::string& name, const std::string& address,
                 const std::vector<std::string>& streams);
  int sensor_remove(const std::string& name);
  int sensor_list();
  int status();
  // Prints `local` (this program's versions), then asks qocnetd for its own.
  int version(const std::string& local);
  int watch(unsigned interval_ms, unsigned count);

 private:
  Control(client::Address address, std::shared_ptr<::grpc::Channel> channel, const Globals& g);

  // One unary call with the deadline; prints the response with `print`
  // (table mode) or as JSON; returns the exit code.
  template <class Req, class Resp, class Print>
  int call(::grpc::Status (v1::ControlService::Stub::*method)(::grpc::ClientContext*, const Req&, Resp*),
           const Req& request, Print print);
  int fail(const ::grpc::Status& status) const;

  client::Address address_;
  std::shared_ptr<::grpc::Channel> channel_;
  std::unique_ptr<v1::ControlService::Stub> stub_;
  std::chrono::milliseconds timeout_;
  bool json_ = false;
};

// Prints "qocnetctl: <error>" and returns its exit code (2 for
// invalid_argument / not_found / already_exists, 1 otherwise).
int fail(const Error& error);

}  // namespace qocnet::ctl
