// SPDX-License-Identifier: Apache-2.0
// qocnetd's configuration: a YAML file (--config), then command-line flags
// on top. docs/SERVICE.md lists every key.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "core_options.hpp"
#include "tenancy.hpp"
#include "qocnet/error.hpp"

namespace qocnet::grpc_api {

struct DaemonConfig {
  std::string listen = "unix:/run/qocnet/qocnet.sock";  // the operator socket (root, 0600)
  // The process socket (QocService for containers; mode 0666, in a directory
  // of its own so the directory can be bind-mounted). Empty: none.
  std::string process_listen = "unix:/run/qocnet/process/qocnet.sock";
  TenancyConfig tenancy;       // who may register which streams; certificate operators
  std::string tcp;             // "HOST:PORT": also listen on TCP (TLS required)
  std::string tls_cert, tls_key, tls_ca;  // PEM files; tls_ca: require client certificates
  std::string metrics;         // "HOST:PORT": Prometheus /metrics
  std::string health;          // "HOST:PORT": plain HTTP /healthz (200 serving, 503 not) and /livez
  bool keep_datapath = false;  // leave the datapath in the kernel on SIGTERM
  double rate = 50, burst = 100;  // per-client calls per second, burst
  std::string log_level = "info";  // trace, debug, info, warn, error, critical, off
  std::string qoc_table_file;      // qoc_table: read by load_daemon_config
  std::string state_file;          // tokens and the edge epoch (docs/SERVICE.md); default by pin dir
  ControllerOptions controller;
};

// Reads the YAML text: a pure function (no file is read, nothing thrown),
// so a fuzzer can call it. Unknown keys, repeated keys, every shape mistake
// (a list where a value is expected, a list as a key, ...) and malformed
// values are invalid_argument errors that name the key.
Result<DaemonConfig> parse_daemon_config(const std::string& yaml, const std::string& origin);
// Reads the file, parses it and loads the qoc_table it names.
Result<DaemonConfig> load_daemon_config(const std::filesystem::path& file);
// Checks the combination: TLS files present and readable for TCP, mTLS for a
// non-loopback TCP address, a unix: listen address.
Status validate(const DaemonConfig& config);
// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_host(const std::string& host_port);

}  // namespace qocnet::grpc_api
