// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* qocnet sensor program: TC egress (clsact) of the sensor's uplink. */
#include <uapi/linux/bpf.h>
#include <uapi/linux/pkt_cls.h>

#include "qoc_consts.h"
#include "qoc_abi.h"
#include "qoc_maps.h"
#include "qoc_dpi.h"
#include "qoc_policy.h"
#include "qoc_sensor.h"

int qoc_sensor_out(struct __sk_buff *skb)
{
	return qoc_sensor_end(skb, qoc_dpi_start(skb));
}

/* Tail-called by the DPI (qoc_dpi.h); ends as qoc_sensor_out would. */
int qoc_sensor_slow(struct __sk_buff *skb)
{
	return qoc_sensor_end(skb, qoc_dpi_slow(skb));
}
