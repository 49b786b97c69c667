/*
 * nfq_classic: NFQUEUE consumer on libnetfilter_queue's classic API.
 *
 * One recv() per packet, one nfq_set_verdict(NF_ACCEPT) per packet, whole
 * packets copied (COPY_PACKET, range 0xffff), kernel default queue length.
 * This is the pattern of the library's own example program and the
 * reference point ("1.00x") of the benchmark.
 *
 * usage: nfq_classic QUEUE_NUM
 * Exits cleanly on SIGINT or SIGTERM.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

static volatile sig_atomic_t stop;
static unsigned long long handled;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *nfmsg,
		     struct nfq_data *nfa, void *data)
{
	struct nfqnl_msg_packet_hdr *ph;
	unsigned char *payload;
	uint32_t id;

	(void)nfmsg;
	(void)data;
	ph = nfq_get_msg_packet_hdr(nfa);
	if (ph == NULL)
		return -1;
	id = ntohl(ph->packet_id);
	/* Look at the payload, as a real consumer would. */
	if (nfq_get_payload(nfa, &payload) < 0)
		return -1;
	handled++;
	return nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
}

int main(int argc, char **argv)
{
	struct nfq_handle *h;
	struct nfq_q_handle *qh;
	struct sigaction sa;
	static char buf[65536 + 4096];
	int fd, rv, queue;

	if (argc != 2) {
		fprintf(stderr, "usage: %s QUEUE_NUM\n", argv[0]);
		return 2;
	}
	queue = atoi(argv[1]);

	/* No SA_RESTART: a signal must interrupt the blocking recv(). */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	h = nfq_open();
	if (h == NULL) {
		perror("nfq_open");
		return 1;
	}
	/* Obsolete since Linux 3.8 (a no-op); kept as the classic API does it. */
	nfq_unbind_pf(h, AF_INET);
	if (nfq_bind_pf(h, AF_INET) < 0) {
		perror("nfq_bind_pf");
		return 1;
	}
	qh = nfq_create_queue(h, (uint16_t)queue, on_packet, NULL);
	if (qh == NULL) {
		perror("nfq_create_queue");
		return 1;
	}
	if (nfq_set_mode(qh, NFQNL_COPY_PACKET, 0xffff) < 0) {
		perror("nfq_set_mode");
		return 1;
	}
	fd = nfq_fd(h);

	while (!stop) {
		rv = recv(fd, buf, sizeof(buf), 0);
		if (rv >= 0) {
			nfq_handle_packet(h, buf, rv);
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == ENOBUFS) /* the kernel dropped packets; go on */
			continue;
		perror("recv");
		break;
	}

	nfq_destroy_queue(qh);
	nfq_close(h);
	fprintf(stderr, "nfq_classic: %llu packets\n", handled);
	return 0;
}
