// SPDX-License-Identifier: Apache-2.0
// Prometheus metrics of qocnetd and qocnet-sensor (docs/SERVICE.md, Metrics),
// named by Prometheus conventions: a qocnet_ prefix, base units in the name
// (_bytes, _datagrams, _ratio), _total on every counter, one family per
// quantity with what varies in labels (a stream as source, source_port and
// destination_port; a frame class; a process).
#pragma once

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>

#include <deque>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "qocnet/v1/types.pb.h"
#include "qocnet/version.hpp"

namespace qocnet::metrics {

using Labels = std::vector<prometheus::ClientMetric::Label>;

// The frame classes by FrameClass value.
inline constexpr const char* kClasses[] = {"other", "disp", "diff", "ref"};

// Families being collected for one scrape. References to a family stay valid
// while more are added.
class Families {
 public:
  prometheus::MetricFamily& counter(const std::string& name, const std::string& help) {
    return families_.emplace_back(prometheus::MetricFamily{name, help, prometheus::MetricType::Counter, {}});
  }
  prometheus::MetricFamily& gauge(const std::string& name, const std::string& help) {
    return families_.emplace_back(prometheus::MetricFamily{name, help, prometheus::MetricType::Gauge, {}});
  }
  static void add(prometheus::MetricFamily& f, double value, Labels labels = {}) {
    prometheus::ClientMetric m;
    m.label = std::move(labels);
    if (f.type == prometheus::MetricType::Counter) m.counter.value = value;
    else m.gauge.value = value;
    f.metric.push_back(std::move(m));
  }
  // The families that have samples (a family with none is left out).
  std::vector<prometheus::MetricFamily> take() {
    std::vector<prometheus::MetricFamily> out;
    for (auto& f : families_)
      if (!f.metric.empty()) out.push_back(std::move(f));
    families_.clear();
    return out;
  }

 private:
  std::deque<prometheus::MetricFamily> families_;
};

// A stream's labels: source, source_port, destination_port (plus `more`).
inline Labels stream_labels(const v1::StreamId& id, Labels more = {}) {
  Labels l{{"source", id.source()},
           {"source_port", std::to_string(id.source_port())},
           {"destination_port", std::to_string(id.destination_port())}};
  l.insert(l.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  return l;
}

// One sample per frame class of `counts` (datagrams or bytes) into `f`.
inline void add_by_class(prometheus::MetricFamily& f, const google::protobuf::RepeatedField<std::uint64_t>& counts,
                         const v1::StreamId& id, const Labels& more = {}) {
  for (int c = 0; c < 4 && c < counts.size(); ++c) {
    Labels extra = more;
    extra.push_back({"class", kClasses[c]});
    Families::add(f, static_cast<double>(counts.Get(c)), stream_labels(id, std::move(extra)));
  }
}

// <prefix>_build_info 1 {version, git_describe, libbcc}.
inline void add_build_info(Families& fam, const char* name) {
  const auto& v = qocnet::version();
  Families::add(fam.gauge(name, "1, labelled with the running libqocnet's version, git describe and libbcc"), 1,
                {{"version", v.version}, {"git_describe", v.describe}, {"libbcc", v.bcc}});
}

// The DPI's counters as <prefix>_dpi_datagrams_total{kind}, <prefix>_dpi_anomalies_total{kind}
// and <prefix>_dpi_clones_total.
inline void add_dpi(Families& fam, const v1::DpiCounters& d, const std::string& prefix) {
  auto& dpi = fam.counter(prefix + "_dpi_datagrams_total", "datagrams the DPI saw, by what they were (seen: all)");
  for (const auto& [kind, v] : std::initializer_list<std::pair<const char*, std::uint64_t>>{
           {"seen", d.seen()}, {"not_udp", d.not_udp()}, {"not_ts", d.not_ts()}, {"ts", d.ts()},
           {"replicated", d.replicated()}, {"all_dropped", d.all_dropped()}, {"gso", d.gso_packets()},
           {"gso_segment", d.gso_segments()}, {"pulled", d.pulled()}, {"peer_redirect", d.peer_redirects()}})
    Families::add(dpi, static_cast<double>(v), {{"kind", kind}});
  auto& bad = fam.counter(prefix + "_dpi_anomalies_total",
                          "datagrams the DPI could not take as they came, by kind (docs/DPI.md)");
  for (const auto& [kind, v] : std::initializer_list<std::pair<const char*, std::uint64_t>>{
           {"truncated", d.truncated()}, {"vlan_too_deep", d.vlan_too_deep()},
           {"ipv6_ext_too_deep", d.ipv6_ext_too_deep()}, {"fragment", d.fragments()},
           {"udp_length_bad", d.udp_length_bad()}, {"stream_table_full", d.stream_table_full()},
           {"targets_cut", d.targets_cut()}})
    Families::add(bad, static_cast<double>(v), {{"kind", kind}});
  Families::add(fam.counter(prefix + "_dpi_clones_total", "copies made with bpf_clone_redirect"),
                static_cast<double>(d.clones()));
}

// A stream's own DPI anomalies as <prefix>_stream_anomalies_total{..., kind}.
inline void add_stream_anomalies(prometheus::MetricFamily& f, const v1::StreamId& id,
                                 std::initializer_list<std::pair<const char*, std::uint64_t>> kinds) {
  for (const auto& [kind, v] : kinds)
    Families::add(f, static_cast<double>(v), stream_labels(id, {{"kind", kind}}));
}

}  // namespace qocnet::metrics
