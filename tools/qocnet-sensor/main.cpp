// SPDX-License-Identifier: Apache-2.0
// qocnet-sensor: the sensor agent. Runs qocnet's egress program on the
// sensor's uplink and serves SensorService, through which the edge sets each
// stream's effective policy (the most any of its processes still needs), so
// the uplink carries no more than that.
//
//   qocnet-sensor --uplink wlan0 [--listen unix:/run/qocnet/sensor.sock]
//                 [--edge-uid UID]... [--tcp HOST:PORT --tls-cert F --tls-key F --tls-ca F]
//                 [--insecure-accept-any-edge] [--default-policy keep] [--log-level info]
//
// Only the edge may set policies (default deny, docs/SECURITY.md): on the
// local socket, peers whose uid is allowed (SO_PEERCRED; by default only the
// agent's own uid); over TCP, clients whose certificate the --tls-ca CA
// verified. Streams start under the default policy (keep) until the edge
// says otherwise. SIGTERM/SIGINT detach the program: the uplink sends everything.
#include <CLI/CLI.hpp>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "../common/metrics.hpp"
#include "convert.hpp"
#include "daemon_config.hpp"
#include "qocnet/sensor.hpp"
#include "qocnet/version.hpp"
#include "sensor_service.hpp"
#include "server.hpp"

using namespace qocnet;
using namespace qocnet::grpc_api;

namespace {

// The agent's Prometheus metrics, read from its uplink program at each scrape
// (docs/SENSOR.md, Metrics).
class SensorMetrics : public prometheus::Collectable {
 public:
  explicit SensorMetrics(const Sensor& sensor) : sensor_(sensor) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    using metrics::Families;
    Families fam;
    Families::add(fam.gauge("qocnet_sensor_up", "1 while the agent's uplink program is attached"), 1);
    metrics::add_build_info(fam, "qocnet_sensor_build_info");
    auto streams = sensor_.streams();
    if (!streams) return fam.take();
    auto& sent_d = fam.counter("qocnet_sensor_stream_sent_datagrams_total", "datagrams of the stream sent on the uplink");
    auto& sent_b = fam.counter("qocnet_sensor_stream_sent_bytes_total",
                               "bytes of the stream sent on the uplink (Ethernet header included)");
    auto& drop_d = fam.counter("qocnet_sensor_stream_dropped_datagrams_total",
                               "datagrams of the stream the policy dropped before the uplink");
    auto& drop_b = fam.counter("qocnet_sensor_stream_dropped_bytes_total",
                               "bytes of the stream the policy dropped before the uplink");
    auto& held = fam.counter("qocnet_sensor_stream_held_until_rap_datagrams_total",
                             "video datagrams held back until a random access point after dropping everything");
    auto& anomalies = fam.counter("qocnet_sensor_stream_anomalies_total",
                                  "datagrams of the stream the DPI found wrong, by kind (docs/DPI.md)");
    auto& drop = fam.gauge("qocnet_sensor_stream_policy_drop_ratio", "the share of the stream its policy drops");
    for (const auto& s : *streams) {
      v1::StreamId id;
      to_proto(s.stream, &id);
      v1::ClassCounts sent, dropped;
      to_proto(s.sent, s.sent_bytes, &sent);
      to_proto(s.dropped, s.dropped_bytes, &dropped);
      metrics::add_by_class(sent_d, sent.datagrams(), id);
      metrics::add_by_class(sent_b, sent.bytes(), id);
      metrics::add_by_class(drop_d, dropped.datagrams(), id);
      metrics::add_by_class(drop_b, dropped.bytes(), id);
      Families::add(held, static_cast<double>(s.held_until_rap), metrics::stream_labels(id));
      metrics::add_stream_anomalies(anomalies, id,
                                    {{"misaligned", s.dpi.misaligned}, {"cc_error", s.dpi.cc_errors},
                                     {"ts_partial", s.dpi.ts_partial}, {"ts_bad_sync", s.dpi.ts_bad_sync},
                                     {"ts_malformed", s.dpi.ts_malformed}, {"ts_unparsed", s.dpi.ts_unparsed}});
      Families::add(drop, s.policy.drop, metrics::stream_labels(id));
    }
    if (auto d = sensor_.dpi_counters()) {
      v1::DpiCounters dpi;
      to_proto(*d, &dpi);
      metrics::add_dpi(fam, dpi, "qocnet_sensor");
    }
    return fam.take();
  }

 private:
  const Sensor& sensor_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"qocnet-sensor: applies the edge's effective policy on the sensor's uplink (SensorService)"};
  app.set_version_flag("--version", qocnet::version_text("qocnet-sensor"),
                       "Print the versions of qocnet-sensor, libqocnet and libbcc and exit");
  std::string uplink, default_policy = "keep", log_level = "info", bpf_src;
  ListenOptions lo;
  lo.listen = "unix:/run/qocnet/sensor.sock";
  app.add_option("--uplink", uplink, "the interface toward the edge (TC egress)")->required();
  app.add_option("--listen", lo.listen, "local socket (default unix:/run/qocnet/sensor.sock)");
  app.add_option("--tcp", lo.tcp, "also listen on HOST:PORT with TLS (mutual TLS unless loopback)");
  app.add_option("--tls-cert", lo.tls_cert, "server certificate (PEM)");
  app.add_option("--tls-key", lo.tls_key, "server private key (PEM)");
  app.add_option("--tls-ca", lo.tls_ca, "CA of client certificates: require and verify them (mTLS)");
  app.add_option("--default-policy", default_policy, "policy of streams the edge has not set (default keep)");
  app.add_option("--bpf-src", bpf_src, "compile BPF sources from this directory instead of the embedded ones");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off");
  std::string metrics_address;
  app.add_option("--metrics", metrics_address, "serve Prometheus /metrics on HOST:PORT");
  std::vector<unsigned> edge_uids;
  bool insecure = false;
  app.add_option("--edge-uid", edge_uids,
                 "a uid allowed to set policies over the local socket (repeatable; default: the agent's own)");
  app.add_flag("--insecure-accept-any-edge", insecure,
               "INSECURE: take policies from anyone who can reach the agent (no uid or certificate check)");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ qocnet-sensor %v");
  {
    DaemonConfig probe;
    probe.log_level = log_level;
    if (auto v = validate(probe); !v) {
      std::fprintf(stderr, "qocnet-sensor: --log-level: %s\n", v.error().to_string().c_str());
      return 2;
    }
  }
  spdlog::set_level(spdlog::level::from_str(log_level));
  EdgeAuth auth;
  auth.insecure_accept_any = insecure;
  for (unsigned u : edge_uids) auth.uids.insert(static_cast<uid_t>(u));
  if (auth.uids.empty()) auth.uids.insert(::geteuid());
  lo.peer_credentials = true;
  lo.verify_in_service = true;

  auto policy = parse_policy(default_policy);
  if (!policy) {
    std::fprintf(stderr, "qocnet-sensor: --default-policy: %s\n", policy.error().to_string().c_str());
    return 2;
  }
  if (!lo.tcp.empty()) {
    if (lo.tls_cert.empty() || lo.tls_key.empty()) {
      std::fprintf(stderr, "qocnet-sensor: --tcp needs --tls-cert and --tls-key\n");
      return 2;
    }
    if (lo.tls_ca.empty() && !insecure) {
      std::fprintf(stderr,
                   "qocnet-sensor: --tcp %s needs --tls-ca: only an edge with a client certificate signed by "
                   "that CA may set policies (or, insecure, --insecure-accept-any-edge)\n",
                   lo.tcp.c_str());
      return 2;
    }
  }
  // SIGTERM and SIGINT through Asio; this thread waits for one below.
  boost::asio::io_context signal_io(1);
  boost::asio::signal_set stop_signals(signal_io, SIGTERM, SIGINT);
  int sig = 0;
  stop_signals.async_wait([&](const boost::system::error_code& ec, int s) {
    if (!ec) sig = s;
  });

  SensorOptions so;
  if (!bpf_src.empty()) so.bpf_src_dir = bpf_src;
  auto sensor = Sensor::create(so);
  if (!sensor) {
    spdlog::error("event=datapath_failed error=\"{}\"", sensor.error().to_string());
    return 1;
  }
  if (auto st = sensor->attach_uplink(uplink); !st) {
    spdlog::error("event=attach_failed uplink={} error=\"{}\"", uplink, st.error().to_string());
    return 1;
  }
  if (auto st = sensor->set_default_policy(*policy); !st) {
    spdlog::error("event=policy_failed error=\"{}\"", st.error().to_string());
    return 1;
  }
  std::unique_ptr<prometheus::Exposer> exposer;
  auto sensor_metrics = std::make_shared<SensorMetrics>(*sensor);
  if (!metrics_address.empty()) {
    try {
      exposer = std::make_unique<prometheus::Exposer>(metrics_address);
      exposer->RegisterCollectable(sensor_metrics, "/metrics");
      spdlog::info("event=metrics address={}", metrics_address);
    } catch (const std::exception& e) {
      spdlog::error("event=metrics_failed address={} error=\"{}\"", metrics_address, e.what());
      return 1;
    }
  }
  SensorServiceImpl service(*sensor, auth);
  auto server = start_server(lo, {&service});
  if (!server) {
    spdlog::error("event=listen_failed address={} error=\"{}\"", lo.listen, server.error().to_string());
    return 1;
  }
  (*server)->GetHealthCheckService()->SetServingStatus(true);
  std::string uids;
  for (auto u : auth.uids) uids += (uids.empty() ? "" : ",") + std::to_string(u);
  spdlog::info("event=ready uplink={} program_id={} listen={} default_policy={} edge_uids={} edge_tls={}", uplink,
               sensor->program_id(), lo.listen, to_string(*policy), uids, lo.tls_ca.empty() ? "no" : "mtls");
  if (insecure) spdlog::warn("event=insecure_accept_any_edge anyone who reaches the agent may set its policies");
  // Under systemd (Type=notify): ready now that the uplink program is attached.
  (void)sd_notifyf(0, "READY=1\nSTATUS=uplink %s, program %u", uplink.c_str(), sensor->program_id());
  signal_io.run();  // until SIGTERM or SIGINT
  spdlog::info("event=shutdown signal={}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (void)sd_notify(0, "STOPPING=1");
  (*server)->GetHealthCheckService()->SetServingStatus(false);
  stop_accepting(lo);
  (*server)->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  remove_socket(lo);
  return 0;
}
