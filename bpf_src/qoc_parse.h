// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Header parsing for the edge program: Ethernet, 802.1Q/802.1ad, IPv4 (with
 * options), IPv6 (with a bounded walk over extension headers), UDP. A cursor
 * moves through the frame; each step checks its bounds first and returns
 * what comes next, or a negative QOC_P_* reason. */
#ifndef QOC_PARSE_H
#define QOC_PARSE_H

#include "qoc_consts.h"
#include "qoc_abi.h"

/* The protocol headers, declared here rather than taken from the kernel's
 * uapi headers: those pull in enough of the kernel's include tree to double
 * libbcc's compile time (measured: 0.28 s -> 0.88 s). */
#define QOC_ETH_P_IP 0x0800
#define QOC_ETH_P_IPV6 0x86dd
#define QOC_ETH_P_8021Q 0x8100
#define QOC_ETH_P_8021AD 0x88a8
#define QOC_IPPROTO_HOPOPTS 0
#define QOC_IPPROTO_UDP 17
#define QOC_IPPROTO_ROUTING 43
#define QOC_IPPROTO_FRAGMENT 44
#define QOC_IPPROTO_DSTOPTS 60

struct qoc_ethhdr {
	__u8 h_dest[6];
	__u8 h_source[6];
	__be16 h_proto;
} __attribute__((packed));

struct qoc_iphdr {
	__u8 ihl_version; /* version << 4 | ihl (little-endian bitfields avoided) */
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__sum16 check;
	__be32 saddr;
	__be32 daddr;
};

struct qoc_ipv6hdr {
	__be32 vtc_flow;
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u8 saddr[16];
	__u8 daddr[16];
};

struct qoc_udphdr {
	__be16 source;
	__be16 dest;
	__be16 len;
	__sum16 check;
};

#define QOC_P_TRUNCATED (-1)
#define QOC_P_NOT_UDP (-2)
#define QOC_P_VLAN_DEEP (-3)
#define QOC_P_IPV6_EXT_DEEP (-4)
#define QOC_P_FRAGMENT (-5)
#define QOC_P_UDP_LEN (-6)

struct qoc_cursor {
	void *pos;
	void *end;
};

/* What the parser learnt of a UDP datagram. */
struct qoc_udp_info {
	struct qoc_stream_key key;
	void *l3;          /* the IP header */
	void *l4;          /* the UDP header */
	int ipv6;
	void *payload;     /* first byte of the UDP payload */
	__u32 payload_len; /* by the UDP header, bounded by the frame */
};

struct qoc_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off; /* offset << 3 | M */
	__be32 identification;
};

struct qoc_vlan_hdr {
	__be16 tci;
	__be16 proto;
};

/* Ethernet and up to QOC_MAX_VLAN_DEPTH tags; returns the EtherType (host order). */
static __always_inline int qoc_parse_eth(struct qoc_cursor *c)
{
	struct qoc_ethhdr *eth = c->pos;

	if ((void *)(eth + 1) > c->end)
		return QOC_P_TRUNCATED;
	c->pos = eth + 1;
	__u16 proto = bpf_ntohs(eth->h_proto);

#pragma unroll
	for (int i = 0; i < QOC_MAX_VLAN_DEPTH; i++) {
		if (proto != QOC_ETH_P_8021Q && proto != QOC_ETH_P_8021AD)
			return proto;
		struct qoc_vlan_hdr *v = c->pos;
		if ((void *)(v + 1) > c->end)
			return QOC_P_TRUNCATED;
		c->pos = v + 1;
		proto = bpf_ntohs(v->proto);
	}
	if (proto == QOC_ETH_P_8021Q || proto == QOC_ETH_P_8021AD)
		return QOC_P_VLAN_DEEP;
	return proto;
}

static __always_inline void qoc_key_v4(struct qoc_stream_key *k, __be32 saddr)
{
	__builtin_memset(k->saddr, 0, 10);
	k->saddr[10] = 0xff;
	k->saddr[11] = 0xff;
	__builtin_memcpy(&k->saddr[12], &saddr, 4);
}

/* IPv4 with options; returns the L4 protocol. */
static __always_inline int qoc_parse_ipv4(struct qoc_cursor *c, struct qoc_stream_key *k)
{
	struct qoc_iphdr *ip = c->pos;

	if ((void *)(ip + 1) > c->end)
		return QOC_P_TRUNCATED;
	__u32 hlen = (ip->ihl_version & 0x0f) * 4;
	if ((ip->ihl_version >> 4) != 4)
		return QOC_P_NOT_UDP;
	if (hlen < sizeof(*ip))
		return QOC_P_TRUNCATED;
	if (c->pos + hlen > c->end)
		return QOC_P_TRUNCATED;
	if (ip->frag_off & bpf_htons(0x3fff)) /* MF or an offset: a fragment */
		return QOC_P_FRAGMENT;
	qoc_key_v4(k, ip->saddr);
	c->pos += hlen;
	return ip->protocol;
}

struct qoc_ipv6_opt {
	__u8 nexthdr;
	__u8 hdrlen; /* in 8-byte units, not counting the first 8 */
};

/* IPv6 and up to QOC_MAX_IPV6_EXT extension headers; returns the L4 protocol. */
static __always_inline int qoc_parse_ipv6(struct qoc_cursor *c, struct qoc_stream_key *k)
{
	struct qoc_ipv6hdr *ip6 = c->pos;

	if ((void *)(ip6 + 1) > c->end)
		return QOC_P_TRUNCATED;
	__builtin_memcpy(k->saddr, &ip6->saddr, 16);
	c->pos = ip6 + 1;
	__u8 next = ip6->nexthdr;

#pragma unroll
	for (int i = 0; i < QOC_MAX_IPV6_EXT; i++) {
		struct qoc_ipv6_opt *o = c->pos;
		switch (next) {
		case QOC_IPPROTO_HOPOPTS:
		case QOC_IPPROTO_ROUTING:
		case QOC_IPPROTO_DSTOPTS:
			if ((void *)(o + 1) > c->end)
				return QOC_P_TRUNCATED;
			next = o->nexthdr;
			c->pos += (o->hdrlen + 1) * 8;
			break;
		case QOC_IPPROTO_FRAGMENT: {
			struct qoc_frag_hdr *f = c->pos;
			if ((void *)(f + 1) > c->end)
				return QOC_P_TRUNCATED;
			if (f->frag_off & bpf_htons(0xfff9)) /* offset or M: a fragment */
				return QOC_P_FRAGMENT;
			next = f->nexthdr;
			c->pos = f + 1;
			break;
		}
		default:
			return next;
		}
	}
	switch (next) {
	case QOC_IPPROTO_HOPOPTS:
	case QOC_IPPROTO_ROUTING:
	case QOC_IPPROTO_DSTOPTS:
	case QOC_IPPROTO_FRAGMENT:
		return QOC_P_IPV6_EXT_DEEP;
	}
	return next;
}

/* Parses a frame down to its UDP payload. Returns 0 or a QOC_P_* reason.
 * `frame_len` is the whole frame's length, of which [data, data_end) may be
 * only the first part (a non-linear or GSO frame): the UDP length is checked
 * against it, so payload_len may run past data_end. */
static __always_inline int qoc_parse_udp_len(void *data, void *data_end, __u32 frame_len,
					     struct qoc_udp_info *u)
{
	struct qoc_cursor c = {.pos = data, .end = data_end};
	int proto = qoc_parse_eth(&c);

	if (proto < 0)
		return proto;
	u->l3 = c.pos;
	u->ipv6 = proto == QOC_ETH_P_IPV6;
	if (proto == QOC_ETH_P_IP)
		proto = qoc_parse_ipv4(&c, &u->key);
	else if (proto == QOC_ETH_P_IPV6)
		proto = qoc_parse_ipv6(&c, &u->key);
	else
		return QOC_P_NOT_UDP;
	if (proto < 0)
		return proto;
	if (proto != QOC_IPPROTO_UDP)
		return QOC_P_NOT_UDP;

	struct qoc_udphdr *udp = c.pos;
	if ((void *)(udp + 1) > c.end)
		return QOC_P_TRUNCATED;
	__u32 ulen = bpf_ntohs(udp->len);
	__u32 hdrs = (void *)(udp + 1) - data;
	__u32 avail = frame_len > hdrs ? frame_len - hdrs : 0;
	if (ulen < sizeof(*udp) || ulen - sizeof(*udp) > avail)
		return QOC_P_UDP_LEN;
	u->l4 = udp;
	u->key.sport = udp->source;
	u->key.dport = udp->dest;
	u->key.pad = 0;
	u->payload = udp + 1;
	u->payload_len = ulen - sizeof(*udp);
	return 0;
}

/* A frame whose bytes are all in [data, data_end). */
static __always_inline int qoc_parse_udp(void *data, void *data_end, struct qoc_udp_info *u)
{
	return qoc_parse_udp_len(data, data_end, (__u32)(data_end - data), u);
}

#endif /* QOC_PARSE_H */
