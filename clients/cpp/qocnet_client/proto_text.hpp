// SPDX-License-Identifier: Apache-2.0
// The command-line spelling of qocnet.v1 values, both ways: streams as the
// library's to_string(StreamId) prints them ("10.0.0.1:40000->:5000",
// "[fd00::1]:40000->:5000"), policies as "keep", "uniform(0.05)",
// "differential(0.1)", "frame_aware(0.3)". Parsing goes through the
// library's parse_stream_id / parse_policy, so clients and the C++ API accept
// the same text and give the same errors.
#pragma once

#include <string>

#include "qocnet/edge.hpp"
#include "qocnet/error.hpp"
#include "qocnet/qoc.hpp"
#include "qocnet/v1/control.pb.h"

namespace qocnet::client {

Result<v1::StreamId> parse_stream(const std::string& text);
std::string to_string(const v1::StreamId& stream);

Result<v1::Policy> parse_policy(const std::string& text);
// "keep", "uniform(0.05)", ...; "unspecified" for an unset policy.
std::string to_string(const v1::Policy& policy);

v1::PolicyKind to_proto(PolicyKind kind) noexcept;
// "keep", "uniform", ...; "unspecified" for POLICY_KIND_UNSPECIFIED.
const char* kind_name(v1::PolicyKind kind) noexcept;
// "ref", "diff", "disp", "other".
const char* class_name(int frame_class) noexcept;
// "h264", "hevc", "-".
const char* codec_name(v1::Codec codec) noexcept;

// Builds a ProcessSpec message.
v1::ProcessSpec make_process(const std::string& name, const std::string& port,
                             const std::string& mac, const std::string& ip, unsigned udp_port);

// The QoC table message as the YAML that QocTable::load reads (docs/QOC.md),
// so `qocnetctl table get > t.yaml` and `qocnetctl table set t.yaml` round-trip.
std::string to_yaml(const v1::QocTable& table);

}  // namespace qocnet::client
