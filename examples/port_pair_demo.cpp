// SPDX-License-Identifier: Apache-2.0
// qocnet port-pair demo: a sensor streams numbered UDP datagrams into the edge;
// the edge's BPF program forwards them along a port pair to process A, the
// pair is changed live to process B, then removed so the edge's own stack
// receives them. Every second it prints the per-port counters read from the
// datapath's maps and what each receiver got; at the end it checks that no
// datagram was lost or duplicated at the switch points.
//
// Run as root (scripts/demo builds and runs it).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "qocnet/edge.hpp"
#include "qocnet/testbed.hpp"

using namespace qocnet;
using namespace std::chrono;

namespace {

constexpr std::uint16_t kPort = 5000;

[[noreturn]] void die(const Error& e) {
  std::fprintf(stderr, "demo: %s\n", e.to_string().c_str());
  std::exit(1);
}
template <class T>
T must(Result<T> r) {
  if (!r) die(r.error());
  return std::move(r).value();
}
void must(Status s) {
  if (!s) die(s.error());
}

// Collects the sequence numbers one socket receives, on its own thread.
struct Receiver {
  Receiver(std::string n, testbed::UdpSocket s) : name(std::move(n)), sock(std::move(s)) {}
  std::string name;
  testbed::UdpSocket sock;
  std::vector<std::uint64_t> seqs;
  std::mutex mu;
  std::thread th;
  std::atomic<bool>* running = nullptr;

  std::size_t count() {
    std::lock_guard<std::mutex> g(mu);
    return seqs.size();
  }
  void start(std::atomic<bool>& run) {
    running = &run;
    th = std::thread([this] {
      while (running->load()) drain(milliseconds(20), 16);
      drain(milliseconds(200));
    });
  }
  void drain(milliseconds quiet, std::size_t max = SIZE_MAX) {
    auto got = sock.drain_seqs(quiet, max);
    std::lock_guard<std::mutex> g(mu);
    seqs.insert(seqs.end(), got.begin(), got.end());
  }
};

void print_header() {
  std::printf("\n%-5s %-24s | %9s %9s %9s | %8s %8s | %9s %9s %9s\n", "t[s]", "datapath",
              "e0 rx", "e0 fwd", "e0 pass", "e1 tx", "e2 tx", "proc A", "proc B", "edge");
}

void print_row(double t, const std::string& state, const Edge& edge, Receiver& a, Receiver& b,
               Receiver& e) {
  auto c0 = must(edge.port_counters("e0"));
  auto c1 = must(edge.port_counters("e1"));
  auto c2 = must(edge.port_counters("e2"));
  std::printf("%5.1f %-24s | %9llu %9llu %9llu | %8llu %8llu | %9zu %9zu %9zu\n", t, state.c_str(),
              (unsigned long long)c0.rx_packets, (unsigned long long)c0.fwd_packets,
              (unsigned long long)c0.pass_packets, (unsigned long long)c1.tx_packets,
              (unsigned long long)c2.tx_packets, a.count(), b.count(), e.count());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int rate = 1000;          // datagrams per second
  double phase_seconds = 3;  // per phase
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--rate" && i + 1 < argc) rate = std::max(1, std::atoi(argv[++i]));
    else if (a == "--phase" && i + 1 < argc) phase_seconds = std::max(0.5, std::atof(argv[++i]));
    else {
      std::fprintf(stderr, "usage: %s [--rate DATAGRAMS_PER_S] [--phase SECONDS]\n", argv[0]);
      return 2;
    }
  }
  if (::geteuid() != 0) {
    std::fprintf(stderr, "demo: needs root (network namespaces, TC, BPF); run: sudo %s\n", argv[0]);
    return 1;
  }

  testbed::sweep_stale_namespaces();
  std::printf("qocnet port-pair demo\n"
              "  sensor [s0] --- [e0] edge [e1] --- [p0] process A\n"
              "                            [e2] --- [p0] process B\n");
  auto topo = must(testbed::Topology::create(2));
  for (const testbed::Namespace* ns : {&topo->sensor, &topo->edge, &topo->procs[0], &topo->procs[1]})
    must(testbed::run({"ip", "netns", "exec", ns->name(), "sysctl", "-qw",
                       "net.ipv6.conf.all.disable_ipv6=1"}));
  std::printf("  namespaces: sensor %s, edge %s, A %s, B %s\n", topo->sensor.name().c_str(),
              topo->edge.name().c_str(), topo->procs[0].name().c_str(), topo->procs[1].name().c_str());

  const auto t_compile = steady_clock::now();
  Edge edge = must(testbed::in_namespace(topo->edge, [] { return Edge::create(); }));
  must(edge.attach_port("e0"));
  std::printf("  edge program compiled by libbcc and attached to e0 ingress in %.2f s (program id %u)\n",
              duration<double>(steady_clock::now() - t_compile).count(), edge.program_id());

  Receiver a{"A", must(testbed::UdpSocket::open(topo->procs[0], testbed::Topology::service_ip, kPort))};
  Receiver b{"B", must(testbed::UdpSocket::open(topo->procs[1], testbed::Topology::service_ip, kPort))};
  Receiver e{"edge", must(testbed::UdpSocket::open(topo->edge, testbed::Topology::service_ip, kPort))};
  auto sensor = must(testbed::UdpSocket::open(topo->sensor, testbed::Topology::sensor_ip, 40000));

  std::atomic<bool> receiving{true}, sending{true};
  std::atomic<std::uint64_t> sent{0};
  a.start(receiving);
  b.start(receiving);
  e.start(receiving);
  std::thread sender([&] {
    const auto gap = duration<double>(1.0 / rate);
    auto next = steady_clock::now();
    for (std::uint64_t i = 0; sending; ++i) {
      must(sensor.send_seq(testbed::Topology::service_ip, kPort, i, 512));
      sent = i + 1;
      next += duration_cast<steady_clock::duration>(gap);
      std::this_thread::sleep_until(next);
    }
  });

  struct Phase {
    std::string state;
    std::function<void()> enter;
  };
  std::uint64_t switch1 = 0, switch2 = 0;
  const std::vector<Phase> phases{
      {"pair e0 -> e1 (A)", [&] { must(edge.set_port_pair("e0", "e1")); }},
      {"pair e0 -> e2 (B)", [&] { must(edge.set_port_pair("e0", "e2")); switch1 = sent; }},
      {"no pair: edge stack", [&] { must(edge.remove_port_pair("e0")); switch2 = sent; }},
  };
  print_header();
  const auto t0 = steady_clock::now();
  for (const auto& ph : phases) {
    ph.enter();
    std::printf("----- live change: %s (map update; no recompile, no re-attach)\n", ph.state.c_str());
    const auto end = steady_clock::now() + duration<double>(phase_seconds);
    while (steady_clock::now() < end) {
      std::this_thread::sleep_for(milliseconds(1000));
      print_row(duration<double>(steady_clock::now() - t0).count(), ph.state, edge, a, b, e);
    }
  }
  sending = false;
  sender.join();
  std::this_thread::sleep_for(milliseconds(300));
  receiving = false;
  a.th.join();
  b.th.join();
  e.th.join();
  print_row(duration<double>(steady_clock::now() - t0).count(), "final", edge, a, b, e);

  // Every datagram exactly once, and each receiver got one contiguous run.
  std::vector<std::uint64_t> all;
  for (Receiver* r : {&a, &b, &e}) all.insert(all.end(), r->seqs.begin(), r->seqs.end());
  std::sort(all.begin(), all.end());
  const std::size_t unique = std::set<std::uint64_t>(all.begin(), all.end()).size();
  const std::uint64_t total = sent;
  auto contiguous = [](const std::vector<std::uint64_t>& v) {
    return v.empty() || (std::is_sorted(v.begin(), v.end()) && v.back() - v.front() + 1 == v.size());
  };
  const bool clean = all.size() == total && unique == total && contiguous(a.seqs) &&
                     contiguous(b.seqs) && contiguous(e.seqs) && !a.seqs.empty() &&
                     !b.seqs.empty() && !e.seqs.empty() && a.seqs.back() + 1 == b.seqs.front() &&
                     b.seqs.back() + 1 == e.seqs.front();
  std::printf("\nsummary: sent %llu datagrams; process A got %zu (seq %llu..%llu), process B got %zu "
              "(seq %llu..%llu), edge stack got %zu (seq %llu..%llu)\n",
              (unsigned long long)total, a.seqs.size(),
              (unsigned long long)(a.seqs.empty() ? 0 : a.seqs.front()),
              (unsigned long long)(a.seqs.empty() ? 0 : a.seqs.back()), b.seqs.size(),
              (unsigned long long)(b.seqs.empty() ? 0 : b.seqs.front()),
              (unsigned long long)(b.seqs.empty() ? 0 : b.seqs.back()), e.seqs.size(),
              (unsigned long long)(e.seqs.empty() ? 0 : e.seqs.front()),
              (unsigned long long)(e.seqs.empty() ? 0 : e.seqs.back()));
  std::printf("         lost %lld, duplicated %zu; changes near datagram %llu and %llu: %s\n",
              (long long)total - (long long)unique, all.size() - unique,
              (unsigned long long)switch1, (unsigned long long)switch2,
              clean ? "both switches clean" : "NOT CLEAN");
  std::printf("{\"sent\":%llu,\"proc_a\":%zu,\"proc_b\":%zu,\"edge_stack\":%zu,\"lost\":%lld,"
              "\"duplicated\":%zu,\"clean\":%s}\n",
              (unsigned long long)total, a.seqs.size(), b.seqs.size(), e.seqs.size(),
              (long long)total - (long long)unique, all.size() - unique, clean ? "true" : "false");
  return clean ? 0 : 1;
}
