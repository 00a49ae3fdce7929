// SPDX-License-Identifier: Apache-2.0
// qocnet-eval-cpu: the network side of the CPU measurements (scripts/evaluate-cpu,
// docs/EVALUATION.md, Fig. 5 and Fig. 7). It builds consumer namespaces
// behind qocnet Edges, replays camera captures through them in real time, and
// is driven line by line on stdin while the caller runs and measures the
// consumers in the namespaces it announces.
//
//   qocnet-eval-cpu --consumers N [--group-size G]
//       --stream FILE:FPS:SET [--stream ...]
//
// Consumers 0..N-1 are network namespaces with their own addresses, G per
// testbed topology (a sensor namespace, an edge namespace running one
// qocnet::Edge, G consumer namespaces); G defaults to N: one edge. Stream s
// (UDP from 10.77.0.1:40000+s to port 5000+s) is cloned by its group's edge
// to the consumers in SET (comma-separated consumers and FIRST-LAST ranges,
// e.g. 0-7 or 0,2,4; all in one group); a copy keeps its destination port, so
// a consumer of streams 0 and 1 listens on 5000 and 5001.
//
// The tool copies no datapath limit: what an Edge refuses as beyond its
// limits (Errc::resource_exhausted from add_process: processes per edge,
// QOC_MAX_PROCS; from set_clone_targets: clone targets per stream,
// QOC_MAX_TARGETS) and what the testbed's topology refuses end the tool with
// an error naming that limit. Any fatal error is also answered on stdout as
// {"error": "..."}, so that a driver reading answers sees why.
//
// Real time: a datagram that starts a PES (a video frame) starts the next
// frame slot (1/FPS); a frame's datagrams are spread evenly over its slot, as
// a paced camera sends them. Streams get fixed phase offsets.
//
// On stdin, one command a line; every answer is one JSON line on stdout:
//   targets S SET            clone stream S to the consumers in SET (policy keep)
//   policy C S POLICY        consumer C's policy on stream S ("keep", "differential(0.25)")
//   run SECONDS S,S,...      reset stream state, send those streams' first SECONDS
//                            in real time; answer: per target the kernel's counters
//                            for this run, the sender thread's CPU time, lateness
//   quit
// The first line out announces the namespaces: {"consumers":[{"ns":..,"ip":..}],...}.
// Needs root. Namespaces are removed on exit, SIGINT and SIGTERM.
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <tuple>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "qocnet/classify.hpp"
#include "qocnet/edge.hpp"
#include "qocnet/qoc.hpp"
// Topology::process_mac(i) formats i + 1 as two hex digits; with no bound on
// a group's size here GCC cannot see that Topology::create refuses an index
// that would not fit (-Wformat-truncation, a false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include "qocnet/testbed.hpp"
#pragma GCC diagnostic pop

using namespace qocnet;

namespace {

std::atomic<bool> g_stop{false};

std::string json_escape(const std::string& t) {
  std::string o;
  for (char c : t) {
    if (c == '"' || c == '\\') o += '\\', o += c;
    else if (static_cast<unsigned char>(c) < 0x20) o += ' ';
    else o += c;
  }
  return o;
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "qocnet-eval-cpu: %s\n", what.c_str());
  std::printf("{\"error\":\"%s\"}\n", json_escape(what).c_str());
  std::fflush(stdout);
  throw std::runtime_error(what);
}
template <class T>
T must(Result<T> r, const std::string& what) {
  if (!r) die(what + ": " + r.error().to_string());
  return std::move(r).value();
}
void must(Status s, const std::string& what) {
  if (!s) die(what + ": " + s.error().to_string());
}
// As must(), naming the datapath's limit (`limit`) when the Edge refused for
// want of room (resource_exhausted).
void must_fit(Status s, const std::string& what, const std::string& limit) {
  if (!s && s.error().code == Errc::resource_exhausted)
    die(what + ": beyond the datapath's limit on " + limit + ": " + s.error().message);
  must(std::move(s), what);
}

// "0-7", "0,2,4", "1,3-5": consumers, ascending, without repeats; each below `consumers`.
std::vector<int> parse_set(const std::string& text, int consumers, const std::string& what) {
  std::vector<int> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    const auto dash = item.find('-');
    int a = -1, b = -1;
    try {
      std::size_t used = 0;
      a = std::stoi(item.substr(0, dash), &used);
      if (used != (dash == std::string::npos ? item.size() : dash)) a = -1;
      b = a;
      if (dash != std::string::npos) {
        b = std::stoi(item.substr(dash + 1), &used);
        if (used != item.size() - dash - 1) b = -1;
      }
    } catch (const std::exception&) {
      a = b = -1;
    }
    if (a < 0 || b < a || b >= consumers)
      die(what + ": '" + item + "' is not a consumer or a FIRST-LAST range of consumers 0.." +
          std::to_string(consumers - 1));
    for (int c = a; c <= b; ++c) out.push_back(c);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  if (out.empty()) die(what + ": no consumers");
  return out;
}

std::vector<std::vector<std::uint8_t>> payloads(const Capture& cap) {
  std::vector<std::vector<std::uint8_t>> out;
  for (const auto& f : cap.frames) {
    if (f.size() < 14 + 20 + 8 || f[12] != 0x08 || f[13] != 0x00) continue;
    const std::size_t ihl = static_cast<std::size_t>(f[14] & 0x0f) * 4;
    if (f[14 + 9] != 17 || f.size() < 14 + ihl + 8) continue;
    out.emplace_back(f.begin() + static_cast<long>(14 + ihl + 8), f.end());
  }
  return out;
}

// Does the datagram hold the start of a PES packet (a video frame)?
bool starts_pes(const std::vector<std::uint8_t>& d) {
  for (std::size_t o = 0; o + 188 <= d.size(); o += 188) {
    const std::uint8_t* p = d.data() + o;
    if (p[0] != 0x47 || !(p[1] & 0x40)) continue;
    const int afc = (p[3] >> 4) & 3;
    std::size_t off = 4;
    if (afc & 2) off += 1 + p[4];
    if (!(afc & 1) || off + 3 > 188) continue;
    if (p[off] == 0 && p[off + 1] == 0 && p[off + 2] == 1) return true;
  }
  return false;
}

struct Stream {
  std::vector<std::vector<std::uint8_t>> dg;
  std::vector<double> t;  // send time of each datagram, seconds from the start
  int group = 0;
  std::vector<int> members;  // the consumers it is cloned to
  std::unique_ptr<testbed::UdpSocket> sock;
  StreamId id;
};

struct Group {
  std::unique_ptr<testbed::Topology> net;
  std::unique_ptr<Edge> edge;
  int base = 0, size = 0;
};

std::string proc_name(int c) { return "c" + std::to_string(c); }

double thread_cpu() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void usage() {
  std::fprintf(stderr,
               "usage: qocnet-eval-cpu --consumers N [--group-size G] --stream FILE:FPS:SET ...\n"
               "  SET: consumers and FIRST-LAST ranges, comma-separated (0-49, 0,2,4)\n");
  std::exit(2);
}

int run_main(int argc, char** argv) {
  int consumers = 0, group_size = 0;  // 0: one group of all consumers
  std::vector<std::string> specs;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--consumers") consumers = std::stoi(next());
    else if (a == "--group-size") group_size = std::stoi(next());
    else if (a == "--stream") specs.push_back(next());
    else usage();
  }
  if (consumers < 1 || specs.empty() || group_size < 0) usage();
  if (group_size == 0) group_size = consumers;

  std::vector<Stream> streams(specs.size());
  for (std::size_t s = 0; s < specs.size(); ++s) {
    const auto& sp = specs[s];
    const auto c2 = sp.rfind(':'), c1 = sp.rfind(':', c2 - 1);
    if (c1 == std::string::npos || c2 == std::string::npos) usage();
    const std::string file = sp.substr(0, c1), range = sp.substr(c2 + 1);
    const double fps = std::stod(sp.substr(c1 + 1, c2 - c1 - 1));
    Stream& st = streams[s];
    st.members = parse_set(range, consumers, "--stream " + sp);
    st.group = st.members.front() / group_size;
    if (st.members.back() / group_size != st.group)
      die("--stream " + sp + ": its consumers are not within one group of " + std::to_string(group_size) +
          " (one edge); a larger --group-size puts more consumers on one edge");
    st.dg = payloads(must(read_capture(file, 7), "read " + file));
    if (st.dg.empty()) die(file + " holds no UDP datagram");
    // Frame slots.
    std::vector<std::size_t> starts;
    for (std::size_t i = 0; i < st.dg.size(); ++i)
      if (i == 0 || starts_pes(st.dg[i])) starts.push_back(i);
    starts.push_back(st.dg.size());
    const double phase = static_cast<double>(s % 8) * 0.113 / fps;
    st.t.resize(st.dg.size());
    for (std::size_t k = 0; k + 1 < starts.size(); ++k) {
      const std::size_t m = starts[k + 1] - starts[k];
      for (std::size_t j = 0; j < m; ++j)
        st.t[starts[k] + j] = phase + (static_cast<double>(k) + static_cast<double>(j) / static_cast<double>(m)) / fps;
    }
    st.id = StreamId{testbed::Topology::sensor_ip, static_cast<std::uint16_t>(40000 + s),
                     static_cast<std::uint16_t>(5000 + s)};
  }

  testbed::sweep_stale_namespaces();
  std::vector<Group> groups;
  for (int base = 0; base < consumers; base += group_size) {
    Group g;
    g.base = base;
    g.size = std::min(group_size, consumers - base);
    g.net = must(testbed::Topology::create(g.size, /*distinct_addresses=*/true),
                 "build the namespaces of " + std::to_string(g.size) +
                     " consumers behind one edge (a smaller --group-size spreads them over more "
                     "edges)");
    g.edge = std::make_unique<Edge>(
        must(testbed::in_namespace(g.net->edge, [] { return Edge::create(); }), "create edge"));
    must(g.edge->attach_port("e0"), "attach e0");
    for (int i = 0; i < g.size; ++i)
      must_fit(g.edge->add_process({proc_name(base + i), testbed::Topology::edge_port_to_process(i),
                                    testbed::Topology::process_mac(i), testbed::Topology::process_ip(i), 0}),
               "add process " + proc_name(base + i) + " (" + std::to_string(g.size) + " on one edge)",
               "processes per edge (QOC_MAX_PROCS)");
    groups.push_back(std::move(g));
  }
  for (std::size_t s = 0; s < streams.size(); ++s) {
    auto& st = streams[s];
    auto& g = groups[static_cast<std::size_t>(st.group)];
    st.sock = std::make_unique<testbed::UdpSocket>(must(
        testbed::UdpSocket::open(g.net->sensor, testbed::Topology::sensor_ip, st.id.source_port), "sensor socket"));
    std::vector<std::string> names;
    for (int c : st.members) names.push_back(proc_name(c));
    must_fit(g.edge->set_clone_targets(st.id, names),
             "stream " + std::to_string(s) + " to " + std::to_string(names.size()) + " consumers",
             "clone targets per stream (QOC_MAX_TARGETS)");
  }

  {
    std::ostringstream o;
    o << "{\"consumers\":[";
    for (int c = 0; c < consumers; ++c) {
      const auto& g = groups[static_cast<std::size_t>(c / group_size)];
      o << (c ? "," : "") << "{\"ns\":\"" << g.net->procs[static_cast<std::size_t>(c - g.base)].name()
        << "\",\"ip\":\"" << testbed::Topology::process_ip(c - g.base) << "\"}";
    }
    o << "],\"edges\":" << groups.size() << ",\"streams\":[";
    for (std::size_t s = 0; s < streams.size(); ++s)
      o << (s ? "," : "") << "{\"port\":" << streams[s].id.destination_port << ",\"datagrams\":"
        << streams[s].dg.size() << ",\"seconds\":" << streams[s].t.back() << "}";
    o << "]}";
    std::printf("%s\n", o.str().c_str());
    std::fflush(stdout);
  }

  std::string line;
  while (!g_stop && std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    if (cmd == "quit") break;
    if (cmd == "targets") {
      int s = -1;
      std::string set;
      in >> s >> set;
      if (s < 0 || static_cast<std::size_t>(s) >= streams.size()) die("targets: no stream " + std::to_string(s));
      auto& st = streams[static_cast<std::size_t>(s)];
      auto members = parse_set(set, consumers, "targets " + std::to_string(s));
      if (members.front() / group_size != st.group || members.back() / group_size != st.group)
        die("targets " + std::to_string(s) + " " + set + ": not all in the stream's group (edge) of " +
            std::to_string(group_size) + " consumers");
      std::vector<std::string> names;
      for (int c : members) names.push_back(proc_name(c));
      must_fit(groups[static_cast<std::size_t>(st.group)].edge->set_clone_targets(st.id, names),
               "stream " + std::to_string(s) + " to " + std::to_string(names.size()) + " consumers",
               "clone targets per stream (QOC_MAX_TARGETS)");
      st.members = std::move(members);
      std::printf("{\"ok\":true}\n");
    } else if (cmd == "policy") {
      int c = -1, s = -1;
      std::string pol;
      in >> c >> s >> pol;
      if (s < 0 || static_cast<std::size_t>(s) >= streams.size()) die("policy: no stream");
      auto& st = streams[static_cast<std::size_t>(s)];
      must(groups[static_cast<std::size_t>(st.group)].edge->set_policy(proc_name(c), st.id,
                                                                      must(parse_policy(pol), "policy")),
           "set policy");
      std::printf("{\"ok\":true}\n");
    } else if (cmd == "run") {
      double secs = 0;
      std::string list;
      in >> secs >> list;
      std::vector<std::size_t> sel;
      std::stringstream ls(list);
      for (std::string x; std::getline(ls, x, ',');)
        if (!x.empty()) sel.push_back(static_cast<std::size_t>(std::stoul(x)));
      for (auto& g : groups) must(g.edge->reset_streams(), "reset streams");
      std::map<std::pair<std::size_t, std::string>, TargetStats> before;
      for (auto s : sel)
        for (auto& ts : must(groups[static_cast<std::size_t>(streams[s].group)].edge->target_stats(streams[s].id),
                             "target stats"))
          before[{s, ts.process}] = ts;
      // The merged schedule.
      std::vector<std::tuple<double, std::size_t, std::size_t>> ev;
      for (auto s : sel)
        for (std::size_t i = 0; i < streams[s].dg.size() && streams[s].t[i] < secs; ++i)
          ev.emplace_back(streams[s].t[i], s, i);
      std::sort(ev.begin(), ev.end());
      const double cpu0 = thread_cpu();
      const auto t0 = std::chrono::steady_clock::now();
      double late_max = 0;
      std::uint64_t sent = 0;
      for (const auto& [t, s, i] : ev) {
        if (g_stop) break;
        const auto due = t0 + std::chrono::nanoseconds(static_cast<long long>(t * 1e9));
        const auto now = std::chrono::steady_clock::now();
        if (due > now) std::this_thread::sleep_until(due);
        else late_max = std::max(late_max, std::chrono::duration<double>(now - due).count());
        auto& st = streams[s];
        must(st.sock->send_to(testbed::Topology::service_ip, st.id.destination_port, st.dg[i]), "send");
        ++sent;
      }
      const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double cpu = thread_cpu() - cpu0;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      std::ostringstream o;
      o << "{\"sent\":" << sent << ",\"wall_s\":" << wall << ",\"sender_cpu_s\":" << cpu
        << ",\"late_max_ms\":" << late_max * 1e3 << ",\"targets\":[";
      bool first = true;
      for (auto s : sel)
        for (auto& ts : must(groups[static_cast<std::size_t>(streams[s].group)].edge->target_stats(streams[s].id),
                             "target stats")) {
          TargetStats b{};
          if (auto it = before.find({s, ts.process}); it != before.end()) b = it->second;
          std::uint64_t v[4] = {};
          auto delta = [&](const std::uint64_t(&x)[4], const std::uint64_t(&y)[4]) {
            std::uint64_t sum = 0;
            for (int k = 0; k < 4; ++k) sum += x[k] >= y[k] ? x[k] - y[k] : x[k];
            return sum;
          };
          v[0] = delta(ts.delivered, b.delivered);
          v[1] = delta(ts.delivered_bytes, b.delivered_bytes);
          v[2] = delta(ts.dropped, b.dropped);
          v[3] = delta(ts.dropped_bytes, b.dropped_bytes);
          o << (first ? "" : ",") << "{\"consumer\":" << ts.process.substr(1) << ",\"stream\":" << s
            << ",\"policy\":\"" << to_string(ts.policy) << "\",\"delivered\":" << v[0]
            << ",\"delivered_bytes\":" << v[1] << ",\"dropped\":" << v[2] << ",\"dropped_bytes\":" << v[3] << "}";
          first = false;
        }
      o << "]}";
      std::printf("%s\n", o.str().c_str());
    } else if (!cmd.empty()) {
      die("unknown command '" + cmd + "'");
    }
    std::fflush(stdout);
  }
  return 0;  // groups (edges, then namespaces) go out of scope here
}

}  // namespace

int main(int argc, char** argv) {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "qocnet-eval-cpu: needs root (BPF programs, network namespaces)\n");
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = true; };
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  try {
    return run_main(argc, argv);
  } catch (const std::exception&) {
    return 1;  // destructors have removed the namespaces
  }
}
