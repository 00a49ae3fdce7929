// SPDX-License-Identifier: Apache-2.0
// A topology of namespaces plus an Edge created inside its edge namespace.
#pragma once

#include <net/if.h>

#include <memory>

#include "check.hpp"
#include "qocnet/edge.hpp"
#include "qocnet/testbed.hpp"

namespace qocnet::test {

struct EdgeFixture {
  explicit EdgeFixture(int processes = 2, EdgeOptions options = {}, bool distinct = false) {
    auto t = testbed::Topology::create(processes, distinct);
    REQUIRE_OK(t);
    topo = std::move(*t);
    // No IPv6 autoconfiguration chatter: counters then count test traffic only.
    for (const testbed::Namespace* ns : all_namespaces())
      REQUIRE_OK(testbed::run({"ip", "netns", "exec", ns->name(), "sysctl", "-qw",
                               "net.ipv6.conf.all.disable_ipv6=1",
                               "net.ipv6.conf.default.disable_ipv6=1"}));
    auto e = testbed::in_namespace(topo->edge, [&] { return Edge::create(options); });
    REQUIRE_OK(e);
    edge = std::make_unique<Edge>(std::move(*e));
  }

  std::vector<const testbed::Namespace*> all_namespaces() const {
    std::vector<const testbed::Namespace*> v{&topo->sensor, &topo->edge};
    for (const auto& p : topo->procs) v.push_back(&p);
    return v;
  }

  unsigned ifindex(const std::string& edge_port) const {
    return testbed::in_namespace(topo->edge, [&] { return ::if_nametoindex(edge_port.c_str()); });
  }

  PortCounters counters(const std::string& edge_port) const {
    auto c = edge->port_counters(edge_port);
    REQUIRE_OK(c);
    return *c;
  }

  // Declared first so it is destroyed last: the Edge detaches before the
  // namespaces go.
  std::unique_ptr<testbed::Topology> topo;
  std::unique_ptr<Edge> edge;
};

}  // namespace qocnet::test
