// SPDX-License-Identifier: Apache-2.0
// The pinned edge's state file and its transactions:
// - a corrupt state file (too many targets, values out of range, wrong
//   shapes, cut short, changed by hand) is refused at restart with
//   failed_precondition naming the file and `qocnetctl cleanup`, and nothing
//   is attached or changed;
// - a call whose state cannot be saved (the state directory replaced by a
//   file: a real write failure, even for root) leaves the whole visible state
//   as it was: ports, TC filters, qdiscs, pairs, processes, targets,
//   policies, the maps behind them, the pins and the state file;
// - a rejected set_clone_targets leaves no empty target list;
// - a first start that fails leaves no pins, state or lock behind.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>

#include "../support/check.hpp"
#include "../support/state_cases.hpp"
#include "pinning.hpp"
#include "qocnet/edge.hpp"
#include "qocnet/testbed.hpp"
#include "state_file.hpp"
#include "tc.hpp"

using namespace qocnet;
using namespace qocnet::test;
namespace fs = std::filesystem;

namespace {

const StreamId kStream{testbed::Topology::sensor_ip, 40000, 5000};
const StreamId kStream2{testbed::Topology::sensor_ip, 40001, 5000};

std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

// A pin dir on bpffs and a lock dir of its own (so its state directory can
// be taken away), both removed at the end.
struct Dirs {
  Dirs() {
    static int n = 0;
    const std::string id = std::to_string(::getpid()) + "-" + std::to_string(n++);
    pin_dir = "/sys/fs/bpf/qocnet-state-test-" + id;
    run_dir = "/run/qocnet-state-test-" + id;
    lock_dir = run_dir / "locks";
    state = detail::state_file(pin_dir, lock_dir);
  }
  ~Dirs() {
    std::error_code ec;
    restore_state_dir();
    fs::remove_all(pin_dir, ec);
    fs::remove_all(run_dir, ec);
  }
  // The state directory becomes a file: every write of the state fails.
  void break_state_dir() {
    fs::rename(state.parent_path(), run_dir / "state.away");
    write_text(state.parent_path(), "not a directory\n");
  }
  void restore_state_dir() {
    std::error_code ec;
    if (!fs::exists(run_dir / "state.away", ec)) return;
    fs::remove(state.parent_path(), ec);
    fs::rename(run_dir / "state.away", state.parent_path(), ec);
  }
  EdgeOptions options(bool keep = false) const {
    EdgeOptions o;
    o.pin_dir = pin_dir;
    o.lock_dir = lock_dir;
    o.keep_datapath = keep;
    return o;
  }
  fs::path pin_dir, run_dir, lock_dir, state;
};

struct World {
  World() {
    auto t = testbed::Topology::create(3, true);
    REQUIRE_OK(t);
    topo = std::move(*t);
  }
  Result<Edge> edge(const EdgeOptions& o) const {
    return testbed::in_namespace(topo->edge, [&] { return Edge::create(o); });
  }

  // Everything a user or the kernel can see of the edge, as text.
  std::string visible(const Edge* e) const {
    std::ostringstream o;
    if (e) {
      o << "attached:";
      for (const auto& p : e->attached_ports()) o << " " << p;
      o << "\npairs:";
      auto pairs = e->port_pairs();
      if (pairs)
        for (const auto& p : *pairs) o << " " << p.ingress << "->" << p.egress;
      o << "\nprocesses:";
      for (const auto& p : e->processes())
        o << " " << p.name << "/" << p.port << "/" << p.mac << "/" << p.ip << "/" << p.udp_port;
      for (const auto& s : {kStream, kStream2}) {
        o << "\ntargets of " << to_string(s) << ":";
        auto ts = e->target_stats(s);
        if (!ts) o << " " << to_string(ts.error().code);
        else
          for (const auto& t : *ts) o << " " << t.process << "=" << to_string(t.policy);
        auto eff = e->effective_policy(s);
        o << " effective " << (eff ? to_string(*eff) : std::string(to_string(eff.error().code)));
      }
      o << "\ncounters of:";
      auto cs = e->all_port_counters();
      if (cs)
        for (const auto& c : *cs) o << " " << c.name;
    }
    o << "\nfilters:";
    for (const char* port : {"e0", "e1", "e2", "e3"}) o << " " << port << "=" << filter_prog(port);
    auto q = testbed::run({"ip", "netns", "exec", topo->edge.name(), "tc", "qdisc", "show"});
    o << "\nqdiscs:\n" << (q ? *q : q.error().message);
    o << "pins:";
    std::error_code ec;
    std::vector<std::string> pins;
    for (auto it = fs::recursive_directory_iterator(dirs.pin_dir, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec))
      pins.push_back(it->path().string());
    std::sort(pins.begin(), pins.end());
    for (const auto& p : pins) o << " " << p;
    for (const char* m : {"qoc_procs", "qoc_subs", "qoc_port_pairs"})
      o << "\n" << m << ": " << dump_map(dirs.pin_dir / "maps" / m);
    o << "\nlock file: " << fs::exists(detail::pin_lock_file(dirs.pin_dir, dirs.lock_dir), ec);
    o << "\nstate file:\n" << (fs::exists(dirs.state, ec) ? read_text(dirs.state) : "(none)");
    return o.str();
  }

  // Every non-zero entry of a pinned (non-per-CPU) map, in hex.
  static std::string dump_map(const fs::path& pin) {
    int fd = bpf_obj_get(pin.c_str());
    if (fd < 0) return "(no pin)";
    bpf_map_info info{};
    __u32 len = sizeof info;
    std::string out;
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) {
      std::vector<unsigned char> k(info.key_size), next(info.key_size), v(info.value_size);
      void* prev = nullptr;
      while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
        k = next;
        prev = k.data();
        if (bpf_map_lookup_elem(fd, k.data(), v.data()) != 0) continue;
        if (std::all_of(v.begin(), v.end(), [](unsigned char c) { return c == 0; })) continue;
        char b[4];
        out += "[";
        for (auto c : k) std::snprintf(b, sizeof b, "%02x", c), out += b;
        out += "=";
        for (auto c : v) std::snprintf(b, sizeof b, "%02x", c), out += b;
        out += "] ";
      }
    }
    ::close(fd);
    return out;
  }

  std::uint32_t filter_prog(const std::string& port) const {
    return testbed::in_namespace(topo->edge, [&]() -> std::uint32_t {
      const unsigned idx = ::if_nametoindex(port.c_str());
      if (idx == 0) return 0;
      LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(idx), .attach_point = BPF_TC_INGRESS);
      LIBBPF_OPTS(bpf_tc_opts, q, .handle = detail::kTcHandle, .priority = detail::kTcPriority);
      return bpf_tc_query(&hook, &q) == 0 ? q.prog_id : 0;
    });
  }

  std::unique_ptr<testbed::Topology> topo;
  Dirs dirs;
};

ProcessSpec process(int i) {
  return {"proc" + std::to_string(i), testbed::Topology::edge_port_to_process(i),
          testbed::Topology::process_mac(i), testbed::Topology::process_ip(i),
          static_cast<std::uint16_t>(6000 + i)};
}

// Two processes (on e1, e2), targets of kStream, proc1 under differential(0.5),
// e0 attached and paired with e1.
void configure(Edge& e) {
  REQUIRE_OK(e.attach_port("e0"));
  REQUIRE_OK(e.set_port_pair("e0", "e1"));
  REQUIRE_OK(e.add_process(process(0)));
  REQUIRE_OK(e.add_process(process(1)));
  REQUIRE_OK(e.set_clone_targets(kStream, {"proc0", "proc1"}));
  REQUIRE_OK(e.set_policy("proc1", kStream, Policy::differential(0.5)));
}

}  // namespace

TEST_CASE("a corrupt state file is refused at restart, naming the file and the fix, and changes nothing",
          "[kernel][pinning][state]") {
  World w;
  {
    auto e = w.edge(w.dirs.options(true));
    REQUIRE_OK(e);
    configure(*e);
  }  // kept: filters, pins and state stay
  const std::string good = read_text(w.dirs.state);
  const std::string before = w.visible(nullptr);
  REQUIRE(w.filter_prog("e0") != 0);

  auto cases = corrupt_states(good);
  {
    // More ports than EdgeOptions::max_ports (default 256): fine for the
    // parser, not for this edge.
    auto s = detail::parse_state(good);
    REQUIRE_OK(s);
    for (unsigned i = 100; i < 100 + 257; ++i) s->ports.push_back({"x" + std::to_string(i), i, false});
    cases.push_back({"257 ports on an edge of 256", detail::format_state(*s), "at most 256"});
    s->ports.resize(1);
    const auto t = s->streams[0].targets;
    s->streams.clear();
    for (int i = 0; i < 1025; ++i)
      s->streams.push_back({{"10.0.0.1", static_cast<std::uint16_t>(1 + i), 5000}, t});
    cases.push_back({"1025 streams on an edge of 1024", detail::format_state(*s), "at most 1024"});
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& c : cases) {
    write_text(w.dirs.state, c.text);
    INFO("case: " << c.name);
    auto e = w.edge(w.dirs.options(true));
    REQUIRE_FALSE(e.ok());
    INFO("error: " << e.error().to_string());
    CHECK(e.error().code == Errc::failed_precondition);
    CHECK(e.error().message.find(w.dirs.state.string()) != std::string::npos);
    CHECK(e.error().message.find(c.why) != std::string::npos);
    CHECK(e.error().fix.find("qocnetctl cleanup") != std::string::npos);
    // Nothing attached, detached or rewritten: the file is as it was put there.
    write_text(w.dirs.state, good);
    CHECK(w.visible(nullptr) == before);
  }
  INFO(cases.size() << " cases");
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60));

  // The good file is adopted, with everything it says.
  auto e = w.edge(w.dirs.options(false));
  REQUIRE_OK(e);
  CHECK(e->start_info().adopted);
  CHECK(e->attached_ports() == std::vector<std::string>{"e0"});
  auto ts = e->target_stats(kStream);
  REQUIRE_OK(ts);
  REQUIRE(ts->size() == 2);
  CHECK(ts->at(1).policy == Policy::differential(0.5));
}

TEST_CASE("a change whose state cannot be saved leaves the edge as it was",
          "[kernel][pinning][state]") {
  World w;
  auto e = w.edge(w.dirs.options(false));
  REQUIRE_OK(e);
  configure(*e);

  const QocTable strict = [] {
    auto t = QocTable::make("rate", 1.0, {{PolicyKind::uniform, {{0.1, 0.2}, {0.9, 0.5}}}});
    REQUIRE_OK(t);
    return *t;
  }();
  struct Op {
    std::string name;
    std::function<Status(Edge&)> run;
  };
  // In an order where each succeeds once the state can be saved again.
  const std::vector<Op> ops = {
      {"attach_port e3", [](Edge& x) { return x.attach_port("e3"); }},
      {"add_process proc2", [](Edge& x) { return x.add_process(process(2)); }},
      {"set_clone_targets (one more)",
       [](Edge& x) { return x.set_clone_targets(kStream, {"proc0", "proc1", "proc2"}); }},
      {"set_clone_targets (a new stream)", [](Edge& x) { return x.set_clone_targets(kStream2, {"proc2"}); }},
      {"set_policy", [](Edge& x) { return x.set_policy("proc0", kStream, Policy::uniform(0.25)); }},
      {"report_qoc", [](Edge& x) -> Status {
         auto p = x.report_qoc("proc2", kStream, 0.9);
         if (!p) return std::move(p).error();
         return {};
       }},
      {"replace_qoc_table", [&](Edge& x) { return x.replace_qoc_table(strict); }},
      {"set_clone_targets (fewer)", [](Edge& x) { return x.set_clone_targets(kStream, {"proc1", "proc2"}); }},
      {"set_clone_targets (none)", [](Edge& x) { return x.set_clone_targets(kStream2, {}); }},
      {"remove_process proc2", [](Edge& x) { return x.remove_process("proc2"); }},
      {"detach_port e3", [](Edge& x) { return x.detach_port("e3"); }},
      {"detach_port e0 (with its pair)", [](Edge& x) { return x.detach_port("e0"); }},
  };
  for (const auto& op : ops) {
    INFO("operation: " << op.name);
    const std::string before = w.visible(&*e);
    w.dirs.break_state_dir();
    Status st = op.run(*e);
    w.dirs.restore_state_dir();
    REQUIRE_FALSE(st.ok());
    INFO("error: " << st.error().to_string());
    CHECK(st.error().code == Errc::failed_precondition);
    CHECK(st.error().message.find("state file") != std::string::npos);
    CHECK(w.visible(&*e) == before);
    // It was a real change: with the state directory back it goes through.
    REQUIRE_OK(op.run(*e));
    CHECK(w.visible(&*e) != before);
  }
}

TEST_CASE("a rejected set_clone_targets leaves no target list behind", "[kernel][pinning][state]") {
  World w;
  auto e = w.edge(w.dirs.options(false));
  REQUIRE_OK(e);
  configure(*e);
  const std::string before = w.visible(&*e);
  // An unknown process, one named twice, too many: each refused, nothing left.
  auto code = [](const Status& st) { return st.ok() ? std::string("ok") : to_string(st.error().code); };
  CHECK(code(e->set_clone_targets(kStream2, {"proc0", "ghost"})) == "not_found");
  CHECK(code(e->set_clone_targets(kStream2, {"proc0", "proc0"})) == "invalid_argument");
  CHECK(code(e->set_clone_targets(kStream2, std::vector<std::string>(QOC_MAX_TARGETS + 1, "proc0"))) == "resource_exhausted");
  CHECK(code(e->set_clone_targets(kStream, {"proc1", "ghost"})) == "not_found");
  CHECK(w.visible(&*e) == before);
  auto ts = e->target_stats(kStream2);
  REQUIRE_FALSE(ts.ok());
  CHECK(ts.error().code == Errc::not_found);
}

TEST_CASE("a first start that fails leaves no pins, state or lock behind", "[kernel][pinning][state]") {
  World w;
  fs::create_directories(w.dirs.lock_dir);
  write_text(w.dirs.state.parent_path(), "not a directory\n");  // the state cannot be written
  const std::string before = w.visible(nullptr);
  auto e = w.edge(w.dirs.options(true));
  REQUIRE_FALSE(e.ok());
  INFO("error: " << e.error().to_string());
  CHECK(e.error().code == Errc::failed_precondition);
  CHECK(e.error().message.find("state file") != std::string::npos);
  CHECK(w.visible(nullptr) == before);
  CHECK_FALSE(fs::exists(w.dirs.pin_dir / "qoc_meta"));
  CHECK_FALSE(fs::exists(w.dirs.pin_dir / "maps"));
  // With the directory back, a start comes up fresh (nothing half-made to refuse).
  fs::remove(w.dirs.state.parent_path());
  auto e2 = w.edge(w.dirs.options(false));
  REQUIRE_OK(e2);
  CHECK_FALSE(e2->start_info().adopted);
}

TEST_CASE("a policy set to what it was writes no state file, every real change does, and a restart holds it",
          "[kernel][pinning][state]") {
  World w;
  {
    auto e = w.edge(w.dirs.options(true));
    REQUIRE_OK(e);
    configure(*e);
    auto inode = [&] {
      struct stat st {};
      REQUIRE(::stat(w.dirs.state.c_str(), &st) == 0);
      return st.st_ino;
    };
    const auto first = inode();
    const std::string text = read_text(w.dirs.state);
    REQUIRE_OK(e->set_policy("proc1", kStream, Policy::differential(0.5)));  // as it was
    CHECK(inode() == first);
    CHECK(read_text(w.dirs.state) == text);
    // Each real change puts a new file in place (the spare and the file trade
    // names), also back and forth between two values.
    for (double p : {0.25, 0.5, 0.25, 1e-310}) {
      const auto before = inode();
      REQUIRE_OK(e->set_policy("proc1", kStream, Policy::differential(p)));
      CHECK(inode() != before);
      auto saved = detail::parse_state(read_text(w.dirs.state));
      REQUIRE_OK(saved);
      REQUIRE(saved->streams.size() == 1);
      CHECK(saved->streams[0].targets[1].policy == Policy::differential(p));
    }
    // A save that failed is written again once the state can be saved, even
    // if the text is the same as the last one written.
    w.dirs.break_state_dir();
    CHECK_FALSE(e->set_policy("proc1", kStream, Policy::differential(0.75)).ok());
    w.dirs.restore_state_dir();
    REQUIRE_OK(e->set_policy("proc1", kStream, Policy::differential(0.75)));
    auto saved = detail::parse_state(read_text(w.dirs.state));
    REQUIRE_OK(saved);
    CHECK(saved->streams[0].targets[1].policy == Policy::differential(0.75));
  }
  auto e = w.edge(w.dirs.options(false));
  REQUIRE_OK(e);
  auto ts = e->target_stats(kStream);
  REQUIRE_OK(ts);
  REQUIRE(ts->size() == 2);
  CHECK(ts->at(1).policy == Policy::differential(0.75));
}
