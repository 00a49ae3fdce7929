// SPDX-License-Identifier: Apache-2.0
// frame_aware's drop order through qocnetd: SetPolicy takes it, GetTargetStats
// and GetEffectivePolicy give it back, an unknown one is refused naming the
// field, and a pinned restart keeps it (the state file's order key).
#include <csignal>
#include <filesystem>

#include "../support/daemon.hpp"
#include "qocnet/testbed.hpp"

using namespace qocnet;
using namespace qocnet::test;
namespace fs = std::filesystem;

namespace {

v1::Policy target_policy(const Daemon& d, const std::string& process) {
  v1::GetTargetStatsRequest tr;
  *tr.mutable_stream() = stream_msg();
  v1::GetTargetStatsResponse ts;
  REQUIRE_GRPC_OK(d.control()->GetTargetStats(ctx().get(), tr, &ts));
  for (const auto& t : ts.targets())
    if (t.process() == process) return t.policy();
  FAIL("no target " << process);
  return {};
}

}  // namespace

TEST_CASE("qocnetd: a policy's drop order is set, read back, refused when unknown, kept across a restart",
          "[daemon][order]") {
  auto t = testbed::Topology::create(2, true);
  REQUIRE_OK(t);
  const std::string pins = "/sys/fs/bpf/" + testbed::unique_name("pin");
  struct Cleanup {
    std::string path;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  } cleanup{pins};
  const std::vector<std::string> args{"--pin-dir", pins, "--keep-datapath", "--port", "e0"};
  auto first = std::make_unique<Daemon>((*t)->edge, args, "d1");
  REQUIRE(first->wait_serving());
  auto c = first->control();
  for (int i = 0; i < 2; ++i) {
    v1::AddProcessRequest add;
    *add.mutable_process() = process_msg(i);
    v1::AddProcessResponse ar;
    REQUIRE_GRPC_OK(c->AddProcess(ctx().get(), add, &ar));
  }
  v1::SetCloneTargetsRequest targets;
  *targets.mutable_stream() = stream_msg();
  targets.add_processes("proc0");
  targets.add_processes("proc1");
  v1::SetCloneTargetsResponse tr;
  REQUIRE_GRPC_OK(c->SetCloneTargets(ctx().get(), targets, &tr));

  v1::SetPolicyRequest r;
  r.set_process("proc0");
  *r.mutable_stream() = stream_msg();
  r.mutable_policy()->set_kind(v1::POLICY_KIND_FRAME_AWARE);
  r.mutable_policy()->set_drop(0.3);
  r.mutable_policy()->set_order(v1::DROP_ORDER_TAIL);
  v1::SetPolicyResponse resp;
  REQUIRE_GRPC_OK(c->SetPolicy(ctx().get(), r, &resp));
  r.set_process("proc1");
  r.mutable_policy()->set_order(v1::DROP_ORDER_THIN);
  r.mutable_policy()->set_drop(0.2);
  REQUIRE_GRPC_OK(c->SetPolicy(ctx().get(), r, &resp));
  CHECK(target_policy(*first, "proc0").order() == v1::DROP_ORDER_TAIL);
  CHECK(target_policy(*first, "proc1").order() == v1::DROP_ORDER_THIN);
  // Eq. 3: two orders drop different frames first, so nothing is common.
  v1::GetEffectivePolicyRequest er;
  *er.mutable_stream() = stream_msg();
  v1::GetEffectivePolicyResponse eff;
  REQUIRE_GRPC_OK(c->GetEffectivePolicy(ctx().get(), er, &eff));
  CHECK(eff.policy().kind() == v1::POLICY_KIND_KEEP);

  // Refused, naming the field, and nothing changes.
  r.mutable_policy()->set_order(static_cast<v1::DropOrder>(9));
  REQUIRE_GRPC_CODE(c->SetPolicy(ctx().get(), r, &resp), INVALID_ARGUMENT, "policy.order");
  r.mutable_policy()->set_kind(v1::POLICY_KIND_UNIFORM);
  r.mutable_policy()->set_order(v1::DROP_ORDER_TAIL);
  REQUIRE_GRPC_CODE(c->SetPolicy(ctx().get(), r, &resp), INVALID_ARGUMENT, "frame_aware's, not uniform's");
  CHECK(target_policy(*first, "proc1").order() == v1::DROP_ORDER_THIN);

  // A pinned restart reads the orders back from the state file.
  CHECK(first->stop(SIGKILL) == 128 + SIGKILL);
  first.reset();
  Daemon second((*t)->edge, args, "d2");
  REQUIRE(second.wait_serving());
  const v1::Policy p0 = target_policy(second, "proc0");
  CHECK(p0.kind() == v1::POLICY_KIND_FRAME_AWARE);
  CHECK(p0.drop() == 0.3);
  CHECK(p0.order() == v1::DROP_ORDER_TAIL);
  CHECK(target_policy(second, "proc1").order() == v1::DROP_ORDER_THIN);
}
