/*
 * mnl_batch: NFQUEUE consumer on libmnl that drains the socket with
 * recvmmsg() and then sends ONE NFQNL_MSG_VERDICT_BATCH (NF_ACCEPT for every
 * queued id up to the highest id received) per drain.
 *
 * Whole packets are copied (COPY_PACKET, range 0xffff); the kernel's default
 * queue length (1024) is kept. The bind and the copy parameters go to the
 * kernel in one CONFIG message, acknowledged.
 *
 * Built with -DBUSY_POLL (see mnl_busypoll.c) it never blocks: recvmmsg() runs
 * with MSG_DONTWAIT in a loop, spending a whole CPU to save the wake-up.
 *
 * usage: mnl_batch QUEUE_NUM
 * Exits cleanly on SIGINT or SIGTERM.
 */
#define _GNU_SOURCE /* recvmmsg */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>

#ifndef BUSY_POLL
#define BUSY_POLL 0
#endif

#define PROG_NAME (BUSY_POLL ? "mnl_busypoll" : "mnl_batch")

/* Datagrams received per recvmmsg() call at most. */
#define VLEN 64
/* One datagram holds one queued packet: up to 0xffff bytes of payload plus
 * the netlink and attribute headers. */
#define DGRAM_SIZE (65536 + 4096)
/* Receive buffer: room for the default queue length (1024) of small packets,
 * each taking ~1-2 KiB of skb truesize. */
#define RCVBUF_SIZE (4 << 20)

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static struct nlmsghdr *put_queue_header(char *buf, uint8_t type,
					 uint16_t queue)
{
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | type;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = htons(queue);
	return nlh;
}

/* Bind the queue and set copy mode and range in one acknowledged message. */
static int configure(struct mnl_socket *nl, uint16_t queue)
{
	static char buf[8192];
	struct nfqnl_msg_config_cmd cmd;
	struct nfqnl_msg_config_params params;
	struct nlmsghdr *nlh;
	unsigned int seq = (unsigned int)time(NULL);
	unsigned int portid = mnl_socket_get_portid(nl);
	ssize_t n;

	nlh = put_queue_header(buf, NFQNL_MSG_CONFIG, queue);
	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = seq;

	memset(&cmd, 0, sizeof(cmd));
	cmd.command = NFQNL_CFG_CMD_BIND;
	mnl_attr_put(nlh, NFQA_CFG_CMD, sizeof(cmd), &cmd);

	memset(&params, 0, sizeof(params));
	params.copy_range = htonl(0xffff);
	params.copy_mode = NFQNL_COPY_PACKET;
	mnl_attr_put(nlh, NFQA_CFG_PARAMS, sizeof(params), &params);

	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0)
		return -1;
	return mnl_cb_run(buf, n, seq, portid, NULL, NULL) < 0 ? -1 : 0;
}

/* Accept every queued packet whose id is <= last. */
static int send_batch_verdict(struct mnl_socket *nl, uint16_t queue,
			      uint32_t last)
{
	char buf[128];
	struct nfqnl_msg_verdict_hdr vh;
	struct nlmsghdr *nlh;

	nlh = put_queue_header(buf, NFQNL_MSG_VERDICT_BATCH, queue);
	vh.verdict = htonl(NF_ACCEPT);
	vh.id = htonl(last);
	mnl_attr_put(nlh, NFQA_VERDICT_HDR, sizeof(vh), &vh);
	return mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0 ? -1 : 0;
}

/*
 * Walk one datagram. Returns the number of packets seen and updates *last
 * with the highest packet id (wrap-safe).
 */
static int parse_datagram(const char *buf, size_t len, uint32_t *last,
			  int *have)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
	int len_left = (int)len;
	int packets = 0;

	for (; mnl_nlmsg_ok(nlh, len_left); nlh = mnl_nlmsg_next(nlh, &len_left)) {
		const struct nlattr *attr;
		const struct nfqnl_msg_packet_hdr *ph = NULL;
		const void *payload = NULL;

		if (nlh->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

			if (e->error != 0)
				fprintf(stderr, "%s: kernel error %d\n",
					PROG_NAME, -e->error);
			continue;
		}
		if (nlh->nlmsg_type !=
		    ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET))
			continue;

		mnl_attr_for_each(attr, nlh, sizeof(struct nfgenmsg)) {
			switch (mnl_attr_get_type(attr)) {
			case NFQA_PACKET_HDR:
				if (mnl_attr_get_payload_len(attr) >= sizeof(*ph))
					ph = mnl_attr_get_payload(attr);
				break;
			case NFQA_PAYLOAD:
				payload = mnl_attr_get_payload(attr);
				break;
			}
		}
		if (ph == NULL)
			continue;
		(void)payload; /* a real consumer would inspect it here */
		{
			uint32_t id = ntohl(ph->packet_id);

			if (!*have || (int32_t)(id - *last) > 0)
				*last = id;
			*have = 1;
		}
		packets++;
	}
	return packets;
}

int main(int argc, char **argv)
{
	static struct mmsghdr msgs[VLEN];
	static struct iovec iov[VLEN];
	struct mnl_socket *nl;
	struct sigaction sa;
	unsigned long long packets = 0, batches = 0;
	char *bufs;
	uint16_t queue;
	int fd, i, one = 1, rcvbuf = RCVBUF_SIZE;

	if (argc != 2) {
		fprintf(stderr, "usage: %s QUEUE_NUM\n", argv[0]);
		return 2;
	}
	queue = (uint16_t)atoi(argv[1]);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	nl = mnl_socket_open(NETLINK_NETFILTER);
	if (nl == NULL) {
		perror("mnl_socket_open");
		return 1;
	}
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		perror("mnl_socket_bind");
		return 1;
	}
	fd = mnl_socket_get_fd(nl);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	/* An overrun is counted by the kernel; the loop need not see it. */
	mnl_socket_setsockopt(nl, NETLINK_NO_ENOBUFS, &one, sizeof(one));

	if (configure(nl, queue) < 0) {
		perror("bind queue");
		return 1;
	}

	bufs = malloc((size_t)VLEN * DGRAM_SIZE);
	if (bufs == NULL) {
		perror("malloc");
		return 1;
	}
	for (i = 0; i < VLEN; i++) {
		iov[i].iov_base = bufs + (size_t)i * DGRAM_SIZE;
		iov[i].iov_len = DGRAM_SIZE;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}

	while (!stop) {
		uint32_t last = 0;
		int have = 0, n;

		/* Blocking: wait for one datagram, then take whatever else is
		 * already queued (MSG_WAITFORONE). Busy-polling: never wait. */
		n = recvmmsg(fd, msgs, VLEN,
			     BUSY_POLL ? MSG_DONTWAIT : MSG_WAITFORONE, NULL);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN ||
			    errno == EWOULDBLOCK || errno == ENOBUFS)
				continue;
			perror("recvmmsg");
			break;
		}
		for (i = 0; i < n; i++) {
			if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
				fprintf(stderr, "%s: datagram truncated\n",
					PROG_NAME);
			packets += parse_datagram(iov[i].iov_base,
						  msgs[i].msg_len, &last, &have);
		}
		if (have) {
			if (send_batch_verdict(nl, queue, last) < 0) {
				perror("verdict");
				break;
			}
			batches++;
		}
	}

	mnl_socket_close(nl);
	free(bufs);
	fprintf(stderr, "%s: %llu packets, %llu batch verdicts\n", PROG_NAME,
		packets, batches);
	return 0;
}
