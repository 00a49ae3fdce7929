// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The one definition of every struct shared by qocnet's BPF programs and its
 * C++ control plane. Plain C, fixed-width kernel types only, no padding holes:
 * the C++ side static_asserts every size (lib/abi_checks.cpp). */
#ifndef QOC_ABI_H
#define QOC_ABI_H

#include <linux/types.h>

#include "qoc_consts.h"

/* qoc_port_pairs value: where frames arriving on the key port go. */
struct qoc_port_pair {
	__u32 egress_ifindex;
	__u32 flags; /* reserved, 0 */
};

/* qoc_port_stats value (per CPU), keyed by ifindex. A port counts what it
 * receives (rx), what of that followed a port pair (fwd) or went on to the
 * normal stack path (pass), and what port pairs sent out through it (tx). */
struct qoc_port_stats {
	__u64 rx_packets;
	__u64 rx_bytes;
	__u64 fwd_packets;
	__u64 fwd_bytes;
	__u64 pass_packets;
	__u64 pass_bytes;
	__u64 tx_packets;
	__u64 tx_bytes;
};

/* What a datagram carries, in rising order of importance for video: a
 * datagram holding packets of several frames takes the highest video class.
 * `other` (audio, unknown, not TS) is outside that order: never dropped. */
enum qoc_class {
	QOC_CLASS_OTHER = 0,
	QOC_CLASS_DISP = 1, /* non-reference frame */
	QOC_CLASS_DIFF = 2, /* P frame, referenced B frame */
	QOC_CLASS_REF = 3,  /* I / IDR / IRAP frame; PSI alone */
	QOC_NUM_CLASSES = 4,
};

enum qoc_codec {
	QOC_CODEC_UNKNOWN = 0,
	QOC_CODEC_H264 = 1, /* stream_type 0x1b */
	QOC_CODEC_HEVC = 2, /* stream_type 0x24 */
};

/* A stream: one UDP flow of TS packets. IPv4 addresses are stored
 * IPv4-mapped (::ffff:a.b.c.d). */
struct qoc_stream_key {
	__u8 saddr[16];
	__u16 sport; /* network order */
	__u16 dport; /* network order */
	__u32 pad;   /* 0 */
};

/* The frame scanner's place in the elementary stream (see qoc_ts.h). */
enum qoc_scan_phase {
	QOC_SCAN_SEEK = 0,    /* looking for a 00 00 01 start code */
	QOC_SCAN_NAL = 1,     /* the next byte is a NAL unit header */
	QOC_SCAN_SLICE = 2,   /* collecting a slice header's first bytes */
	QOC_SCAN_DONE = 3,    /* the frame's class is known */
	QOC_SCAN_PPS = 4,     /* collecting an HEVC PPS's first bytes, then SEEK */
	/* A flag on SEEK, NAL and PPS: the frame's class is known already
	 * (random_access_indicator), and the scanner reads on to the frame's
	 * first slice only to learn an HEVC PPS on the way. */
	QOC_SCAN_LEARN = 8,
};

/* qoc_streams value: what the DPI learnt of a stream, and its counters. */
struct qoc_stream {
	__u16 pmt_pid;      /* 0: not learnt yet (PID 0 is the PAT's) */
	__u16 video_pid;    /* 0: not learnt yet */
	__u8 codec;         /* enum qoc_codec */
	__u8 frame_class;   /* class of the current frame (REF while pending) */
	__u8 scan_phase;    /* enum qoc_scan_phase */
	__u8 scan_zeros;    /* zero bytes just seen (0..3) */
	__u8 scan_nbytes;   /* bytes collected after a NAL header's first byte */
	__u8 video_cc;      /* last continuity counter on the video PID */
	__u8 has_cc;        /* video_cc is valid */
	__u8 hevc_pps_seen; /* hevc_pps holds a PPS of this stream's video */
	__u32 scan_acc;     /* slice header or PPS bytes, big endian */
	__u32 frames;       /* PES starts seen on the video PID */
	__u16 history;      /* classes of the last 8 frames, 2 bits each, newest low */
	__u16 ref_frames;   /* frames found ref so far (saturates at 65535) */
	__u64 dgrams[QOC_NUM_CLASSES];
	__u64 bytes[QOC_NUM_CLASSES];
	__u64 misaligned;   /* datagrams with packets of two video frames */
	__u64 cc_errors;    /* continuity counter jumps on the video PID */
	__u64 ts_partial;   /* datagrams ending in a partial TS packet */
	__u64 ts_bad_sync;  /* datagrams where a TS packet lacked 0x47 */
	__u64 ts_malformed; /* TS/PSI/PES headers that contradict themselves */
	__u64 ts_unparsed;  /* datagrams with more TS packets than inspected */
	__u32 class_frames[QOC_NUM_CLASSES]; /* frames by the class found for them */
	/* Bytes by class over a recent window: halved whenever their sum passes
	 * QOC_SHARE_WINDOW. The drop policies take the stream's mix from these,
	 * so they follow a mix that changes (a scene change, or a sensor that
	 * starts dropping the least valuable classes upstream). */
	__u64 win[QOC_NUM_CLASSES];
	/* HEVC: the first 4 bytes of the last PPS seen (after its NAL header),
	 * where the slice headers' num_extra_slice_header_bits comes from. */
	__u32 hevc_pps;
	/* HEVC frames whose slice_type was read without a PPS of theirs seen
	 * (none yet, or another pps_id): num_extra_slice_header_bits taken
	 * as 0, its default (docs/DPI.md, HEVC intra pictures). */
	__u32 hevc_pps_unknown;
	/* The current frame is a random access point: an H.264 IDR, an HEVC
	 * IRAP, or a frame the muxer marked (random_access_indicator). A
	 * decoder can start there; at an intra picture that is none of these
	 * it can not (later pictures may reference earlier ones, and the
	 * parameter sets may be missing). */
	__u8 frame_rap;
	__u8 pad1[7];
};

/* qoc_counters (one per-CPU entry): what the parser met, datagram by datagram.
 * Every frame the program sees lands in exactly one of the first outcomes:
 * seen = not_udp + not_ts + ts (and ts = sum of class_* for TS datagrams). */
enum qoc_counter {
	QOC_CNT_SEEN = 0,       /* frames seen */
	QOC_CNT_NOT_UDP,        /* not IPv4/IPv6 + UDP, or headers cut short */
	QOC_CNT_NOT_TS,         /* UDP whose payload is not TS */
	QOC_CNT_TS,             /* UDP carrying TS */
	QOC_CNT_CLASS_OTHER,    /* TS datagrams by class */
	QOC_CNT_CLASS_DISP,
	QOC_CNT_CLASS_DIFF,
	QOC_CNT_CLASS_REF,
	/* reasons, counted besides the outcome above */
	QOC_CNT_TRUNCATED,      /* a header ran past the end of the frame */
	QOC_CNT_VLAN_DEEP,      /* more VLAN tags than QOC_MAX_VLAN_DEPTH */
	QOC_CNT_IPV6_EXT_DEEP,  /* more IPv6 extension headers than QOC_MAX_IPV6_EXT */
	QOC_CNT_FRAGMENT,       /* non-first IP fragment */
	QOC_CNT_UDP_LEN_BAD,    /* UDP length below 8 or past the frame */
	QOC_CNT_GSO,            /* GSO super-packets (verdict covers all segments) */
	QOC_CNT_GSO_SEGS,       /* their segments */
	QOC_CNT_PULLED,         /* non-linear frames made linear */
	QOC_CNT_STREAM_FULL,    /* no stream state could be created */
	QOC_CNT_REPLICATED,     /* datagrams of subscribed streams */
	QOC_CNT_CLONES,         /* bpf_clone_redirect copies made */
	QOC_CNT_ALL_DROPPED,    /* datagrams every target dropped (dropped once) */
	QOC_CNT_PEER,           /* last copies sent with bpf_redirect_peer */
	QOC_CNT_TARGETS_CUT,    /* datagrams whose later targets were not served:
				 * the kernel's tail-call limit was reached */
	QOC_NUM_COUNTERS,
};

struct qoc_counters {
	__u64 c[QOC_NUM_COUNTERS];
};

/* Drop policies (DESIGN.md, Policies). */
enum qoc_policy {
	QOC_POLICY_KEEP = 0,
	QOC_POLICY_UNIFORM = 1,      /* drop with probability p, blind to content */
	QOC_POLICY_DIFFERENTIAL = 2, /* rate p of the bytes: disp, then diff, then ref */
	QOC_POLICY_FRAME_AWARE = 3,  /* whole frames only */
};

/* frame_aware's drop orders (qoc_target.order): which frames go first. */
enum qoc_order {
	QOC_ORDER_DISP = 0, /* disp frames, then GOP tails, then whole GOPs */
	QOC_ORDER_TAIL = 1, /* GOP tails first (disp and diff frames alike), then whole GOPs */
	QOC_ORDER_THIN = 2, /* disp frames spread evenly, then GOP tails, then whole GOPs */
};

#define QOC_PPM 1000000u /* drop rates are in parts per million */

/* qoc_procs value, by process slot: where a process's copies go. */
struct qoc_proc {
	__u32 ifindex;   /* edge port toward the process; 0: slot unused */
	__u8 mac[6];     /* destination MAC of its copies */
	__be16 port;     /* destination UDP port (0: keep the sensor's) */
	__be32 ip4;      /* destination IPv4 address (0: keep the sensor's) */
	__u32 flags;     /* QOC_PROC_F_* */
};

/* The port is a veth whose other end lives in another namespace: the copy
 * that takes the frame itself goes with bpf_redirect_peer, straight into the
 * other end's ingress, without the veth's transmit and backlog queue. */
#define QOC_PROC_F_PEER (1u << 0)

/* One clone target of a stream: a process and its policy for the stream. */
struct qoc_target {
	__u32 proc;      /* slot in qoc_procs */
	__u8 policy;     /* enum qoc_policy */
	__u8 order;      /* frame_aware's drop order (enum qoc_order; 0: disp first) */
	__u16 join;      /* sensor: the policy's join epoch (0: none). When the
			  * policy stops dropping everything the control plane
			  * gives it a new epoch; a stream whose qoc_fstate
			  * join_epoch differs holds its video until its next
			  * random access point, then takes the epoch. */
	__u32 drop_ppm;  /* p in parts per million */
	__u32 sub;       /* its state's slot in qoc_sub_stats and qoc_sub_fstate,
			  * given by the control plane, one per (stream, process) */
};

/* qoc_subs value, keyed by stream: the processes a stream is cloned to. */
struct qoc_targets {
	__u32 n;
	__u32 flags;     /* QOC_TG_F_* */
	struct qoc_target t[QOC_MAX_TARGETS];
};

/* A target's policy reads the stream's state (differential, frame_aware):
 * without it qoc_deliver does not look the state up. */
#define QOC_TG_F_STREAM (1u << 0)

/* qoc_tstats / qoc_fstate key at the sensor: one target on one stream. */
struct qoc_tkey {
	__u32 proc;
	struct qoc_stream_key stream;
};

/* What one target got of one stream (per CPU): the edge's qoc_sub_stats
 * value (by subscription slot), the sensor's qoc_tstats value. */
struct qoc_tstats {
	__u64 dlv_dgrams[QOC_NUM_CLASSES];
	__u64 dlv_bytes[QOC_NUM_CLASSES];
	__u64 drop_dgrams[QOC_NUM_CLASSES];
	__u64 drop_bytes[QOC_NUM_CLASSES];
	__u64 clones;    /* copies made for it with bpf_clone_redirect */
	__u64 acc[QOC_NUM_CLASSES]; /* differential: error-diffusion credit */
	__u64 partial;   /* frame_aware: datagrams delivered that also held
			  * packets of a dropped frame (misaligned senders) */
	__u64 held;      /* video datagrams held back from a joining target
			  * until the stream's next random access point
			  * (also counted as dropped) */
	__u64 held_bytes;
};

/* frame_aware's state (the edge's qoc_sub_fstate value, the sensor's
 * qoc_fstate value, keyed like the counters): its decisions for one
 * process on one stream (shared by all CPUs: a frame's datagrams must all
 * follow the decision taken at its first one). */
struct qoc_fstate {
	__s64 debt;       /* ppm-bytes still to drop: + p x length, - 10^6 x dropped */
	__u32 cur_frame;  /* the stream's frame number the decision is for */
	__u32 pos;        /* frames since the GOP's ref frame */
	__u8 cur_drop;    /* the current frame is dropped */
	__u8 prev_drop;   /* the frame before it was */
	__u8 gop_drop;    /* the whole current GOP is dropped */
	__u8 tail_drop;   /* the GOP's tail is being dropped (from a diff frame on) */
	__u8 joined;      /* edge: the target has had the stream's video from a
			   * random access point on; 0 (a new or re-joining
			   * target): its video is held until the next one */
	__u8 gop_len;     /* frames of the GOP before the current one (its ref
			   * frame and the frames after it, at most 255; 0: none
			   * seen): TAIL's estimate of the current GOP's length */
	__u16 join_epoch; /* sensor: the policy's join epoch this stream's
			   * video restarted at (see qoc_target.join) */
};

/* qoc_scratch value (per CPU): one datagram's walk, carried across the tail
 * calls between the edge program and the frame scanner (see qoc_dpi.h). */
struct qoc_walk {
	struct qoc_stream_key key;
	__u32 poff;       /* UDP payload offset in the frame */
	__u16 l3_off;     /* IP header offset */
	__u16 l4_off;     /* UDP header offset */
	__u32 len;        /* UDP payload length */
	__u32 next;       /* next TS packet to process */
	__u32 scan_from;  /* where the scanner starts in packet `next` */
	__u8 vmax;        /* highest class of its video packets, 0 if none */
	__u8 psi;         /* PAT or PMT packets */
	__u8 video_seen;  /* a video packet came before (for misalignment) */
	__u8 new_frame;
	__u8 misaligned;
	__u8 partial;
	__u8 bad_sync;
	__u8 unparsed;
	__u8 malformed;
	__u8 ipv6;        /* the IP header is IPv6 */
	__u8 hdr_fast;    /* replication: hdr holds the frame's first
			   * QOC_HDR_FAST_LEN bytes (untagged Ethernet, IPv4
			   * without options, UDP) as the frame is now */
	__u8 pad;
	/* replication, across qoc_deliver's tail calls (qoc_replicate.h) */
	__u32 tnext;      /* the next target to decide for */
	__u32 pending;    /* process slot of the last target that kept it and has
			   * no copy yet; QOC_NO_PROC: none */
	__u32 pending_sub;/* that target's subscription slot */
	__be32 orig_ip4;  /* the destination address the datagram came with */
	__u8 video;       /* replication: the datagram holds video (QOC_F_VIDEO) */
	__u8 rap;         /* replication: 1: it starts a frame the DPI knows is
			   * a random access point (QOC_F_RAP): a joining
			   * target's video starts here; 2: it holds packets the
			   * DPI did not inspect, which may hold one;
			   * sensor: the datagram is held (qoc_sensor.h) */
	__u8 hdr[38];     /* see hdr_fast: Ethernet, IPv4, the UDP ports */
};

/* Bytes of hdr a copy's rewrite stores in one go: the Ethernet header, the
 * IPv4 header and the UDP ports (14 + 20 + 4). */
#define QOC_HDR_FAST_LEN 38

#define QOC_NO_PROC 0xffffffffu

/* Slots of the qoc_progs tail-call table. */
#define QOC_PROG_SLOW_SLOT 0    /* qoc_ts_slow */
#define QOC_PROG_DELIVER_SLOT 1 /* qoc_deliver */

/* The sensor's uplink as a target: its slot in the sensor's qoc_tstats and
 * qoc_fstate keys (qoc_sensor.h). */
#define QOC_SENSOR_SLOT 0

/* What the edge program leaves in skb->cb[] for a BPF_PROG_TEST_RUN caller. */
enum qoc_cb_slot {
	QOC_CB_CLASS = 0,       /* enum qoc_class of the datagram */
	QOC_CB_FRAMES = 1,      /* the stream's PES starts on the video PID so far */
	QOC_CB_HISTORY = 2,     /* classes of the stream's last 8 frames after this
				 * datagram, 2 bits each: bits 0-1 the current
				 * frame (number QOC_CB_FRAMES), 2-3 the one before */
	QOC_CB_FLAGS = 3,       /* QOC_F_* */
	QOC_CB_VIDEO = 4,       /* video PID | codec << 16 */
};

#define QOC_F_TS (1u << 0)        /* the payload is TS */
#define QOC_F_VIDEO (1u << 1)     /* holds video TS packets */
#define QOC_F_PSI (1u << 2)       /* holds PAT/PMT */
#define QOC_F_NEW_FRAME (1u << 3) /* a video frame starts in it */
#define QOC_F_PENDING (1u << 4)   /* the current frame's class is not known yet */
#define QOC_F_MISALIGNED (1u << 5)/* packets of two video frames */
#define QOC_F_STATE (1u << 6)     /* the DPI booked it in its stream's state: the
				   * scratch walk (key, offsets) is this datagram's.
				   * Without it nothing may read the scratch walk. */
#define QOC_F_UNPARSED (1u << 7)  /* TS packets the DPI did not inspect (a GSO
				   * super-packet, a long datagram): classed ref */
#define QOC_F_RAP (1u << 8)       /* the current frame is a random access point
				   * (qoc_stream.frame_rap) */

#endif /* QOC_ABI_H */
