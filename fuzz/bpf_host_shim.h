// SPDX-License-Identifier: Apache-2.0
/* Host build of the edge datapath's DPI (bpf_src/qoc_dpi.h with
 * qoc_parse.h and qoc_ts.h) for fuzz_bpf_parse: just enough of libbcc's
 * BPF C dialect, in plain C, for the headers to compile and run unchanged
 * under ASan and UBSan.
 *   - BPF_HASH / BPF_TABLE / BPF_ARRAY / BPF_PERCPU_*: a struct whose
 *     lookup/update members are functions over a small static table
 *     (QOC_HOST_MAP_SLOTS entries; hash maps refuse new keys when full, LRU
 *     maps evict the least recently used, like the kernel's);
 *   - BPF_PROG_ARRAY's call(): a tail call, as longjmp back to the driver,
 *     which then runs the called program from its start (the caller's
 *     code after call() never runs, as in the kernel); at most 33 per frame;
 *   - struct __sk_buff: len, gso_segs, cb[], data/data_end as host pointers;
 *     bpf_skb_pull_data() makes up to n bytes linear (data_end moves);
 *   - bpf_ntohs/bpf_htons, __always_inline.
 * The driver (fuzz_bpf_parse.c) resets everything between inputs. */
#ifndef QOC_BPF_HOST_SHIM_H
#define QOC_BPF_HOST_SHIM_H

#include <arpa/inet.h>
#include <linux/types.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#define bpf_ntohs(x) ntohs(x)
#define bpf_htons(x) htons(x)
#define bpf_ntohl(x) ntohl(x)
#define bpf_htonl(x) htonl(x)

/* BPF programs see data/data_end as __u32; host pointers need 64 bits. */
struct __sk_buff {
	__u32 len;
	__u32 gso_segs;
	__u32 cb[5];
	__u32 ifindex;
	__u32 ingress_ifindex;
	unsigned long data;
	unsigned long data_end;
};

/* The whole frame (len bytes) is at data; data_end may end before it (a
 * non-linear skb) until bpf_skb_pull_data. */
static inline long bpf_skb_pull_data(struct __sk_buff *skb, __u32 n)
{
	__u32 lin = n < skb->len ? n : skb->len;
	if (skb->data_end - skb->data < lin)
		skb->data_end = skb->data + lin;
	return 0;
}

/* Copies len bytes at offset off of the whole frame (linear or not). */
static inline long bpf_skb_load_bytes(const struct __sk_buff *skb, __u32 off, void *to, __u32 len)
{
	if (off > skb->len || len > skb->len - off)
		return -14; /* -EFAULT */
	memcpy(to, (const void *)(skb->data + off), len);
	return 0;
}

/* ---- maps ---- */
#ifndef QOC_HOST_MAP_SLOTS
#define QOC_HOST_MAP_SLOTS 4
#endif

struct qoc_host_map {
	unsigned ksize, vsize, slots;
	int lru;
	unsigned char used[QOC_HOST_MAP_SLOTS];
	unsigned long stamp[QOC_HOST_MAP_SLOTS];
	unsigned char *keys; /* slots * ksize */
	unsigned char *vals; /* slots * vsize */
};

extern unsigned long qoc_host_clock;

static inline void *qoc_host_lookup(struct qoc_host_map *m, const void *k)
{
	for (unsigned i = 0; i < m->slots; i++)
		if (m->used[i] && !memcmp(m->keys + i * m->ksize, k, m->ksize)) {
			m->stamp[i] = ++qoc_host_clock;
			return m->vals + i * m->vsize;
		}
	return NULL;
}

static inline int qoc_host_update(struct qoc_host_map *m, const void *k, const void *v)
{
	void *cur = qoc_host_lookup(m, k);
	if (cur) {
		memcpy(cur, v, m->vsize);
		return 0;
	}
	unsigned victim = m->slots;
	for (unsigned i = 0; i < m->slots; i++)
		if (!m->used[i]) {
			victim = i;
			break;
		}
	if (victim == m->slots) {
		if (!m->lru)
			return -7; /* -E2BIG */
		victim = 0;
		for (unsigned i = 1; i < m->slots; i++)
			if (m->stamp[i] < m->stamp[victim])
				victim = i;
	}
	m->used[victim] = 1;
	m->stamp[victim] = ++qoc_host_clock;
	memcpy(m->keys + victim * m->ksize, k, m->ksize);
	memcpy(m->vals + victim * m->vsize, v, m->vsize);
	return 0;
}

/* Arrays: every index below the size exists (zeroed), none beyond. */
static inline void *qoc_host_array_lookup(struct qoc_host_map *m, const void *k)
{
	__u32 i;
	memcpy(&i, k, sizeof(i));
	return i < m->slots ? m->vals + i * m->vsize : NULL;
}

static inline int qoc_host_array_update(struct qoc_host_map *m, const void *k, const void *v)
{
	void *cur = qoc_host_array_lookup(m, k);
	if (!cur)
		return -7;
	memcpy(cur, v, m->vsize);
	return 0;
}

#define QOC_HOST_MIN(a, b) ((a) < (b) ? (a) : (b))

/* All maps, so the driver can reset them between inputs. */
#define QOC_HOST_MAX_MAPS 16
extern struct qoc_host_map *qoc_host_maps[QOC_HOST_MAX_MAPS];
extern unsigned qoc_host_nmaps;
void qoc_host_register(struct qoc_host_map *m);

#define QOC_HOST_MAP(_name, _ktype, _vtype, _size, _lru, _array)                              \
	static unsigned char _name##_keys[QOC_HOST_MIN(_size, QOC_HOST_MAP_SLOTS)]           \
					 [sizeof(_ktype)];                                   \
	static _vtype _name##_vals[QOC_HOST_MIN(_size, QOC_HOST_MAP_SLOTS)];                 \
	static struct qoc_host_map _name##_map = {                                           \
		sizeof(_ktype), sizeof(_vtype), QOC_HOST_MIN(_size, QOC_HOST_MAP_SLOTS), 0,   \
		{0}, {0}, &_name##_keys[0][0], (unsigned char *)_name##_vals};                \
	static _vtype *_name##_lookup(const void *k)                                        \
	{                                                                                    \
		return _array ? qoc_host_array_lookup(&_name##_map, k)                       \
			      : qoc_host_lookup(&_name##_map, k);                            \
	}                                                                                    \
	static int _name##_update(const void *k, const _vtype *v)                           \
	{                                                                                    \
		return _array ? qoc_host_array_update(&_name##_map, k, v)                    \
			      : qoc_host_update(&_name##_map, k, v);                         \
	}                                                                                    \
	__attribute__((constructor)) static void _name##_register(void)                     \
	{                                                                                    \
		_name##_map.lru = (_lru);                                                    \
		qoc_host_register(&_name##_map);                                             \
	}                                                                                    \
	static const struct {                                                                \
		_vtype *(*lookup)(const void *);                                             \
		int (*update)(const void *, const _vtype *);                                 \
	} _name = {_name##_lookup, _name##_update}

#define BPF_HASH(_name, _ktype, _vtype, _size) QOC_HOST_MAP(_name, _ktype, _vtype, _size, 0, 0)
#define BPF_PERCPU_HASH(_name, _ktype, _vtype, _size) \
	QOC_HOST_MAP(_name, _ktype, _vtype, _size, 0, 0)
#define BPF_ARRAY(_name, _vtype, _size) QOC_HOST_MAP(_name, __u32, _vtype, _size, 0, 1)
#define BPF_PERCPU_ARRAY(_name, _vtype, _size) QOC_HOST_MAP(_name, __u32, _vtype, _size, 0, 1)
/* "hash", "lru_hash", "array", ... */
#define BPF_TABLE(_type, _ktype, _vtype, _name, _size)                                      \
	QOC_HOST_MAP(_name, _ktype, _vtype, _size, (strcmp(_type, "lru_hash") == 0), 0)

/* ---- tail calls ---- */
#define QOC_HOST_MAX_TAIL_CALLS 33
extern jmp_buf qoc_host_tail_env;
extern int qoc_host_tail_calls;
extern int qoc_host_prog_loaded[8];

static inline int qoc_host_tail_call(void *ctx, __u32 idx)
{
	(void)ctx;
	if (idx >= 8 || !qoc_host_prog_loaded[idx] || qoc_host_tail_calls >= QOC_HOST_MAX_TAIL_CALLS)
		return -1; /* the kernel falls through: the caller goes on */
	qoc_host_tail_calls++;
	longjmp(qoc_host_tail_env, (int)idx + 1);
}

#define BPF_PROG_ARRAY(_name, _size)                                                       \
	static const struct {                                                               \
		int (*call)(void *, __u32);                                                 \
	} _name = {qoc_host_tail_call}

#endif /* QOC_BPF_HOST_SHIM_H */
