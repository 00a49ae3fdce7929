// SPDX-License-Identifier: Apache-2.0
// qocnetctl: qocnet's operator CLI.
//
//   qocnetctl classify [--frames] [--stream S] [--format csv|table] FILE
//   qocnetctl [--address A] [--tls-ca F --tls-cert F --tls-key F] [--timeout S] [-o table|json]
//             port attach|detach|ls, pair set|rm|ls, counters, process add|rm|ls,
//             targets set, policy set, stats, require, effective, bandwidth,
//             table get|set, streams [reset], dpi, sensor add|rm|ls, status, watch
//   qocnetctl cleanup [--pin-dir DIR] [--lock-dir DIR]
//
// classify runs the real edge program (compiled by libbcc and run by the
// kernel with BPF_PROG_TEST_RUN) over the datagrams of an MPEG-TS file or a
// packet capture and prints the class it gives each datagram, or each video
// frame of each stream with --frames. Needs root (it loads a BPF program).
// The file is streamed (bounded memory); every bad input is exit 2.
//
// The other commands, except cleanup, are calls of qocnetd's ControlService
// (docs/CLI.md); cleanup removes the TC filters and pins a kept or crashed
// qocnet datapath left behind, in this network namespace.
#include <CLI/CLI.hpp>
#include <arpa/inet.h>

#include <cstdio>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "control.hpp"
#include "qocnet/classify.hpp"
#include "qocnet/cleanup.hpp"
#include "qocnet/edge.hpp"
#include "qocnet_client/proto_text.hpp"
#include "qocnet/version.hpp"

namespace {

int fail(const qocnet::Error& e) {
  std::cerr << "qocnetctl: " << e.to_string() << "\n";
  return e.code == qocnet::Errc::invalid_argument || e.code == qocnet::Errc::not_found ? 2 : 1;
}

// The stream as DatagramRow::stream prints it (the address in canonical form).
qocnet::Result<std::string> canonical_stream(const std::string& text) {
  QOCNET_ASSIGN(id, qocnet::parse_stream_id(text));
  unsigned char addr[16];
  char buf[INET6_ADDRSTRLEN] = {};
  const int af = id.source.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  if (::inet_pton(af, id.source.c_str(), addr) != 1 || !::inet_ntop(af, addr, buf, sizeof buf))
    return qocnet::make_error(qocnet::Errc::invalid_argument,
                              "stream '" + text + "': '" + id.source + "' is not an IPv4 or IPv6 address",
                              "write the sensor's source address, e.g. 10.0.0.1:40000->:5000");
  id.source = buf;
  return qocnet::to_string(id);
}

int run_classify_unguarded(const std::string& file, bool frames, const std::string& format, int per_dgram,
                           const std::string& only_stream) {
  std::string want;
  if (!only_stream.empty()) {
    auto s = canonical_stream(only_stream);
    if (!s) return fail(s.error());
    want = *s;
  }
  // The format is recognised before the (slow, root-only) program load, so
  // a wrong file is refused at once.
  auto source = qocnet::FrameSource::open(file, per_dgram);
  if (!source) return fail(source.error());
  auto edge = qocnet::Edge::create();
  if (!edge) return fail(edge.error());

  const bool csv = format == "csv";
  if (frames) {
    if (csv) std::printf("stream,frame,pts,class\n");
    else std::printf("%-28s %8s %14s %6s\n", "stream", "frame", "pts", "class");
  } else {
    if (csv) std::printf("index,class,bytes\n");
    else std::printf("%8s %6s %6s  %s\n", "index", "class", "bytes", "notes");
  }
  std::size_t by[4] = {}, datagrams = 0, video_frames = 0, split = 0, not_run = 0;
  qocnet::ClassifySink sink;
  sink.datagram = [&](const qocnet::DatagramRow& d) {
    if (!want.empty() && d.stream != want) return;
    ++datagrams;
    by[static_cast<int>(d.cls)]++;
    if (d.runs > 1) ++split;
    if (d.runs == 0 && d.bytes >= 14) ++not_run;
    if (frames) return;
    if (csv) {
      std::printf("%zu,%s,%zu\n", d.index, qocnet::to_string(d.cls), d.bytes);
      return;
    }
    std::string notes;
    if (d.runs == 0) notes += d.bytes < 14 ? "short " : "not-run ";
    if (d.runs > 1)
      notes += "split-" + std::to_string(d.runs) + "(parts:" + qocnet::to_string(d.parts_cls) + ") ";
    else if (d.verdict.unparsed) notes += "unparsed ";
    if (d.runs && !d.verdict.ts) notes += "not-ts ";
    if (d.verdict.psi) notes += "psi ";
    if (d.verdict.new_frame) notes += "frame-start ";
    if (d.verdict.misaligned) notes += "two-frames ";
    if (d.verdict.pending) notes += "pending ";
    std::printf("%8zu %6s %6zu  %s\n", d.index, qocnet::to_string(d.cls), d.bytes, notes.c_str());
  };
  sink.frame = [&](const qocnet::FrameRow& f) {
    if (!want.empty() && f.stream != want) return;
    ++video_frames;
    if (!frames) return;
    if (csv)
      std::printf("%s,%u,%lld,%s\n", f.stream.c_str(), f.number, static_cast<long long>(f.pts),
                  qocnet::to_string(f.cls));
    else
      std::printf("%-28s %8u %14lld %6s\n", f.stream.c_str(), f.number, static_cast<long long>(f.pts),
                  qocnet::to_string(f.cls));
  };
  auto st = qocnet::classify_stream(*source, *edge, sink);
  std::fflush(stdout);
  for (const auto& n : source->notes()) std::fprintf(stderr, "qocnetctl: note: %s: %s\n", file.c_str(), n.c_str());
  if (split)
    std::fprintf(stderr,
                 "qocnetctl: note: %s: %zu frames over the kernel's test-run limit (%zu bytes) were "
                 "run as datagrams of 7 TS packets (the frame rows see every packet); each row is "
                 "the kernel's verdict for a datagram with packets beyond the 7 it inspects (ref "
                 "when its stream has video)\n",
                 file.c_str(), split, qocnet::max_test_run_frame());
  if (not_run)
    std::fprintf(stderr,
                 "qocnetctl: note: %s: %zu frames over the test-run limit (%zu bytes) that are not UDP "
                 "carrying TS were not run (other)\n",
                 file.c_str(), not_run, qocnet::max_test_run_frame());
  if (auto streams = edge->streams())
    for (const auto& s : *streams)
      if (s.hevc_pps_unknown && (want.empty() || qocnet::to_string(qocnet::stream_id_of(s.key)) == want))
        std::fprintf(stderr,
                     "qocnetctl: note: %s: stream %s: %u HEVC frames had their slice_type read "
                     "before a PPS of theirs was seen (num_extra_slice_header_bits taken as 0)\n",
                     file.c_str(), qocnet::to_string(qocnet::stream_id_of(s.key)).c_str(),
                     s.hevc_pps_unknown);
  if (!csv)
    std::fprintf(stderr, "%s: %zu datagrams (%s): ref %zu, diff %zu, disp %zu, other %zu; %zu video frames\n",
                 file.c_str(), datagrams, source->kind().c_str(), by[3], by[2], by[1], by[0], video_frames);
  if (!st) {
    auto e = st.error();
    e.message += " (the rows above are the records before it)";
    return fail(e);
  }
  return 0;
}

// No exception leaves classify: whatever goes wrong is a message and exit 2.
int run_classify(const std::string& file, bool frames, const std::string& format, int per_dgram,
                 const std::string& only_stream) {
  try {
    return run_classify_unguarded(file, frames, format, per_dgram, only_stream);
  } catch (const std::bad_alloc&) {
    std::cerr << "qocnetctl: classify " << file << ": out of memory\n  fix: free memory, or split the file "
              << "(editcap -c 1000000 IN OUT)\n";
  } catch (const std::exception& e) {
    std::cerr << "qocnetctl: classify " << file << ": internal error: " << e.what()
              << "\n  fix: report it with the file that caused it\n";
  }
  return 2;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += std::string("\\") + c;
    else if (c == '\n') out += "\\n";
    else if (static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      out += b;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

int run_cleanup(const std::string& pin_dir, const std::string& lock_dir, bool json) {
  auto report = qocnet::cleanup(pin_dir, lock_dir);
  if (!report) return qocnet::ctl::fail(report.error());
  const std::pair<const char*, const std::vector<std::string>*> parts[] = {
      {"filters", &report->filters}, {"qdiscs", &report->qdiscs},
      {"kept", &report->kept}, {"files", &report->files}};
  if (json) {
    std::string out = "{";
    for (const auto& [name, list] : parts) {
      out += std::string(out.size() > 1 ? "," : "") + "\"" + name + "\":[";
      for (std::size_t i = 0; i < list->size(); ++i) out += (i ? "," : "") + json_string((*list)[i]);
      out += "]";
    }
    std::printf("%s}\n", out.c_str());
    return 0;
  }
  const char* titles[] = {"removed filter", "removed qdisc", "kept", "removed file"};
  std::size_t n = 0;
  for (std::size_t i = 0; i < 4; ++i)
    for (const auto& line : *parts[i].second) {
      std::printf("%-15s %s\n", titles[i], line.c_str());
      ++n;
    }
  if (n == 0) std::printf("nothing of qocnet's found (pin dir %s)\n", pin_dir.c_str());
  return 0;
}

// The word a command line put where a subcommand belongs and that names
// none ("qocnetctl frobnicate", "qocnetctl pair frob"), with the command it
// followed; nothing when the line has no such word.
std::optional<std::pair<std::string, std::string>> unknown_subcommand(CLI::App& app) {
  CLI::App* cur = &app;
  std::string path = "qocnetctl";
  for (auto parsed = cur->get_subcommands(); !parsed.empty(); parsed = cur->get_subcommands()) {
    cur = parsed.front();
    path += " " + cur->get_name();
  }
  if (cur->get_subcommands([](CLI::App*) { return true; }).empty()) return std::nullopt;
  for (const auto& word : app.remaining())
    if (!word.empty() && word[0] != '-') return std::make_pair(word, path);
  return std::nullopt;
}

// The words that may follow `path` (subcommands and options of that level,
// with the global options), for every command path of `app`.
void completion_words(const CLI::App& at, const std::string& path, const std::string& globals,
                      std::vector<std::pair<std::string, std::string>>& out) {
  std::string words;
  auto add = [&](const std::string& w) { words += (words.empty() ? "" : " ") + w; };
  for (const CLI::App* sub : at.get_subcommands([](const CLI::App*) { return true; })) add(sub->get_name());
  for (const CLI::Option* o : at.get_options([](const CLI::Option* o) { return o->nonpositional(); })) {
    for (const auto& l : o->get_lnames()) add("--" + l);
    for (const auto& s : o->get_snames()) add("-" + s);
  }
  if (!path.empty() && !globals.empty()) add(globals);
  out.emplace_back(path, words);
  for (const CLI::App* sub : at.get_subcommands([](const CLI::App*) { return true; }))
    completion_words(*sub, path.empty() ? sub->get_name() : path + " " + sub->get_name(), globals, out);
}

// `qocnetctl completion bash`: a bash completion function made from the
// command tree itself, so it lists exactly the subcommands and options this
// qocnetctl has. Words that name no subcommand (option values, arguments)
// are skipped while finding where the cursor is; commands that take a file
// complete file names too.
std::string bash_completion(const CLI::App& app) {
  std::string globals;
  for (const CLI::Option* o : app.get_options([](const CLI::Option* o) { return o->nonpositional(); }))
    for (const auto& l : o->get_lnames())
      if (l != "help" && l != "version") globals += (globals.empty() ? "--" : " --") + l;
  std::vector<std::pair<std::string, std::string>> levels;
  completion_words(app, "", globals, levels);
  std::string paths, cases;
  for (const auto& [path, words] : levels) {
    if (!path.empty()) paths += (paths.empty() ? "" : "|") + ("\"" + path + "\"");
    cases += "    \"" + path + "\") words=\"" + words + "\" ;;\n";
  }
  return "# bash completion for qocnetctl (qocnetctl completion bash); source it, or install it as\n"
         "# /usr/share/bash-completion/completions/qocnetctl\n"
         "_qocnetctl() {\n"
         "  local cur=${COMP_WORDS[COMP_CWORD]} path= next w i words\n"
         "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
         "    w=${COMP_WORDS[i]}\n"
         "    next=${path:+$path }$w\n"
         "    case \"$next\" in\n"
         "      " + paths + ") path=$next ;;\n"
         "    esac\n"
         "  done\n"
         "  case \"$path\" in\n" + cases +
         "  esac\n"
         "  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
         "  case \"$path\" in\n"
         "    classify|\"table set\") [[ $cur == -* ]] || COMPREPLY+=($(compgen -f -- \"$cur\")) ;;\n"
         "  esac\n"
         "}\n"
         "complete -F _qocnetctl qocnetctl\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"qocnetctl: operate a qocnet edge"};
  app.require_subcommand(1);
  app.set_version_flag("--version", qocnet::version_text("qocnetctl"),
                       "Print the versions of qocnetctl, libqocnet and libbcc and exit");
  // Global options may also follow the subcommand: qocnetctl pair ls -o json.
  app.fallthrough();

  std::string file, format = "csv";
  bool frames = false;
  int per_dgram = 7;
  auto* classify = app.add_subcommand(
      "classify", "Classify the datagrams (or video frames) of a .ts file or a pcap/pcapng capture "
                  "with the kernel's edge program (needs root)");
  classify->add_flag("--frames", frames,
                     "One row per video frame (stream,frame,pts,class) instead of per datagram");
  std::string classify_only;
  classify->add_option("--stream", classify_only,
                       "Only this stream, SRC:SPORT->:DPORT (e.g. 10.0.0.1:40000->:5000)");
  classify->add_option("--format", format, "Output format")->check(CLI::IsMember({"csv", "table"}));
  classify->add_option("--ts-per-datagram", per_dgram,
                       "TS packets per datagram when cutting a .ts file")
      ->check(CLI::Range(1, 7));
  classify->add_option("FILE", file, "MPEG-TS file or pcap/pcapng capture")->required();

  // Reaching qocnetd.
  qocnet::ctl::Globals g;
  app.add_option("--address", g.address,
                 "qocnetd's address: unix:/PATH, tcp:HOST:PORT or HOST:PORT")
      ->capture_default_str()->group("Connection");
  app.add_option("--tls-ca", g.tls.ca, "PEM CA bundle that verifies qocnetd (TCP)")->group("Connection");
  app.add_option("--tls-cert", g.tls.cert, "PEM client certificate for mutual TLS (TCP)")->group("Connection");
  app.add_option("--tls-key", g.tls.key, "PEM private key of --tls-cert")->group("Connection");
  app.add_option("--tls-server-name", g.tls.server_name,
                 "Name to check in qocnetd's certificate instead of HOST")->group("Connection");
  app.add_option("--timeout", g.timeout_seconds, "Deadline of each call, in seconds")
      ->capture_default_str()->check(CLI::PositiveNumber)->group("Connection");
  app.add_option("-o,--output", g.output, "Output: readable tables, or one JSON object per response")
      ->capture_default_str()->check(CLI::IsMember({"table", "json"}));

  // Each ControlService command registers its subcommand and what to run.
  std::vector<std::pair<CLI::App*, std::function<int(qocnet::ctl::Control&)>>> commands;
  using C = qocnet::ctl::Control;
  auto on = [&](CLI::App* sub, std::function<int(C&)> run) { commands.emplace_back(sub, std::move(run)); };
  auto noun = [&](const char* name, const char* help) {
    auto* sub = app.add_subcommand(name, help);
    sub->require_subcommand(1);
    return sub;
  };

  std::string a, b, policy, stream;
  std::vector<std::string> list;

  auto* port = noun("port", "Attach the edge program to ports, detach it, list attached ports");
  auto* port_attach = port->add_subcommand("attach", "Attach the edge program to a port's TC ingress");
  port_attach->add_option("PORT", a, "Interface name")->required();
  on(port_attach, [&](C& ctl) { return ctl.port_attach(a); });
  auto* port_detach = port->add_subcommand("detach", "Detach it (and drop the port's pair)");
  port_detach->add_option("PORT", a, "Interface name")->required();
  on(port_detach, [&](C& ctl) { return ctl.port_detach(a); });
  on(port->add_subcommand("ls", "List the attached ports"), [&](C& ctl) { return ctl.port_list(); });

  auto* pair = noun("pair", "Static L2 forwarding between ports");
  auto* pair_set = pair->add_subcommand("set", "Frames arriving on INGRESS leave through EGRESS");
  pair_set->add_option("INGRESS", a, "Attached port")->required();
  pair_set->add_option("EGRESS", b, "Port the frames leave through")->required();
  on(pair_set, [&](C& ctl) { return ctl.pair_set(a, b); });
  auto* pair_rm = pair->add_subcommand("rm", "Frames arriving on INGRESS go to the stack again");
  pair_rm->add_option("INGRESS", a, "Attached port")->required();
  on(pair_rm, [&](C& ctl) { return ctl.pair_remove(a); });
  on(pair->add_subcommand("ls", "List the port pairs"), [&](C& ctl) { return ctl.pair_list(); });

  auto* counters = app.add_subcommand("counters", "Packet and byte counters of ports (all when none named)");
  counters->add_option("PORT", list, "Interface names");
  on(counters, [&](C& ctl) { return ctl.counters(list); });

  std::string proc_port, proc_mac, proc_ip;
  unsigned proc_udp = 0;
  auto* process = noun("process", "Computation processes the edge replicates streams to");
  auto* process_add = process->add_subcommand("add", "Add a process and where its copies go");
  process_add->add_option("NAME", a, "Unique name")->required();
  process_add->add_option("--port", proc_port, "The edge's interface toward the process")->required();
  process_add->add_option("--mac", proc_mac, "Destination MAC of its copies")->required();
  process_add->add_option("--ip", proc_ip, "Destination IPv4 address (default: keep the sensor's)");
  process_add->add_option("--udp-port", proc_udp, "Destination UDP port (default: keep the sensor's)")
      ->check(CLI::Range(0, 65535));
  on(process_add, [&](C& ctl) {
    return ctl.process_add(qocnet::client::make_process(a, proc_port, proc_mac, proc_ip, proc_udp));
  });
  auto* process_rm = process->add_subcommand("rm", "Remove a process (from every stream)");
  process_rm->add_option("NAME", a, "Process name")->required();
  on(process_rm, [&](C& ctl) { return ctl.process_remove(a); });
  on(process->add_subcommand("ls", "List the processes"), [&](C& ctl) { return ctl.process_list(); });

  auto* targets = noun("targets", "The processes a stream is replicated to");
  auto* targets_set = targets->add_subcommand(
      "set", "Replicate STREAM to these processes, in order (none: stop replicating it)");
  targets_set->add_option("STREAM", stream, "SRC:SPORT->:DPORT, e.g. 10.0.0.1:40000->:5000")->required();
  targets_set->add_option("PROCESS", list, "Process names");
  on(targets_set, [&](C& ctl) { return ctl.targets_set(stream, list); });

  auto* policy_cmd = noun("policy", "Drop policies of (process, stream)");
  auto* policy_set = policy_cmd->add_subcommand("set", "What PROCESS gets of STREAM");
  policy_set->add_option("PROCESS", a, "Process name")->required();
  policy_set->add_option("STREAM", stream, "SRC:SPORT->:DPORT")->required();
  policy_set->add_option("POLICY", policy,
                         "keep, uniform(P), differential(P), frame_aware(P) or frame_aware(P,ORDER), "
                         "P in [0, 1], ORDER disp, tail or thin")
      ->required();
  on(policy_set, [&](C& ctl) { return ctl.policy_set(a, stream, policy); });

  auto* stats = app.add_subcommand("stats", "What each target process of a stream got and lost");
  stats->add_option("STREAM", stream, "SRC:SPORT->:DPORT")->required();
  on(stats, [&](C& ctl) { return ctl.stats(stream); });

  double required = 0;
  auto* require = app.add_subcommand(
      "require", "A process requires QoC >= VALUE on a stream: apply the cheapest policy that meets it");
  require->add_option("PROCESS", a, "Process name")->required();
  require->add_option("STREAM", stream, "SRC:SPORT->:DPORT")->required();
  require->add_option("QOC", required, "Required value of the QoC table's metric")->required();
  on(require, [&](C& ctl) { return ctl.require(a, stream, required); });

  auto* effective = app.add_subcommand("effective", "A stream's effective quality (Eq. 3)");
  effective->add_option("STREAM", stream, "SRC:SPORT->:DPORT")->required();
  on(effective, [&](C& ctl) { return ctl.effective(stream); });

  auto* bandwidth = app.add_subcommand("bandwidth", "A stream's naive, replicated and qocnet bytes (Eq. 1, 4)");
  bandwidth->add_option("STREAM", stream, "SRC:SPORT->:DPORT")->required();
  on(bandwidth, [&](C& ctl) { return ctl.bandwidth(stream); });

  auto* table = noun("table", "The QoC table requirements are turned into policies with");
  on(table->add_subcommand("get", "Print the table as YAML (what 'table set' reads)"),
     [&](C& ctl) { return ctl.table_get(); });
  auto* table_set = table->add_subcommand("set", "Load a table from a YAML file (docs/QOC.md)");
  table_set->add_option("FILE", a, "YAML file")->required();
  on(table_set, [&](C& ctl) { return ctl.table_set(a); });

  auto* streams = app.add_subcommand("streams", "What the DPI learnt of each stream");
  streams->require_subcommand(0, 1);
  on(streams, [&](C& ctl) { return ctl.streams(); });
  on(streams->add_subcommand("reset", "Forget every stream's DPI state"),
     [&](C& ctl) { return ctl.streams_reset(); });

  on(app.add_subcommand("dpi", "The parser's counters over every frame"), [&](C& ctl) { return ctl.dpi(); });

  auto* sensor = noun("sensor", "Sensor agents the edge pushes effective policies to");
  auto* sensor_add = sensor->add_subcommand("add", "Add a sensor agent and the streams it sends");
  sensor_add->add_option("NAME", a, "Unique name")->required();
  sensor_add->add_option("ADDRESS", b, "gRPC target of its SensorService")->required();
  sensor_add->add_option("STREAM", list, "SRC:SPORT->:DPORT")->required();
  on(sensor_add, [&](C& ctl) { return ctl.sensor_add(a, b, list); });
  auto* sensor_rm = sensor->add_subcommand("rm", "Remove a sensor agent");
  sensor_rm->add_option("NAME", a, "Sensor name")->required();
  on(sensor_rm, [&](C& ctl) { return ctl.sensor_remove(a); });
  on(sensor->add_subcommand("ls", "List the sensor agents"), [&](C& ctl) { return ctl.sensor_list(); });

  on(app.add_subcommand("status", "qocnetd's version, ports, programs, uptime"),
     [&](C& ctl) { return ctl.status(); });
  on(app.add_subcommand("version", "The versions of qocnetctl and libqocnet here, then qocnetd's"),
     [&](C& ctl) { return ctl.version(qocnet::version_text("qocnetctl")); });

  unsigned interval = 1000, count = 0;
  auto* watch = app.add_subcommand("watch", "Statistics every interval (JSON: one object per line)");
  watch->add_option("--interval", interval, "Milliseconds between updates")
      ->capture_default_str()->check(CLI::Range(100, 60000));
  watch->add_option("--count", count, "Updates to print (0: until interrupted)")->capture_default_str();
  on(watch, [&](C& ctl) { return ctl.watch(interval, count); });

  std::string pin_dir = "/sys/fs/bpf/qocnet", lock_dir = "/run/qocnet/locks";
  auto* cleanup = app.add_subcommand(
      "cleanup", "Remove the TC filters and pins a kept or crashed qocnet datapath left in this "
                 "network namespace (needs root; not while qocnetd runs on them)");
  cleanup->add_option("--pin-dir", pin_dir, "Where the datapath was pinned (qocnetd's default)")->capture_default_str();
  cleanup->add_option("--lock-dir", lock_dir, "qocnet's lock directory")->capture_default_str();

  std::string shell;
  auto* completion = app.add_subcommand("completion", "Print a shell completion script (bash): "
                                                      "source <(qocnetctl completion bash)");
  completion->add_option("SHELL", shell, "The shell")->required()->check(CLI::IsMember({"bash"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() != 0)
      if (auto unknown = unknown_subcommand(app)) {
        std::fprintf(stderr, "qocnetctl: unknown subcommand '%s' of '%s' (%s --help lists them)\n",
                     unknown->first.c_str(), unknown->second.c_str(), unknown->second.c_str());
        return 2;
      }
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (completion->parsed()) {
    std::fputs(bash_completion(app).c_str(), stdout);
    return 0;
  }
  if (classify->parsed()) return run_classify(file, frames, format, per_dgram, classify_only);
  if (cleanup->parsed()) return run_cleanup(pin_dir, lock_dir, g.output == "json");

  // The most specific parsed subcommand: 'streams reset' before 'streams'.
  for (auto it = commands.rbegin(); it != commands.rend(); ++it) {
    if (!it->first->parsed()) continue;
    auto ctl = qocnet::ctl::Control::open(g);
    if (!ctl) return qocnet::ctl::fail(ctl.error());
    return it->second(*ctl);
  }
  return 2;
}
