// SPDX-License-Identifier: Apache-2.0
// Pinning and restart without loss: a pinned, kept datapath keeps replicating
// a sequence-numbered stream after its process is killed with SIGKILL; a new
// Edge adopts it without compiling and knows what the old one knew; changed
// sources replace the programs while traffic flows, against the same maps;
// incompatible pins are refused and left as they were; cleanup removes
// qocnet's objects and nothing else.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <numeric>
#include <sstream>
#include <thread>

#include "../support/check.hpp"
#include "compiler.hpp"
#include "pinning.hpp"
#include "qocnet/cleanup.hpp"
#include "qocnet/edge.hpp"
#include "qocnet/testbed.hpp"
#include "tc.hpp"

using namespace qocnet;
using namespace qocnet::test;
namespace fs = std::filesystem;
using std::chrono::milliseconds;

namespace {

constexpr std::uint16_t kSensorPort = 40000;
constexpr std::uint16_t kServicePort = 5000;
const StreamId kStream{testbed::Topology::sensor_ip, kSensorPort, kServicePort};
const fs::path kLockDir = "/run/qocnet/locks";

// A pin dir of its own on bpffs, removed with the state file at the end.
struct PinDir {
  PinDir() {
    static int n = 0;
    path = "/sys/fs/bpf/qocnet-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
  }
  ~PinDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
    fs::remove(detail::state_file(path, kLockDir), ec);
    fs::remove(detail::pin_lock_file(path, kLockDir), ec);
  }
  fs::path path;
};

// A copy of bpf_src/ (optionally with a line appended to edge_ingress.c).
struct SourceCopy {
  explicit SourceCopy(const std::string& append = {}) {
    static int n = 0;
    dir = "/tmp/qocnet-pin-src-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
    fs::create_directories(dir);
    for (const auto& e : fs::directory_iterator(fs::path(QOCNET_SOURCE_DIR) / "bpf_src"))
      fs::copy_file(e.path(), dir / e.path().filename(), fs::copy_options::overwrite_existing);
    if (!append.empty()) std::ofstream(dir / "edge_ingress.c", std::ios::app) << append << "\n";
  }
  ~SourceCopy() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  fs::path dir;
};

// 7 null TS packets (PID 0x1fff, class `other`, never dropped by a content
// policy) carrying a sequence number in the first packet's payload.
std::vector<std::uint8_t> ts_datagram(std::uint64_t seq) {
  std::vector<std::uint8_t> d(7 * 188, 0xff);
  for (std::size_t p = 0; p < 7; ++p) {
    std::uint8_t* t = &d[p * 188];
    t[0] = 0x47;
    t[1] = 0x1f;
    t[2] = 0xff;
    t[3] = static_cast<std::uint8_t>(0x10 | (seq & 0xf));
  }
  std::memcpy(&d[4], &seq, 8);
  return d;
}

struct PinTopology {
  PinTopology() {
    auto t = testbed::Topology::create(2, true);
    REQUIRE_OK(t);
    topo = std::move(*t);
    for (const testbed::Namespace* ns : {&topo->sensor, &topo->edge, &topo->procs[0], &topo->procs[1]})
      REQUIRE_OK(testbed::run({"ip", "netns", "exec", ns->name(), "sysctl", "-qw",
                               "net.ipv6.conf.all.disable_ipv6=1",
                               "net.ipv6.conf.default.disable_ipv6=1"}));
  }
  Result<Edge> edge(const EdgeOptions& o) const {
    return testbed::in_namespace(topo->edge, [&] { return Edge::create(o); });
  }
  // The id of the program at qocnet's handle on an edge port (0: none).
  std::uint32_t filter_prog(const std::string& port, std::uint32_t handle = detail::kTcHandle,
                            std::uint32_t prio = detail::kTcPriority) const {
    return testbed::in_namespace(topo->edge, [&]() -> std::uint32_t {
      LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(::if_nametoindex(port.c_str())),
                  .attach_point = BPF_TC_INGRESS);
      LIBBPF_OPTS(bpf_tc_opts, q, .handle = handle, .priority = prio);
      return bpf_tc_query(&hook, &q) == 0 ? q.prog_id : 0;
    });
  }
  std::unique_ptr<testbed::Topology> topo;
};

// The control state a test sets up: two processes, both targets of the
// stream, proc1 under differential(0.5) (it never drops `other`), a pair.
void configure(Edge& e) {
  REQUIRE_OK(e.attach_port("e0"));
  REQUIRE_OK(e.set_port_pair("e0", "e1"));
  for (int i = 0; i < 2; ++i)
    REQUIRE_OK(e.add_process({"proc" + std::to_string(i), testbed::Topology::edge_port_to_process(i),
                              testbed::Topology::process_mac(i), testbed::Topology::process_ip(i),
                              static_cast<std::uint16_t>(6000 + i)}));
  REQUIRE_OK(e.set_clone_targets(kStream, {"proc0", "proc1"}));
  REQUIRE_OK(e.set_policy("proc1", kStream, Policy::differential(0.5)));
}

// What configure() set, as the Edge reports it.
void check_knows_configuration(const Edge& e) {
  CHECK(e.attached_ports() == std::vector<std::string>{"e0"});
  auto pairs = e.port_pairs();
  REQUIRE_OK(pairs);
  REQUIRE(pairs->size() == 1);
  CHECK(pairs->at(0).ingress == "e0");
  CHECK(pairs->at(0).egress == "e1");
  const auto procs = e.processes();
  REQUIRE(procs.size() == 2);
  CHECK(procs[0].name == "proc0");
  CHECK(procs[0].port == "e1");
  CHECK(procs[0].ip == testbed::Topology::process_ip(0));
  CHECK(procs[1].name == "proc1");
  CHECK(procs[1].udp_port == 6001);
  CHECK(procs[1].mac == testbed::Topology::process_mac(1));
  auto ts = e.target_stats(kStream);
  REQUIRE_OK(ts);
  REQUIRE(ts->size() == 2);
  CHECK(ts->at(0).process == "proc0");
  CHECK(ts->at(0).policy == Policy::keep());
  CHECK(ts->at(1).process == "proc1");
  CHECK(ts->at(1).policy == Policy::differential(0.5));
  auto eff = e.effective_policy(kStream);
  REQUIRE_OK(eff);
  CHECK(*eff == Policy::keep());
}

// A paced stream from the sensor to the service address, received by both
// processes, while the test does things to the datapath.
struct Stream {
  explicit Stream(const PinTopology& t) {
    for (int i = 0; i < 2; ++i) {
      auto s = testbed::UdpSocket::open(t.topo->procs[static_cast<std::size_t>(i)],
                                        testbed::Topology::process_ip(i),
                                        static_cast<std::uint16_t>(6000 + i), 32 << 20);
      REQUIRE_OK(s);
      socks.push_back(std::move(*s));
    }
    auto snd = testbed::UdpSocket::open(t.topo->sensor, testbed::Topology::sensor_ip, kSensorPort);
    REQUIRE_OK(snd);
    sensor.emplace(std::move(*snd));
  }
  void start() {
    for (std::size_t i = 0; i < socks.size(); ++i)
      receivers.emplace_back([this, i] {
        std::uint8_t buf[2048];
        auto drain = [&](int timeout_ms) {
          for (;;) {
            pollfd p{socks[i].fd(), POLLIN, 0};
            if (::poll(&p, 1, timeout_ms) <= 0) return;
            ssize_t n = ::recv(socks[i].fd(), buf, sizeof buf, 0);
            if (n >= 12) {
              std::uint64_t seq;
              std::memcpy(&seq, buf + 4, 8);
              got[i].push_back(seq);
            }
          }
        };
        while (running) drain(20);
        drain(300);
      });
    sender = std::thread([this] {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(0, &set);
      pthread_setaffinity_np(pthread_self(), sizeof set, &set);
      for (std::uint64_t i = 0; !stop; ++i) {
        const auto d = ts_datagram(i);
        if (!sensor->send_to(testbed::Topology::service_ip, kServicePort, d).ok()) {
          send_failed = true;
          break;
        }
        sent = i + 1;
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
    });
  }
  // Waits until `n` more datagrams have gone.
  void wait_more(std::uint64_t n) {
    const std::uint64_t target = sent + n;
    while (sent < target && !send_failed) std::this_thread::sleep_for(milliseconds(1));
  }
  void finish() {
    stop = true;
    sender.join();
    running = false;
    for (auto& r : receivers) r.join();
  }
  ~Stream() {
    if (sender.joinable() || !receivers.empty()) {
      stop = true;
      running = false;
      if (sender.joinable()) sender.join();
      for (auto& r : receivers)
        if (r.joinable()) r.join();
    }
  }
  // Each process got every datagram sent exactly once.
  void check_complete() const {
    REQUIRE_FALSE(send_failed);
    std::vector<std::uint64_t> all(sent);
    std::iota(all.begin(), all.end(), 0);
    for (std::size_t i = 0; i < socks.size(); ++i) {
      auto g = got[i];
      std::sort(g.begin(), g.end());
      const auto missing = static_cast<long>(all.size()) -
                           static_cast<long>(std::unique(g.begin(), g.end()) - g.begin());
      INFO("proc" << i << ": sent " << sent << ", received " << got[i].size() << ", missing "
                  << missing);
      CHECK(got[i].size() == sent);
      g = got[i];
      std::sort(g.begin(), g.end());
      CHECK(g == all);
    }
  }
  std::vector<testbed::UdpSocket> socks;
  std::optional<testbed::UdpSocket> sensor;
  std::vector<std::uint64_t> got[2];
  std::vector<std::thread> receivers;
  std::thread sender;
  std::atomic<bool> stop{false}, running{true}, send_failed{false};
  std::atomic<std::uint64_t> sent{0};
};

std::string read_text(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::uint64_t delivered(const Edge& e, const std::string& process) {
  auto ts = e.target_stats(kStream);
  REQUIRE_OK(ts);
  for (const auto& t : *ts)
    if (t.process == process) return t.delivered[0] + t.delivered[1] + t.delivered[2] + t.delivered[3];
  FAIL("no target " << process);
  return 0;
}

}  // namespace

TEST_CASE("a kept datapath survives kill -9 with no loss and is adopted without compiling",
          "[kernel][pinning]") {
  PinDir pins;
  PinTopology t;
  EdgeOptions o;
  o.pin_dir = pins.path;
  o.keep_datapath = true;

  // The first owner lives in a child process, killed with SIGKILL mid-stream.
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(ready[0]);
    int ns = ::open(t.topo->edge.path().c_str(), O_RDONLY | O_CLOEXEC);
    char verdict = 'F';
    if (ns >= 0 && ::setns(ns, CLONE_NEWNET) == 0) {
      auto e = Edge::create(o);
      bool ok = e.ok() && e->attach_port("e0").ok() && e->set_port_pair("e0", "e1").ok();
      for (int i = 0; ok && i < 2; ++i)
        ok = e->add_process({"proc" + std::to_string(i), testbed::Topology::edge_port_to_process(i),
                             testbed::Topology::process_mac(i), testbed::Topology::process_ip(i),
                             static_cast<std::uint16_t>(6000 + i)})
                 .ok();
      ok = ok && e->set_clone_targets(kStream, {"proc0", "proc1"}).ok() &&
           e->set_policy("proc1", kStream, Policy::differential(0.5)).ok();
      if (!ok && !e.ok()) std::fprintf(stderr, "child: %s\n", e.error().to_string().c_str());
      verdict = ok ? 'R' : 'F';
      if (::write(ready[1], &verdict, 1) != 1) ::_exit(1);
      if (ok)
        for (;;) ::pause();  // until killed
    }
    ::_exit(1);
  }
  ::close(ready[1]);
  pollfd p{ready[0], POLLIN, 0};
  char verdict = 0;
  const bool answered = ::poll(&p, 1, 60000) == 1 && ::read(ready[0], &verdict, 1) == 1;
  ::close(ready[0]);
  if (!answered || verdict != 'R') {
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    FAIL("the child could not set up the pinned datapath");
  }
  CHECK(fs::exists(pins.path / "qoc_meta"));
  CHECK(fs::exists(pins.path / "maps" / "qoc_subs"));
  CHECK(fs::exists(pins.path / "progs" / "qoc_edge_in"));
  CHECK(fs::exists(detail::state_file(pins.path, kLockDir)));
  const std::uint32_t prog_before = t.filter_prog("e0");
  CHECK(prog_before != 0);

  Stream s(t);
  s.start();
  s.wait_more(3000);
  REQUIRE(::kill(child, SIGKILL) == 0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  s.wait_more(3000);  // no process owns the datapath now

  const std::uint64_t compiles = detail::compile_count();
  EdgeOptions o2;
  o2.pin_dir = pins.path;  // keep_datapath off: this Edge removes it all when done
  auto e = t.edge(o2);
  REQUIRE_OK(e);
  CHECK(detail::compile_count() == compiles);  // no libbcc call
  s.wait_more(3000);
  s.finish();
  s.check_complete();

  const StartInfo& si = e->start_info();
  CHECK(si.adopted);
  CHECK_FALSE(si.replaced_programs);
  CHECK(si.compile_seconds == 0);
  CHECK(si.source_hash != 0);
  CHECK(si.adopted_ports == std::vector<std::string>{"e0"});
  CHECK(e->program_id() == prog_before);
  CHECK(t.filter_prog("e0") == prog_before);  // the filter was never touched
  check_knows_configuration(*e);
  // The counters are the pinned maps': they counted across the kill.
  CHECK(delivered(*e, "proc0") == s.sent);
  CHECK(delivered(*e, "proc1") == s.sent);
  // A second Edge cannot take the same pin dir while this one lives.
  REQUIRE_ERROR(busy, t.edge(o2), Errc::already_exists);
  CHECK(busy.message.find(pins.path.string()) != std::string::npos);

  // Without keep_datapath, destroying the Edge removes filters, pins, state.
  e = Error{};
  CHECK(t.filter_prog("e0") == 0);
  CHECK_FALSE(fs::exists(pins.path));
  CHECK_FALSE(fs::exists(detail::state_file(pins.path, kLockDir)));
}

TEST_CASE("changed sources are compiled against the pinned maps and replace the filter with no loss",
          "[kernel][pinning]") {
  PinDir pins;
  PinTopology t;
  SourceCopy original, changed("/* a changed datapath: new programs, the same maps */");
  EdgeOptions o;
  o.pin_dir = pins.path;
  o.keep_datapath = true;
  o.bpf_src_dir = original.dir;
  std::uint32_t old_prog = 0;
  std::uint64_t old_hash = 0;
  {
    auto a = t.edge(o);
    REQUIRE_OK(a);
    CHECK_FALSE(a->start_info().adopted);
    CHECK(a->start_info().compile_seconds > 0);
    configure(*a);
    old_prog = a->program_id();
    old_hash = a->start_info().source_hash;
    // The hash is the sources' and flags', computable without compiling.
    detail::CompileRequest req;
    req.entry = "edge_ingress.c";
    req.defines = {"QOC_MAX_PORTS=256"};
    req.src_dir = original.dir;
    auto h = detail::hash_sources(req);
    REQUIRE_OK(h);
    CHECK(*h == old_hash);
  }  // kept: the filters and pins stay
  CHECK(t.filter_prog("e0") == old_prog);

  Stream s(t);
  s.start();
  s.wait_more(2000);
  o.bpf_src_dir = changed.dir;
  auto b = t.edge(o);  // compiles (about a second) while the old programs serve
  REQUIRE_OK(b);
  s.wait_more(3000);
  s.finish();
  s.check_complete();

  const StartInfo& si = b->start_info();
  CHECK(si.adopted);
  CHECK(si.replaced_programs);
  CHECK(si.compile_seconds > 0);
  CHECK(si.source_hash != old_hash);
  CHECK(si.adopted_ports == std::vector<std::string>{"e0"});
  CHECK(b->program_id() != old_prog);
  CHECK(t.filter_prog("e0") == b->program_id());
  check_knows_configuration(*b);
  // The same maps: what the old programs counted is still there.
  CHECK(delivered(*b, "proc0") == s.sent);
  CHECK(delivered(*b, "proc1") == s.sent);

  // The next start with the changed sources adopts the new programs.
  b = Error{};  // kept (keep_datapath in the options)
  auto c = t.edge(o);
  REQUIRE_OK(c);
  CHECK(c->start_info().adopted);
  CHECK_FALSE(c->start_info().replaced_programs);
  CHECK(c->start_info().compile_seconds == 0);
  CHECK(t.filter_prog("e0") == c->program_id());
}

TEST_CASE("incompatible pins are refused with the fix and left as they were", "[kernel][pinning]") {
  PinDir pins;
  PinTopology t;
  EdgeOptions o;
  o.pin_dir = pins.path;
  o.keep_datapath = true;
  std::uint32_t prog = 0;
  {
    auto a = t.edge(o);
    REQUIRE_OK(a);
    configure(*a);
    prog = a->program_id();
  }
  const std::string state_before = read_text(detail::state_file(pins.path, kLockDir));
  REQUIRE_FALSE(state_before.empty());

  // A pin made by a qocnet of another map layout version.
  int meta_fd = bpf_obj_get((pins.path / "qoc_meta").c_str());
  REQUIRE(meta_fd >= 0);
  detail::PinMeta meta{};
  const __u32 zero = 0;
  REQUIRE(bpf_map_lookup_elem(meta_fd, &zero, &meta) == 0);
  const detail::PinMeta good = meta;
  meta.layout_version = detail::kMapLayoutVersion + 1;
  REQUIRE(bpf_map_update_elem(meta_fd, &zero, &meta, BPF_ANY) == 0);
  {
    const std::uint64_t compiles = detail::compile_count();
    REQUIRE_ERROR(err, t.edge(o), Errc::failed_precondition);
    CHECK(err.message.find(pins.path.string()) != std::string::npos);
    CHECK(err.message.find("layout version") != std::string::npos);
    CHECK(err.fix.find("qocnetctl cleanup") != std::string::npos);
    CHECK(detail::compile_count() == compiles);
  }
  CHECK(t.filter_prog("e0") == prog);
  REQUIRE(bpf_map_lookup_elem(meta_fd, &zero, &meta) == 0);
  CHECK(meta.layout_version == detail::kMapLayoutVersion + 1);
  REQUIRE(bpf_map_update_elem(meta_fd, &zero, &good, BPF_ANY) == 0);

  // Other options change a map's shape: the pinned map cannot be reused.
  EdgeOptions smaller = o;
  smaller.max_ports = 128;
  {
    REQUIRE_ERROR(err, t.edge(smaller), Errc::failed_precondition);
    CHECK(err.message.find(pins.path.string()) != std::string::npos);
    CHECK(err.message.find("max_entries") != std::string::npos);
    CHECK(err.message.find("pinned map qoc_") != std::string::npos);
    CHECK(err.fix.find("qocnetctl cleanup") != std::string::npos);
  }
  CHECK(t.filter_prog("e0") == prog);
  REQUIRE(bpf_map_lookup_elem(meta_fd, &zero, &meta) == 0);
  CHECK(meta.source_hash == good.source_hash);
  ::close(meta_fd);
  CHECK(read_text(detail::state_file(pins.path, kLockDir)) == state_before);

  // The pins as they were still work.
  auto b = t.edge(o);
  REQUIRE_OK(b);
  CHECK(b->start_info().adopted);
  CHECK(b->program_id() == prog);
  check_knows_configuration(*b);
}

TEST_CASE("cleanup removes qocnet's filters, pins and state and leaves other filters",
          "[kernel][pinning][cleanup]") {
  PinDir pins;
  PinTopology t;
  EdgeOptions o;
  o.pin_dir = pins.path;
  o.keep_datapath = true;
  auto a = t.edge(o);
  REQUIRE_OK(a);
  for (const char* port : {"e0", "e1", "e2"}) REQUIRE_OK(a->attach_port(port));

  // Another tool's filters on the same clsact: a u32 filter on e0, and a BPF
  // program of its own on e1, each at its own priority.
  REQUIRE_OK(testbed::run({"tc", "-n", t.topo->edge.name(), "filter", "add", "dev", "e0", "ingress",
                           "prio", "10", "u32", "match", "u32", "0", "0", "flowid", "1:1"}));
  const bpf_insn pass[] = {{BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},
                           {BPF_JMP | BPF_EXIT, 0, 0, 0, 0}};
  const int other_fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "other_tool", "GPL", pass, 2, nullptr);
  REQUIRE(other_fd >= 0);
  testbed::in_namespace(t.topo->edge, [&] {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(::if_nametoindex("e1")),
                .attach_point = BPF_TC_INGRESS);
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = other_fd, .handle = 1, .priority = 20);
    REQUIRE(bpf_tc_attach(&hook, &opts) == 0);
  });
  ::close(other_fd);

  // Not while an Edge uses the pins.
  {
    auto busy = testbed::in_namespace(t.topo->edge, [&] { return cleanup(pins.path, kLockDir); });
    REQUIRE_ERROR(err, busy, Errc::failed_precondition);
    CHECK(err.message.find(pins.path.string()) != std::string::npos);
  }
  CHECK(t.filter_prog("e0") != 0);

  a = Error{};  // kept
  auto r = testbed::in_namespace(t.topo->edge, [&] { return cleanup(pins.path, kLockDir); });
  REQUIRE_OK(r);
  std::string report;
  for (const auto& f : r->filters) report += "filter " + f + "\n";
  for (const auto& q : r->qdiscs) report += "qdisc " + q + "\n";
  for (const auto& k : r->kept) report += "kept " + k + "\n";
  INFO(report);
  CHECK(r->filters.size() == 3);
  CHECK(r->qdiscs == std::vector<std::string>{"e2"});  // e0 and e1 still hold other filters
  for (const char* port : {"e0", "e1", "e2"}) CHECK(t.filter_prog(port) == 0);
  auto u32 = testbed::run({"tc", "-n", t.topo->edge.name(), "filter", "show", "dev", "e0", "ingress"});
  REQUIRE_OK(u32);
  CHECK(u32->find("u32") != std::string::npos);
  CHECK(t.filter_prog("e1", 1, 20) != 0);  // the other tool's program is still attached
  CHECK_FALSE(fs::exists(pins.path));
  CHECK_FALSE(fs::exists(detail::state_file(pins.path, kLockDir)));
  CHECK(std::find(r->files.begin(), r->files.end(), (pins.path / "qoc_meta").string()) !=
        r->files.end());

  // A second cleanup finds nothing of qocnet's.
  auto again = testbed::in_namespace(t.topo->edge, [&] { return cleanup(pins.path, kLockDir); });
  REQUIRE_OK(again);
  CHECK(again->filters.empty());
  CHECK(again->qdiscs.empty());
}
