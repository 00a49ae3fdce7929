// SPDX-License-Identifier: Apache-2.0
#include "tenancy.hpp"

#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>

#include "control/peer_identity.hpp"
#include "convert.hpp"
#include "server.hpp"

namespace qocnet::grpc_api {

const char* to_string(Role role) {
  switch (role) {
    case Role::operator_role: return "operator";
    case Role::process: return "process";
    case Role::anyone: break;
  }
  return "anyone";
}

namespace {

Error bad_pattern(const std::string& text, const std::string& problem) {
  return make_error(Errc::invalid_argument, "stream pattern '" + text.substr(0, 128) + "': " + problem,
                    "write a stream as SOURCE:PORT->:PORT, with * for any source, source port or destination "
                    "port (\"10.0.0.1:*->:5000\"), or * for every stream");
}

}  // namespace

Result<StreamPattern> parse_stream_pattern(const std::string& text) {
  StreamPattern p;
  p.text = text;
  if (text == "*") return p;
  const auto arrow = text.find("->");
  if (arrow == std::string::npos) return bad_pattern(text, "has no '->'");
  const std::string left = text.substr(0, arrow), right = text.substr(arrow + 2);
  const auto colon = left.rfind(':');
  if (colon == std::string::npos || right.size() < 2 || right[0] != ':')
    return bad_pattern(text, "is not SOURCE:PORT->:PORT");
  const std::string source = left.substr(0, colon), sport = left.substr(colon + 1), dport = right.substr(1);
  // The library parses the address and the ports; a * stands in as port 1.
  const std::string probe = (source == "*" ? std::string("0.0.0.0") : source) + ":" + (sport == "*" ? "1" : sport) +
                            "->:" + (dport == "*" ? "1" : dport);
  auto id = parse_stream_id(probe);
  if (!id) return bad_pattern(text, id.error().message);
  if (source != "*") p.source = id->source;
  p.source_port = sport == "*" ? 0 : id->source_port;
  p.destination_port = dport == "*" ? 0 : id->destination_port;
  return p;
}

bool matches(const StreamPattern& pattern, const StreamId& stream) {
  if (pattern.source_port != 0 && pattern.source_port != stream.source_port) return false;
  if (pattern.destination_port != 0 && pattern.destination_port != stream.destination_port) return false;
  if (pattern.source.empty()) return true;
  StreamId as_pattern = stream;
  as_pattern.source = pattern.source;
  return same_stream(as_pattern, stream);  // the addresses compared as values
}

Role caller_role(const ::grpc::CallbackServerContext* ctx, const TenancyConfig& config) {
  if (auto local = local_peer(ctx->peer())) {
    if (local->socket == LocalSocket::process) return Role::process;
    // The main socket is its owner's (mode 0600); anyone else who reached
    // it anyway is nobody in particular.
    return local->uid == 0 || local->uid == ::geteuid() ? Role::operator_role : Role::anyone;
  }
  if (ctx->peer().rfind("unix:", 0) == 0) return Role::operator_role;  // a server without peer credentials (tests)
  auto auth = ctx->auth_context();
  if (!auth || !auth->IsPeerAuthenticated()) return Role::anyone;
  for (const auto& v : auth->GetPeerIdentity()) {
    const std::string id(v.data(), v.size());
    if (std::find(config.operators.begin(), config.operators.end(), id) != config.operators.end())
      return Role::operator_role;
  }
  return Role::process;
}

Result<std::string> call_token(const ::grpc::CallbackServerContext* ctx) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  const std::string fix = "send the token RegisterProcess returned as call metadata \"authorization: Bearer <token>\"";
  if (it == md.end()) return make_error(Errc::invalid_argument, "the call carries no token", fix);
  const std::string value(it->second.data(), std::min<std::size_t>(it->second.size(), 256));
  if (value.rfind("Bearer ", 0) != 0 || value.size() <= 7)
    return make_error(Errc::invalid_argument, "the authorization metadata is not \"Bearer <token>\"", fix);
  return value.substr(7);
}

namespace {

bool cgroup_within(const std::string& cgroup, const std::string& prefix) {
  if (prefix == "/") return !cgroup.empty();
  if (cgroup.rfind(prefix, 0) != 0) return false;
  return cgroup.size() == prefix.size() || cgroup[prefix.size()] == '/' || prefix.back() == '/';
}

std::string describe(const control::PeerIdentity& p) {
  std::string s = "pid " + std::to_string(p.pid) + ", uid " + std::to_string(p.uid);
  s += p.netns_name.empty() ? ", an unnamed network namespace" : ", network namespace " + p.netns_name;
  if (!p.cgroup.empty()) s += ", cgroup " + p.cgroup;
  return s;
}

bool rule_admits(const TenantRule& r, const control::PeerIdentity& p) {
  if (r.netns && (p.netns_name.empty() || *r.netns != p.netns_name)) return false;
  if (r.cgroup && !cgroup_within(p.cgroup, *r.cgroup)) return false;
  if (r.uid && *r.uid != p.uid) return false;
  return r.netns || r.cgroup || r.uid;  // a rule without a key admits nobody
}

}  // namespace

const TenantRule* match_tenant(const TenancyConfig& config, const control::PeerIdentity& peer) {
  for (const auto& r : config.tenants)
    if (rule_admits(r, peer)) return &r;
  return nullptr;
}

Result<ProcessSpec> registration_spec(const ::grpc::CallbackServerContext* ctx, const TenancyConfig& config,
                                      const Registration& request) {
  auto local = local_peer(ctx->peer());
  if (!local)
    return make_error(Errc::failed_precondition,
                      "RegisterProcess over " + ctx->peer().substr(0, 64) +
                          ": qocnetd learns where a process's copies go from its network namespace, which it "
                          "sees only on a local socket",
                      "register over the process socket (bind-mount /run/qocnet/process into the container), "
                      "or have an operator add the process (AddProcess, SetCloneTargets)");
  if (!local->netns && (local->netns_errno == EACCES || local->netns_errno == EPERM))
    return make_error(Errc::permission_denied,
                      "qocnetd may not read the network namespace of the caller (pid " + std::to_string(local->pid) +
                          ", uid " + std::to_string(local->uid) + ")",
                      "qocnetd needs CAP_SYS_PTRACE to read the namespace of a caller with another uid: grant it "
                      "(its systemd unit does) or run the process as qocnetd's uid",
                      local->netns_errno);
  if (!local->netns)
    return make_error(Errc::failed_precondition,
                      "the caller (pid " + std::to_string(local->pid) + ") exited or its namespace could not be read "
                      "while it connected",
                      "connect again from the process itself", local->netns_errno);
  control::PeerIdentity peer;
  peer.pid = local->pid;
  peer.uid = local->uid;
  peer.gid = local->gid;
  peer.cgroup = local->cgroup;
  peer.netns_fd = local->netns->get();
  struct stat st {}, self {};
  if (::fstat(peer.netns_fd, &st) == 0) {
    peer.netns_inode = st.st_ino;
    peer.netns_name = control::netns_name_of(st);
  }
  if (::stat("/proc/thread-self/ns/net", &self) == 0)
    peer.same_netns = self.st_dev == st.st_dev && self.st_ino == st.st_ino;

  const TenantRule* rule = match_tenant(config, peer);
  if (!rule)
    return make_error(Errc::permission_denied,
                      "no tenant of qocnetd admits the caller (" + describe(peer) + ")",
                      "an operator adds a tenants entry for it to qocnetd's configuration (netns, cgroup or uid, "
                      "and the streams it may receive): docs/SECURITY.md");
  if (!rule->processes.empty() &&
      std::none_of(rule->processes.begin(), rule->processes.end(), [&](const std::string& glob) {
        return ::fnmatch(glob.c_str(), request.name.c_str(), 0) == 0;
      }))
    return make_error(Errc::permission_denied,
                      "tenant '" + rule->name + "' may not register a process named '" + request.name + "'",
                      "use a name its processes patterns allow, or ask the operator to allow it");
  for (const auto& s : request.streams)
    if (std::none_of(rule->streams.begin(), rule->streams.end(),
                     [&](const StreamPattern& p) { return matches(p, s); }))
      return make_error(Errc::permission_denied,
                        "tenant '" + rule->name + "' may not receive stream " + qocnet::to_string(s),
                        "ask the operator to add the stream to the tenant's streams in qocnetd's configuration");
  QOCNET_ASSIGN(att, control::find_attachment(peer, request.interface));
  ProcessSpec spec;
  spec.name = request.name;
  spec.port = att.edge_interface;
  spec.mac = att.mac;
  spec.ip = att.ipv4.empty() ? std::string() : att.ipv4.front();
  spec.udp_port = request.udp_port;
  return spec;
}

}  // namespace qocnet::grpc_api
