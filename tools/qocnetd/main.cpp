// SPDX-License-Identifier: Apache-2.0
// qocnetd: owns the edge datapath and serves qocnet's gRPC services.
//
//   qocnetd [--config FILE] [--listen unix:/run/qocnet/qocnet.sock]
//           [--tcp HOST:PORT --tls-cert F --tls-key F [--tls-ca F]]
//           [--metrics HOST:PORT] [--pin-dir DIR | --no-pin] [--keep-datapath]
//           [--port IF]... [--log-level debug|info|warn|error] [--state-file F]
//           [--sensor-tls-ca F [--sensor-tls-cert F --sensor-tls-key F]]
//
// It listens at once; the health service says NOT_SERVING and calls get
// UNAVAILABLE until the datapath is compiled (or re-adopted from its pins)
// and the configuration applied, then SERVING. SIGTERM/SIGINT: NOT_SERVING,
// policy streams end, the server drains, and the datapath is detached unless
// --keep-datapath (then it keeps forwarding with no daemon, and the next
// qocnetd re-adopts it). docs/SERVICE.md has the whole story.
#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>
#include <prometheus/client_metric.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <chrono>
#include <future>
#include <initializer_list>
#include <memory>
#include <tuple>

#include "control/core.hpp"
#include "control/daemon_state.hpp"
#include "convert.hpp"
#include "daemon_config.hpp"
#include "sensor_pusher.hpp"
#include "server.hpp"
#include "health_http.hpp"
#include "../common/metrics.hpp"
#include "services.hpp"
#include "qocnet/version.hpp"

using namespace qocnet;
using namespace qocnet::grpc_api;
using qocnet::qocnetd::HealthEndpoint;

namespace {

// One stats sample for a scrape (the exposer's thread, not a gRPC one): asks
// the core and waits for its answer, at most a second.
Result<v1::StatsUpdate> scrape(control::ControlCore& core) {
  auto answer = std::make_shared<std::promise<Result<control::StatsSnapshot>>>();
  auto got = answer->get_future();
  core.stats([answer](Result<control::StatsSnapshot> r) { answer->set_value(std::move(r)); });
  if (got.wait_for(std::chrono::seconds(1)) != std::future_status::ready)
    return make_error(Errc::unavailable, "the control core did not answer within 1 s", "");
  auto snapshot = got.get();
  if (!snapshot) return std::move(snapshot).error();
  v1::StatsUpdate u;
  to_proto(*snapshot, &u);
  return u;
}

// Prometheus metrics, read from the datapath at each scrape (docs/SERVICE.md,
// Metrics).
class EdgeMetrics : public prometheus::Collectable {
 public:
  explicit EdgeMetrics(control::ControlCore& core) : ctl_(core) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    using metrics::Families;
    Families fam;
    Families::add(fam.gauge("qocnet_up", "1 once the datapath serves, else 0"), ctl_.is_ready() ? 1 : 0);
    metrics::add_build_info(fam, "qocnet_build_info");
    Families::add(fam.counter("qocnet_policy_changes_total", "policy changes applied (the edge's generation)"),
                  static_cast<double>(ctl_.generation()));
    auto stats = scrape(ctl_);
    if (!stats) return fam.take();

    auto& seen_d = fam.counter("qocnet_stream_datagrams_total", "datagrams of the stream the DPI classified");
    auto& seen_b = fam.counter("qocnet_stream_bytes_total", "bytes of the stream the DPI classified");
    auto& anomalies = fam.counter("qocnet_stream_anomalies_total",
                                  "datagrams or frames of the stream the DPI found wrong, by kind (docs/DPI.md)");
    auto& frames = fam.counter("qocnet_stream_frames_total", "video frames (PES starts) of the stream");
    auto& reduction = fam.gauge("qocnet_stream_bandwidth_reduction_ratio",
                                "Eq. 4: 1 - (what the sensor sends) / (every process its own stream)");
    auto& del_d = fam.counter("qocnet_target_delivered_datagrams_total", "datagrams delivered to the process");
    auto& del_b = fam.counter("qocnet_target_delivered_bytes_total", "bytes delivered to the process");
    auto& drop_d = fam.counter("qocnet_target_dropped_datagrams_total", "datagrams the process's policy dropped");
    auto& drop_b = fam.counter("qocnet_target_dropped_bytes_total", "bytes the process's policy dropped");
    auto& held = fam.counter("qocnet_target_held_until_rap_datagrams_total",
                             "video datagrams held back from a joining process until a random access point");
    auto& required = fam.gauge("qocnet_process_qoc_required", "the QoC the process requires (its metric's unit)");
    auto& target = fam.gauge("qocnet_process_qoc_target", "the QoC the closed loop expects under its policy");
    auto& measured = fam.gauge("qocnet_process_qoc_measured", "the QoC the process last reported");
    auto& drop = fam.gauge("qocnet_process_policy_drop_ratio", "the share of the stream its policy drops");
    for (const auto& s : stats->streams()) {
      const auto& st = s.stream();
      const auto& id = st.stream();
      metrics::add_by_class(seen_d, st.seen().datagrams(), id);
      metrics::add_by_class(seen_b, st.seen().bytes(), id);
      metrics::add_stream_anomalies(anomalies, id,
                                    {{"misaligned", st.misaligned()}, {"cc_error", st.cc_errors()},
                                     {"ts_partial", st.ts_partial()}, {"ts_bad_sync", st.ts_bad_sync()},
                                     {"ts_malformed", st.ts_malformed()}, {"ts_unparsed", st.ts_unparsed()},
                                     {"hevc_pps_unknown", st.hevc_pps_unknown()}});
      Families::add(frames, st.frames(), metrics::stream_labels(id));
      Families::add(reduction, s.bandwidth().reduction(), metrics::stream_labels(id));
      for (int i = 0; i < s.targets_size(); ++i) {
        const auto& t = s.targets(i);
        const metrics::Labels who{{"process", t.process()}};
        metrics::add_by_class(del_d, t.delivered().datagrams(), id, who);
        metrics::add_by_class(del_b, t.delivered().bytes(), id, who);
        metrics::add_by_class(drop_d, t.dropped().datagrams(), id, who);
        metrics::add_by_class(drop_b, t.dropped().bytes(), id, who);
        Families::add(held, static_cast<double>(t.held_until_rap()), metrics::stream_labels(id, who));
        if (i >= s.requirements_size()) continue;
        const auto& r = s.requirements(i);
        Families::add(drop, r.policy().drop(), metrics::stream_labels(id, who));
        if (r.required() > 0) {
          Families::add(required, r.required(), metrics::stream_labels(id, who));
          Families::add(target, r.target(), metrics::stream_labels(id, who));
        }
        if (r.has_measured()) Families::add(measured, r.measured(), metrics::stream_labels(id, who));
      }
    }

    metrics::add_dpi(fam, stats->dpi(), "qocnet");

    auto& port_d = fam.counter("qocnet_port_datagrams_total",
                               "packets of an attached port: received, forwarded along its pair, passed to the "
                               "stack, transmitted by a pair");
    auto& port_b = fam.counter("qocnet_port_bytes_total", "bytes of an attached port, as for datagrams");
    for (const auto& p : stats->ports()) {
      for (const auto& [dir, n, b] : std::initializer_list<std::tuple<const char*, std::uint64_t, std::uint64_t>>{
               {"received", p.rx_packets(), p.rx_bytes()}, {"forwarded", p.fwd_packets(), p.fwd_bytes()},
               {"passed", p.pass_packets(), p.pass_bytes()}, {"transmitted", p.tx_packets(), p.tx_bytes()}}) {
        Families::add(port_d, static_cast<double>(n), {{"port", p.name()}, {"direction", dir}});
        Families::add(port_b, static_cast<double>(b), {{"port", p.name()}, {"direction", dir}});
      }
    }
    return fam.take();
  }

 private:
  control::ControlCore& ctl_;
};

// qocnet_serving is 1 while the gRPC health service says SERVING (a gauge in
// /metrics; probes use the health endpoint's /healthz, which answers 503).
class Healthz : public prometheus::Collectable {
 public:
  explicit Healthz(const std::atomic<bool>& serving) : serving_(serving) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    prometheus::MetricFamily f{"qocnet_serving", "1 while qocnetd serves", prometheus::MetricType::Gauge, {}};
    prometheus::ClientMetric m;
    m.gauge.value = serving_.load() ? 1 : 0;
    f.metric.push_back(m);
    return {f};
  }

 private:
  const std::atomic<bool>& serving_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"qocnetd: the qocnet edge daemon (gRPC: ControlService, QocService, health, reflection)"};
  app.set_version_flag("--version", qocnet::version_text("qocnetd"), "Print the versions of qocnetd, libqocnet and libbcc and exit");
  std::string config_file, listen, tcp, tls_cert, tls_key, tls_ca, metrics, pin_dir, log_level, bpf_src;
  std::vector<std::string> ports;
  bool keep = false, no_pin = false;
  app.add_option("--config", config_file, "YAML configuration (docs/SERVICE.md); flags override it");
  std::string process_listen;
  app.add_option("--listen", listen, "operator socket (default unix:/run/qocnet/qocnet.sock, mode 0600)");
  app.add_option("--process-listen", process_listen,
                 "process socket, QocService only, for containers (default unix:/run/qocnet/process/qocnet.sock; "
                 "none: no process socket)");
  app.add_option("--tcp", tcp, "also listen on HOST:PORT with TLS (mutual TLS unless loopback)");
  app.add_option("--tls-cert", tls_cert, "server certificate (PEM)");
  app.add_option("--tls-key", tls_key, "server private key (PEM)");
  app.add_option("--tls-ca", tls_ca, "CA of client certificates: require and verify them (mTLS)");
  app.add_option("--metrics", metrics, "serve Prometheus /metrics on HOST:PORT");
  std::string health_listen;
  app.add_option("--health", health_listen,
                 "serve plain HTTP /healthz (200 serving, 503 not yet or stopping) and /livez on HOST:PORT");
  app.add_option("--pin-dir", pin_dir, "pin the datapath here (default /sys/fs/bpf/qocnet)");
  app.add_flag("--no-pin", no_pin, "do not pin (the datapath dies with the daemon)");
  app.add_flag("--keep-datapath", keep, "on SIGTERM leave the datapath forwarding (re-adopted on restart)");
  app.add_option("--port", ports, "attach to this interface at start (repeatable)");
  app.add_option("--bpf-src", bpf_src, "compile BPF sources from this directory instead of the embedded ones");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off (default info)");
  std::string state_file, sensor_ca, sensor_cert, sensor_key;
  app.add_option("--state-file", state_file,
                 "tokens (hashed) and the edge epoch across restarts (default: by the pin dir, under /run/qocnet/state)");
  app.add_option("--sensor-tls-ca", sensor_ca, "CA of the sensor agents' server certificates (agents on TCP)");
  app.add_option("--sensor-tls-cert", sensor_cert, "qocnetd's client certificate toward sensor agents (PEM)");
  app.add_option("--sensor-tls-key", sensor_key, "its private key (PEM)");
  CLI11_PARSE(app, argc, argv);

  DaemonConfig cfg;
  cfg.controller.edge.pin_dir = "/sys/fs/bpf/qocnet";
  if (!config_file.empty()) {
    auto loaded = load_daemon_config(config_file);
    if (!loaded) {
      std::fprintf(stderr, "qocnetd: %s\n", loaded.error().to_string().c_str());
      return 2;
    }
    const bool had_pin = !loaded->controller.edge.pin_dir.empty();
    cfg = std::move(loaded).value();
    if (!had_pin) cfg.controller.edge.pin_dir = "/sys/fs/bpf/qocnet";
  }
  if (!listen.empty()) cfg.listen = listen;
  if (process_listen == "none") cfg.process_listen.clear();
  else if (!process_listen.empty()) cfg.process_listen = process_listen;
  if (!tcp.empty()) cfg.tcp = tcp;
  if (!tls_cert.empty()) cfg.tls_cert = tls_cert;
  if (!tls_key.empty()) cfg.tls_key = tls_key;
  if (!tls_ca.empty()) cfg.tls_ca = tls_ca;
  if (!metrics.empty()) cfg.metrics = metrics;
  if (!health_listen.empty()) cfg.health = health_listen;
  if (!pin_dir.empty()) cfg.controller.edge.pin_dir = pin_dir;
  if (no_pin) cfg.controller.edge.pin_dir.clear();
  if (keep) cfg.keep_datapath = true;
  if (!bpf_src.empty()) cfg.controller.edge.bpf_src_dir = bpf_src;
  if (!log_level.empty()) cfg.log_level = log_level;
  for (const auto& p : ports) cfg.controller.ports.push_back(p);
  if (!state_file.empty()) cfg.state_file = state_file;
  if (!sensor_ca.empty()) cfg.controller.sensor_tls.ca = sensor_ca;
  if (!sensor_cert.empty()) cfg.controller.sensor_tls.cert = sensor_cert;
  if (!sensor_key.empty()) cfg.controller.sensor_tls.key = sensor_key;
  // Tokens live as long as the datapath: with a pin dir, by default in a
  // file named after it; without one (--no-pin) processes die with qocnetd.
  if (!cfg.state_file.empty()) cfg.controller.state_file = cfg.state_file;
  else if (!cfg.controller.edge.pin_dir.empty())
    cfg.controller.state_file = control::default_state_file(cfg.controller.edge.pin_dir, cfg.controller.edge.lock_dir);
  for (const auto& p : cfg.controller.processes)
    if (auto st = check_interface_name(p.port, "processes." + p.name + ".port"); !st) {
      std::fprintf(stderr, "qocnetd: %s\n", st.error().to_string().c_str());
      return 2;
    }
  for (const auto& p : cfg.controller.ports)
    if (auto st = check_interface_name(p, "--port"); !st) {
      std::fprintf(stderr, "qocnetd: %s\n", st.error().to_string().c_str());
      return 2;
    }
  if (auto v = validate(cfg); !v) {
    std::fprintf(stderr, "qocnetd: %s\n", v.error().to_string().c_str());
    return 2;
  }
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ qocnetd %v");
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));

  // SIGTERM and SIGINT through Asio (taken from here on, whatever thread the
  // kernel delivers them to); this thread waits for one below.
  boost::asio::io_context signal_io(1);
  boost::asio::signal_set stop_signals(signal_io, SIGTERM, SIGINT);
  int sig = 0;
  stop_signals.async_wait([&](const boost::system::error_code& ec, int s) {
    if (!ec) sig = s;
  });

  control::ControlCore ctl(cfg.controller, SensorPusher::factory(cfg.controller.sensor_tls, cfg.controller.sensor_timeout));
  RateLimiter limiter(cfg.rate, cfg.burst);
  ControlServiceImpl control(ctl, AccessPolicy{&limiter, &cfg.tenancy});
  QocServiceImpl qoc(ctl, AccessPolicy{&limiter, &cfg.tenancy});
  ListenOptions listen_opts;
  listen_opts.listen = cfg.listen;
  listen_opts.process_listen = cfg.process_listen;
  listen_opts.tcp = cfg.tcp;
  listen_opts.tls_cert = cfg.tls_cert;
  listen_opts.tls_key = cfg.tls_key;
  listen_opts.tls_ca = cfg.tls_ca;
  // Every local connection is accepted by qocnetd: its credentials and
  // namespace decide what it may do (docs/SECURITY.md).
  listen_opts.peer_credentials = true;
  auto started = start_server(listen_opts, {&control, &qoc});
  if (!started) {
    spdlog::error("event=listen_failed address={} error=\"{}\"", cfg.listen, started.error().to_string());
    return 1;
  }
  auto server = std::move(started).value();
  auto* health = server->GetHealthCheckService();
  spdlog::info("event=listening address={} process_address={} tcp={} mtls={} tenants={} rate_limit={}/s",
               cfg.listen, cfg.process_listen.empty() ? "-" : cfg.process_listen, cfg.tcp.empty() ? "-" : cfg.tcp,
               cfg.tls_ca.empty() ? "no" : "yes", cfg.tenancy.tenants.size(), cfg.rate);

  std::atomic<bool> serving{false};
  std::unique_ptr<prometheus::Exposer> exposer;
  auto edge_metrics = std::make_shared<EdgeMetrics>(ctl);
  auto healthz = std::make_shared<Healthz>(serving);
  if (!cfg.metrics.empty()) {
    try {
      exposer = std::make_unique<prometheus::Exposer>(cfg.metrics);
      exposer->RegisterCollectable(edge_metrics, "/metrics");
      exposer->RegisterCollectable(healthz, "/metrics");
      spdlog::info("event=metrics address={}", cfg.metrics);
    } catch (const std::exception& e) {
      spdlog::error("event=metrics_failed address={} error=\"{}\"", cfg.metrics, e.what());
      return 1;
    }
  }

  std::unique_ptr<HealthEndpoint> health_http;
  if (!cfg.health.empty()) {
    auto h = HealthEndpoint::start(cfg.health, [&serving] { return serving.load(); });
    if (!h) {
      spdlog::error("event=health_failed address={} error=\"{}\"", cfg.health, h.error().to_string());
      return 1;
    }
    health_http = std::move(h).value();
    spdlog::info("event=health address={}", cfg.health);
  }

  std::atomic<bool> failed{false};
  ctl.start([&](const Status& s) {
    if (!s) {
      spdlog::error("event=datapath_failed error=\"{}\"", s.error().to_string());
      (void)sd_notifyf(0, "STATUS=datapath failed: %s", s.error().to_string().c_str());
      failed = true;
      ::kill(::getpid(), SIGTERM);
      return;
    }
    ctl.status([&](Result<control::CoreStatus> st) {
      if (st && st->adopted)
        spdlog::info("event=datapath_ready adopted=true compile=none ports={} (re-adopted pinned datapath, no compile)",
                     st->ports.size());
      else if (st)
        spdlog::info("event=datapath_ready adopted=false compile_seconds={:.3f} ports={}", st->compile_seconds,
                     st->ports.size());
      health->SetServingStatus(true);
      serving = true;
      // Under systemd (Type=notify): ready only now that the datapath serves.
      (void)sd_notifyf(0, "READY=1\nSTATUS=serving, %zu port(s), %s", st ? st->ports.size() : std::size_t{0},
                       st && st->adopted ? "datapath re-adopted from its pins" : "datapath compiled");
    });
  });

  signal_io.run();  // until SIGTERM or SIGINT
  spdlog::info("event=shutdown signal={} keep_datapath={}", sig == SIGTERM ? "SIGTERM" : "SIGINT",
               cfg.keep_datapath);
  serving = false;
  (void)sd_notify(0, "STOPPING=1");
  ctl.keep_datapath(cfg.keep_datapath);
  ctl.cancel_start();  // a compile under way finishes, but nothing more is applied
  health->SetServingStatus(false);
  ctl.close_watches();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  ctl.stop();  // loop state written, sensor links stopped, the datapath let go (or kept)
  remove_socket(listen_opts);
  return failed ? 1 : 0;
}
