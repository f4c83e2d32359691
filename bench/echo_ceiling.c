/*
 * echo_ceiling: the echo of bench/echo_bench.py in plain C, to measure
 * how far io_uring can get ahead of epoll on this machine at all.
 *
 *   echo_ceiling MODE FD     serve on an inherited listening socket
 *   echo_ceiling MODE PORT   listen on 127.0.0.1:PORT (PORT > 1023)
 *
 * MODE is "epoll" or "uring".  Each connection is read until "\r\n\r\n";
 * every complete request head gets RESPONSE (byte for byte the one of
 * echo_bench.py), keep-alive; EOF or an error closes it.  No parsing.
 *
 * Both servers are the plain best of their kind, not Askr's design:
 * the point is the ratio uring / epoll without Python in the way.
 *
 * Build: cc -O2 -o bench/out/echo_ceiling bench/echo_ceiling.c -luring
 */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define BODY "Hello, world\n"
static const char RESPONSE[] =
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	"Content-Length: 13\r\nConnection: keep-alive\r\n\r\n" BODY;
#define RLEN (sizeof(RESPONSE) - 1)

#define MAXFD 65536
#define OUTMAX (64 * RLEN)	/* answers one read can ask for */

/* Per connection: how many bytes of "\r\n\r\n" ended the last read
 * (a head split over reads); for uring also the answers owed.  What a
 * connection is sent is RESPONSE repeated, so "where we are in it"
 * (pos) and "how much is owed" (owed) say it all: no queue needed. */
struct conn {
	unsigned char match;
	unsigned char busy;	/* uring: a send is in flight */
	unsigned char closing;	/* uring: close once that send is done */
	unsigned short pos;	/* uring: bytes sent so far mod RLEN */
	unsigned int sending;	/* uring: bytes of the send in flight */
	unsigned int owed;	/* uring: bytes asked for, not yet sent */
};
static struct conn conns[MAXFD];
/* RESPONSE repeated; every send points into it (one spare copy so a
 * send may start mid-RESPONSE and still be OUTMAX long). */
static char outbuf[OUTMAX + RLEN];

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* Count complete heads in buf, carrying a partial "\r\n\r\n" across
 * reads in *match.  A scan for the terminator is all echo_bench.py
 * does too (bytes.count), so both sides do the same work. */
static unsigned int heads(const char *buf, size_t len, unsigned char *match)
{
	static const char end[4] = "\r\n\r\n";
	unsigned int n = 0, m = *match;

	for (size_t i = 0; i < len; i++) {
		if (buf[i] == end[m])
			m++;
		else
			m = buf[i] == '\r';
		if (m == 4) {
			n++;
			m = 0;
		}
	}
	*match = m;
	return n;
}

/* ---- epoll: level-triggered, non-blocking, recv + send per fd ---- */

static void serve_epoll(int lfd)
{
	struct epoll_event ev = { .events = EPOLLIN }, evs[256];
	static char buf[16384];
	int ep = epoll_create1(0);

	if (ep < 0)
		die("epoll_create1");
	ev.data.fd = lfd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev))
		die("epoll_ctl");
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == lfd) {
				int c;

				while ((c = accept4(lfd, NULL, NULL,
						    SOCK_NONBLOCK)) >= 0) {
					if (c >= MAXFD) {
						close(c);
						continue;
					}
					conns[c].match = 0;
					ev.data.fd = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				}
				continue;
			}
			ssize_t r = recv(fd, buf, sizeof(buf), 0);

			if (r < 0 && errno == EAGAIN)
				continue;
			if (r <= 0)
				goto drop;
			unsigned int k = heads(buf, r, &conns[fd].match);
			size_t want = (size_t)k * RLEN;

			/* A client of this echo waits for its answers
			 * before it sends more, so the socket buffer has
			 * room: a short send only happens to a client not
			 * reading, which is dropped rather than queued. */
			while (want) {
				size_t n = want < OUTMAX ? want : OUTMAX;

				if (send(fd, outbuf, n, MSG_NOSIGNAL)
				    != (ssize_t)n)
					goto drop;
				want -= n;
			}
			continue;
drop:
			close(fd);	/* also removes it from the epoll set */
		}
	}
}

/* ---- uring: multishot accept + multishot recv into a buffer ring ---- */

#define QD 1024			/* SQ entries; CQ is twice that */
#define NBUF 1024		/* provided buffers (power of two) */
#define BSZ 4096		/* bytes per provided buffer */
#define BGID 0

/* user_data: operation in the top byte, fd below */
enum { OP_ACCEPT = 1, OP_RECV, OP_SEND };
#define UD(op, fd) (((__u64)(op) << 56) | (__u32)(fd))

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static char *bufs;

static struct io_uring_sqe *sqe(void)
{
	struct io_uring_sqe *s = io_uring_get_sqe(&ring);

	if (!s) {	/* SQ full: flush it, then there is room */
		io_uring_submit(&ring);
		s = io_uring_get_sqe(&ring);
	}
	return s;
}

static void arm_accept(int lfd)
{
	struct io_uring_sqe *s = sqe();

	io_uring_prep_multishot_accept(s, lfd, NULL, NULL, 0);
	io_uring_sqe_set_data64(s, UD(OP_ACCEPT, lfd));
}

static void arm_recv(int fd)
{
	struct io_uring_sqe *s = sqe();

	io_uring_prep_recv_multishot(s, fd, NULL, 0, 0);
	s->flags |= IOSQE_BUFFER_SELECT;
	s->buf_group = BGID;
	io_uring_sqe_set_data64(s, UD(OP_RECV, fd));
}

/* One send per fd in flight, so answers cannot be reordered; what
 * is asked for meanwhile is owed and sent when it completes. */
static void flush(int fd)
{
	struct conn *c = &conns[fd];
	unsigned int n = c->owed < OUTMAX ? c->owed : OUTMAX;
	struct io_uring_sqe *s = sqe();

	io_uring_prep_send(s, fd, outbuf + c->pos, n, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(s, UD(OP_SEND, fd));
	c->owed -= n;
	c->sending = n;
	c->busy = 1;
}

/* liburing 2.3 has no io_uring_setup_buf_ring(): map the ring
 * page-aligned, register it and fill it with NBUF buffers. */
static void setup_buf_ring(void)
{
	size_t sz = NBUF * sizeof(struct io_uring_buf);
	struct io_uring_buf_reg reg = { .ring_entries = NBUF, .bgid = BGID };

	br = mmap(NULL, sz, PROT_READ | PROT_WRITE,
		  MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	bufs = malloc((size_t)NBUF * BSZ);
	if (br == MAP_FAILED || !bufs)
		die("buffers");
	reg.ring_addr = (unsigned long)br;
	int r = io_uring_register_buf_ring(&ring, &reg, 0);

	if (r) {
		errno = -r;
		die("io_uring_register_buf_ring");
	}
	io_uring_buf_ring_init(br);
	for (int i = 0; i < NBUF; i++)
		io_uring_buf_ring_add(br, bufs + (size_t)i * BSZ, BSZ, i,
				      NBUF - 1, i);
	io_uring_buf_ring_advance(br, NBUF);
}

static void give_back(int bid)
{
	io_uring_buf_ring_add(br, bufs + (size_t)bid * BSZ, BSZ, bid,
			      NBUF - 1, 0);
	io_uring_buf_ring_advance(br, 1);
}

/* Called when the multishot recv has ended (EOF or error).  A send
 * still in flight would complete after the fd number is reused, so
 * the close waits for it. */
static void drop(int fd)
{
	if (conns[fd].busy)
		conns[fd].closing = 1;
	else
		close(fd);
}

static void on_cqe(int lfd, struct io_uring_cqe *cqe)
{
	__u64 ud = io_uring_cqe_get_data64(cqe);
	int op = ud >> 56, fd = (int)(__u32)ud, res = cqe->res;
	int more = cqe->flags & IORING_CQE_F_MORE;

	switch (op) {
	case OP_ACCEPT:
		if (res >= 0 && res < MAXFD) {
			conns[res] = (struct conn){ 0 };
			arm_recv(res);
		} else if (res >= 0) {
			close(res);
		}
		if (!more)	/* e.g. ENFILE or CQ overflow: re-arm */
			arm_accept(lfd);
		return;
	case OP_RECV:
		if (res > 0) {
			int bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
			unsigned int k = heads(bufs + (size_t)bid * BSZ, res,
					       &conns[fd].match);

			give_back(bid);
			conns[fd].owed += k * RLEN;
			if (k && !conns[fd].busy)
				flush(fd);
			if (!more)	/* the kernel ended it: re-arm */
				arm_recv(fd);
			return;
		}
		/* An EOF or error may still carry a buffer: without
		 * this, every closed connection costs the ring one. */
		if (cqe->flags & IORING_CQE_F_BUFFER)
			give_back(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
		if (res == -ENOBUFS) {	/* ring ran dry: try again */
			arm_recv(fd);
			return;
		}
		if (!more)	/* EOF or error: the recv is over */
			drop(fd);
		return;
	case OP_SEND: {
		struct conn *c = &conns[fd];

		c->busy = 0;
		if (c->closing) {
			close(fd);
			return;
		}
		if (res < 0)	/* the recv sees the error too and drops */
			return;
		/* A short send goes on from where it stopped. */
		c->owed += c->sending - res;
		c->pos = (c->pos + res) % RLEN;
		if (c->owed)
			flush(fd);
		return;
	}
	}
}

static void serve_uring(int lfd)
{
	struct io_uring_params p = { 0 };
	struct io_uring_cqe *cqe;
	unsigned int head, seen;

	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
		  IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
	p.cq_entries = 2 * QD;
	if (io_uring_queue_init_params(QD, &ring, &p) < 0) {
		/* pre-6.1 kernel: the plain ring */
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = 2 * QD;
		if (io_uring_queue_init_params(QD, &ring, &p) < 0)
			die("io_uring_queue_init");
		fprintf(stderr, "echo_ceiling: no DEFER_TASKRUN\n");
	}
	io_uring_register_ring_fd(&ring);	/* cheaper enter; optional */
	setup_buf_ring();
	arm_accept(lfd);
	for (;;) {
		/* One enter per pass: submits this pass's SQEs, runs the
		 * deferred task work and waits for at least one CQE. */
		int r = io_uring_submit_and_wait(&ring, 1);

		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			errno = -r;
			die("io_uring_submit_and_wait");
		}
		seen = 0;
		io_uring_for_each_cqe(&ring, head, cqe) {
			on_cqe(lfd, cqe);
			seen++;
		}
		io_uring_cq_advance(&ring, seen);
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: echo_ceiling epoll|uring FD|PORT\n");
		return 2;
	}
	int n = atoi(argv[2]), lfd = n;

	signal(SIGPIPE, SIG_IGN);
	if (n > 1023) {	/* a port: listen ourselves */
		struct sockaddr_in a = { .sin_family = AF_INET,
					 .sin_port = htons(n),
					 .sin_addr.s_addr =
						 htonl(INADDR_LOOPBACK) };
		int one = 1;

		lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) ||
		    listen(lfd, 1024))
			die("listen");
	}
	for (size_t i = 0; i < OUTMAX + RLEN; i += RLEN)
		memcpy(outbuf + i, RESPONSE, RLEN);
	if (!strcmp(argv[1], "epoll"))
		serve_epoll(lfd);
	else if (!strcmp(argv[1], "uring"))
		serve_uring(lfd);
	fprintf(stderr, "echo_ceiling: unknown mode %s\n", argv[1]);
	return 2;
}
