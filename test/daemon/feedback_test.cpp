// SPDX-License-Identifier: Apache-2.0
// Edge -> sensor feedback end to end: three processes register with qocnetd
// over gRPC and report requirements; qocnetd pushes the stream's effective
// policy (the strictest) to the sensor agent, whose egress program sends no
// more than that on the uplink; when the strictest process leaves, the
// sensor's rate drops. Bytes are measured on the sensor's uplink and at each
// process's socket, over real H.264 video.
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cmath>
#include <mutex>
#include <sstream>
#include <thread>

#include "../support/corpus.hpp"
#include "../support/daemon.hpp"
#include "qocnet/version.hpp"

using namespace qocnet;
using namespace qocnet::test;
using std::chrono::microseconds;
using std::chrono::milliseconds;

namespace {

// Counts the payload bytes arriving at one process's socket.
struct ByteCounter {
  explicit ByteCounter(testbed::UdpSocket s) : sock(std::move(s)) {
    thread = std::thread([this] {
      std::uint8_t buf[2048];
      while (!stop) {
        pollfd p{sock.fd(), POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        const auto n = ::recv(sock.fd(), buf, sizeof buf, 0);
        if (n > 0) bytes += static_cast<std::uint64_t>(n);
      }
    });
  }
  ~ByteCounter() {
    stop = true;
    thread.join();
  }
  std::uint64_t take() { return bytes.exchange(0); }
  testbed::UdpSocket sock;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> bytes{0};
  std::thread thread;
};

// The QoC table of this test: differential allows 10 / 30 / 50 % loss for
// 0.95 / 0.8 / 0.5 (large steps, so the rates differ clearly).
constexpr const char* kTable =
    "metric: detection rate\n"
    "lossless: 1.0\n"
    "policies:\n"
    "  uniform: {loss: [0.01, 0.05], qoc: [0.9, 0.3]}\n"
    "  differential: {loss: [0.1, 0.3, 0.5], qoc: [0.95, 0.8, 0.5]}\n";

// One sample of a scrape: its name, labels ("k=v,k=v", sorted) and value.
struct Sample {
  std::string name, labels;
  double value;
};

// Scrapes http://127.0.0.1:PORT/metrics inside `ns` through
// test/daemon/metrics_check.py, which fails on any break of Prometheus's
// conventions or a missing `require`d family (NAME:TYPE).
std::vector<Sample> scrape(const testbed::Namespace& ns, int port, const std::vector<std::string>& require) {
  std::vector<std::string> argv{"nsenter", "--net=" + ns.path(), "/usr/bin/python3",
                                QOCNET_SOURCE_DIR "/test/daemon/metrics_check.py", "--url",
                                "http://127.0.0.1:" + std::to_string(port) + "/metrics"};
  for (const auto& r : require) argv.insert(argv.end(), {"--require", r});
  auto out = testbed::run(argv);
  INFO((out ? std::string() : out.error().to_string()));
  REQUIRE(out.ok());
  std::vector<Sample> samples;
  std::istringstream lines(*out);
  for (std::string line; std::getline(lines, line);) {
    const auto t1 = line.find('\t'), t2 = line.rfind('\t');
    REQUIRE(t1 != std::string::npos);
    samples.push_back({line.substr(0, t1), line.substr(t1 + 1, t2 - t1 - 1), std::stod(line.substr(t2 + 1))});
  }
  return samples;
}

// The sum of the samples named `name` whose labels contain every `want`.
double sum_of(const std::vector<Sample>& samples, const std::string& name, const std::vector<std::string>& want,
              int* count = nullptr) {
  double sum = 0;
  int n = 0;
  for (const auto& s : samples) {
    if (s.name != name) continue;
    const std::string labels = "," + s.labels + ",";
    bool all = true;
    for (const auto& w : want) all = all && labels.find("," + w + ",") != std::string::npos;
    if (!all) continue;
    sum += s.value;
    ++n;
  }
  if (count) *count = n;
  return sum;
}

std::uint64_t total(const google::protobuf::RepeatedField<std::uint64_t>& v) {
  std::uint64_t t = 0;
  for (auto x : v) t += x;
  return t;
}

constexpr int kMetricsPort = 9464;  // inside each test namespace

}  // namespace

TEST_CASE("the sensor sends the strictest process's need, and less once it leaves", "[daemon][feedback]") {
  auto t = testbed::Topology::create(3, true);
  REQUIRE_OK(t);
  auto& topo = **t;
  for (const auto* ns : {&topo.sensor, &topo.edge, &topo.procs[0], &topo.procs[1], &topo.procs[2]})
    REQUIRE_OK(testbed::run({"ip", "netns", "exec", ns->name(), "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                             "net.ipv6.conf.default.disable_ipv6=1"}));
  const auto& dgrams = [] {
    static const auto d = cut_every_7(corpus_ts(50));
    return std::cref(d);
  }().get();

  // The agent takes policies from the edge only: qocnetd runs as root, the
  // allowed uid on the agent's local socket (SO_PEERCRED).
  const std::string metrics = "127.0.0.1:" + std::to_string(kMetricsPort);
  Daemon sensor(topo.sensor, {"--uplink", "s0", "--edge-uid", "0", "--metrics", metrics}, "sa", QOCNET_SENSOR_PATH);
  Daemon edge(topo.edge, {"--no-pin", "--port", "e0", "--metrics", metrics}, "ed");
  REQUIRE(sensor.wait_serving());
  REQUIRE(edge.wait_serving());
  auto control = edge.control();
  v1::SetQocTableRequest table;
  table.set_yaml(kTable);
  v1::SetQocTableResponse table_resp;
  REQUIRE_GRPC_OK(control->SetQocTable(ctx().get(), table, &table_resp));

  std::vector<std::unique_ptr<ByteCounter>> rx;
  std::vector<std::string> tokens;
  auto q = edge.qoc();
  for (int i = 0; i < 3; ++i) {
    auto s = testbed::UdpSocket::open(topo.procs[i], testbed::Topology::process_ip(i),
                                      static_cast<std::uint16_t>(6000 + i), 32 << 20);
    REQUIRE_OK(s);
    rx.push_back(std::make_unique<ByteCounter>(std::move(*s)));
    auto reg = register_from(topo.procs[static_cast<std::size_t>(i)], edge.process_address(),
                             registration(i, stream_msg(), 0));
    REQUIRE_GRPC_OK(reg.status);
    const auto& r = reg.response;
    tokens.push_back(r.token());
  }
  v1::AddSensorRequest add;
  add.mutable_sensor()->set_name("camera");
  add.mutable_sensor()->set_address(sensor.address());
  *add.mutable_sensor()->add_streams() = stream_msg();
  v1::AddSensorResponse add_resp;
  REQUIRE_GRPC_OK(control->AddSensor(ctx().get(), add, &add_resp));

  auto snd = testbed::UdpSocket::open(topo.sensor, testbed::Topology::sensor_ip, kSensorPort);
  REQUIRE_OK(snd);
  // Replays the corpus paced at about 50 Mbit/s; returns the uplink's bytes.
  auto replay = [&] {
    auto before = topo.sensor.link_stat("s0", "tx_bytes");
    REQUIRE_OK(before);
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < dgrams.size(); ++i) {
      std::this_thread::sleep_until(t0 + microseconds(200 * i));
      REQUIRE_OK(snd->send_to(testbed::Topology::service_ip, kServicePort, dgrams[i]));
    }
    std::this_thread::sleep_for(milliseconds(300));
    auto after = topo.sensor.link_stat("s0", "tx_bytes");
    REQUIRE_OK(after);
    return static_cast<double>(*after - *before);
  };
  auto current_policy = [&] {
    v1::GetSensorStatusResponse st;
    REQUIRE_GRPC_OK(sensor.sensor()->GetSensorStatus(ctx().get(), {}, &st));
    for (const auto& s : st.streams())
      if (s.stream().source_port() == kSensorPort) return s.policy();
    return st.default_policy();
  };
  // Pushes to the sensor are asynchronous (a slow sensor stalls no call):
  // the policy the sensor has once it stopped changing (within 5 s).
  auto sensor_policy = [&] {
    auto p = current_policy();
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (int stable = 0; stable < 3 && std::chrono::steady_clock::now() < end;) {
      std::this_thread::sleep_for(milliseconds(50));
      auto next = current_policy();
      stable = next.SerializeAsString() == p.SerializeAsString() ? stable + 1 : 0;
      p = next;
    }
    return p;
  };
  auto wait_sensor_drop = [&](double drop) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < end && std::abs(current_policy().drop() - drop) > 1e-9)
      std::this_thread::sleep_for(milliseconds(20));
    return sensor_policy();
  };

  // Everyone keeps everything: the full stream.
  const double full_link = replay();
  std::vector<double> full_rx;
  for (auto& r : rx) full_rx.push_back(static_cast<double>(r->take()));
  for (double b : full_rx) CHECK(b == Approx(static_cast<double>(dgrams.size() * 1316)).epsilon(0.001));
  CHECK(sensor_policy().kind() == v1::POLICY_KIND_KEEP);

  // Requirements 0.95 / 0.8 / 0.5: differential 0.1 / 0.3 / 0.5; the sensor
  // sends the strictest's 0.9 of the stream.
  const double required[] = {0.95, 0.8, 0.5};
  const double loss[] = {0.1, 0.3, 0.5};
  for (int i = 0; i < 3; ++i) {
    v1::ReportRequirementRequest rr;
    rr.set_name("proc" + std::to_string(i));
    rr.set_required(required[i]);
    v1::ReportRequirementResponse resp;
    REQUIRE_GRPC_OK(q->ReportRequirement(ctx(tokens[i]).get(), rr, &resp));
    REQUIRE(resp.policies_size() == 1);
    CHECK(resp.policies(0).policy().drop() == Approx(loss[i]).margin(1e-9));
  }
  // The edge's drop shares follow the mix that arrives over a window of
  // bytes (QOC_SHARE_WINDOW); once the sensor drops upstream the mix
  // changes, so one unmeasured pass lets the window settle before measuring.
  auto settle = [&] {
    (void)replay();
    for (auto& r : rx) (void)r->take();
  };
  auto p1 = wait_sensor_drop(0.1);
  CHECK(p1.kind() == v1::POLICY_KIND_DIFFERENTIAL);
  CHECK(p1.drop() == Approx(0.1).margin(1e-9));
  settle();
  const double link1 = replay();
  INFO("uplink: full " << full_link << " B, with 0.95 present " << link1);
  CHECK(link1 / full_link == Approx(0.9).margin(0.03));
  for (int i = 0; i < 3; ++i) {
    const double got = static_cast<double>(rx[i]->take()) / full_rx[i];
    INFO("proc" << i << " got " << got << " of the stream, wants " << 1 - loss[i]);
    CHECK(got == Approx(1 - loss[i]).margin(0.03));
  }

  // The strictest leaves: the sensor now sends 0.7 of the stream.
  v1::UnregisterProcessRequest un;
  un.set_name("proc0");
  v1::UnregisterProcessResponse un_resp;
  REQUIRE_GRPC_OK(q->UnregisterProcess(ctx(tokens[0]).get(), un, &un_resp));
  auto p2 = wait_sensor_drop(0.3);
  CHECK(p2.kind() == v1::POLICY_KIND_DIFFERENTIAL);
  CHECK(p2.drop() == Approx(0.3).margin(1e-9));
  settle();
  const double link2 = replay();
  INFO("uplink after the strictest left: " << link2 << " B");
  CHECK(link2 / full_link == Approx(0.7).margin(0.03));
  CHECK(link2 < link1 * 0.85);
  CHECK(rx[0]->take() == 0);
  for (int i = 1; i < 3; ++i) {
    const double got = static_cast<double>(rx[i]->take()) / full_rx[i];
    INFO("proc" << i << " got " << got << " of the stream, wants " << 1 - loss[i]);
    CHECK(got == Approx(1 - loss[i]).margin(0.03));
  }
  v1::ListSensorsResponse sensors;
  REQUIRE_GRPC_OK(control->ListSensors(ctx().get(), {}, &sensors));
  REQUIRE(sensors.sensors_size() == 1);
  CHECK(sensors.sensors(0).last_error().empty());
  CHECK(sensors.sensors(0).applied().drop() == Approx(0.3).margin(1e-9));

  // Both metrics endpoints, by Prometheus's conventions, say what the gRPC
  // calls say (no traffic flows now, so the counts are final).
  const auto sensor_samples = scrape(topo.sensor, kMetricsPort,
                                     {"qocnet_sensor_up:gauge", "qocnet_sensor_build_info:gauge",
                                      "qocnet_sensor_stream_sent_bytes_total:counter",
                                      "qocnet_sensor_stream_sent_datagrams_total:counter",
                                      "qocnet_sensor_stream_dropped_bytes_total:counter",
                                      "qocnet_sensor_stream_policy_drop_ratio:gauge",
                                      "qocnet_sensor_dpi_datagrams_total:counter",
                                      "qocnet_sensor_dpi_anomalies_total:counter"});
  v1::GetSensorStatusResponse sst;
  REQUIRE_GRPC_OK(sensor.sensor()->GetSensorStatus(ctx().get(), {}, &sst));
  REQUIRE(sst.streams_size() >= 1);
  const auto& ss = sst.streams(0);
  const std::vector<std::string> cam{"source=" + std::string(testbed::Topology::sensor_ip),
                                     "source_port=" + std::to_string(kSensorPort),
                                     "destination_port=" + std::to_string(kServicePort)};
  CHECK(sum_of(sensor_samples, "qocnet_sensor_stream_sent_bytes_total", cam) == static_cast<double>(total(ss.sent().bytes())));
  CHECK(sum_of(sensor_samples, "qocnet_sensor_stream_sent_datagrams_total", cam) ==
        static_cast<double>(total(ss.sent().datagrams())));
  CHECK(sum_of(sensor_samples, "qocnet_sensor_stream_dropped_bytes_total", cam) ==
        static_cast<double>(total(ss.dropped().bytes())));
  CHECK(total(ss.dropped().bytes()) > 0);
  CHECK(sum_of(sensor_samples, "qocnet_sensor_stream_policy_drop_ratio", cam) == Approx(0.3).margin(1e-9));
  CHECK(sum_of(sensor_samples, "qocnet_sensor_dpi_datagrams_total", {"kind=seen"}) ==
        static_cast<double>(sst.dpi().seen()));

  // proc1 reports a measured QoC; proc2 reports none.
  v1::ReportMeasuredQocRequest mr;
  mr.set_name("proc1");
  mr.set_measured(0.85);
  v1::ReportMeasuredQocResponse mresp;
  REQUIRE_GRPC_OK(q->ReportMeasuredQoc(ctx(tokens[1]).get(), mr, &mresp));
  const auto edge_samples = scrape(topo.edge, kMetricsPort,
                                   {"qocnet_up:gauge", "qocnet_serving:gauge", "qocnet_build_info:gauge",
                                    "qocnet_policy_changes_total:counter", "qocnet_stream_bytes_total:counter",
                                    "qocnet_stream_datagrams_total:counter", "qocnet_stream_anomalies_total:counter",
                                    "qocnet_stream_bandwidth_reduction_ratio:gauge",
                                    "qocnet_target_delivered_bytes_total:counter",
                                    "qocnet_target_delivered_datagrams_total:counter",
                                    "qocnet_target_dropped_bytes_total:counter",
                                    "qocnet_process_qoc_required:gauge", "qocnet_process_qoc_measured:gauge",
                                    "qocnet_dpi_datagrams_total:counter", "qocnet_dpi_anomalies_total:counter",
                                    "qocnet_port_bytes_total:counter"});
  CHECK(sum_of(edge_samples, "qocnet_up", {}) == 1);
  int n = 0;
  CHECK(sum_of(edge_samples, "qocnet_build_info", {std::string("version=") + qocnet::version().version}, &n) == 1);
  CHECK(n == 1);
  v1::GetTargetStatsRequest tr;
  *tr.mutable_stream() = stream_msg();
  v1::GetTargetStatsResponse ts;
  REQUIRE_GRPC_OK(control->GetTargetStats(ctx().get(), tr, &ts));
  for (const auto& target : ts.targets()) {
    INFO(target.process());
    auto who = cam;
    who.push_back("process=" + target.process());
    CHECK(sum_of(edge_samples, "qocnet_target_delivered_bytes_total", who) ==
          static_cast<double>(total(target.delivered().bytes())));
    CHECK(sum_of(edge_samples, "qocnet_target_delivered_datagrams_total", who) ==
          static_cast<double>(total(target.delivered().datagrams())));
    CHECK(sum_of(edge_samples, "qocnet_target_dropped_bytes_total", who) ==
          static_cast<double>(total(target.dropped().bytes())));
  }
  CHECK(sum_of(edge_samples, "qocnet_process_qoc_required", {"process=proc1"}) == Approx(0.8));
  CHECK(sum_of(edge_samples, "qocnet_process_qoc_required", {"process=proc2"}) == Approx(0.5));
  CHECK(sum_of(edge_samples, "qocnet_process_qoc_measured", {"process=proc1"}, &n) == Approx(0.85));
  CHECK(n == 1);
  CHECK(sum_of(edge_samples, "qocnet_process_qoc_measured", {"process=proc2"}, &n) == 0);
  CHECK(n == 0);
  CHECK(sum_of(edge_samples, "qocnet_policy_changes_total", {}) > 0);
}
