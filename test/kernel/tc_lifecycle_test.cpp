// TC attachments: detach on destruction, qdisc ownership, and a filter left
// by a qocnet process that died is found and replaced.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../support/edge_fixture.hpp"
#include "tc.hpp"

using namespace qocnet;
using namespace qocnet::test;

namespace {

std::string tc_show(const testbed::Namespace& ns, const std::vector<std::string>& args) {
  std::vector<std::string> argv{"tc", "-n", ns.name()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto out = testbed::run(argv);
  REQUIRE_OK(out);
  return *out;
}

bool has_clsact(const testbed::Namespace& ns, const std::string& dev) {
  return tc_show(ns, {"qdisc", "show", "dev", dev}).find("clsact") != std::string::npos;
}

std::string ingress_filters(const testbed::Namespace& ns, const std::string& dev) {
  return tc_show(ns, {"filter", "show", "dev", dev, "ingress"});
}

}  // namespace

TEST_CASE("destroying the edge detaches its filter and the clsact it created", "[tc]") {
  EdgeFixture fx(1);
  REQUIRE_OK(fx.edge->attach_port("e0"));
  CHECK(has_clsact(fx.topo->edge, "e0"));
  const std::string filters = ingress_filters(fx.topo->edge, "e0");
  CHECK(filters.find("qoc_edge_in") != std::string::npos);
  CHECK(filters.find("handle 0xc0c") != std::string::npos);
  fx.edge.reset();
  CHECK(ingress_filters(fx.topo->edge, "e0").empty());
  CHECK_FALSE(has_clsact(fx.topo->edge, "e0"));
}

TEST_CASE("a clsact qdisc that existed before stays, with its other filters", "[tc]") {
  EdgeFixture fx(1);
  REQUIRE_OK(testbed::run({"tc", "-n", fx.topo->edge.name(), "qdisc", "add", "dev", "e0", "clsact"}));
  // Another tool's filter (a u32 that matches nothing) ahead of qocnet's.
  REQUIRE_OK(testbed::run({"tc", "-n", fx.topo->edge.name(), "filter", "add", "dev", "e0",
                           "ingress", "prio", "7", "u32", "match", "u32", "0x12345678",
                           "0xffffffff", "at", "0"}));
  REQUIRE_OK(fx.edge->attach_port("e0"));
  REQUIRE_OK(fx.edge->detach_port("e0"));
  CHECK(has_clsact(fx.topo->edge, "e0"));
  const std::string filters = ingress_filters(fx.topo->edge, "e0");
  CHECK(filters.find("u32") != std::string::npos);
  CHECK(filters.find("qoc_edge_in") == std::string::npos);
}

TEST_CASE("a filter left by a killed qocnet process is replaced by the next run", "[tc]") {
  EdgeFixture fx(1);
  const auto& ns = fx.topo->edge;
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto e = testbed::in_namespace(ns, [] { return Edge::create(); });
    if (!e.ok() || !e->attach_port("e0").ok()) ::_exit(2);
    ::raise(SIGKILL);  // dies without detaching, as after kill -9
    ::_exit(3);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(WTERMSIG(status) == SIGKILL);

  const std::string stale = ingress_filters(ns, "e0");
  REQUIRE(stale.find("qoc_edge_in") != std::string::npos);  // outlived its process
  CHECK(stale.find("id " + std::to_string(fx.edge->program_id())) == std::string::npos);

  REQUIRE_OK(fx.edge->attach_port("e0"));
  const std::string now = ingress_filters(ns, "e0");
  CHECK(now.find("id " + std::to_string(fx.edge->program_id()) + " ") != std::string::npos);
  // Exactly one filter at qocnet's handle.
  std::size_t count = 0;
  for (auto p = now.find("handle 0xc0c"); p != std::string::npos; p = now.find("handle 0xc0c", p + 1))
    ++count;
  CHECK(count == 1);
}

TEST_CASE("a foreign filter at qocnet's handle and priority is not clobbered", "[tc]") {
  EdgeFixture fx(1);
  const auto& ns = fx.topo->edge;
  // Another tool's BPF program ("r0 = 0; exit") at exactly qocnet's handle/priority.
  const bpf_insn insns[] = {{BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0}, {BPF_JMP | BPF_EXIT, 0, 0, 0, 0}};
  detail::UniqueFd foreign(bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "foreign_tool", "GPL", insns, 2, nullptr));
  REQUIRE(foreign.valid());
  testbed::in_namespace(ns, [&] {
    bpf_tc_hook hook{};
    hook.sz = sizeof hook;
    hook.ifindex = static_cast<int>(::if_nametoindex("e0"));
    hook.attach_point = BPF_TC_INGRESS;
    REQUIRE((bpf_tc_hook_create(&hook) == 0));
    bpf_tc_opts o{};
    o.sz = sizeof o;
    o.handle = detail::kTcHandle;
    o.priority = detail::kTcPriority;
    o.prog_fd = foreign.get();
    REQUIRE(bpf_tc_attach(&hook, &o) == 0);
  });
  REQUIRE_ERROR(err, fx.edge->attach_port("e0"), Errc::already_exists);
  CHECK(err.message.find("'foreign_tool'") != std::string::npos);
  CHECK(err.fix.find("tc filter del dev e0 ingress handle 0xc0c prio 3084") != std::string::npos);
  CHECK(ingress_filters(ns, "e0").find("foreign_tool") != std::string::npos);
}
