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
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <chrono>
#include <future>
#include <memory>

#include "control/core.hpp"
#include "control/daemon_state.hpp"
#include "convert.hpp"
#include "daemon_config.hpp"
#include "sensor_pusher.hpp"
#include "server.hpp"
#include "health_http.hpp"
#include "services.hpp"

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

// Prometheus metrics, read from the datapath at each scrape.
class EdgeMetrics : public prometheus::Collectable {
 public:
  explicit EdgeMetrics(control::ControlCore& core) : ctl_(core) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    using prometheus::MetricType;
    std::vector<prometheus::MetricFamily> out;
    auto family = [&](const char* name, const char* help, MetricType type) -> prometheus::MetricFamily& {
      out.push_back({name, help, type, {}});
      return out.back();
    };
    auto add = [](prometheus::MetricFamily& f, double v, std::vector<prometheus::ClientMetric::Label> labels) {
      prometheus::ClientMetric m;
      m.label = std::move(labels);
      if (f.type == MetricType::Counter) m.counter.value = v;
      else m.gauge.value = v;
      f.metric.push_back(std::move(m));
    };
    add(family("qocnet_up", "1 once the datapath serves, else 0", MetricType::Gauge), ctl_.is_ready() ? 1 : 0, {});
    add(family("qocnet_policy_generation", "policy changes applied", MetricType::Counter),
        static_cast<double>(ctl_.generation()), {});
    auto stats = scrape(ctl_);
    if (!stats) return out;
    static const char* classes[] = {"other", "disp", "diff", "ref"};
    auto& seen = family("qocnet_stream_bytes_total", "bytes of each stream the DPI classified", MetricType::Counter);
    auto& delivered = family("qocnet_target_delivered_bytes_total", "bytes delivered to a process", MetricType::Counter);
    auto& dropped = family("qocnet_target_dropped_bytes_total", "bytes a process's policy dropped", MetricType::Counter);
    auto& reduction = family("qocnet_stream_reduction", "Eq. 4 bandwidth reduction of the stream", MetricType::Gauge);
    for (const auto& s : stats->streams()) {
      const auto& id = s.stream().stream();
      const std::string sid = id.source() + ":" + std::to_string(id.source_port()) + "->:" +
                              std::to_string(id.destination_port());
      for (int c = 0; c < 4 && c < s.stream().seen().bytes_size(); ++c)
        add(seen, static_cast<double>(s.stream().seen().bytes(c)), {{"stream", sid}, {"class", classes[c]}});
      add(reduction, s.bandwidth().reduction(), {{"stream", sid}});
      for (const auto& t : s.targets())
        for (int c = 0; c < 4 && c < t.delivered().bytes_size(); ++c) {
          add(delivered, static_cast<double>(t.delivered().bytes(c)),
              {{"stream", sid}, {"process", t.process()}, {"class", classes[c]}});
          add(dropped, static_cast<double>(t.dropped().bytes(c)),
              {{"stream", sid}, {"process", t.process()}, {"class", classes[c]}});
        }
    }
    return out;
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
    });
  });

  signal_io.run();  // until SIGTERM or SIGINT
  spdlog::info("event=shutdown signal={} keep_datapath={}", sig == SIGTERM ? "SIGTERM" : "SIGINT",
               cfg.keep_datapath);
  serving = false;
  ctl.keep_datapath(cfg.keep_datapath);
  ctl.cancel_start();  // a compile under way finishes, but nothing more is applied
  health->SetServingStatus(false);
  ctl.close_watches();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  ctl.stop();  // loop state written, sensor links stopped, the datapath let go (or kept)
  remove_socket(listen_opts);
  return failed ? 1 : 0;
}
