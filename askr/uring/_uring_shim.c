/*
 * _uring_shim.c: the C half of Askr's io_uring event loop.
 *
 * Purpose.  A loop that crosses from Python into C once per completion runs
 * no faster on io_uring than on epoll: the cost is the Python dispatch, not
 * the system calls.  So this shim does the per-completion work in C.  One
 * call, askr_ring_wait(), submits every prepared SQE, waits once, drains the
 * whole CQ, copies received bytes into an arena owned by Python, re-arms
 * what can be re-armed (recv after recv, the next accept while accepting,
 * the rest of a partial send) and hands Python a compact array of events.
 * Policy (when to accept, when to close, what a connection means) stays in
 * Python (askr/uring/ring.py).
 *
 * Minimum kernel.  5.11 (IORING_FEAT_EXT_ARG for the wait-with-timeout in
 * one system call) with IORING_OP_ACCEPT/RECV/SEND/POLL_ADD/ASYNC_CANCEL.  Newer
 * kernels add: provided-buffer rings and multishot accept (5.19), multishot
 * recv (6.0), SINGLE_ISSUER (6.0), DEFER_TASKRUN (6.1).  Each is probed at
 * ring set-up, never guessed from the kernel version.
 *
 * Per-descriptor state lives in a table indexed by fd.  A connection has at
 * most one recv and one send in flight, so ordering on a socket is simply
 * the order Python queues its sends.  Closing is synchronous from Python's
 * side: cancel everything on the fd, reap until its in-flight count is zero,
 * then close(2).  That is why user_data carries no generation number: no
 * completion for an fd can outlive the fd.
 *
 * Built against liburing 2.3 (Debian 12).  Constants newer than its headers
 * are defined below where they are needed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <liburing.h>

/* Not in liburing 2.3's io_uring.h (kernel 6.6); only reported by probe(),
 * never used for set-up: liburing 2.3 always writes the SQ index array. */
#ifndef IORING_SETUP_NO_SQARRAY
#define IORING_SETUP_NO_SQARRAY (1U << 16)
#endif

/* Event kinds handed to Python (see ring.py for their mapping to EV_*). */
#define K_ACCEPT 1      /* fd = new connection, value = listener fd */
#define K_ACCEPT_ERR 2  /* fd = listener, value = errno */
#define K_DATA 3        /* fd, arena[off:off+len] */
#define K_EOF 4         /* fd */
#define K_RECV_ERR 5    /* fd, value = errno */
#define K_SEND_DONE 6   /* fd, value = bytes of the finished send */
#define K_SEND_ERR 7    /* fd, value = errno */

/* Feature bits reported by askr_ring_features(). */
#define FEAT_BUF_RING 1
#define FEAT_MULTISHOT_RECV 2
#define FEAT_MULTISHOT_ACCEPT 4
#define FEAT_EXT_ARG 8
#define FEAT_FAST_POLL 16
#define FEAT_NODROP 32
#define FEAT_REG_RING 64
#define FEAT_CANCEL_FD 128

/*
 * user_data layout (64 bits):
 *   bits 63..56  operation (OP_*)
 *   bits 55..32  unused, zero
 *   bits 31..0   file descriptor
 */
#define OP_ACCEPT 1
#define OP_RECV 2
#define OP_SEND 3
#define OP_CANCEL 4
#define OP_PROBE 5
#define OP_WAKE 6         /* our own wait timeout, kernels without EXT_ARG */
#define OP_FILE 7         /* POLLOUT wait of a file transfer */

static inline uint64_t ud_encode(int op, int fd)
{
    return ((uint64_t)op << 56) | (uint32_t)fd;
}

static inline void ud_decode(uint64_t ud, int *op, int *fd)
{
    *op = (int)(ud >> 56);
    *fd = (int)(uint32_t)ud;
}

/* Per-fd flags. */
#define F_LISTENER 1
#define F_WATCHED 2       /* Python wants data from this fd */
#define F_RECV_ARMED 4
#define F_ACCEPT_ARMED 8
#define F_SEND_ARMED 16
#define F_PAUSED 32
#define F_CLOSING 64      /* cancelled for close: finish, never re-arm */
#define F_FILE 128        /* a file range is being sent, or follows sbuf */
#define F_FILE_POLL 256   /* that transfer's POLLOUT wait is in flight */
#define F_NONBLOCK 512    /* O_NONBLOCK is set on the socket (sendfile) */

/* Bytes of file one connection sends per loop pass before it waits for
 * POLLOUT again: a large file cannot hold the loop from other connections. */
#define FILE_TURN (256 * 1024)

#define MAX_LISTENERS 64
#define ADDR_SLOT 128     /* arena bytes per sockaddr in an accept event */

struct askr_fd {
    uint16_t flags;
    uint16_t inflight;
    int file_fd;          /* F_FILE: the file being sent; the shim owns it */
    char *rbuf;           /* recv buffer when there is no buffer ring */
    const char *sbuf;     /* the send in flight: Python keeps it alive */
    uint32_t slen;
    uint32_t sdone;
    int64_t foff;         /* F_FILE: next file offset, bytes left, total */
    int64_t fleft;
    int64_t ftotal;
};

/* All fields 64-bit: Python reads a batch as one flat int64 array
 * (memoryview.cast("q").tolist()), far cheaper than cdata field access. */
typedef struct askr_ev {
    int64_t kind;
    int64_t fd;
    int64_t value;
    int64_t off;
    int64_t len;
} askr_ev;

typedef struct askr_ring {
    struct io_uring ring;
    unsigned setup_flags;
    unsigned features;
    int accepting;
    int multishot_accept;     /* policy: use it (only if the kernel has it) */
    struct io_uring_buf_ring *br;
    char *bufs;
    unsigned nbufs;
    unsigned bufsize;
    int bgid;
    struct askr_fd *fds;
    int nfds;
    int listeners[MAX_LISTENERS];
    int nlisteners;
    uint64_t st_enters;
    uint64_t st_cqes;
    uint64_t st_sq_full;
    uint64_t st_enobufs;
    uint64_t st_partial_sends;
    uint64_t st_bytes_in;
    uint64_t st_bytes_out;
} askr_ring;

/* Grow the fd table so that fd is a valid index. */
static struct askr_fd *fd_state(askr_ring *r, int fd)
{
    if (fd < 0)
        return NULL;
    if (fd >= r->nfds) {
        int n = r->nfds ? r->nfds : 1024;
        struct askr_fd *t;

        while (n <= fd)
            n *= 2;
        t = realloc(r->fds, (size_t)n * sizeof(*t));
        if (!t)
            return NULL;
        memset(t + r->nfds, 0, (size_t)(n - r->nfds) * sizeof(*t));
        r->fds = t;
        r->nfds = n;
    }
    return &r->fds[fd];
}

/* An SQE, flushing the SQ to the kernel once if it is full: the caller
 * never sees "SQ full", it costs one extra io_uring_enter. */
static struct io_uring_sqe *get_sqe(askr_ring *r)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);

    if (!sqe) {
        r->st_sq_full++;
        r->st_enters++;
        io_uring_submit(&r->ring);
        sqe = io_uring_get_sqe(&r->ring);
    }
    return sqe;
}

static void give_back(askr_ring *r, unsigned bid);
static void file_drop(struct askr_fd *f);

/* ---- set-up ---------------------------------------------------------- */

/* Try one io_uring_queue_init_params; 0 or -errno.  Used by probe(). */
int askr_probe_setup(unsigned flags)
{
    struct io_uring ring;
    struct io_uring_params p;
    int ret;

    memset(&p, 0, sizeof(p));
    p.flags = flags;
    ret = io_uring_queue_init_params(8, &ring, &p);
    if (ret == 0)
        io_uring_queue_exit(&ring);
    return ret;
}

/* Fill ops_out[i] with 1/0 for each opcode in ops[i]; -errno on failure. */
int askr_probe_ops(const int *ops, int n, int *ops_out)
{
    struct io_uring_probe *p = io_uring_get_probe();
    int i;

    if (!p)
        return -ENOSYS;
    for (i = 0; i < n; i++)
        ops_out[i] = io_uring_opcode_supported(p, ops[i]);
    io_uring_free_probe(p);
    return 0;
}

/* Register a provided-buffer ring; kernels before 5.19 answer -EINVAL and
 * the loop falls back to one plain buffer per watched fd. */
static int setup_buf_ring(askr_ring *r)
{
    struct io_uring_buf_reg reg;
    size_t ring_bytes = r->nbufs * sizeof(struct io_uring_buf);
    void *mem;
    unsigned i;
    int ret;

    mem = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE,
               MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED)
        return -errno;

    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (unsigned long)mem;
    reg.ring_entries = r->nbufs;
    reg.bgid = r->bgid;
    ret = io_uring_register_buf_ring(&r->ring, &reg, 0);
    if (ret) {
        munmap(mem, ring_bytes);
        return ret;
    }

    r->bufs = malloc((size_t)r->nbufs * r->bufsize);
    if (!r->bufs) {
        io_uring_unregister_buf_ring(&r->ring, r->bgid);
        munmap(mem, ring_bytes);
        return -ENOMEM;
    }
    r->br = mem;
    io_uring_buf_ring_init(r->br);
    for (i = 0; i < r->nbufs; i++)
        io_uring_buf_ring_add(r->br, r->bufs + (size_t)i * r->bufsize,
                              r->bufsize, i,
                              io_uring_buf_ring_mask(r->nbufs), i);
    io_uring_buf_ring_advance(r->br, r->nbufs);
    return 0;
}

/* The probe SQE on `fd` is prepared: cancel it, submit both, and report whether the first
 * completion was -EINVAL (flag unknown to this kernel). */
static int probe_multishot(askr_ring *r, int fd)
{
    struct __kernel_timespec ts = { .tv_sec = 1, .tv_nsec = 0 };
    struct io_uring_sqe *sqe;
    struct io_uring_cqe *cqe;
    int supported = 1;
    int seen;

    sqe = get_sqe(r);
    if (!sqe)
        return 0;
    io_uring_prep_cancel64(sqe, ud_encode(OP_PROBE, fd), 0);
    io_uring_sqe_set_data64(sqe, ud_encode(OP_CANCEL, fd));
    if (io_uring_submit(&r->ring) < 0)
        return 0;

    /* Bounded: a probe must never hang a worker's start-up.  A completion
     * that comes later is dropped by askr_ring_wait (OP_PROBE). */
    for (seen = 0; seen < 2; seen++) {
        int op, cfd;

        if (io_uring_wait_cqe_timeout(&r->ring, &cqe, &ts) < 0)
            return 0;
        ud_decode(cqe->user_data, &op, &cfd);
        if (op == OP_PROBE && cqe->res == -EINVAL)
            supported = 0;
        if (op == OP_PROBE && (cqe->flags & IORING_CQE_F_BUFFER))
            give_back(r, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        io_uring_cqe_seen(&r->ring, cqe);
    }
    return supported;
}

static int probe_multishot_recv(askr_ring *r)
{
    struct io_uring_sqe *sqe;
    int sv[2];
    int ok;

    if (!r->br || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return 0;
    sqe = get_sqe(r);
    if (!sqe) {
        close(sv[0]);
        close(sv[1]);
        return 0;
    }
    io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = r->bgid;
    io_uring_sqe_set_data64(sqe, ud_encode(OP_PROBE, sv[0]));
    ok = probe_multishot(r, sv[0]);
    close(sv[0]);
    close(sv[1]);
    return ok;
}

static int probe_multishot_accept(askr_ring *r)
{
    struct io_uring_sqe *sqe;
    struct sockaddr_in sin;
    int fd, ok;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, 1)) {
        close(fd);
        return 0;
    }
    sqe = get_sqe(r);
    if (!sqe) {
        close(fd);
        return 0;
    }
    io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ud_encode(OP_PROBE, fd));
    ok = probe_multishot(r, fd);
    close(fd);
    return ok;
}

/*
 * IORING_ASYNC_CANCEL_FD (5.19): one cancel for everything on a socket.
 * A cancel that matches nothing answers -ENOENT where the flag is known
 * and -EINVAL where it is not (5.10, 5.15); anything else counts as not
 * known, as the per-operation cancels work everywhere.
 */
static int probe_cancel_fd(askr_ring *r)
{
    struct __kernel_timespec ts = { .tv_sec = 1, .tv_nsec = 0 };
    struct io_uring_sqe *sqe = get_sqe(r);
    struct io_uring_cqe *cqe;
    int seen, res = -EINVAL;

    if (!sqe)
        return 0;
    io_uring_prep_cancel_fd(sqe, r->ring.ring_fd, 0);
    io_uring_sqe_set_data64(sqe, ud_encode(OP_CANCEL, -1));
    if (io_uring_submit(&r->ring) < 0)
        return 0;

    /* Late completions of the multishot probes may come first: skip
     * them (giving back their buffers) until ours, within a bound. */
    for (seen = 0; seen < 8; seen++) {
        int op, fd;

        if (io_uring_wait_cqe_timeout(&r->ring, &cqe, &ts) < 0)
            return 0;
        ud_decode(cqe->user_data, &op, &fd);
        if (op == OP_PROBE && r->br && (cqe->flags & IORING_CQE_F_BUFFER))
            give_back(r, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        if (op == OP_CANCEL && fd == -1)
            res = cqe->res;
        io_uring_cqe_seen(&r->ring, cqe);
        if (op == OP_CANCEL && fd == -1)
            break;
    }
    return res == -ENOENT;
}

/*
 * Open a ring with the best set-up flags the kernel accepts.  want_flags is
 * tried first; on -EINVAL the newest flag is dropped and set-up retried
 * (DEFER_TASKRUN needs SINGLE_ISSUER, so it goes first).  Any other error
 * (-EPERM from seccomp or io_uring_disabled, -ENOMEM from memlock) is
 * final and returned in *err.
 */
askr_ring *askr_ring_open(unsigned entries, unsigned want_flags,
                          unsigned nbufs, unsigned bufsize, int *err)
{
    static const unsigned drop_order[] = {
        IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_SINGLE_ISSUER,
        IORING_SETUP_TASKRUN_FLAG,
        IORING_SETUP_COOP_TASKRUN,
        IORING_SETUP_SUBMIT_ALL,
        0,
    };
    struct io_uring_params p;
    askr_ring *r;
    unsigned flags = want_flags;
    int i = 0, ret;

    r = calloc(1, sizeof(*r));
    if (!r) {
        *err = -ENOMEM;
        return NULL;
    }

    for (;;) {
        memset(&p, 0, sizeof(p));
        p.flags = flags | IORING_SETUP_CQSIZE;
        p.cq_entries = entries * 4;
        ret = io_uring_queue_init_params(entries, &r->ring, &p);
        if (ret != -EINVAL || !drop_order[i])
            break;
        flags &= ~drop_order[i++];   /* fall back: one flag fewer */
    }
    if (ret < 0) {
        free(r);
        *err = ret;
        return NULL;
    }
    r->setup_flags = flags;

    if (p.features & IORING_FEAT_EXT_ARG)
        r->features |= FEAT_EXT_ARG;
    if (p.features & IORING_FEAT_FAST_POLL)
        r->features |= FEAT_FAST_POLL;
    if (p.features & IORING_FEAT_NODROP)
        r->features |= FEAT_NODROP;

    /* Registered ring fd (5.18): io_uring_enter skips the fd table lookup
     * on every call; liburing uses it on its own once registered. */
    if (io_uring_register_ring_fd(&r->ring) == 1)
        r->features |= FEAT_REG_RING;

    r->nbufs = nbufs;
    r->bufsize = bufsize;
    r->bgid = 1;
    if (nbufs && setup_buf_ring(r) == 0)
        r->features |= FEAT_BUF_RING;
    if (probe_multishot_recv(r))
        r->features |= FEAT_MULTISHOT_RECV;
    if (probe_multishot_accept(r))
        r->features |= FEAT_MULTISHOT_ACCEPT;
    if (probe_cancel_fd(r))
        r->features |= FEAT_CANCEL_FD;

    *err = 0;
    return r;
}

void askr_ring_close(askr_ring *r)
{
    int i;

    if (!r)
        return;
    if (r->br) {
        io_uring_unregister_buf_ring(&r->ring, r->bgid);
        munmap(r->br, r->nbufs * sizeof(struct io_uring_buf));
    }
    io_uring_queue_exit(&r->ring);
    for (i = 0; i < r->nfds; i++) {
        file_drop(&r->fds[i]);
        free(r->fds[i].rbuf);
    }
    free(r->fds);
    free(r->bufs);
    free(r);
}

unsigned askr_ring_flags(askr_ring *r) { return r->setup_flags; }
unsigned askr_ring_features(askr_ring *r) { return r->features; }

void askr_ring_stats(askr_ring *r, uint64_t *out)
{
    out[0] = r->st_enters;
    out[1] = r->st_cqes;
    out[2] = r->st_sq_full;
    out[3] = r->st_enobufs;
    out[4] = r->st_partial_sends;
    out[5] = r->st_bytes_in;
    out[6] = r->st_bytes_out;
}

/* ---- one helper per operation ---------------------------------------- */

/* Accept on a listener.  Single-shot by default so that an idle worker
 * takes one connection per loop pass and a burst spreads over workers;
 * multishot only when Python asked for it and the kernel has it. */
static int arm_accept(askr_ring *r, int lfd)
{
    struct askr_fd *f = fd_state(r, lfd);
    struct io_uring_sqe *sqe;

    if (!f || (f->flags & F_ACCEPT_ARMED))
        return 0;
    sqe = get_sqe(r);
    if (!sqe)
        return -EBUSY;
    if (r->multishot_accept && (r->features & FEAT_MULTISHOT_ACCEPT))
        io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
    else
        io_uring_prep_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ud_encode(OP_ACCEPT, lfd));
    f->flags |= F_ACCEPT_ARMED;
    f->inflight++;
    return 0;
}

/* Receive: multishot into the buffer ring (one SQE serves the whole life of
 * a connection), single-shot from the ring, or single-shot into a private
 * buffer on kernels without buffer rings. */
static int arm_recv(askr_ring *r, int fd)
{
    struct askr_fd *f = fd_state(r, fd);
    struct io_uring_sqe *sqe;

    if (!f || (f->flags & F_RECV_ARMED))
        return 0;
    if (!r->br && !f->rbuf) {
        f->rbuf = malloc(r->bufsize);
        if (!f->rbuf)
            return -ENOMEM;
    }
    sqe = get_sqe(r);
    if (!sqe)
        return -EBUSY;
    if (r->features & FEAT_MULTISHOT_RECV) {
        io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = r->bgid;
    } else if (r->br) {
        io_uring_prep_recv(sqe, fd, NULL, r->bufsize, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = r->bgid;
    } else {
        io_uring_prep_recv(sqe, fd, f->rbuf, r->bufsize, 0);
    }
    io_uring_sqe_set_data64(sqe, ud_encode(OP_RECV, fd));
    f->flags |= F_RECV_ARMED;
    f->inflight++;
    return 0;
}

/* Send (the rest of) the buffer in flight for fd.  MSG_NOSIGNAL: a peer
 * that went away must give EPIPE, not kill the worker with SIGPIPE. */
static int arm_send(askr_ring *r, int fd, struct askr_fd *f)
{
    struct io_uring_sqe *sqe = get_sqe(r);

    if (!sqe)
        return -EBUSY;
    io_uring_prep_send(sqe, fd, f->sbuf + f->sdone, f->slen - f->sdone,
                       MSG_NOSIGNAL | ((f->flags & F_FILE) ? MSG_MORE : 0));
    io_uring_sqe_set_data64(sqe, ud_encode(OP_SEND, fd));
    return 0;
}

/*
 * File transfers (askr_send_file).  A static response is a head and a
 * file range.  Both go out from here, in C: the head with send(2), with
 * MSG_MORE when Python asks (then head and first file bytes leave as one
 * segment, as with nginx's tcp_nopush), the range with sendfile(2), which
 * hands page-cache
 * pages to the socket (no copy into user space, none into the socket
 * buffer).  Both are tried at once, non-blocking: on loopback and on any
 * idle connection the whole response is out before Python's call returns.
 * What the socket does not take waits for room with a POLLOUT poll in the
 * ring, and Python hears of it once, when the whole range is out.
 *
 * sendfile(2) has no io_uring opcode (SPLICE is always punted to a kernel
 * worker thread, a context switch per call), hence the direct calls; they
 * need O_NONBLOCK on the socket, which io_uring's own RECV and SEND ignore
 * (they wait unless given MSG_DONTWAIT; liburing's recv-msgflags test).
 */
static void file_drop(struct askr_fd *f)
{
    if (f->flags & F_FILE) {
        close(f->file_fd);
        f->file_fd = -1;
        f->flags &= ~F_FILE;
    }
}

static int arm_file_poll(askr_ring *r, int fd, struct askr_fd *f)
{
    struct io_uring_sqe *sqe = get_sqe(r);

    if (!sqe)
        return -EBUSY;
    io_uring_prep_poll_add(sqe, fd, POLLOUT);
    io_uring_sqe_set_data64(sqe, ud_encode(OP_FILE, fd));
    f->flags |= F_FILE_POLL;
    f->inflight++;
    return 0;
}

/* Send what is left of the range from f->file_fd: 1 when all of it is
 * out, 0 when the socket is full or this pass's turn is used up (the
 * caller waits for POLLOUT), -errno on failure (-EIO: the file is shorter
 * than the range announced). */
static int file_step(askr_ring *r, int fd, struct askr_fd *f)
{
    int64_t turn = FILE_TURN;

    if (!(f->flags & F_NONBLOCK)) {
        int fl = fcntl(fd, F_GETFL);

        if (fl < 0)
            return -errno;
        if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
            return -errno;
        f->flags |= F_NONBLOCK;
    }
    while (f->fleft > 0) {
        off_t off = f->foff;
        ssize_t n;

        if (turn <= 0)
            return 0;
        n = sendfile(fd, f->file_fd, &off,
                     (size_t)(f->fleft < turn ? f->fleft : turn));
        if (n > 0) {
            f->foff += n;
            f->fleft -= n;
            turn -= n;
            r->st_bytes_out += n;
        } else if (n == 0) {
            return -EIO;
        } else if (errno == EAGAIN) {
            r->st_partial_sends++;
            return 0;
        } else if (errno != EINTR) {
            return -errno;
        }
    }
    return 1;
}

/* Cancel the one (op, fd) request in flight: no cancel flags, as each
 * kind has at most one per fd and flags are unknown before 5.19. */
static int cancel_op(askr_ring *r, int op, int fd)
{
    struct io_uring_sqe *sqe = get_sqe(r);

    if (!sqe)
        return -EBUSY;
    io_uring_prep_cancel64(sqe, ud_encode(op, fd), 0);
    io_uring_sqe_set_data64(sqe, ud_encode(OP_CANCEL, fd));
    return 0;
}

/* ---- the calls Python makes ------------------------------------------ */

int askr_add_listener(askr_ring *r, int fd)
{
    struct askr_fd *f = fd_state(r, fd);

    if (!f)
        return -ENOMEM;
    if (r->nlisteners >= MAX_LISTENERS)
        return -ENOSPC;
    f->flags |= F_LISTENER;
    r->listeners[r->nlisteners++] = fd;
    return r->accepting ? arm_accept(r, fd) : 0;
}

void askr_set_multishot_accept(askr_ring *r, int on) { r->multishot_accept = on; }

/* Act as an older kernel would, for tests: only the features chosen at
 * run time (EXT_ARG waits, CANCEL_FD closes) can be forgotten. */
void askr_forget_features(askr_ring *r, unsigned mask)
{
    r->features &= ~(mask & (FEAT_EXT_ARG | FEAT_CANCEL_FD));
}

/* Turn accepting on (arm every listener; submitted with the next wait) or
 * off.  Off cancels every armed accept and submits the cancellation at once
 * (and runs deferred task work): the kernel takes a pending accept off the
 * listener inside this call, so
 * no connection queued after it returns can land in this (busy) process.
 * The -ECANCELED completions are reaped with the next wait; an accept that
 * had already completed is delivered then, never lost.  Submitting instead
 * of reaping here keeps the toggle to one system call per PHP request. */
int askr_set_accepting(askr_ring *r, int on)
{
    int i, cancelled = 0;

    r->accepting = on;
    for (i = 0; i < r->nlisteners; i++) {
        int lfd = r->listeners[i];

        if (on)
            arm_accept(r, lfd);
        else if ((r->fds[lfd].flags & F_ACCEPT_ARMED)
                 && cancel_op(r, OP_ACCEPT, lfd) == 0)
            cancelled++;
    }
    if (cancelled) {
        /* GETEVENTS too: with DEFER_TASKRUN the cancellation itself runs
         * as task work, which only an enter with GETEVENTS executes. */
        int ret = io_uring_submit_and_get_events(&r->ring);

        if (ret < 0)
            return ret;
    }
    return 0;
}

int askr_accepts_armed(askr_ring *r)
{
    int i, n = 0;

    for (i = 0; i < r->nlisteners; i++)
        n += (r->fds[r->listeners[i]].flags & F_ACCEPT_ARMED) != 0;
    return n;
}

/* Re-arm one listener after Python's pause (EMFILE) has passed. */
int askr_arm_accept(askr_ring *r, int fd)
{
    return r->accepting ? arm_accept(r, fd) : 0;
}

int askr_watch(askr_ring *r, int fd)
{
    struct askr_fd *f = fd_state(r, fd);

    if (!f)
        return -ENOMEM;
    f->flags = (f->flags | F_WATCHED) & ~F_PAUSED;
    return arm_recv(r, fd);
}

int askr_pause(askr_ring *r, int fd)
{
    struct askr_fd *f = fd_state(r, fd);

    if (!f)
        return -EBADF;
    f->flags |= F_PAUSED;
    if (f->flags & F_RECV_ARMED)
        return cancel_op(r, OP_RECV, fd);
    return 0;
}

int askr_resume(askr_ring *r, int fd)
{
    struct askr_fd *f = fd_state(r, fd);

    if (!f)
        return -EBADF;
    f->flags &= ~F_PAUSED;
    if (f->flags & F_WATCHED)
        return arm_recv(r, fd);
    return 0;
}

/* Start sending buf[0:len] on fd.  One send in flight per fd (two unlinked
 * sends on one socket can complete out of order); Python queues the rest.
 * The buffer is Python's bytes object, not copied: Python keeps it alive
 * until K_SEND_DONE / K_SEND_ERR or until close reaped the cancel. */
int askr_send(askr_ring *r, int fd, const char *buf, unsigned len)
{
    struct askr_fd *f = fd_state(r, fd);
    int ret;

    if (!f)
        return -ENOMEM;
    if (f->flags & F_SEND_ARMED)
        return -EBUSY;
    f->sbuf = buf;
    f->slen = len;
    f->sdone = 0;
    ret = arm_send(r, fd, f);
    if (ret == 0) {
        f->flags |= F_SEND_ARMED;
        f->inflight++;
    }
    return ret;
}

/*
 * Send buf[0:len] (len may be 0), then count bytes of file_fd from off, on
 * fd with nothing in flight (else -EBUSY: Python queues it).  file_fd is
 * borrowed: the caller may close it when this returns.  more: hold buf
 * back (MSG_MORE) to leave in one segment with the first file bytes.
 *
 * Returns 1 when everything is out already (no event follows), 0 when the
 * rest goes out from the ring (the shim keeps a duplicate of file_fd, the
 * caller keeps buf alive until the one K_SEND_DONE / K_SEND_ERR), or
 * -errno (nothing is in flight then).
 */
int askr_send_file(askr_ring *r, int fd, const char *buf, unsigned len,
                   int file_fd, int64_t off, int64_t count, int more)
{
    struct askr_fd *f = fd_state(r, fd);
    int ret;

    if (!f)
        return -ENOMEM;
    if (f->flags & (F_SEND_ARMED | F_FILE))
        return -EBUSY;
    if (count <= 0)
        return -EINVAL;
    f->sbuf = buf;
    f->slen = len;
    f->sdone = 0;
    f->file_fd = file_fd;   /* borrowed: F_FILE unset, file_drop skips it */
    f->foff = off;
    f->fleft = count;
    f->ftotal = count;

    while (f->sdone < len) {
        ssize_t n = send(fd, buf + f->sdone, len - f->sdone,
                         MSG_DONTWAIT | MSG_NOSIGNAL | (more ? MSG_MORE : 0));

        if (n > 0) {
            f->sdone += n;
            r->st_bytes_out += n;
        } else if (n < 0 && errno == EAGAIN) {
            break;
        } else if (n < 0 && errno != EINTR) {
            ret = -errno;
            goto fail;
        }
    }
    ret = f->sdone < len ? 0 : file_step(r, fd, f);
    if (ret < 0)
        goto fail;
    if (ret == 1) {
        f->sbuf = NULL;
        f->file_fd = -1;
        return 1;
    }

    /* The rest waits for room: the ring finishes the head, then the file. */
    f->file_fd = fcntl(file_fd, F_DUPFD_CLOEXEC, 0);
    if (f->file_fd < 0) {
        ret = -errno;
        goto fail;
    }
    f->flags |= F_FILE;
    if (f->sdone < len) {
        r->st_partial_sends++;
        ret = arm_send(r, fd, f);
    } else {
        f->sbuf = NULL;
        ret = arm_file_poll(r, fd, f);
    }
    if (ret) {
        file_drop(f);
        ret = -EAGAIN;   /* no SQE even after a flush: not "busy" */
        goto fail;
    }
    if (f->sbuf)
        f->inflight++;   /* arm_file_poll counts its own */
    f->flags |= F_SEND_ARMED;
    return 0;

fail:
    f->sbuf = NULL;
    f->file_fd = -1;
    return ret;
}

/* Cancel everything pending on fd and stop watching it; returns how many
 * operations are still in flight (Python reaps until askr_inflight is 0). */
int askr_cancel_fd(askr_ring *r, int fd)
{
    struct askr_fd *f = fd_state(r, fd);
    struct io_uring_sqe *sqe;

    if (!f)
        return 0;
    f->flags = (f->flags & ~(F_WATCHED | F_PAUSED)) | F_CLOSING;
    if (!f->inflight)
        return 0;
    if (!(r->features & FEAT_CANCEL_FD)) {
        /* Older kernels: one cancel per armed kind.  A kind whose cancel
         * found no room is retried when Python asks again. */
        if ((f->flags & F_RECV_ARMED) && cancel_op(r, OP_RECV, fd))
            return -EBUSY;
        if ((f->flags & F_SEND_ARMED) && f->sbuf
            && cancel_op(r, OP_SEND, fd))
            return -EBUSY;
        if ((f->flags & F_FILE_POLL) && cancel_op(r, OP_FILE, fd))
            return -EBUSY;
        if ((f->flags & F_ACCEPT_ARMED) && cancel_op(r, OP_ACCEPT, fd))
            return -EBUSY;
        return f->inflight;
    }
    sqe = get_sqe(r);
    if (!sqe)
        return -EBUSY;   /* Python reaps and asks again */
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, ud_encode(OP_CANCEL, fd));
    return f->inflight;
}

int askr_inflight(askr_ring *r, int fd)
{
    return (fd >= 0 && fd < r->nfds) ? r->fds[fd].inflight : 0;
}

/* Reset the state of a closed fd so the number can be reused. */
void askr_forget(askr_ring *r, int fd)
{
    if (fd < 0 || fd >= r->nfds)
        return;
    file_drop(&r->fds[fd]);
    free(r->fds[fd].rbuf);
    memset(&r->fds[fd], 0, sizeof(r->fds[fd]));
}

/* ---- completion handlers ---------------------------------------------- */

struct batch {
    askr_ev *evs;
    int n;
    int max;
    char *arena;
    unsigned used;
    unsigned size;
};

static void put(struct batch *b, int kind, int fd, int64_t value,
                unsigned off, unsigned len)
{
    askr_ev *e = &b->evs[b->n++];

    e->kind = kind;
    e->fd = fd;
    e->value = value;
    e->off = off;
    e->len = len;
}

static void put_addr(struct batch *b, int fd, int peer)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char *slot = b->arena + b->used;

    memset(slot, 0, ADDR_SLOT);
    if ((peer ? getpeername(fd, (struct sockaddr *)&ss, &sl)
              : getsockname(fd, (struct sockaddr *)&ss, &sl)) == 0)
        memcpy(slot, &ss, sl < ADDR_SLOT ? sl : ADDR_SLOT);
    b->used += ADDR_SLOT;
}

/* Returns 0 when the CQE was consumed, 1 when the batch is full and the CQE
 * must stay in the CQ for the next call. */
static int on_accept(askr_ring *r, struct batch *b, int lfd,
                     struct io_uring_cqe *cqe)
{
    struct askr_fd *f = &r->fds[lfd];
    int res = cqe->res;

    if (res >= 0 && b->used + 2 * ADDR_SLOT > b->size)
        return 1;
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        f->flags &= ~F_ACCEPT_ARMED;
        f->inflight--;
    }

    if (res >= 0) {
        unsigned off = b->used;

        put_addr(b, res, 1);
        put_addr(b, res, 0);
        put(b, K_ACCEPT, res, lfd, off, 2 * ADDR_SLOT);
        if (r->accepting)
            arm_accept(r, lfd);     /* submitted with the next wait */
    } else if (res == -ECANCELED) {
        /* Cancelled by a turn to busy; accepting may be back on already
         * (its arm was skipped while this one was still in flight). */
        if (r->accepting)
            arm_accept(r, lfd);
    } else {
        put(b, K_ACCEPT_ERR, lfd, -res, 0, 0);   /* Python decides re-arm */
    }
    return 0;
}

static void give_back(askr_ring *r, unsigned bid)
{
    io_uring_buf_ring_add(r->br, r->bufs + (size_t)bid * r->bufsize,
                          r->bufsize, bid, io_uring_buf_ring_mask(r->nbufs),
                          0);
    io_uring_buf_ring_advance(r->br, 1);
}

static int on_recv(askr_ring *r, struct batch *b, int fd,
                   struct io_uring_cqe *cqe)
{
    struct askr_fd *f = &r->fds[fd];
    int res = cqe->res;
    int rearm = 0;

    if (res > 0 && b->used + (unsigned)res > b->size)
        return 1;
    /* An EOF or error completion may still carry a buffer (the kernel took
     * one before it found nothing to read): it must go back to the ring,
     * or every closed connection drains the ring by one. */
    if (res <= 0 && (cqe->flags & IORING_CQE_F_BUFFER))
        give_back(r, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        f->flags &= ~F_RECV_ARMED;
        f->inflight--;
        rearm = 1;
    }

    if (res > 0) {
        const char *src = f->rbuf;
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

        if (cqe->flags & IORING_CQE_F_BUFFER)
            src = r->bufs + (size_t)bid * r->bufsize;
        memcpy(b->arena + b->used, src, res);
        if (cqe->flags & IORING_CQE_F_BUFFER)
            give_back(r, bid);     /* copied out: the kernel may reuse it */
        put(b, K_DATA, fd, 0, b->used, res);
        b->used += res;
        r->st_bytes_in += res;
    } else if (res == 0) {
        f->flags &= ~F_WATCHED;
        put(b, K_EOF, fd, 0, 0, 0);
        rearm = 0;
    } else if (res == -ENOBUFS) {
        r->st_enobufs++;           /* buffers come back within this pass */
    } else if (res != -ECANCELED) {
        f->flags &= ~F_WATCHED;
        put(b, K_RECV_ERR, fd, -res, 0, 0);
        rearm = 0;
    }

    if (rearm && (f->flags & F_WATCHED) && !(f->flags & F_PAUSED))
        arm_recv(r, fd);
    return 0;
}

static void file_go(askr_ring *r, struct batch *b, int fd,
                    struct askr_fd *f);

static int on_send(askr_ring *r, struct batch *b, int fd,
                   struct io_uring_cqe *cqe)
{
    struct askr_fd *f = &r->fds[fd];
    int res = cqe->res;

    if (res > 0) {
        f->sdone += res;
        r->st_bytes_out += res;
        /* A cancelled send that had made progress completes with its byte
         * count, not -ECANCELED: when closing, it must not be re-armed. */
        if (f->sdone < f->slen && (f->flags & F_CLOSING))
            res = -ECANCELED;
        else if (f->sdone < f->slen) {
            r->st_partial_sends++;   /* the rest goes out with the next wait */
            if (arm_send(r, fd, f) == 0)
                return 0;
            res = -EBUSY;
        }
    }

    f->inflight--;
    f->sbuf = NULL;
    if (res > 0 && (f->flags & F_FILE) && !(f->flags & F_CLOSING)) {
        file_go(r, b, fd, f);   /* the file range follows the buffer */
        return 0;
    }
    f->flags &= ~F_SEND_ARMED;
    file_drop(f);
    if (res > 0)
        put(b, K_SEND_DONE, fd, f->slen, 0, 0);
    else if (res != -ECANCELED)
        put(b, K_SEND_ERR, fd, res == 0 ? EPIPE : -res, 0, 0);
    return 0;
}

/* Send more of the file; when the transfer ends, report the buffer and
 * the file range as one send. */
static void file_go(askr_ring *r, struct batch *b, int fd, struct askr_fd *f)
{
    int ret = file_step(r, fd, f);

    if (ret == 0 && arm_file_poll(r, fd, f) == 0)
        return;   /* on_file_poll goes on */
    if (ret == 0)
        ret = -EBUSY;
    f->flags &= ~F_SEND_ARMED;
    file_drop(f);
    if (ret > 0)
        put(b, K_SEND_DONE, fd, f->slen + f->ftotal, 0, 0);
    else
        put(b, K_SEND_ERR, fd, -ret, 0, 0);
}

static int on_file_poll(askr_ring *r, struct batch *b, int fd,
                        struct io_uring_cqe *cqe)
{
    struct askr_fd *f = &r->fds[fd];
    int res = cqe->res;

    f->flags &= ~F_FILE_POLL;
    f->inflight--;
    if (!(f->flags & F_FILE))
        return 0;
    if ((f->flags & F_CLOSING) || res == -ECANCELED) {
        f->flags &= ~F_SEND_ARMED;
        file_drop(f);
    } else if (res < 0) {
        f->flags &= ~F_SEND_ARMED;
        file_drop(f);
        put(b, K_SEND_ERR, fd, -res, 0, 0);
    } else {
        file_go(r, b, fd, f);   /* room, or POLLERR/POLLHUP: sendfile says */
    }
    return 0;
}

static int64_t now_ns(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/*
 * Submit and wait for one CQE or timeout_ns, in one io_uring_enter.
 *
 * With EXT_ARG (5.11+) the timeout rides in the enter call itself.
 * Without it, liburing would queue a timeout SQE that outlives the wait
 * when something else completes first; its late -ETIME then cuts a later
 * wait short.  So we queue our own timeout with a completion count of
 * one: it ends on the first other completion or on expiry, never later,
 * and its CQE (OP_WAKE) is dropped by the drain.
 */
static int submit_and_wait_for(askr_ring *r, int64_t timeout_ns)
{
    struct __kernel_timespec ts;
    struct io_uring_sqe *sqe;

    ts.tv_sec = timeout_ns / 1000000000;
    ts.tv_nsec = timeout_ns % 1000000000;
    if (r->features & FEAT_EXT_ARG) {
        struct io_uring_cqe *cqe;

        return io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, &ts,
                                                NULL);
    }

    sqe = io_uring_get_sqe(&r->ring);
    if (!sqe) {
        io_uring_submit(&r->ring);
        sqe = io_uring_get_sqe(&r->ring);
    }
    if (!sqe)
        return io_uring_submit_and_get_events(&r->ring);
    io_uring_prep_timeout(sqe, &ts, 1, 0);
    io_uring_sqe_set_data64(sqe, ud_encode(OP_WAKE, -1));
    return io_uring_submit_and_wait(&r->ring, 1);
}

/* Drain every ready CQE into b; returns how many CQEs were consumed. */
static unsigned drain(askr_ring *r, struct batch *b)
{
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;

    io_uring_for_each_cqe(&r->ring, head, cqe) {
        int op, fd, full = 0;

        if (b->n >= b->max)
            break;
        ud_decode(cqe->user_data, &op, &fd);
        if (op == OP_PROBE && r->br && (cqe->flags & IORING_CQE_F_BUFFER))
            give_back(r, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        if (fd >= 0 && fd < r->nfds) {
            if (op == OP_ACCEPT)
                full = on_accept(r, b, fd, cqe);
            else if (op == OP_RECV)
                full = on_recv(r, b, fd, cqe);
            else if (op == OP_SEND)
                full = on_send(r, b, fd, cqe);
            else if (op == OP_FILE)
                full = on_file_poll(r, b, fd, cqe);
        }
        if (full)
            break;
        seen++;
    }
    io_uring_cq_advance(&r->ring, seen);
    r->st_cqes += seen;
    return seen;
}

/*
 * The loop's one crossing: submit all prepared SQEs and wait (timeout_ns <
 * 0: forever, 0: not at all), then drain every ready CQE into evs/arena.
 * Returns the number of events, or -errno.
 *
 * A wake that yields no event for Python (a cancel's completion, a send
 * finished with more queued) waits again until the deadline, so a timed
 * wait never returns early with nothing: Python's timers rely on that.
 */
int askr_ring_wait(askr_ring *r, int64_t timeout_ns, askr_ev *evs, int max,
                   char *arena, unsigned arena_size)
{
    struct batch b = { evs, 0, max, arena, 0, arena_size };
    int64_t deadline = timeout_ns > 0 ? now_ns() + timeout_ns : 0;
    int ret;

    for (;;) {
        r->st_enters++;
        if (io_uring_cq_ready(&r->ring) || timeout_ns == 0)
            ret = io_uring_submit_and_get_events(&r->ring);
        else if (timeout_ns < 0)
            ret = io_uring_submit_and_wait(&r->ring, 1);
        else
            ret = submit_and_wait_for(r, timeout_ns);
        if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN
            && ret != -EBUSY)
            return ret;

        drain(r, &b);
        if (b.n || timeout_ns == 0 || ret == -EINTR)
            return b.n;
        if (timeout_ns > 0) {
            timeout_ns = deadline - now_ns();
            if (timeout_ns <= 0)
                return 0;
        }
    }
}
