// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* MPEG-TS deep packet inspection: walks a UDP payload TS header to TS header
 * (188-byte stride, bounded), learns the video PID from the PAT and PMT, and
 * classifies each video frame from its first bytes. The scanner's state lives
 * in the stream's map value and the datagram's tallies in a per-CPU scratch
 * value: the verifier does not track map memory, so the paths through a loop
 * body end in equal states and are pruned (with the state in registers the
 * byte loop alone exceeds the verifier's budget). Classes:
 *   H.264: random_access_indicator, IDR (NAL 5) or an I/SI slice -> ref;
 *          another slice with nal_ref_idc != 0 -> diff; nal_ref_idc = 0 -> disp.
 *   HEVC:  IRAP (NAL 16..23) -> ref; sub-layer non-reference (even <= 14)
 *          -> disp; another reference picture (TRAIL_R, TSA_R, STSA_R,
 *          RADL_R, RASL_R) whose first slice segment is I -> ref; any other
 *          slice -> diff. The slice header's num_extra_slice_header_bits
 *          comes from the stream's last PPS (qoc_hevc_slice_class).
 * A frame is ref until its class is known (its parameter sets and SEI must
 * not be dropped anyway); the scanner carries its state across TS packets and
 * datagrams until it meets the first slice header of the frame. */
#ifndef QOC_TS_H
#define QOC_TS_H

#include "qoc_consts.h"
#include "qoc_abi.h"

#define QOC_PID_PAT 0x0000
#define QOC_PID_NULL 0x1fff
#define QOC_ST_H264 0x1b
#define QOC_ST_HEVC 0x24

/* p[i] for a variable index: the verifier wants every access at a variable
 * offset checked against the end of the packet, though the caller knows the
 * 188-byte packet at p is whole. Out of bounds reads as 0xff. */
static __always_inline __u8 qoc_at(__u8 *p, __u32 i, void *end)
{
	__u8 *q = p + (i & 0xff);

	if ((void *)(q + 1) > end)
		return 0xff;
	return *q;
}

/* The frame scanner reads and writes its state through a volatile pointer,
 * so clang keeps it in the map value instead of in registers: the verifier
 * then sees the same state at the top of every iteration, whatever path the
 * last byte took, and prunes. (With the state in registers it tracks each
 * combination of constants apart and the byte loop exceeds its budget.) */
typedef volatile struct qoc_stream qoc_vstream;

/* The current frame's class is now known. */
static __always_inline void qoc_decide(qoc_vstream *vs, __u8 cls)
{
	if (cls == QOC_CLASS_REF && vs->ref_frames < 0xffff)
		vs->ref_frames++;
	vs->class_frames[cls & 3]++;
	vs->history = (vs->history & ~3) | cls;
	vs->frame_class = cls;
	vs->scan_phase = QOC_SCAN_DONE;
}

/* Leading zeros of a 32-bit word, without branches (the verifier then has
 * one path through it, not one per outcome). */
static __always_inline __u32 qoc_clz32(__u32 x)
{
	x |= x >> 1;
	x |= x >> 2;
	x |= x >> 4;
	x |= x >> 8;
	x |= x >> 16;
	x = x - ((x >> 1) & 0x55555555u);
	x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
	x = (x + (x >> 4)) & 0x0f0f0f0fu;
	return 32 - ((x * 0x01010101u) >> 24);
}

/* Reads an unsigned Exp-Golomb code from the top of *bits; *used counts the
 * bits consumed. Returns -1 when the code does not fit in what is left. */
static __always_inline int qoc_ue(__u32 *bits, __u32 *used)
{
	__u32 lz = qoc_clz32(*bits);
	__u32 n = 2 * lz + 1;

	if (lz > 15 || *used + n > 32)
		return -1;
	__u32 code = *bits >> (32 - n);
	*bits = n < 32 ? *bits << n : 0;
	*used += n;
	return code - 1;
}

/* Bytes the scanner collects after a NAL unit header's first byte: HEVC's
 * second header byte, then 4 bytes of the slice header or PPS. H.264's header
 * has one byte: its slice collection starts at 1, so 4 bytes of the slice
 * header. Either way scan_acc ends up holding the 4 bytes after the header. */
#define QOC_SCAN_NBYTES 5

/* first_mb_in_slice, then slice_type: I (2, 7) and SI (4, 9) make a ref frame. */
static __always_inline __u8 qoc_h264_slice_class(__u32 acc)
{
	__u32 used = 0;

	if (qoc_ue(&acc, &used) < 0)
		return QOC_CLASS_REF;
	int type = qoc_ue(&acc, &used);
	if (type < 0)
		return QOC_CLASS_REF;
	type %= 5;
	return (type == 2 || type == 4) ? QOC_CLASS_REF : QOC_CLASS_DIFF;
}

/* An HEVC PPS's first 4 bytes: pps_pic_parameter_set_id ue(v),
 * pps_seq_parameter_set_id ue(v), dependent_slice_segments_enabled_flag,
 * output_flag_present_flag, num_extra_slice_header_bits u(3). Returns
 * pps_id | num_extra_slice_header_bits << 8, or -1 when the ids are out of
 * their ranges (0..63, 0..15) or do not fit. */
static __always_inline int qoc_hevc_pps(__u32 acc)
{
	__u32 used = 0;
	int pps_id = qoc_ue(&acc, &used);
	int sps_id = qoc_ue(&acc, &used);

	if (pps_id < 0 || pps_id > 63 || sps_id < 0 || sps_id > 15 || used + 5 > 32)
		return -1;
	return pps_id | (int)(((acc >> 27) & 7) << 8);
}

/* The first slice segment header of an HEVC reference picture that is not an
 * IRAP (so no no_output_of_prior_pics_flag): first_slice_segment_in_pic_flag
 * u(1), slice_pic_parameter_set_id ue(v), num_extra_slice_header_bits x
 * slice_reserved_flag u(1), slice_type ue(v): I (2) makes a ref frame, P (1)
 * and B (0) a diff one. num_extra_slice_header_bits comes from the stream's
 * last PPS when its pps_id is the slice's; otherwise it is taken as 0 (its
 * default) and the frame is counted in hevc_pps_unknown. A first segment that
 * is not the picture's (a PES that does not start with its picture) cannot be
 * read without the SPS: ref, as any frame whose class is not known. */
static __always_inline __u8 qoc_hevc_slice_class(struct qoc_stream *st)
{
	__u32 acc = st->scan_acc;
	__u32 used = 1;

	if (!(acc >> 31))
		return QOC_CLASS_REF;
	acc <<= 1;
	int pps_id = qoc_ue(&acc, &used);
	if (pps_id < 0)
		return QOC_CLASS_REF;
	int pps = st->hevc_pps_seen ? qoc_hevc_pps(st->hevc_pps) : -1;
	__u32 extra = 0;
	if (pps >= 0 && (pps & 0xff) == pps_id)
		extra = (pps >> 8) & 7;
	else
		st->hevc_pps_unknown++;
	acc <<= extra;
	used += extra;
	int type = qoc_ue(&acc, &used);
	if (type < 0)
		return QOC_CLASS_REF;
	return type == 2 ? QOC_CLASS_REF : QOC_CLASS_DIFF;
}

/* The scanner collects the bytes after a NAL unit header from `nbytes` on. */
static __always_inline void qoc_collect(qoc_vstream *vs, __u8 phase, __u8 nbytes)
{
	vs->scan_phase = phase;
	vs->scan_nbytes = nbytes;
	vs->scan_acc = 0;
}

/* The current frame's class is known (the scanner may still read on for
 * the PPS: QOC_SCAN_LEARN). */
static __always_inline int qoc_class_known(__u8 phase)
{
	return phase == QOC_SCAN_DONE || (phase & QOC_SCAN_LEARN);
}

/* A NAL unit header byte (the first one, for HEVC). `learn`: the frame's
 * class is known; only a PPS is of interest, up to the first slice. */
static __always_inline void qoc_nal_header(qoc_vstream *vs, __u8 codec, __u8 b, __u8 learn)
{
	if (codec == QOC_CODEC_HEVC) {
		__u8 t = (b >> 1) & 0x3f;
		if (t == 34)
			qoc_collect(vs, QOC_SCAN_PPS | learn, 0);
		else if (t >= 32)
			vs->scan_phase = QOC_SCAN_SEEK | learn; /* VPS, SPS, AUD, SEI, ... */
		else if (learn)
			vs->scan_phase = QOC_SCAN_DONE; /* the first slice: no PPS after it */
		else if (t >= 16 && t <= 23) {
			qoc_decide(vs, QOC_CLASS_REF);
			vs->frame_rap = 1; /* IRAP */
		}
		else if (t <= 14 && !(t & 1))
			qoc_decide(vs, QOC_CLASS_DISP);
		else if (t <= 9) /* TRAIL_R, TSA_R, STSA_R, RADL_R, RASL_R */
			qoc_collect(vs, QOC_SCAN_SLICE, 0);
		else /* reserved VCL types */
			qoc_decide(vs, QOC_CLASS_DIFF);
		return;
	}
	__u8 t = b & 0x1f;
	if (t == 5) {
		qoc_decide(vs, QOC_CLASS_REF);
		vs->frame_rap = 1; /* IDR */
	} else if (t >= 1 && t <= 2) { /* non-IDR slice, or its partition A */
		if (!(b & 0x60))
			qoc_decide(vs, QOC_CLASS_DISP);
		else
			qoc_collect(vs, QOC_SCAN_SLICE, 1);
	} else {
		vs->scan_phase = QOC_SCAN_SEEK; /* SEI, SPS, PPS, AUD, ... */
	}
}

/* Feeds the elementary-stream bytes p[from..187] to the scanner. `p` points
 * at a TS packet known to have 188 bytes. */
static __always_inline void qoc_scan_es(struct qoc_stream *st, __u8 codec, __u8 *p,
					__u32 from, void *end)
{
	qoc_vstream *vs = st;

#pragma clang loop unroll(disable)
	for (__u32 k = 0; k < QOC_TS_SIZE - 4; k++) {
		__u32 j = from + k;
		__u8 phase = vs->scan_phase;
		__u8 learn = phase & QOC_SCAN_LEARN;
		if (j >= QOC_TS_SIZE || phase == QOC_SCAN_DONE ||
		    (phase == QOC_SCAN_SLICE && vs->scan_nbytes >= QOC_SCAN_NBYTES))
			break;
		__u8 *q = p + (j & 0xff);
		if ((void *)(q + 1) > end)
			break; /* cannot happen (p has 188 bytes); ends the impossible path */
		__u8 b = *q;
		phase &= ~QOC_SCAN_LEARN;
		if (phase == QOC_SCAN_SEEK) {
			if (b == 0) {
				if (vs->scan_zeros < 3)
					vs->scan_zeros++;
			} else {
				if (b == 1 && vs->scan_zeros >= 2)
					vs->scan_phase = QOC_SCAN_NAL | learn;
				vs->scan_zeros = 0;
			}
		} else if (phase == QOC_SCAN_NAL) {
			qoc_nal_header(vs, codec, b, learn);
		} else { /* QOC_SCAN_SLICE, QOC_SCAN_PPS: the bytes after the NAL header */
			__u32 acc = (vs->scan_acc << 8) | b;
			__u8 n = vs->scan_nbytes + 1;
			vs->scan_acc = acc;
			vs->scan_nbytes = n;
			if (phase == QOC_SCAN_PPS && n >= QOC_SCAN_NBYTES) {
				/* Kept as read; decoded at the next slice that needs it. */
				vs->hevc_pps = acc;
				vs->hevc_pps_seen = 1;
				vs->scan_phase = QOC_SCAN_SEEK | learn;
				vs->scan_zeros = b == 0; /* a start code may begin here */
			}
		}
	}
	/* Decoded once, outside the byte loop. */
	if (st->scan_phase == QOC_SCAN_SLICE && st->scan_nbytes >= QOC_SCAN_NBYTES)
		qoc_decide(st, codec == QOC_CODEC_HEVC ? qoc_hevc_slice_class(st)
						       : qoc_h264_slice_class(st->scan_acc));
}

/* Adds the current frame's class (ref while not known) to the datagram's. */
static __always_inline void qoc_add_video_class(struct qoc_stream *st, struct qoc_walk *d)
{
	__u8 cls = qoc_class_known(st->scan_phase) ? st->frame_class : QOC_CLASS_REF;
	if (cls > d->vmax)
		d->vmax = cls;
}

/* PIDs a PMT or an elementary stream may have: 0x0000-0x000F are the PAT's
 * and other tables' (reserved), 0x1FFF is the null packets'. */
static __always_inline int qoc_pid_usable(__u16 pid)
{
	return pid >= 0x0010 && pid < QOC_PID_NULL;
}

/* A PSI section's start in a packet with PUSI: its offset, or 0 when the
 * section is not a sane one of `table_id` (pointer_field past the packet,
 * another table, section_syntax_indicator 0, a section_length below
 * `min_len` or above 1021). *sec_end is where its entries end in this packet
 * (before the CRC, at most the packet's end), *full_end where they end in
 * the section (it may continue in the next packet). The CRC is not checked. */
static __always_inline __u32 qoc_psi_start(__u8 *p, __u32 off, __u8 table_id, __u32 min_len,
					   void *end, __u32 *sec_end, __u32 *full_end)
{
	if (off >= QOC_TS_SIZE)
		return 0;
	__u32 sec = off + 1 + qoc_at(p, off, end); /* pointer_field */
	if (sec + 12 > QOC_TS_SIZE)
		return 0;
	if (qoc_at(p, sec, end) != table_id)
		return 0;
	__u8 b1 = qoc_at(p, sec + 1, end);
	if (!(b1 & 0x80))
		return 0; /* section_syntax_indicator */
	__u32 slen = ((b1 & 0x0f) << 8) | qoc_at(p, sec + 2, end);
	if (slen < min_len || slen > 1021)
		return 0;
	__u32 e = sec + 3 + slen - 4;
	*full_end = e;
	*sec_end = e > QOC_TS_SIZE ? QOC_TS_SIZE : e;
	return sec;
}

/* PAT: the PID of the first program's PMT (program_number != 0). A PAT that
 * is not sane (qoc_psi_start, entries not a whole number of 4 bytes, a PMT
 * PID outside qoc_pid_usable or equal to the video PID) teaches nothing and
 * is malformed. */
static __always_inline void qoc_parse_pat(struct qoc_stream *st, __u8 *p, __u32 off,
					  void *end, struct qoc_walk *d)
{
	__u32 sec_end = 0, full_end = 0;
	__u32 sec = qoc_psi_start(p, off, 0x00, 9, end, &sec_end, &full_end);
	if (!sec || (full_end - sec - 8) % 4) {
		d->malformed = 1;
		return;
	}
	if (!(qoc_at(p, sec + 5, end) & 0x01))
		return; /* current_next_indicator 0: not in force yet */

#pragma unroll
	for (int i = 0; i < QOC_PAT_MAX_PROGRAMS; i++) {
		__u32 e = sec + 8 + 4 * i;
		if (e + 4 > sec_end || e + 4 > QOC_TS_SIZE)
			break;
		__u16 prog = (qoc_at(p, e, end) << 8) | qoc_at(p, e + 1, end);
		if (prog == 0)
			continue; /* network PID */
		__u16 pid = ((qoc_at(p, e + 2, end) & 0x1f) << 8) | qoc_at(p, e + 3, end);
		if (!qoc_pid_usable(pid) || (st->video_pid && pid == st->video_pid)) {
			d->malformed = 1;
			return;
		}
		st->pmt_pid = pid;
		return;
	}
}

/* PMT: the first H.264 or HEVC elementary stream becomes the video PID. A
 * PMT that is not sane (qoc_psi_start, program_info_length or an
 * ES_info_length past the section, a video PID outside qoc_pid_usable or
 * equal to the PMT's) teaches nothing and is malformed. */
static __always_inline void qoc_parse_pmt(struct qoc_stream *st, __u8 *p,
					  __u32 off, void *end, struct qoc_walk *d)
{
	__u32 sec_end = 0, full_end = 0;
	__u32 sec = qoc_psi_start(p, off, 0x02, 13, end, &sec_end, &full_end);
	if (!sec) {
		d->malformed = 1;
		return;
	}
	if (!(qoc_at(p, sec + 5, end) & 0x01))
		return; /* current_next_indicator 0: not in force yet */
	__u32 pil = ((qoc_at(p, sec + 10, end) & 0x0f) << 8) | qoc_at(p, sec + 11, end);
	__u32 es = sec + 12 + pil;
	if (es > full_end) {
		d->malformed = 1;
		return;
	}

#pragma unroll
	for (int i = 0; i < QOC_PMT_MAX_STREAMS; i++) {
		if (es + 5 > sec_end || es + 5 > QOC_TS_SIZE)
			break;
		__u8 type = qoc_at(p, es, end);
		__u16 pid = ((qoc_at(p, es + 1, end) & 0x1f) << 8) | qoc_at(p, es + 2, end);
		__u32 eil = ((qoc_at(p, es + 3, end) & 0x0f) << 8) | qoc_at(p, es + 4, end);
		if (es + 5 + eil > full_end) {
			d->malformed = 1;
			return;
		}
		__u8 codec = type == QOC_ST_H264 ? QOC_CODEC_H264
			   : type == QOC_ST_HEVC ? QOC_CODEC_HEVC : QOC_CODEC_UNKNOWN;
		if (codec != QOC_CODEC_UNKNOWN) {
			if (!qoc_pid_usable(pid) || pid == st->pmt_pid) {
				d->malformed = 1;
				return;
			}
			if (st->video_pid != pid || st->codec != codec) {
				st->video_pid = pid;
				st->codec = codec;
				st->has_cc = 0;
				st->hevc_pps_seen = 0; /* another stream's PPS */
				st->scan_phase = QOC_SCAN_DONE; /* no frame until the next PES start */
				st->frame_class = QOC_CLASS_REF;
			}
			return;
		}
		es += 5 + eil;
	}
	/* Bytes left in a section that ends in this packet, too few for an
	 * entry: program_info_length or an ES_info_length is off. */
	if (full_end <= QOC_TS_SIZE && es != full_end && es + 5 > full_end)
		d->malformed = 1;
}

/* A video TS packet: frame starts, continuity, classification. */
/* A video TS packet: frame starts, continuity. Returns 1 when the scanner
 * must read this packet (the frame's class is not known yet), with
 * d->scan_from set; the packet's class is then added after the scan. */
static __always_inline int qoc_video_packet(struct qoc_stream *st, __u8 *p, __u32 off, int pusi,
					    int rai, int has_payload, void *end, struct qoc_walk *d)
{
	__u8 cc = p[3] & 0x0f;

	if (has_payload) {
		if (st->has_cc && cc != ((st->video_cc + 1) & 0x0f) && cc != st->video_cc)
			st->cc_errors++;
		st->video_cc = cc;
		st->has_cc = 1;
	}
	__u32 from = off; /* where the elementary stream starts in this packet */
	if (pusi && has_payload) {
		if (d->video_seen)
			d->misaligned = 1;
		d->new_frame = 1;
		st->frames++;
		st->history = (st->history << 2) | QOC_CLASS_REF; /* ref until known */
		st->scan_phase = QOC_SCAN_SEEK;
		st->scan_zeros = 0;
		st->scan_nbytes = 0;
		st->scan_acc = 0;
		st->frame_class = QOC_CLASS_REF;
		st->frame_rap = !!rai;
		if (rai) {
			qoc_decide(st, QOC_CLASS_REF);
			/* Known, but an HEVC IRAP frame carries the parameter sets:
			 * read on to its first slice for the PPS. */
			if (st->codec == QOC_CODEC_HEVC)
				st->scan_phase = QOC_SCAN_SEEK | QOC_SCAN_LEARN;
		}
		/* PES header: 00 00 01 stream_id len(2) flags(2) header_data_length */
		if (off + 9 > QOC_TS_SIZE || qoc_at(p, off, end) != 0 || qoc_at(p, off + 1, end) != 0 ||
		    qoc_at(p, off + 2, end) != 1) {
			d->malformed = 1;
			from = QOC_TS_SIZE;
		} else {
			from = off + 9 + qoc_at(p, off + 8, end);
			if (from > QOC_TS_SIZE)
				d->malformed = 1; /* the PES header runs past the packet */
		}
	}
	d->video_seen = 1;
	if (has_payload && from < QOC_TS_SIZE && st->scan_phase != QOC_SCAN_DONE) {
		d->scan_from = from;
		return 1;
	}
	qoc_add_video_class(st, d);
	return 0;
}

/* One TS packet of 188 bytes at p. Returns 0 to go on, 1 when the scanner
 * must read it (from d->scan_from), -1 to stop the walk. */
static __always_inline int qoc_ts_packet(struct qoc_stream *st, __u8 *p, void *end,
					 struct qoc_walk *d)
{
	if (p[0] != 0x47) {
		d->bad_sync = 1;
		return -1;
	}
	if (p[1] & 0x80) { /* transport_error_indicator */
		d->malformed = 1;
		return 0;
	}
	__u16 pid = ((p[1] & 0x1f) << 8) | p[2];
	int pusi = p[1] & 0x40;
	__u8 afc = (p[3] >> 4) & 0x03;
	int rai = 0;
	__u32 off = 4;

	if (afc & 0x02) {
		__u8 afl = p[4];
		if (afl > 183) {
			d->malformed = 1;
			return 0;
		}
		if (afl > 0 && (p[5] & 0x40))
			rai = 1;
		off = 5 + afl;
	}
	int has_payload = (afc & 0x01) && off < QOC_TS_SIZE;

	if (pid == QOC_PID_NULL)
		return 0; /* null packets: never PSI, never video */
	if (pid == QOC_PID_PAT) {
		d->psi = 1;
		if (pusi && has_payload)
			qoc_parse_pat(st, p, off, end, d);
	} else if (st->pmt_pid && pid == st->pmt_pid) {
		d->psi = 1;
		if (pusi && has_payload)
			qoc_parse_pmt(st, p, off, end, d);
	} else if (st->video_pid && pid == st->video_pid) {
		return qoc_video_packet(st, p, off, pusi, rai, has_payload, end, d);
	}
	/* null packets, audio, other PIDs: nothing to learn */
	return 0;
}

/* The TS packet `i` of the walk's payload, or NULL past the frame's end. */
static __always_inline __u8 *qoc_ts_at(void *data, void *data_end, struct qoc_walk *w, __u32 i)
{
	__u32 poff = w->poff;

	/* Keep clang from dropping the masks the verifier needs as bounds. */
	asm volatile("" : "+r"(poff));
	asm volatile("" : "+r"(i));
	__u8 *p = (__u8 *)data + (poff & 0x3ff) + (i & 0x7) * QOC_TS_SIZE;
	if ((void *)(p + QOC_TS_SIZE) > data_end)
		return 0;
	return p;
}

#define QOC_WALK_DONE 0
#define QOC_WALK_SLOW 1

/* The walk's fast path: TS packets that need no parsing beyond their header
 * (a frame's middle, once its class is known; audio; null packets) are
 * tallied here, in a loop cheap enough for the verifier to check per
 * iteration. It stops at the first packet that needs the slow path (PSI, a
 * PES start, a frame whose class is not known yet, anything odd), with
 * w->next at that packet, or at the end of the payload. */
static __always_inline int qoc_ts_walk(struct qoc_stream *st, void *data, void *data_end,
				       struct qoc_walk *w)
{
	__u32 npk = w->len / QOC_TS_SIZE;
	__u32 start = w->next;

#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < QOC_TS_MAX_PACKETS; i++) {
		if (i >= npk)
			break;
		if (i < start)
			continue;
		__u8 *p = qoc_ts_at(data, data_end, w, i);
		if (!p) {
			w->unparsed = 1; /* in the datagram, not in its linear bytes */
			break;
		}
		__u16 pid = ((p[1] & 0x1f) << 8) | p[2];
		__u8 afc = (p[3] >> 4) & 0x03;
		if (pid == QOC_PID_NULL && p[0] == 0x47)
			continue; /* null packets: never PSI, never video */
		if (p[0] != 0x47 || (p[1] & 0xc0) || ((afc & 0x02) && p[4] > 183) || afc == 0 ||
		    pid == QOC_PID_PAT || pid == st->pmt_pid) {
			w->next = i; /* bad sync, TEI, PUSI, odd AF, PSI: the slow path */
			return QOC_WALK_SLOW;
		}
		if (!st->video_pid || pid != st->video_pid)
			continue; /* audio, null packets, other PIDs */
		if (st->scan_phase != QOC_SCAN_DONE && (afc & 0x01)) {
			w->next = i; /* the frame's class is not known yet */
			return QOC_WALK_SLOW;
		}
		if (afc & 0x01) {
			__u8 cc = p[3] & 0x0f;
			if (st->has_cc && cc != ((st->video_cc + 1) & 0x0f) && cc != st->video_cc)
				st->cc_errors++;
			st->video_cc = cc;
			st->has_cc = 1;
		}
		w->video_seen = 1;
		qoc_add_video_class(st, w);
	}
	w->next = QOC_TS_MAX_PACKETS;
	if (npk > QOC_TS_MAX_PACKETS)
		w->unparsed = 1;
	if (w->len % QOC_TS_SIZE)
		w->partial = 1;
	return QOC_WALK_DONE;
}

/* The slow path for packet w->next: full parsing. Returns -1 when the walk
 * must stop, 1 when the frame scanner must read the packet (from
 * w->scan_from; see qoc_ts_scan_packet), 0 to go on. */
static __always_inline int qoc_ts_slow_packet(struct qoc_stream *st, void *data, void *data_end,
					      struct qoc_walk *w)
{
	__u8 *p = qoc_ts_at(data, data_end, w, w->next);
	if (!p) {
		w->unparsed = 1; /* in the datagram, not in its linear bytes */
		return -1;
	}
	return qoc_ts_packet(st, p, data_end, w);
}

/* The frame scanner over packet w->next, from w->scan_from. */
static __always_inline void qoc_ts_scan_packet(struct qoc_stream *st, void *data, void *data_end,
					       struct qoc_walk *w)
{
	__u8 *p = qoc_ts_at(data, data_end, w, w->next);
	__u32 from = *(volatile __u32 *)&w->scan_from;

	if (p && from < QOC_TS_SIZE)
		qoc_scan_es(st, st->codec, p, from, data_end);
	qoc_add_video_class(st, w);
}

/* The datagram's class from its walk. */
static __always_inline __u8 qoc_walk_class(struct qoc_walk *w)
{
	if (w->vmax)
		return w->vmax & 3;
	return w->psi ? QOC_CLASS_REF : QOC_CLASS_OTHER;
}

#endif /* QOC_TS_H */
