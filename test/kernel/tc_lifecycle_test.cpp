// SPDX-License-Identifier: Apache-2.0
// TC attachments: detach on destruction, qdisc ownership, and a filter left
// by a qocnet process that died is found and replaced.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../support/edge_fixture.hpp"
#include "qocnet/cleanup.hpp"
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

namespace {

std::string egress_filters(const testbed::Namespace& ns, const std::string& dev) {
  return tc_show(ns, {"filter", "show", "dev", dev, "egress"});
}

// Another tool's BPF filter ("r0 = 0; exit", named other_tool) at priority 7
// of `dir`, attached with libbpf as such tools do.
void attach_foreign_bpf(const testbed::Namespace& ns, const std::string& dev, bpf_tc_attach_point dir,
                        int prog_fd) {
  testbed::in_namespace(ns, [&] {
    bpf_tc_hook hook{};
    hook.sz = sizeof hook;
    hook.ifindex = static_cast<int>(::if_nametoindex(dev.c_str()));
    hook.attach_point = dir;
    bpf_tc_opts o{};
    o.sz = sizeof o;
    o.handle = 1;
    o.priority = 7;
    o.prog_fd = prog_fd;
    REQUIRE(bpf_tc_attach(&hook, &o) == 0);
  });
}

detail::UniqueFd load_foreign_prog() {
  const bpf_insn insns[] = {{BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0}, {BPF_JMP | BPF_EXIT, 0, 0, 0, 0}};
  detail::UniqueFd fd(bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "other_tool", "GPL", insns, 2, nullptr));
  REQUIRE(fd.valid());
  return fd;
}

}  // namespace

// The clsact is qocnet's (it created it), but another tool added a filter to
// it afterwards, on ingress or on egress: removing the clsact would take that
// filter with it.
TEST_CASE("a filter another tool added to the clsact qocnet created survives detach and destroy",
          "[tc]") {
  EdgeFixture fx(1);
  const auto& ns = fx.topo->edge;
  REQUIRE_OK(fx.edge->attach_port("e0"));
  REQUIRE(has_clsact(ns, "e0"));
  auto foreign = load_foreign_prog();

  SECTION("tc u32 on ingress, then detach_port") {
    REQUIRE_OK(testbed::run({"tc", "-n", ns.name(), "filter", "add", "dev", "e0", "ingress", "prio",
                             "9", "u32", "match", "u32", "0x12345678", "0xffffffff", "at", "0"}));
    REQUIRE_OK(fx.edge->detach_port("e0"));
    CHECK(ingress_filters(ns, "e0").find("u32") != std::string::npos);
  }
  SECTION("libbpf filter on ingress at another priority, then detach_port") {
    attach_foreign_bpf(ns, "e0", BPF_TC_INGRESS, foreign.get());
    REQUIRE_OK(fx.edge->detach_port("e0"));
    CHECK(ingress_filters(ns, "e0").find("other_tool") != std::string::npos);
  }
  SECTION("libbpf filter on egress, then the edge is destroyed") {
    attach_foreign_bpf(ns, "e0", BPF_TC_EGRESS, foreign.get());
    fx.edge.reset();
    CHECK(egress_filters(ns, "e0").find("other_tool") != std::string::npos);
  }
  SECTION("tc u32 on egress, then the edge is destroyed") {
    REQUIRE_OK(testbed::run({"tc", "-n", ns.name(), "filter", "add", "dev", "e0", "egress", "prio",
                             "9", "u32", "match", "u32", "0x12345678", "0xffffffff", "at", "0"}));
    fx.edge.reset();
    CHECK(egress_filters(ns, "e0").find("u32") != std::string::npos);
  }
  CHECK(has_clsact(ns, "e0"));
  CHECK(ingress_filters(ns, "e0").find("qoc_edge_in") == std::string::npos);
}

TEST_CASE("the clsact qocnet created goes once qocnet's filter was its last one", "[tc]") {
  EdgeFixture fx(1);
  const auto& ns = fx.topo->edge;
  REQUIRE_OK(fx.edge->attach_port("e0"));
  REQUIRE_OK(fx.edge->attach_port("e1"));
  // A foreign filter on e1 only: e0's clsact goes, e1's stays.
  REQUIRE_OK(testbed::run({"tc", "-n", ns.name(), "filter", "add", "dev", "e1", "egress", "prio",
                           "9", "u32", "match", "u32", "0x12345678", "0xffffffff", "at", "0"}));
  REQUIRE_OK(fx.edge->detach_port("e0"));
  CHECK_FALSE(has_clsact(ns, "e0"));
  fx.edge.reset();
  CHECK(has_clsact(ns, "e1"));
  CHECK(egress_filters(ns, "e1").find("u32") != std::string::npos);
  CHECK(ingress_filters(ns, "e1").empty());
}

// cleanup() of a filter whose process died: the clsact stays while another
// tool's filter is on it, on ingress or egress.
TEST_CASE("cleanup keeps a clsact with another tool's filter on its other hook", "[tc][cleanup]") {
  EdgeFixture fx(1);
  const auto& ns = fx.topo->edge;
  fx.edge.reset();
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto e = testbed::in_namespace(ns, [] { return Edge::create(); });
    if (!e.ok() || !e->attach_port("e0").ok() || !e->attach_port("e1").ok()) ::_exit(2);
    ::raise(SIGKILL);
    ::_exit(3);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  auto foreign = load_foreign_prog();
  attach_foreign_bpf(ns, "e0", BPF_TC_EGRESS, foreign.get());
  auto r = testbed::in_namespace(ns, [] { return cleanup({}, EdgeOptions{}.lock_dir); });
  REQUIRE_OK(r);
  CHECK(r->filters.size() == 2);
  CHECK(r->qdiscs == std::vector<std::string>{"e1"});
  CHECK(has_clsact(ns, "e0"));
  CHECK(egress_filters(ns, "e0").find("other_tool") != std::string::npos);
  CHECK(ingress_filters(ns, "e0").empty());
  CHECK_FALSE(has_clsact(ns, "e1"));
}
