// SPDX-License-Identifier: Apache-2.0
#include "control.hpp"
#include "qocnet/version.hpp"

#include <grpcpp/client_context.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "qocnet/qoc.hpp"
#include "qocnet_client/print.hpp"
#include "qocnet_client/proto_text.hpp"

namespace qocnet::ctl {

using client::num;
using client::percent;
using client::Table;
using client::to_json;

namespace {

std::uint64_t at(const google::protobuf::RepeatedField<std::uint64_t>& v, int i) {
  return i < v.size() ? v[i] : 0;
}

std::uint64_t sum(const google::protobuf::RepeatedField<std::uint64_t>& v) {
  std::uint64_t s = 0;
  for (auto x : v) s += x;
  return s;
}

std::string dash_if_empty(const std::string& s) { return s.empty() ? "-" : s; }

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

// The targets of one stream: per process its policy, what it got and what
// was dropped for it (datagrams, and bytes as a share of its stream), and
// per class delivered/dropped datagrams.
void print_targets(const google::protobuf::RepeatedPtrField<v1::TargetStats>& targets) {
  Table t({"process", "policy", "delivered", "dropped", "dropped_bytes", "ref", "diff", "disp",
           "other", "clones", "partial"});
  for (const auto& s : targets) {
    const double kept = static_cast<double>(sum(s.delivered().bytes()));
    const double lost = static_cast<double>(sum(s.dropped().bytes()));
    std::vector<std::string> row{s.process(), client::to_string(s.policy()),
                                 num(sum(s.delivered().datagrams())),
                                 num(sum(s.dropped().datagrams())),
                                 kept + lost > 0 ? percent(lost / (kept + lost)) : "-"};
    for (int c : {3, 2, 1, 0})
      row.push_back(num(at(s.delivered().datagrams(), c)) + "/" + num(at(s.dropped().datagrams(), c)));
    row.push_back(num(s.clones()));
    row.push_back(num(s.partial()));
    t.add(std::move(row));
  }
  t.print();
  if (!targets.empty()) std::printf("(ref .. other: datagrams delivered/dropped)\n");
}

void print_streams(const google::protobuf::RepeatedPtrField<v1::StreamStats>& streams) {
  Table t({"stream", "codec", "video_pid", "frames", "ref", "diff", "disp", "other", "bytes",
           "misaligned", "cc_errors", "ts_errors"});
  for (const auto& s : streams) {
    std::vector<std::string> row{client::to_string(s.stream()), client::codec_name(s.codec()),
                                 s.video_pid() ? num(std::uint64_t{s.video_pid()}) : "-",
                                 num(std::uint64_t{s.frames()})};
    for (int c : {3, 2, 1, 0}) row.push_back(num(at(s.seen().datagrams(), c)));
    row.push_back(num(sum(s.seen().bytes())));
    row.push_back(num(s.misaligned()));
    row.push_back(num(s.cc_errors()));
    row.push_back(num(s.ts_partial() + s.ts_bad_sync() + s.ts_malformed() + s.ts_unparsed()));
    t.add(std::move(row));
  }
  t.print();
}

void print_bandwidth(const v1::Bandwidth& b, std::uint32_t processes) {
  Table t({"scheme", "bytes", "of_naive"});
  auto share = [&](double v) { return b.naive_bytes() > 0 ? percent(v / b.naive_bytes()) : "-"; };
  t.add({"stream (one copy)", num(b.stream_bytes(), 12), share(b.stream_bytes())});
  t.add({"naive (Eq. 1)", num(b.naive_bytes(), 12), share(b.naive_bytes())});
  t.add({"replication", num(b.replication_bytes(), 12), share(b.replication_bytes())});
  t.add({"qocnet", num(b.qocnet_bytes(), 12), share(b.qocnet_bytes())});
  t.print();
  std::printf("processes: %u, reduction (Eq. 4): %s\n", processes, percent(b.reduction()).c_str());
}

// Every scalar field of a message, one row each; repeated counters by class.
void print_fields(const google::protobuf::Message& m) {
  Table t({"counter", "value"});
  const auto* d = m.GetDescriptor();
  const auto* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const auto* f = d->field(i);
    if (f->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_UINT64) continue;
    if (f->is_repeated()) {
      for (int c = r->FieldSize(m, f) - 1; c >= 0; --c)
        t.add({f->name() + "." + client::class_name(c), num(r->GetRepeatedUInt64(m, f, c))});
    } else {
      t.add({f->name(), num(r->GetUInt64(m, f))});
    }
  }
  t.print();
}

std::string stream_policy_line(const v1::StreamPolicy& p) {
  std::string s = client::to_string(p.stream()) + "  " + client::to_string(p.policy());
  if (p.required() > 0) s += "  (required " + num(p.required()) + ", target " + num(p.target()) + ")";
  return s;
}

}  // namespace

int fail(const Error& error) {
  std::cerr << "qocnetctl: " << error.to_string() << "\n";
  return client::exit_code(error.code);
}

Result<Control> Control::open(const Globals& g) {
  QOCNET_ASSIGN(address, client::parse_address(g.address));
  if (!(g.timeout_seconds > 0))
    return make_error(Errc::invalid_argument, "--timeout must be above 0 seconds");
  QOCNET_ASSIGN(channel, client::make_channel(address, g.tls));
  return Control(std::move(address), std::move(channel), g);
}

Control::Control(client::Address address, std::shared_ptr<::grpc::Channel> channel, const Globals& g)
    : address_(std::move(address)),
      channel_(std::move(channel)),
      stub_(v1::ControlService::NewStub(channel_)),
      timeout_(static_cast<long>(g.timeout_seconds * 1000.0)),
      json_(g.output == "json") {}

int Control::fail(const ::grpc::Status& status) const {
  std::cerr << "qocnetctl: " << client::describe(status, address_, channel_.get()) << "\n";
  return client::exit_code(status.error_code());
}

template <class Req, class Resp, class Print>
int Control::call(::grpc::Status (v1::ControlService::Stub::*method)(::grpc::ClientContext*, const Req&, Resp*),
                  const Req& request, Print print) {
  ::grpc::ClientContext context;
  client::set_timeout(context, timeout_);
  Resp response;
  const ::grpc::Status status = ((*stub_).*method)(&context, request, &response);
  if (!status.ok()) return fail(status);
  if (json_) std::printf("%s\n", to_json(response).c_str());
  else print(response);
  return 0;
}

// Ports and pairs.

int Control::port_attach(const std::string& port) {
  v1::AttachPortRequest req;
  req.set_port(port);
  return call(&v1::ControlService::Stub::AttachPort, req,
              [&](const auto&) { std::printf("attached %s\n", port.c_str()); });
}

int Control::port_detach(const std::string& port) {
  v1::DetachPortRequest req;
  req.set_port(port);
  return call(&v1::ControlService::Stub::DetachPort, req,
              [&](const auto&) { std::printf("detached %s\n", port.c_str()); });
}

int Control::port_list() {
  return call(&v1::ControlService::Stub::GetStatus, v1::GetStatusRequest{},
              [](const v1::GetStatusResponse& r) {
                Table t({"port"});
                for (const auto& p : r.ports()) t.add({p});
                t.print();
              });
}

int Control::pair_set(const std::string& ingress, const std::string& egress) {
  v1::SetPortPairRequest req;
  req.mutable_pair()->set_ingress(ingress);
  req.mutable_pair()->set_egress(egress);
  return call(&v1::ControlService::Stub::SetPortPair, req, [&](const auto&) {
    std::printf("%s -> %s\n", ingress.c_str(), egress.c_str());
  });
}

int Control::pair_remove(const std::string& ingress) {
  v1::RemovePortPairRequest req;
  req.set_ingress(ingress);
  return call(&v1::ControlService::Stub::RemovePortPair, req,
              [&](const auto&) { std::printf("removed the pair of %s\n", ingress.c_str()); });
}

int Control::pair_list() {
  return call(&v1::ControlService::Stub::ListPortPairs, v1::ListPortPairsRequest{},
              [](const v1::ListPortPairsResponse& r) {
                Table t({"ingress", "egress", "ingress_ifindex", "egress_ifindex"});
                for (const auto& p : r.pairs())
                  t.add({p.ingress(), p.egress(), num(std::uint64_t{p.ingress_ifindex()}),
                         num(std::uint64_t{p.egress_ifindex()})});
                t.print();
              });
}

int Control::counters(const std::vector<std::string>& ports) {
  v1::GetPortCountersRequest req;
  for (const auto& p : ports) req.add_ports(p);
  return call(&v1::ControlService::Stub::GetPortCounters, req, [](const v1::GetPortCountersResponse& r) {
    Table t({"port", "ifindex", "rx_packets", "rx_bytes", "fwd_packets", "fwd_bytes", "pass_packets",
             "pass_bytes", "tx_packets", "tx_bytes"});
    for (const auto& c : r.counters())
      t.add({dash_if_empty(c.name()), num(std::uint64_t{c.ifindex()}), num(c.rx_packets()),
             num(c.rx_bytes()), num(c.fwd_packets()), num(c.fwd_bytes()), num(c.pass_packets()),
             num(c.pass_bytes()), num(c.tx_packets()), num(c.tx_bytes())});
    t.print();
  });
}

// Processes, targets, policies.

int Control::process_add(const v1::ProcessSpec& spec) {
  v1::AddProcessRequest req;
  *req.mutable_process() = spec;
  return call(&v1::ControlService::Stub::AddProcess, req, [&](const auto&) {
    std::printf("added process %s on %s\n", spec.name().c_str(), spec.port().c_str());
  });
}

int Control::process_remove(const std::string& name) {
  v1::RemoveProcessRequest req;
  req.set_name(name);
  return call(&v1::ControlService::Stub::RemoveProcess, req,
              [&](const auto&) { std::printf("removed process %s\n", name.c_str()); });
}

int Control::process_list() {
  return call(&v1::ControlService::Stub::ListProcesses, v1::ListProcessesRequest{},
              [](const v1::ListProcessesResponse& r) {
                Table t({"name", "port", "mac", "ip", "udp_port"});
                for (const auto& p : r.processes())
                  t.add({p.name(), p.port(), p.mac(), dash_if_empty(p.ip()),
                         p.udp_port() ? num(std::uint64_t{p.udp_port()}) : "-"});
                t.print();
              });
}

int Control::targets_set(const std::string& stream, const std::vector<std::string>& processes) {
  auto id = client::parse_stream(stream);
  if (!id) return ctl::fail(id.error());
  v1::SetCloneTargetsRequest req;
  *req.mutable_stream() = *id;
  for (const auto& p : processes) req.add_processes(p);
  return call(&v1::ControlService::Stub::SetCloneTargets, req, [&](const auto&) {
    if (processes.empty()) std::printf("%s: not replicated\n", client::to_string(*id).c_str());
    else std::printf("%s -> %s\n", client::to_string(*id).c_str(), join(processes, ", ").c_str());
  });
}

int Control::policy_set(const std::string& process, const std::string& stream, const std::string& policy) {
  auto id = client::parse_stream(stream);
  if (!id) return ctl::fail(id.error());
  auto p = client::parse_policy(policy);
  if (!p) return ctl::fail(p.error());
  v1::SetPolicyRequest req;
  req.set_process(process);
  *req.mutable_stream() = *id;
  *req.mutable_policy() = *p;
  return call(&v1::ControlService::Stub::SetPolicy, req, [&](const auto&) {
    std::printf("%s on %s: %s\n", process.c_str(), client::to_string(*id).c_str(),
                client::to_string(*p).c_str());
  });
}

int Control::stats(const std::string& stream) {
  auto id = client::parse_stream(stream);
  if (!id) return ctl::fail(id.error());
  v1::GetTargetStatsRequest req;
  *req.mutable_stream() = *id;
  return call(&v1::ControlService::Stub::GetTargetStats, req,
              [](const v1::GetTargetStatsResponse& r) { print_targets(r.targets()); });
}

int Control::require(const std::string& process, const std::string& stream, double required) {
  auto id = client::parse_stream(stream);
  if (!id) return ctl::fail(id.error());
  v1::SetRequirementRequest req;
  req.set_process(process);
  *req.mutable_stream() = *id;
  req.set_required(required);
  return call(&v1::ControlService::Stub::SetRequirement, req, [&](const v1::SetRequirementResponse& r) {
    std::printf("%s on %s\n", process.c_str(), stream_policy_line(r.policy()).c_str());
  });
}

int Control::effective(const std::string& stream) {
  auto id = client::parse_stream(stream);
  if (!id) return ctl::fail(id.error());
  v1::GetEffectivePolicyRequest req;
  *req.mutable_stream() = *id;
  return call(&v1::ControlService::Stub::GetEffectivePolicy, req,
              [&](const v1::GetEffectivePolicyResponse& r) {
                std::printf("%s  %s\n", client::to_string(*id).c_str(),
                            client::to_string(r.policy()).c_str());
              });
}

int Control::bandwidth(const std::string& stream) {
  auto id = client::parse_stream(stream);
  if (!id) return ctl::fail(id.error());
  v1::GetStreamBandwidthRequest req;
  *req.mutable_stream() = *id;
  return call(&v1::ControlService::Stub::GetStreamBandwidth, req,
              [](const v1::GetStreamBandwidthResponse& r) { print_bandwidth(r.bandwidth(), r.processes()); });
}

// The QoC table.

int Control::table_get() {
  return call(&v1::ControlService::Stub::GetQocTable, v1::GetQocTableRequest{},
              [](const v1::GetQocTableResponse& r) { std::fputs(client::to_yaml(r.table()).c_str(), stdout); });
}

int Control::table_set(const std::string& file) {
  std::ifstream in(file);
  if (!in)
    return ctl::fail(make_error(Errc::not_found, "QoC table file '" + file + "' cannot be read",
                                "give a YAML file as docs/QOC.md describes"));
  std::ostringstream text;
  text << in.rdbuf();
  // The daemon checks it too; checking here names the file in the error.
  auto table = QocTable::parse_yaml(text.str(), file);
  if (!table) {
    Error e = std::move(table).error();
    if (e.message.find(file) == std::string::npos) e.context("QoC table file " + file);
    return ctl::fail(e);
  }
  v1::SetQocTableRequest req;
  req.set_yaml(text.str());
  return call(&v1::ControlService::Stub::SetQocTable, req, [&](const auto&) {
    std::printf("QoC table set from %s (%s, %zu policies)\n", file.c_str(), table->metric().c_str(),
                table->curves().size());
  });
}

// Streams and the DPI.

int Control::streams() {
  return call(&v1::ControlService::Stub::ListStreams, v1::ListStreamsRequest{},
              [](const v1::ListStreamsResponse& r) { print_streams(r.streams()); });
}

int Control::streams_reset() {
  return call(&v1::ControlService::Stub::ResetStreams, v1::ResetStreamsRequest{},
              [](const auto&) { std::printf("every stream's DPI state forgotten\n"); });
}

int Control::dpi() {
  return call(&v1::ControlService::Stub::GetDpiCounters, v1::GetDpiCountersRequest{},
              [](const v1::GetDpiCountersResponse& r) { print_fields(r.counters()); });
}

// Sensors.

int Control::sensor_add(const std::string& name, const std::string& address,
                        const std::vector<std::string>& streams) {
  v1::AddSensorRequest req;
  req.mutable_sensor()->set_name(name);
  req.mutable_sensor()->set_address(address);
  for (const auto& s : streams) {
    auto id = client::parse_stream(s);
    if (!id) return ctl::fail(id.error());
    *req.mutable_sensor()->add_streams() = *id;
  }
  return call(&v1::ControlService::Stub::AddSensor, req, [&](const auto&) {
    std::printf("added sensor %s at %s\n", name.c_str(), address.c_str());
  });
}

int Control::sensor_remove(const std::string& name) {
  v1::RemoveSensorRequest req;
  req.set_name(name);
  return call(&v1::ControlService::Stub::RemoveSensor, req,
              [&](const auto&) { std::printf("removed sensor %s\n", name.c_str()); });
}

int Control::sensor_list() {
  return call(&v1::ControlService::Stub::ListSensors, v1::ListSensorsRequest{},
              [](const v1::ListSensorsResponse& r) {
                Table t({"name", "address", "streams", "applied", "last_error"});
                for (const auto& s : r.sensors()) {
                  std::vector<std::string> streams;
                  for (const auto& id : s.streams()) streams.push_back(client::to_string(id));
                  t.add({s.name(), s.address(), join(streams, ","),
                         s.has_applied() ? client::to_string(s.applied()) : "-",
                         dash_if_empty(s.last_error())});
                }
                t.print();
              });
}

// The daemon.

int Control::status() {
  return call(&v1::ControlService::Stub::GetStatus, v1::GetStatusRequest{}, [](const v1::GetStatusResponse& r) {
    std::vector<std::string> ports(r.ports().begin(), r.ports().end());
    std::printf("version      %s\n", r.version().c_str());
    std::printf("uptime       %.0f s\n", r.uptime_seconds());
    std::printf("generation   %llu\n", static_cast<unsigned long long>(r.generation()));
    std::printf("datapath     %s\n", r.adopted() ? "adopted from pins"
                                                 : ("compiled in " + num(r.compile_seconds(), 3) + " s").c_str());
    std::printf("ports        %s\n", ports.empty() ? "-" : join(ports, " ").c_str());
    Table t({"program", "id", "verified_insns", "xlated_insns"});
    for (const auto& p : r.programs())
      t.add({p.name(), num(std::uint64_t{p.id()}), num(std::uint64_t{p.verified_insns()}),
             num(std::uint64_t{p.xlated_insns()})});
    if (!t.empty()) {
      std::printf("\n");
      t.print();
    }
  });
}

int Control::version(const std::string& local) {
  if (json_) {
    const auto& v = qocnet::version();
    std::printf("{\"qocnetctl\":{\"version\":\"%s\",\"libqocnet\":\"%s\",\"git_describe\":\"%s\",\"libbcc\":\"%s\"}}\n",
                QOCNET_VERSION_STRING, v.version, v.describe, v.bcc);
  } else {
    std::printf("%s\n", local.c_str());
  }
  std::fflush(stdout);
  return call(&v1::ControlService::Stub::GetStatus, v1::GetStatusRequest{}, [](const v1::GetStatusResponse& r) {
    std::printf("qocnetd %s (git %s), libbcc %s\n", r.version().c_str(), dash_if_empty(r.git_describe()).c_str(),
                dash_if_empty(r.bcc_version()).c_str());
  });
}

int Control::watch(unsigned interval_ms, unsigned count) {
  v1::WatchStatsRequest req;
  req.set_interval_ms(interval_ms);
  req.set_count(count);
  ::grpc::ClientContext context;
  // A bounded watch gets a deadline that covers its updates; an open one
  // runs until interrupted.
  if (count > 0) {
    const auto every = std::chrono::milliseconds(interval_ms ? interval_ms : 1000);
    client::set_timeout(context, timeout_ + every * count);
  }
  auto reader = stub_->WatchStats(&context, req);
  v1::StatsUpdate u;
  unsigned received = 0;
  while (reader->Read(&u)) {
    ++received;
    if (json_) {
      std::printf("%s\n", to_json(u).c_str());
    } else {
      std::printf("# update %llu  t=%.3f s  generation %llu\n",
                  static_cast<unsigned long long>(u.sequence()), u.monotonic_seconds(),
                  static_cast<unsigned long long>(u.generation()));
      Table t({"stream", "frames", "datagrams", "effective", "naive_bytes", "qocnet_bytes", "reduction"});
      for (const auto& s : u.streams())
        t.add({client::to_string(s.stream().stream()), num(std::uint64_t{s.stream().frames()}),
               num(sum(s.stream().seen().datagrams())), client::to_string(s.effective()),
               num(s.bandwidth().naive_bytes(), 12), num(s.bandwidth().qocnet_bytes(), 12),
               percent(s.bandwidth().reduction())});
      t.print();
      for (const auto& s : u.streams()) {
        if (s.targets().empty()) continue;
        std::printf("\n%s\n", client::to_string(s.stream().stream()).c_str());
        print_targets(s.targets());
      }
      if (!u.ports().empty()) {
        Table ports({"port", "rx_packets", "fwd_packets", "pass_packets", "tx_packets"});
        for (const auto& c : u.ports())
          ports.add({dash_if_empty(c.name()), num(c.rx_packets()), num(c.fwd_packets()),
                     num(c.pass_packets()), num(c.tx_packets())});
        std::printf("\n");
        ports.print();
      }
      std::printf("\n");
    }
    std::fflush(stdout);
  }
  const ::grpc::Status status = reader->Finish();
  // The end of a bounded watch is OK; a deadline after every update arrived is too.
  if (status.ok()) return 0;
  if (count > 0 && received >= count && status.error_code() == ::grpc::StatusCode::DEADLINE_EXCEEDED)
    return 0;
  return fail(status);
}

}  // namespace qocnet::ctl
