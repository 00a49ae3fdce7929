// SPDX-License-Identifier: Apache-2.0
/* fuzz_bpf_parse: the edge program's DPI (bpf_src/qoc_dpi.h: qoc_parse.h's
 * Ethernet/VLAN/IPv4/IPv6/UDP parse and qoc_ts.h's TS walk, PAT/PMT parsing
 * and frame scanner) compiled for the host through fuzz/bpf_host_shim.h,
 * fed a sequence of frames per input; the stream state carries from frame to
 * frame as in the kernel's map. Each frame is a heap block of exactly its
 * length, so ASan reports any read past data_end. Besides memory errors and
 * undefined behaviour, a frame fails the run when it breaks what the
 * datapath promises (bpf_src/qoc_abi.h):
 *   - every frame lands in exactly one outcome: seen = not_udp + not_ts + ts,
 *     and every ts frame in exactly one class: ts = sum of class_*;
 *   - the verdict's class in cb[] is a class (0..3);
 *   - a stream's scanner state stays in its ranges (phase, zeros, slice
 *     bytes, continuity counter, codec, PIDs).
 *
 * Input: byte 0 = options (bit 0: the qoc_ts_slow program is not loaded, so
 * the tail call falls through), then records, each
 *   u16 length (big endian) | u8 linear (0: all, else 16 x bytes in the
 *   skb's head until bpf_skb_pull_data) | u8 gso_segs | length bytes
 * (the last record takes what is left). fuzz/seeds/make_bpf_parse_seeds.py
 * writes the seeds in this format. QOC_FUZZ_TRACE=1 prints each frame's verdict
 * (to check what a seed reaches: fuzz_bpf_parse <file>). */
#include "bpf_host_shim.h"

#include <stdio.h>
#include <stdlib.h>

unsigned long qoc_host_clock;
struct qoc_host_map *qoc_host_maps[QOC_HOST_MAX_MAPS];
unsigned qoc_host_nmaps;
jmp_buf qoc_host_tail_env;
int qoc_host_tail_calls;
int qoc_host_prog_loaded[8];

void qoc_host_register(struct qoc_host_map *m)
{
	if (qoc_host_nmaps >= QOC_HOST_MAX_MAPS) {
		fprintf(stderr, "fuzz_bpf_parse: more than %d maps; raise QOC_HOST_MAX_MAPS\n",
			QOC_HOST_MAX_MAPS);
		abort();
	}
	qoc_host_maps[qoc_host_nmaps++] = m;
}

#include "qoc_dpi.h"

#define FAIL(...)                                                                          \
	do {                                                                               \
		fprintf(stderr, "fuzz_bpf_parse: invariant broken: " __VA_ARGS__);        \
		fputc('\n', stderr);                                                       \
		abort();                                                                   \
	} while (0)

static void reset_maps(void)
{
	for (unsigned i = 0; i < qoc_host_nmaps; i++) {
		struct qoc_host_map *m = qoc_host_maps[i];
		memset(m->used, 0, sizeof(m->used));
		memset(m->stamp, 0, sizeof(m->stamp));
		memset(m->keys, 0, (size_t)m->slots * m->ksize);
		memset(m->vals, 0, (size_t)m->slots * m->vsize);
	}
	qoc_host_clock = 0;
}

/* One frame through qoc_edge_in's DPI and the tail calls it makes. */
static void run_frame(struct __sk_buff *skb)
{
	qoc_host_tail_calls = 0;
	int prog = setjmp(qoc_host_tail_env);
	if (prog == 0)
		qoc_dpi_start(skb);
	else if (prog - 1 == QOC_PROG_SLOW)
		qoc_dpi_slow(skb);
	else
		FAIL("tail call to program slot %d, which the DPI never calls", prog - 1);
}

static void check_streams(void)
{
	for (unsigned i = 0; i < qoc_streams_map.slots; i++) {
		if (!qoc_streams_map.used[i])
			continue;
		const struct qoc_stream *st = &qoc_streams_vals[i];
		switch (st->scan_phase) {
		case QOC_SCAN_SEEK: case QOC_SCAN_NAL: case QOC_SCAN_SLICE: case QOC_SCAN_DONE:
		case QOC_SCAN_PPS:
			break;
		case QOC_SCAN_SEEK | QOC_SCAN_LEARN: case QOC_SCAN_NAL | QOC_SCAN_LEARN:
		case QOC_SCAN_PPS | QOC_SCAN_LEARN:
			if (st->codec != QOC_CODEC_HEVC)
				FAIL("scan_phase %u for codec %u", st->scan_phase, st->codec);
			break;
		default:
			FAIL("scan_phase %u", st->scan_phase);
		}
		if ((st->scan_phase & QOC_SCAN_LEARN) && st->frame_class != QOC_CLASS_REF)
			FAIL("scan_phase %u with frame_class %u", st->scan_phase, st->frame_class);
		if (st->scan_zeros > 3)
			FAIL("scan_zeros %u", st->scan_zeros);
		if (st->scan_nbytes > QOC_SCAN_NBYTES)
			FAIL("scan_nbytes %u", st->scan_nbytes);
		if (st->hevc_pps_seen > 1)
			FAIL("hevc_pps_seen %u", st->hevc_pps_seen);
		if (st->video_cc > 15 || st->has_cc > 1)
			FAIL("video_cc %u has_cc %u", st->video_cc, st->has_cc);
		if (st->frame_class > QOC_CLASS_REF)
			FAIL("frame_class %u", st->frame_class);
		if (st->codec > QOC_CODEC_HEVC)
			FAIL("codec %u", st->codec);
		if (st->pmt_pid > 0x1fff || st->video_pid > 0x1fff)
			FAIL("pmt_pid %#x video_pid %#x", st->pmt_pid, st->video_pid);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int trace = -1;
	if (trace < 0)
		trace = getenv("QOC_FUZZ_TRACE") != NULL;
	if (size < 1)
		return 0;
	reset_maps();
	memset(qoc_host_prog_loaded, 0, sizeof(qoc_host_prog_loaded));
	qoc_host_prog_loaded[QOC_PROG_SLOW] = !(data[0] & 1);
	size_t pos = 1;

	for (int n = 0; n < 32 && pos + 4 <= size; n++) {
		size_t len = ((size_t)data[pos] << 8) | data[pos + 1];
		__u32 linear = (__u32)data[pos + 2] * 16;
		__u32 gso = data[pos + 3] & 0x3f;
		pos += 4;
		if (len > size - pos)
			len = size - pos;
		unsigned char *frame = malloc(len ? len : 1);
		if (!frame)
			abort();
		memcpy(frame, data + pos, len);
		pos += len;

		struct __sk_buff skb = {0};
		skb.len = (__u32)len;
		skb.gso_segs = gso;
		skb.data = (unsigned long)frame;
		skb.data_end = skb.data + (linear && linear < len ? linear : len);

		__u32 zero = 0;
		struct qoc_counters *c = qoc_counters.lookup(&zero);
		struct qoc_counters before = *c;
		run_frame(&skb);
		c = qoc_counters.lookup(&zero);

		__u64 d[QOC_NUM_COUNTERS];
		for (int i = 0; i < QOC_NUM_COUNTERS; i++)
			d[i] = c->c[i] - before.c[i];
		if (d[QOC_CNT_SEEN] != 1)
			FAIL("frame %d counted %llu times as seen", n, (unsigned long long)d[QOC_CNT_SEEN]);
		if (d[QOC_CNT_NOT_UDP] + d[QOC_CNT_NOT_TS] + d[QOC_CNT_TS] != 1)
			FAIL("frame %d: outcomes not_udp %llu + not_ts %llu + ts %llu != 1", n,
			     (unsigned long long)d[QOC_CNT_NOT_UDP], (unsigned long long)d[QOC_CNT_NOT_TS],
			     (unsigned long long)d[QOC_CNT_TS]);
		__u64 classes = d[QOC_CNT_CLASS_OTHER] + d[QOC_CNT_CLASS_DISP] + d[QOC_CNT_CLASS_DIFF] +
				d[QOC_CNT_CLASS_REF];
		if (classes != d[QOC_CNT_TS])
			FAIL("frame %d: ts %llu but %llu class counts", n, (unsigned long long)d[QOC_CNT_TS],
			     (unsigned long long)classes);
		if (skb.cb[QOC_CB_CLASS] > QOC_CLASS_REF)
			FAIL("frame %d: verdict class %u", n, skb.cb[QOC_CB_CLASS]);
		if (d[QOC_CNT_TS] && !(skb.cb[QOC_CB_FLAGS] & QOC_F_TS))
			FAIL("frame %d: counted as TS without QOC_F_TS in cb[]", n);
		if (skb.data_end < skb.data || skb.data_end > skb.data + skb.len)
			FAIL("frame %d: data_end outside the frame", n);
		check_streams();
		if (trace)
			fprintf(stderr, "frame %d: %zu bytes: outcome %s class %u flags %#x frames %u video %#x\n",
				n, len, d[QOC_CNT_TS] ? "ts" : d[QOC_CNT_NOT_TS] ? "not_ts" : "not_udp",
				skb.cb[QOC_CB_CLASS], skb.cb[QOC_CB_FLAGS], skb.cb[QOC_CB_FRAMES],
				skb.cb[QOC_CB_VIDEO]);
		free(frame);
	}
	return 0;
}
