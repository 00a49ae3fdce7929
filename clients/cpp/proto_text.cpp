// SPDX-License-Identifier: Apache-2.0
#include "qocnet_client/proto_text.hpp"

#include <cstdio>
#include <sstream>

namespace qocnet::client {

Result<v1::StreamId> parse_stream(const std::string& text) {
  auto parsed = parse_stream_id(text);
  if (!parsed) {
    Error e = std::move(parsed).error();
    // An unquoted "->" on a shell command line: '>' became a redirection.
    if (!text.empty() && text.back() == '-')
      e.fix = "quote the stream on a shell command line ('" + text + ">:DPORT'): the shell reads '>' "
              "as a redirection; or write SOURCE:SPORT:DPORT";
    return e;
  }
  const StreamId& id = *parsed;
  v1::StreamId out;
  out.set_source(id.source);
  out.set_source_port(id.source_port);
  out.set_destination_port(id.destination_port);
  return out;
}

std::string to_string(const v1::StreamId& stream) {
  StreamId id{stream.source(), static_cast<std::uint16_t>(stream.source_port()),
              static_cast<std::uint16_t>(stream.destination_port())};
  return qocnet::to_string(id);
}

v1::PolicyKind to_proto(PolicyKind kind) noexcept {
  switch (kind) {
    case PolicyKind::keep: return v1::POLICY_KIND_KEEP;
    case PolicyKind::uniform: return v1::POLICY_KIND_UNIFORM;
    case PolicyKind::differential: return v1::POLICY_KIND_DIFFERENTIAL;
    case PolicyKind::frame_aware: return v1::POLICY_KIND_FRAME_AWARE;
  }
  return v1::POLICY_KIND_UNSPECIFIED;
}

const char* kind_name(v1::PolicyKind kind) noexcept {
  switch (kind) {
    case v1::POLICY_KIND_KEEP: return "keep";
    case v1::POLICY_KIND_UNIFORM: return "uniform";
    case v1::POLICY_KIND_DIFFERENTIAL: return "differential";
    case v1::POLICY_KIND_FRAME_AWARE: return "frame_aware";
    default: return "unspecified";
  }
}

Result<v1::Policy> parse_policy(const std::string& text) {
  QOCNET_ASSIGN(p, qocnet::parse_policy(text));
  v1::Policy out;
  out.set_kind(to_proto(p.kind));
  out.set_drop(p.drop);
  out.set_order(static_cast<v1::DropOrder>(p.order));  // the enums share their values
  return out;
}

std::string to_string(const v1::Policy& policy) {
  if (policy.kind() == v1::POLICY_KIND_KEEP) return "keep";
  if (policy.kind() == v1::POLICY_KIND_UNSPECIFIED) return "unspecified";
  char drop[32];
  std::snprintf(drop, sizeof drop, "%g", policy.drop());
  std::string order;
  switch (policy.order()) {
    case v1::DROP_ORDER_DISP: break;  // frame_aware's default, not spelt out
    case v1::DROP_ORDER_TAIL: order = ",tail"; break;
    case v1::DROP_ORDER_THIN: order = ",thin"; break;
    default: order = ",order " + std::to_string(policy.order()); break;
  }
  return std::string(kind_name(policy.kind())) + "(" + drop + order + ")";
}

const char* class_name(int frame_class) noexcept {
  switch (frame_class) {
    case v1::FRAME_CLASS_REF: return "ref";
    case v1::FRAME_CLASS_DIFF: return "diff";
    case v1::FRAME_CLASS_DISP: return "disp";
    default: return "other";
  }
}

const char* codec_name(v1::Codec codec) noexcept {
  switch (codec) {
    case v1::CODEC_H264: return "h264";
    case v1::CODEC_HEVC: return "hevc";
    default: return "-";
  }
}

v1::ProcessSpec make_process(const std::string& name, const std::string& port,
                             const std::string& mac, const std::string& ip, unsigned udp_port) {
  v1::ProcessSpec p;
  p.set_name(name);
  p.set_port(port);
  p.set_mac(mac);
  p.set_ip(ip);
  p.set_udp_port(udp_port);
  return p;
}

std::string to_yaml(const v1::QocTable& table) {
  auto num = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.6g", v);
    return std::string(b);
  };
  auto list = [&](const google::protobuf::RepeatedField<double>& v) {
    std::string s = "[";
    for (int i = 0; i < v.size(); ++i) s += (i ? ", " : "") + num(v[i]);
    return s + "]";
  };
  std::ostringstream out;
  std::string metric = "\"";
  for (char c : table.metric()) {
    if (c == '"' || c == '\\') metric += '\\';
    metric += c;
  }
  out << "metric: " << metric << "\"\n";
  out << "lossless: " << num(table.lossless()) << "\n";
  out << "policies:\n";
  for (const auto& c : table.curves())
    out << "  " << kind_name(c.kind()) << ": {loss: " << list(c.loss()) << ", qoc: " << list(c.qoc())
        << "}\n";
  return out.str();
}

}  // namespace qocnet::client
