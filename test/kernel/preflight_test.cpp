// SPDX-License-Identifier: Apache-2.0
// Each bad input or missing prerequisite gives its named error.
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "../support/edge_fixture.hpp"
#include "compiler.hpp"
#include "qoc_abi.h"

using namespace qocnet;
using namespace qocnet::test;
namespace fs = std::filesystem;

namespace {

// A private copy of bpf_src/ whose entry file gets `extra` appended.
struct BrokenSources {
  explicit BrokenSources(const std::string& extra) {
    char tmpl[] = "/tmp/qocnet-test-src-XXXXXX";
    REQUIRE(::mkdtemp(tmpl));
    dir = tmpl;
    for (const auto& s : detail::embedded_bpf_sources()) {
      std::ofstream f(dir / s.name);
      f << s.text;
      if (std::string(s.name) == "edge_ingress.c") f << extra;
    }
  }
  ~BrokenSources() { fs::remove_all(dir); }
  fs::path dir;
};

}  // namespace

TEST_CASE("a process without CAP_BPF/CAP_NET_ADMIN is told what it lacks", "[preflight]") {
  int pipefd[2];
  REQUIRE(::pipe(pipefd) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Child: clear the effective capability set, as an unprivileged user has it.
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    ::syscall(SYS_capget, &hdr, data);
    data[0].effective = data[1].effective = 0;
    if (::syscall(SYS_capset, &hdr, data) != 0) ::_exit(3);
    auto e = Edge::create();
    std::string msg = e.ok() ? std::string("ok") : e.error().to_string();
    msg = std::to_string(e.ok() ? -1 : static_cast<int>(e.error().code)) + "|" + msg;
    (void)!::write(pipefd[1], msg.data(), msg.size());
    ::_exit(0);
  }
  ::close(pipefd[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  INFO(out);
  REQUIRE(out.rfind(std::to_string(static_cast<int>(Errc::permission_denied)) + "|", 0) == 0);
  CHECK(out.find("CAP_BPF") != std::string::npos);
  CHECK(out.find("CAP_NET_ADMIN") != std::string::npos);
  CHECK(out.find("setcap") != std::string::npos);
}

TEST_CASE("missing kernel headers stop the compile with the paths tried", "[preflight]") {
  EdgeOptions o;
  o.kernel_headers = "/nonexistent/qocnet-headers";
  REQUIRE_ERROR(err, Edge::create(o), Errc::unavailable);
  CHECK(err.message.find("/nonexistent/qocnet-headers") != std::string::npos);
  CHECK(err.fix.find("scripts/bootstrap") != std::string::npos);
}

TEST_CASE("an unknown interface is named", "[preflight]") {
  EdgeFixture fx(1);
  REQUIRE_ERROR(err, fx.edge->attach_port("qocnetnope0"), Errc::not_found);
  CHECK(err.message.find("'qocnetnope0'") != std::string::npos);
  CHECK(err.fix.find("ip link") != std::string::npos);
  REQUIRE_ERROR(err2, fx.edge->set_port_pair("e0", "qocnetnope0"), Errc::not_found);
  CHECK(err2.message.find("'qocnetnope0'") != std::string::npos);
}

TEST_CASE("a port paired with itself is refused", "[preflight]") {
  EdgeFixture fx(1);
  REQUIRE_OK(fx.edge->attach_port("e0"));
  REQUIRE_ERROR(err, fx.edge->set_port_pair("e0", "e0"), Errc::invalid_argument);
  CHECK(err.message.find("e0 -> e0") != std::string::npos);
  auto pairs = fx.edge->port_pairs();
  REQUIRE_OK(pairs);
  CHECK(pairs->empty());  // a failed call changes nothing
}

TEST_CASE("a pair on a port that is not attached is refused", "[preflight]") {
  EdgeFixture fx(2);
  REQUIRE_ERROR(err, fx.edge->set_port_pair("e0", "e1"), Errc::failed_precondition);
  CHECK(err.fix.find("attach_port(\"e0\")") != std::string::npos);
}

TEST_CASE("removing a pair that does not exist says so", "[preflight]") {
  EdgeFixture fx(1);
  REQUIRE_OK(fx.edge->attach_port("e0"));
  REQUIRE_ERROR(err, fx.edge->remove_port_pair("e0"), Errc::not_found);
  CHECK(err.message.find("e0 has no port pair") != std::string::npos);
}

TEST_CASE("attaching the same port twice is refused, in one edge and across edges",
          "[preflight]") {
  EdgeFixture fx(1);
  REQUIRE_OK(fx.edge->attach_port("e0"));
  REQUIRE_ERROR(err, fx.edge->attach_port("e0"), Errc::already_exists);
  CHECK(err.message.find("e0") != std::string::npos);

  auto other = testbed::in_namespace(fx.topo->edge, [] { return Edge::create(); });
  REQUIRE_OK(other);
  REQUIRE_ERROR(err2, other->attach_port("e0"), Errc::already_exists);
  CHECK(err2.message.find("already attached by this process") != std::string::npos);

  // After the first owner lets go, the second may take the port.
  REQUIRE_OK(fx.edge->detach_port("e0"));
  REQUIRE_OK(other->attach_port("e0"));
}

TEST_CASE("a BPF compile failure shows clang's error line", "[preflight][compile]") {
  BrokenSources src("\nint qoc_broken(void) { return qoc_undeclared_symbol; }\n");
  EdgeOptions o;
  o.bpf_src_dir = src.dir;
  REQUIRE_ERROR(err, Edge::create(o), Errc::failed_precondition);
  CHECK(err.message.find("BPF compile of edge_ingress.c failed") != std::string::npos);
  CHECK(err.message.find("edge_ingress.c:") != std::string::npos);
  CHECK(err.message.find("error:") != std::string::npos);
  CHECK(err.message.find("qoc_undeclared_symbol") != std::string::npos);
  CHECK(err.detail.find("clang diagnostics") != std::string::npos);
  CHECK(err.fix.find(src.dir.string()) != std::string::npos);
}

TEST_CASE("QOCNET_BPF_SRC_DIR overrides the embedded sources", "[preflight][compile]") {
  BrokenSources src("\nint qoc_broken_env(void) { return qoc_env_undeclared; }\n");
  ::setenv("QOCNET_BPF_SRC_DIR", src.dir.c_str(), 1);
  auto e = Edge::create();
  ::unsetenv("QOCNET_BPF_SRC_DIR");
  REQUIRE_FALSE(e.ok());
  CHECK(e.error().message.find("qoc_env_undeclared") != std::string::npos);
  // And without it, the built-in sources compile.
  REQUIRE_OK(Edge::create());
}

TEST_CASE("a program the verifier refuses comes back with the verifier log", "[preflight][compile]") {
  // Dereferences a map value without the NULL check the verifier demands.
  BrokenSources src(
      "\nint qoc_unchecked(struct __sk_buff *skb)\n"
      "{ __u32 k = skb->ifindex; struct qoc_port_pair *p = qoc_port_pairs.lookup(&k);\n"
      "  return p->egress_ifindex; }\n");
  detail::CompileRequest req;
  req.entry = "edge_ingress.c";
  req.programs = {"qoc_unchecked"};
  req.src_dir = src.dir;
  auto obj = detail::compile_bpf(req);
  REQUIRE_FALSE(obj.ok());
  INFO(obj.error().to_string());
  CHECK(obj.error().message.find("refused BPF program qoc_unchecked") != std::string::npos);
  CHECK(obj.error().detail.find("verifier log") != std::string::npos);
  CHECK(obj.error().detail.find("map_value_or_null") != std::string::npos);
}

TEST_CASE("a map opened with the wrong layout is refused", "[preflight][abi]") {
  detail::CompileRequest req;
  req.entry = "edge_ingress.c";
  req.programs = {"qoc_edge_in"};
  auto obj = detail::compile_bpf(req);
  REQUIRE_OK(obj);
  const auto& pairs = obj->maps.at("qoc_port_pairs");
  REQUIRE_OK((detail::TypedMap<__u32, qoc_port_pair>::open(pairs)));
  auto wrong = detail::TypedMap<__u32, __u32>::open(pairs);
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().code == Errc::failed_precondition);
  CHECK(wrong.error().message.find("key/value size 4/8") != std::string::npos);
  CHECK(wrong.error().message.find("expects 4/4") != std::string::npos);
  auto as_percpu = detail::PerCpuMap<__u32, qoc_port_pair>::open(pairs);
  REQUIRE_FALSE(as_percpu.ok());
  CHECK(as_percpu.error().message.find("is not per-CPU") != std::string::npos);
}
