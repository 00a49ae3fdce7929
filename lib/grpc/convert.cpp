// SPDX-License-Identifier: Apache-2.0
#include "convert.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <map>
#include <vector>

namespace qocnet::grpc_api {

::grpc::StatusCode status_code(Errc code) {
  switch (code) {
    case Errc::invalid_argument: return ::grpc::StatusCode::INVALID_ARGUMENT;
    case Errc::not_found: return ::grpc::StatusCode::NOT_FOUND;
    case Errc::already_exists: return ::grpc::StatusCode::ALREADY_EXISTS;
    case Errc::failed_precondition: return ::grpc::StatusCode::FAILED_PRECONDITION;
    case Errc::permission_denied: return ::grpc::StatusCode::PERMISSION_DENIED;
    case Errc::resource_exhausted: return ::grpc::StatusCode::RESOURCE_EXHAUSTED;
    case Errc::unavailable: return ::grpc::StatusCode::UNAVAILABLE;
    case Errc::internal: return ::grpc::StatusCode::INTERNAL;
  }
  return ::grpc::StatusCode::UNKNOWN;
}

::grpc::Status to_status(const Error& error) {
  std::string msg = error.message;
  if (!error.fix.empty()) msg += "; fix: " + error.fix;
  return {status_code(error.code), msg, error.detail};
}

::grpc::Status to_status(const Status& status) {
  return status.ok() ? ::grpc::Status::OK : to_status(status.error());
}

Error bad_field(const std::string& field, const std::string& problem, const std::string& fix) {
  return make_error(Errc::invalid_argument, field + " " + problem, fix);
}

void to_proto(const PortPair& pair, v1::PortPair* out) {
  out->set_ingress(pair.ingress);
  out->set_egress(pair.egress);
  out->set_ingress_ifindex(pair.ingress_ifindex);
  out->set_egress_ifindex(pair.egress_ifindex);
}

void to_proto(const PortCounters& c, v1::PortCounters* out) {
  out->set_name(c.name);
  out->set_ifindex(c.ifindex);
  out->set_rx_packets(c.rx_packets);
  out->set_rx_bytes(c.rx_bytes);
  out->set_fwd_packets(c.fwd_packets);
  out->set_fwd_bytes(c.fwd_bytes);
  out->set_pass_packets(c.pass_packets);
  out->set_pass_bytes(c.pass_bytes);
  out->set_tx_packets(c.tx_packets);
  out->set_tx_bytes(c.tx_bytes);
}

PortCounters from_proto(const v1::PortCounters& in) {
  PortCounters c;
  c.name = in.name();
  c.ifindex = in.ifindex();
  c.rx_packets = in.rx_packets();
  c.rx_bytes = in.rx_bytes();
  c.fwd_packets = in.fwd_packets();
  c.fwd_bytes = in.fwd_bytes();
  c.pass_packets = in.pass_packets();
  c.pass_bytes = in.pass_bytes();
  c.tx_packets = in.tx_packets();
  c.tx_bytes = in.tx_bytes();
  return c;
}

Result<PortPair> from_proto(const v1::PortPair& in, const char* field) {
  for (auto [name, value] : {std::pair{"ingress", &in.ingress()}, std::pair{"egress", &in.egress()}})
    if (value->empty())
      return make_error(Errc::invalid_argument,
                        std::string(field) + "." + name + " is empty",
                        std::string("set ") + field + "." + name + " to an interface name");
  PortPair p;
  p.ingress = in.ingress();
  p.egress = in.egress();
  return p;
}

Status check_length(const std::string& field, const std::string& value, std::size_t limit) {
  if (value.size() <= limit) return {};
  return bad_field(field, "is " + std::to_string(value.size()) + " bytes, more than the limit of " +
                              std::to_string(limit),
                   "send at most " + std::to_string(limit) + " bytes in " + field);
}

namespace {

std::size_t text_limit(const std::string& name) {
  static const std::map<std::string, std::size_t> limits{
      {"yaml", 64 * 1024}, {"token", 64}, {"address", 256}, {"metric", 256},
      {"source", kMaxAddressText}, {"ip", kMaxAddressText}, {"mac", 17},
      {"port", kMaxInterfaceName}, {"ports", kMaxInterfaceName}, {"ingress", kMaxInterfaceName},
      {"egress", kMaxInterfaceName}, {"uplink", kMaxInterfaceName}, {"interface", kMaxInterfaceName}};
  auto it = limits.find(name);
  return it == limits.end() ? 64 : it->second;
}

Status check_message(const google::protobuf::Message& m, const std::string& prefix, int depth) {
  using google::protobuf::FieldDescriptor;
  if (depth > 16) return bad_field(prefix, "nests too deep", "send a request as the .proto defines it");
  const auto* refl = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  refl->ListFields(m, &fields);
  for (const auto* f : fields) {
    const std::string path = prefix + f->name();
    if (f->is_repeated()) {
      const int n = refl->FieldSize(m, f);
      if (static_cast<std::size_t>(n) > kMaxListEntries)
        return bad_field(path, "has " + std::to_string(n) + " entries, more than the limit of " +
                                   std::to_string(kMaxListEntries),
                         "send at most " + std::to_string(kMaxListEntries) + " entries in " + path);
      for (int i = 0; i < n; ++i) {
        const std::string at = path + "[" + std::to_string(i) + "]";
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
          std::string scratch;
          QOCNET_TRY(check_length(at, refl->GetRepeatedStringReference(m, f, i, &scratch), text_limit(f->name())));
        } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
          QOCNET_TRY(check_message(refl->GetRepeatedMessage(m, f, i), at + ".", depth + 1));
        }
      }
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
      std::string scratch;
      QOCNET_TRY(check_length(path, refl->GetStringReference(m, f, &scratch), text_limit(f->name())));
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      QOCNET_TRY(check_message(refl->GetMessage(m, f), path + ".", depth + 1));
    }
  }
  // Fields this build does not know are dropped, never stored.
  return {};
}

}  // namespace

Status check_request(const google::protobuf::Message& request) { return check_message(request, "", 0); }

void to_proto(const StreamId& s, v1::StreamId* out) {
  out->set_source(s.source);
  out->set_source_port(s.source_port);
  out->set_destination_port(s.destination_port);
}

Result<StreamId> from_proto(const v1::StreamId& in, const std::string& field) {
  if (in.source().empty())
    return bad_field(field + ".source", "is empty", "set it to the sensor's IP address, e.g. 10.0.0.1");
  QOCNET_TRY(check_length(field + ".source", in.source(), kMaxAddressText));
  for (auto [name, v] : {std::pair{".source_port", in.source_port()},
                         std::pair{".destination_port", in.destination_port()}})
    if (v == 0 || v > 65535)
      return bad_field(field + name, "is " + std::to_string(v) + ", not in 1..65535",
                       "set the stream's UDP port");
  StreamId id{in.source(), static_cast<std::uint16_t>(in.source_port()),
              static_cast<std::uint16_t>(in.destination_port())};
  auto key = stream_key(id);
  if (!key)
    return bad_field(field + ".source", "'" + in.source() + "' is not an IPv4 or IPv6 address",
                     "set it to the sensor's IP address, e.g. 10.0.0.1");
  return stream_id_of(*key);  // one spelling per address
}

void to_proto(const Policy& p, v1::Policy* out) {
  switch (p.kind) {
    case PolicyKind::keep: out->set_kind(v1::POLICY_KIND_KEEP); break;
    case PolicyKind::uniform: out->set_kind(v1::POLICY_KIND_UNIFORM); break;
    case PolicyKind::differential: out->set_kind(v1::POLICY_KIND_DIFFERENTIAL); break;
    case PolicyKind::frame_aware: out->set_kind(v1::POLICY_KIND_FRAME_AWARE); break;
  }
  out->set_drop(p.drop);
  switch (p.order) {
    case DropOrder::disp: out->set_order(v1::DROP_ORDER_DISP); break;
    case DropOrder::tail: out->set_order(v1::DROP_ORDER_TAIL); break;
    case DropOrder::thin: out->set_order(v1::DROP_ORDER_THIN); break;
  }
}

Result<Policy> from_proto(const v1::Policy& in, const std::string& field) {
  Policy p;
  switch (in.kind()) {
    case v1::POLICY_KIND_KEEP: p.kind = PolicyKind::keep; break;
    case v1::POLICY_KIND_UNIFORM: p.kind = PolicyKind::uniform; break;
    case v1::POLICY_KIND_DIFFERENTIAL: p.kind = PolicyKind::differential; break;
    case v1::POLICY_KIND_FRAME_AWARE: p.kind = PolicyKind::frame_aware; break;
    default:
      return bad_field(field + ".kind", "is " + std::to_string(in.kind()) + " (unspecified or unknown)",
                       "set POLICY_KIND_KEEP, _UNIFORM, _DIFFERENTIAL or _FRAME_AWARE");
  }
  if (!std::isfinite(in.drop()) || in.drop() < 0 || in.drop() > 1)
    return bad_field(field + ".drop", "is " + std::to_string(in.drop()) + ", not in [0, 1]",
                     "give the long-run fraction of bytes to drop, e.g. 0.05");
  p.drop = p.kind == PolicyKind::keep ? 0.0 : in.drop();
  switch (in.order()) {
    case v1::DROP_ORDER_DISP: p.order = DropOrder::disp; break;
    case v1::DROP_ORDER_TAIL: p.order = DropOrder::tail; break;
    case v1::DROP_ORDER_THIN: p.order = DropOrder::thin; break;
    default:
      return bad_field(field + ".order", "is " + std::to_string(in.order()) + ", not a drop order",
                       "set DROP_ORDER_DISP, _TAIL or _THIN (frame_aware only), or leave it unset");
  }
  if (in.kind() == v1::POLICY_KIND_KEEP && in.drop() != 0)
    return bad_field(field + ".drop", "must be 0 for keep", "leave drop unset for keep");
  if (auto v = validate(p); !v) {
    Error e = v.error();
    e.context(field);
    e.code = Errc::invalid_argument;
    return e;
  }
  return p;
}

void to_proto(const ProcessSpec& p, v1::ProcessSpec* out) {
  out->set_name(p.name);
  out->set_port(p.port);
  out->set_mac(p.mac);
  out->set_ip(p.ip);
  out->set_udp_port(p.udp_port);
}

Result<std::string> canonical_mac(const std::string& text, const std::string& field) {
  auto bad = [&] {
    return bad_field(field, "'" + text.substr(0, 64) + "' is not a MAC address",
                     "write it as six hex bytes, e.g. 02:00:00:00:00:01");
  };
  if (text.size() != 17) return bad();
  std::string out = text;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const char c = out[i];
    if (i % 3 == 2) {
      if (c != ':') return bad();
    } else if (std::isxdigit(static_cast<unsigned char>(c))) {
      out[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      return bad();
    }
  }
  return out;
}

Status check_interface_name(const std::string& name, const std::string& field) {
  if (name.empty()) return bad_field(field, "is empty", "name a network interface, e.g. e0");
  if (name.size() > kMaxInterfaceName || name == "." || name == ".." ||
      name.find_first_of("/: \t\n\r") != std::string::npos ||
      std::any_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }))
    return bad_field(field, "'" + name.substr(0, 64) + "' is not an interface name",
                     "use at most " + std::to_string(kMaxInterfaceName) +
                         " characters without '/', ':' or blanks (ip link show lists them)");
  return {};
}

Status check_process_name(const std::string& name, const std::string& field) {
  if (name.empty()) return bad_field(field, "is empty", "name the process, e.g. \"detector\"");
  if (name.size() > kMaxProcessName ||
      name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != std::string::npos)
    return bad_field(field, "'" + name.substr(0, 64) + "' is not a valid process name",
                     "use at most 31 of A-Z a-z 0-9 _ . -");
  return {};
}

Result<ProcessSpec> from_proto(const v1::ProcessSpec& in, const std::string& field) {
  QOCNET_TRY(check_process_name(in.name(), field + ".name"));
  if (in.port().empty())
    return bad_field(field + ".port", "is empty", "name the edge's interface toward the process");
  QOCNET_TRY(check_interface_name(in.port(), field + ".port"));
  if (in.mac().empty())
    return bad_field(field + ".mac", "is empty", "give the process's MAC address, e.g. 02:00:00:00:00:01");
  QOCNET_ASSIGN(mac, canonical_mac(in.mac(), field + ".mac"));
  std::string ip;
  if (!in.ip().empty()) {
    in_addr a{};
    if (in.ip().size() > kMaxAddressText || ::inet_pton(AF_INET, in.ip().c_str(), &a) != 1)
      return bad_field(field + ".ip", "'" + in.ip().substr(0, 64) + "' is not an IPv4 address",
                       "give the process's IPv4 address, or leave ip empty to keep the sensor's");
    char buf[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &a, buf, sizeof buf);
    ip = buf;
  }
  if (in.udp_port() > 65535)
    return bad_field(field + ".udp_port", "is " + std::to_string(in.udp_port()) + ", not in 0..65535",
                     "give the process's UDP port, or 0 to keep the sensor's");
  return ProcessSpec{in.name(), in.port(), mac, ip, static_cast<std::uint16_t>(in.udp_port())};
}

void to_proto(const std::uint64_t (&datagrams)[4], const std::uint64_t (&bytes)[4],
              v1::ClassCounts* out) {
  out->clear_datagrams();
  out->clear_bytes();
  for (int c = 0; c < 4; ++c) {
    out->add_datagrams(datagrams[c]);
    out->add_bytes(bytes[c]);
  }
}

void to_proto(const TargetStats& t, v1::TargetStats* out) {
  out->set_process(t.process);
  to_proto(t.policy, out->mutable_policy());
  to_proto(t.delivered, t.delivered_bytes, out->mutable_delivered());
  to_proto(t.dropped, t.dropped_bytes, out->mutable_dropped());
  out->set_clones(t.clones);
  out->set_partial(t.partial);
  out->set_held_until_rap(t.held_until_rap);
  out->set_held_until_rap_bytes(t.held_until_rap_bytes);
}

std::string address_of(const std::string& source) {
  if (!source.empty() && source[0] == '[') return source.substr(1, source.find(']') - 1);
  return source.substr(0, source.rfind(':'));
}

StreamId stream_of(const StreamStats& s) {
  return StreamId{address_of(s.source), s.source_port, s.destination_port};
}

void to_proto(const StreamStats& s, v1::StreamStats* out) {
  to_proto(stream_of(s), out->mutable_stream());
  out->set_pmt_pid(s.pmt_pid);
  out->set_video_pid(s.video_pid);
  out->set_codec(s.codec == Codec::h264   ? v1::CODEC_H264
                 : s.codec == Codec::hevc ? v1::CODEC_HEVC
                                          : v1::CODEC_UNSPECIFIED);
  out->set_frames(s.frames);
  to_proto(s.datagrams, s.bytes, out->mutable_seen());
  out->set_misaligned(s.misaligned);
  out->set_cc_errors(s.cc_errors);
  out->set_ts_partial(s.ts_partial);
  out->set_ts_bad_sync(s.ts_bad_sync);
  out->set_ts_malformed(s.ts_malformed);
  out->set_ts_unparsed(s.ts_unparsed);
  out->set_hevc_pps_unknown(s.hevc_pps_unknown);
}

void to_proto(const DpiCounters& c, v1::DpiCounters* out) {
  out->set_seen(c.seen);
  out->set_not_udp(c.not_udp);
  out->set_not_ts(c.not_ts);
  out->set_ts(c.ts);
  out->clear_by_class();
  for (auto v : c.by_class) out->add_by_class(v);
  out->set_truncated(c.truncated);
  out->set_vlan_too_deep(c.vlan_too_deep);
  out->set_ipv6_ext_too_deep(c.ipv6_ext_too_deep);
  out->set_fragments(c.fragments);
  out->set_udp_length_bad(c.udp_length_bad);
  out->set_gso_packets(c.gso_packets);
  out->set_gso_segments(c.gso_segments);
  out->set_pulled(c.pulled);
  out->set_stream_table_full(c.stream_table_full);
  out->set_replicated(c.replicated);
  out->set_clones(c.clones);
  out->set_all_dropped(c.all_dropped);
  out->set_peer_redirects(c.peer_redirects);
  out->set_targets_cut(c.targets_cut);
}

void to_proto(const Bandwidth& b, v1::Bandwidth* out) {
  out->set_stream_bytes(b.stream_bytes);
  out->set_naive_bytes(b.naive_bytes);
  out->set_replication_bytes(b.replication_bytes);
  out->set_qocnet_bytes(b.qocnet_bytes);
  out->set_reduction(b.reduction);
}

void to_proto(const QocTable& t, v1::QocTable* out) {
  out->set_metric(t.metric());
  out->set_lossless(t.lossless());
  out->clear_curves();
  for (const auto& [kind, curve] : t.curves()) {
    auto* c = out->add_curves();
    v1::Policy p;
    to_proto(Policy{kind, 0.0}, &p);
    c->set_kind(p.kind());
    for (double l : curve.loss) c->add_loss(l);
    for (double q : curve.qoc) c->add_qoc(q);
  }
}

Result<QocTable> from_proto(const v1::QocTable& in, const std::string& field) {
  std::map<PolicyKind, QocTable::Curve> curves;
  for (int i = 0; i < in.curves_size(); ++i) {
    const auto& c = in.curves(i);
    const std::string f = field + ".curves[" + std::to_string(i) + "]";
    v1::Policy probe;
    probe.set_kind(c.kind());
    QOCNET_ASSIGN(policy, from_proto(probe, f));
    if (curves.count(policy.kind))
      return bad_field(f + ".kind", "repeats " + std::string(to_string(policy.kind)),
                       "give each policy kind one curve");
    curves[policy.kind] = QocTable::Curve{{c.loss().begin(), c.loss().end()},
                                          {c.qoc().begin(), c.qoc().end()}};
  }
  auto table = QocTable::make(in.metric(), in.lossless(), std::move(curves));
  if (!table) {
    Error e = table.error();
    e.context(field);
    return e;
  }
  return table;
}

void to_proto(const ProgramInfo& p, v1::ProgramInfo* out) {
  out->set_name(p.name);
  out->set_id(p.id);
  out->set_verified_insns(p.verified_insns);
  out->set_xlated_insns(p.xlated_insns);
}

// --- the control core's results ------------------------------------------------

Result<StreamKey> key_from_proto(const v1::StreamId& in, const std::string& field) {
  QOCNET_ASSIGN(id, from_proto(in, field));
  return stream_key(id);
}

void to_proto(const StreamKey& k, v1::StreamId* out) { to_proto(stream_id_of(k), out); }

void to_proto(const control::StreamPolicy& p, v1::StreamPolicy* out) {
  to_proto(p.stream, out->mutable_stream());
  to_proto(p.policy, out->mutable_policy());
  out->set_required(p.required);
  out->set_target(p.target);
  if (p.measured) out->set_measured(*p.measured);
}

void to_proto(const control::PolicyChange& c, v1::PolicyUpdate* out) {
  to_proto(c.policy, out->mutable_policy());
  out->set_reason(c.reason);
  out->set_generation(c.generation);
}

v1::LoopAction to_proto(control::LoopAction a) {
  switch (a) {
    case control::LoopAction::held: return v1::LOOP_ACTION_HELD;
    case control::LoopAction::tightened: return v1::LOOP_ACTION_TIGHTENED;
    case control::LoopAction::loosened: return v1::LOOP_ACTION_LOOSENED;
  }
  return v1::LOOP_ACTION_UNSPECIFIED;
}

void to_proto(const control::SensorView& s, v1::Sensor* out) {
  out->set_name(s.name);
  out->set_address(s.address);
  for (const auto& id : s.streams) to_proto(id, out->add_streams());
  if (s.applied) to_proto(*s.applied, out->mutable_applied());
  out->set_last_error(s.last_error);
}

void to_proto(const control::CoreStatus& s, v1::GetStatusResponse* out) {
  for (const auto& p : s.ports) out->add_ports(p);
  for (const auto& p : s.programs) to_proto(p, out->add_programs());
  out->set_adopted(s.adopted);
  out->set_compile_seconds(s.compile_seconds);
  out->set_generation(s.generation);
  out->set_uptime_seconds(s.uptime_seconds);
}

void to_proto(const control::StatsSnapshot& s, v1::StatsUpdate* out) {
  out->set_sequence(s.sequence);
  out->set_monotonic_seconds(s.monotonic_seconds);
  out->set_generation(s.generation);
  for (const auto& r : s.streams) {
    auto* m = out->add_streams();
    to_proto(r.stream, m->mutable_stream());
    for (const auto& t : r.targets) to_proto(t, m->add_targets());
    for (const auto& p : r.requirements) to_proto(p, m->add_requirements());
    to_proto(r.effective, m->mutable_effective());
    to_proto(r.bandwidth, m->mutable_bandwidth());
  }
  for (const auto& p : s.ports) to_proto(p, out->add_ports());
  to_proto(s.dpi, out->mutable_dpi());
}

}  // namespace qocnet::grpc_api
