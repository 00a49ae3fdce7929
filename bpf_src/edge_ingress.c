// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* qocnet edge program: TC ingress (clsact) of every sensor-facing port. */
#include <uapi/linux/bpf.h>
#include <uapi/linux/pkt_cls.h>

#include "qoc_consts.h"
#include "qoc_abi.h"
#include "qoc_maps.h"
#include "qoc_dpi.h"
#include "qoc_forward.h"
#include "qoc_replicate.h"

int qoc_edge_in(struct __sk_buff *skb)
{
	qoc_dpi_start(skb);
	return qoc_end(skb);
}

/* Tail-called by the DPI (qoc_dpi.h); ends as qoc_edge_in would. */
int qoc_ts_slow(struct __sk_buff *skb)
{
	qoc_dpi_slow(skb);
	return qoc_end(skb);
}

/* Tail-called at the end of the DPI for streams with clone targets. */
int qoc_deliver(struct __sk_buff *skb)
{
	return qoc_replicate(skb);
}
