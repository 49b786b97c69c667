/*
 * mnl_busypoll: the mnl_batch consumer in busy-poll mode. recvmmsg() runs
 * with MSG_DONTWAIT in a loop and the process never sleeps, which removes
 * the wake-up from the added latency at the cost of a whole CPU.
 *
 * usage: mnl_busypoll QUEUE_NUM
 */
#define BUSY_POLL 1
#include "mnl_batch.c"
