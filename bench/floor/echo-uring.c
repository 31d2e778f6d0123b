/*
 * The io_uring floor for the echo benchmark: one thread, one ring, raw
 * syscalls (no liburing), the same protocol as echo-server.c, the epoll floor.
 *
 *   echo-uring [port] [options]   prints "listening <port>", runs until killed
 *   echo-uring probe              exits 0 when this kernel lets it set up its ring
 *
 * Default (the floor): one multishot accept into direct descriptors (a sparse
 * registered file table: no fget/fput per request); per connection one
 * multishot recv that picks its buffers from a provided-buffer ring; each
 * buffer received is sent back from where it landed and goes back to the
 * buffer ring once its send completes. A connection has at most one send in
 * flight (two sends on one socket could complete out of order), the buffers
 * waiting behind it in a FIFO. The ring is SINGLE_ISSUER | DEFER_TASKRUN and
 * each loop iteration is one io_uring_enter (on the registered ring fd):
 * submit what the last batch of completions queued, and wait for at least
 * one more.
 *
 * TCP_NODELAY is set on the listening socket: Linux copies it to the sockets
 * accept() makes (a direct descriptor has no fd for setsockopt).
 *
 * Options, for measuring the alternatives:
 *   --plain      single-shot recv into a per-connection buffer, then send, then
 *                recv again (no provided buffers)
 *   --coop       COOP_TASKRUN | TASKRUN_FLAG instead of SINGLE_ISSUER | DEFER_TASKRUN
 *   --no-defer   neither
 *   --no-fixed   plain file descriptors instead of direct descriptors
 *   --bufsize N  bytes per buffer (default 16384)
 *   --nbufs N    buffers in the buffer ring, a power of two (default 1024)
 *
 * The buffer ring hands buffers out in FIFO order, so every buffer in it is
 * touched in turn: the pool is the working set. 1,024 x 16 KiB covers 1,000
 * connections in ping-pong (each holds at most one buffer at a time) in 16 MiB.
 *
 * Measured against the epoll floor (Linux 6.18, a 2-core VM; `npm run bench --
 * echo --servers c,c-uring,c-uring-plain`, the median of 4 runs of 9): server
 * CPU per round trip 0.86x at 64 B x 100, 0.77x at 64 B x 1,000, 0.76x at
 * 16 KiB x 100; round trips/s even at 64 B x 100 and 16 KiB, 1.09x at 1,000.
 * The less idle the machine, the more completions each enter reaps and the
 * wider the gap. --plain costs as much CPU at 64 B x 100 and 1.1x at the
 * others (though its round trips/s at 16 KiB were higher in 2 runs of 4);
 * --coop, --no-defer and --no-fixed were no better, within the noise.
 *
 * Backpressure: a multishot recv that ends (ENOBUFS, or no IORING_CQE_F_MORE)
 * is re-armed only once the connection's queued sends are done, so a peer
 * that does not read stops being read from (and holds only what it sent).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "floor.h"

/* What a completion is for: the low 3 bits of user_data; the connection is above them. */
enum { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_CLOSE, OP_CANCEL };
#define UD(op, c) (((uint64_t)(c) << 3) | (op))
#define NONE 0xffffffffu

struct conn {
  uint8_t open;         /* accepted and not yet closed */
  uint8_t recv_armed;   /* a recv (multishot or single) is in flight */
  uint8_t send_armed;   /* a send is in flight */
  uint8_t closing;      /* EOF or error seen: close once nothing is in flight */
  uint8_t rearm;        /* the multishot recv ended while sends were queued */
  uint32_t head, tail;  /* the FIFO of received buffers to send (buffer ids), NONE when empty */
  uint32_t off;         /* bytes of the head buffer already sent */
  uint32_t len;         /* --plain: bytes in buf to send */
  char *buf;            /* --plain: the connection's own buffer */
};

static struct {
  int fd;
  int enter_fd;         /* the registered ring's index when enter_flags has IORING_ENTER_REGISTERED_RING */
  unsigned enter_flags;
  unsigned sq_entries, sq_mask, cq_mask;
  unsigned sq_tail; /* ours: the kernel consumes every SQE at each enter (no SQPOLL) */
  unsigned to_submit;
  _Atomic unsigned *sq_ktail, *cq_khead, *cq_ktail;
  struct io_uring_sqe *sqes;
  struct io_uring_cqe *cqes;
} ring;

static struct {
  struct io_uring_buf_ring *br;
  unsigned mask;
  uint16_t tail; /* ours, published once per loop iteration */
  char *base;
  uint32_t size;
  uint32_t *next; /* the per-connection FIFOs, linked through buffer ids */
  uint32_t *len;  /* bytes received into each buffer */
} bufs;

static struct conn *conns;
static unsigned nconns;
static int fixed = 1, plain = 0, lfd;

static int sys_setup(unsigned entries, struct io_uring_params *p) {
  return (int)syscall(__NR_io_uring_setup, entries, p);
}
static int sys_enter(unsigned submit, unsigned wait, unsigned flags) {
  return (int)syscall(__NR_io_uring_enter, ring.enter_fd, submit, wait, flags | ring.enter_flags, NULL, 0);
}
static int sys_register(unsigned op, void *arg, unsigned nr) {
  return (int)syscall(__NR_io_uring_register, ring.fd, op, arg, nr);
}

/* Submits what is queued and, with wait, waits for a completion; retries on EINTR. */
static void enter(unsigned wait) {
  for (;;) {
    atomic_store_explicit(ring.sq_ktail, ring.sq_tail, memory_order_release);
    int r = sys_enter(ring.to_submit, wait, wait ? IORING_ENTER_GETEVENTS : 0);
    if (r >= 0) {
      ring.to_submit -= (unsigned)r;
      if (ring.to_submit == 0) return;
      continue; /* not all consumed (EBUSY-like back-off): go again */
    }
    if (errno == EINTR) continue;
    if (errno == EBUSY || errno == EAGAIN) {
      /* Completions must be reaped first: the caller's loop does that. */
      if (wait) return;
      die("io_uring_enter (SQ full and CQ full)");
    }
    die("io_uring_enter");
  }
}

/* A zeroed SQE; when the SQ is full, what is in it is submitted first. */
static struct io_uring_sqe *get_sqe(void) {
  if (ring.to_submit == ring.sq_entries) enter(0);
  unsigned i = ring.sq_tail & ring.sq_mask;
  ring.sq_tail++;
  ring.to_submit++;
  struct io_uring_sqe *sqe = &ring.sqes[i];
  memset(sqe, 0, sizeof(*sqe));
  return sqe;
}

static void target(struct io_uring_sqe *sqe, unsigned c) {
  sqe->fd = (int)c;
  if (fixed) sqe->flags |= IOSQE_FIXED_FILE;
}

static void arm_accept(void) {
  struct io_uring_sqe *sqe = get_sqe();
  sqe->opcode = IORING_OP_ACCEPT;
  sqe->fd = lfd;
  sqe->ioprio = IORING_ACCEPT_MULTISHOT;
  if (fixed) sqe->file_index = IORING_FILE_INDEX_ALLOC;
  sqe->user_data = UD(OP_ACCEPT, 0);
}

static void arm_recv(unsigned c) {
  struct io_uring_sqe *sqe = get_sqe();
  sqe->opcode = IORING_OP_RECV;
  target(sqe, c);
  if (plain) {
    sqe->addr = (uint64_t)(uintptr_t)conns[c].buf;
    sqe->len = bufs.size;
  } else {
    sqe->ioprio = IORING_RECV_MULTISHOT;
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = 0;
  }
  sqe->user_data = UD(OP_RECV, c);
  conns[c].recv_armed = 1;
}

static void arm_send(unsigned c, const char *p, uint32_t len) {
  struct io_uring_sqe *sqe = get_sqe();
  sqe->opcode = IORING_OP_SEND;
  target(sqe, c);
  sqe->addr = (uint64_t)(uintptr_t)p;
  sqe->len = len;
  sqe->msg_flags = MSG_NOSIGNAL | MSG_WAITALL; /* WAITALL: the kernel retries a short send itself */
  sqe->user_data = UD(OP_SEND, c);
  conns[c].send_armed = 1;
}

static void send_head(unsigned c) {
  struct conn *k = &conns[c];
  uint32_t b = k->head;
  arm_send(c, bufs.base + (size_t)b * bufs.size + k->off, bufs.len[b] - k->off);
}

/* Hands buffer b back to the kernel (published at the next enter). */
static void recycle(uint32_t b) {
  struct io_uring_buf *e = &bufs.br->bufs[bufs.tail & bufs.mask];
  e->addr = (uint64_t)(uintptr_t)(bufs.base + (size_t)b * bufs.size);
  e->len = bufs.size;
  e->bid = (uint16_t)b;
  bufs.tail++;
}

static void publish_bufs(void) {
  _Atomic uint16_t *t = (_Atomic uint16_t *)&bufs.br->tail;
  atomic_store_explicit(t, bufs.tail, memory_order_release);
}

/*
 * Stops a connection: cancels its multishot recv if one is still armed (a
 * send failed); it is closed once nothing is in flight. Not IORING_OP_SHUTDOWN:
 * that always runs in an io-wq worker, which looks the direct descriptor up
 * only then -- after the close, when a new connection may hold the slot.
 * A cancel runs at submission, before the close can be queued.
 */
static void fail(unsigned c) {
  struct conn *k = &conns[c];
  if (k->closing) return;
  k->closing = 1;
  if (k->recv_armed) {
    struct io_uring_sqe *sqe = get_sqe();
    sqe->opcode = IORING_OP_ASYNC_CANCEL;
    sqe->addr = UD(OP_RECV, c);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    sqe->user_data = UD(OP_CANCEL, c);
  }
}

static void maybe_close(unsigned c) {
  struct conn *k = &conns[c];
  if (!k->closing || k->recv_armed || k->send_armed) return;
  while (k->head != NONE) {
    uint32_t b = k->head;
    k->head = bufs.next[b];
    recycle(b);
  }
  k->open = 0;
  if (fixed) {
    struct io_uring_sqe *sqe = get_sqe();
    sqe->opcode = IORING_OP_CLOSE;
    sqe->file_index = c + 1;
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    sqe->user_data = UD(OP_CLOSE, c);
  } else {
    close((int)c);
  }
}

static void on_accept(int res, unsigned flags) {
  if (!(flags & IORING_CQE_F_MORE)) arm_accept();
  if (res < 0) return; /* ENFILE, EMFILE, ECONNABORTED...: the listener goes on */
  unsigned c = (unsigned)res;
  if (c >= nconns) die("accept: descriptor beyond the connection table");
  struct conn *k = &conns[c];
  char *buf = k->buf;
  memset(k, 0, sizeof(*k));
  k->buf = buf;
  k->open = 1;
  k->head = k->tail = NONE;
  if (plain && k->buf == NULL && (k->buf = malloc(bufs.size)) == NULL) die("malloc");
  arm_recv(c);
}

static void on_recv(unsigned c, int res, unsigned flags) {
  struct conn *k = &conns[c];
  int more = (flags & IORING_CQE_F_MORE) != 0;
  if (!more) k->recv_armed = 0;
  if (plain) {
    if (res > 0 && !k->closing) {
      k->len = (uint32_t)res;
      k->off = 0;
      arm_send(c, k->buf, k->len);
    } else {
      fail(c);
    }
    maybe_close(c);
    return;
  }
  if (res > 0) {
    uint32_t b = flags >> IORING_CQE_BUFFER_SHIFT;
    bufs.len[b] = (uint32_t)res;
    bufs.next[b] = NONE;
    if (k->closing) {
      recycle(b);
    } else {
      if (k->head == NONE) {
        k->head = k->tail = b;
        k->off = 0;
      } else {
        bufs.next[k->tail] = b;
        k->tail = b;
      }
      if (!k->send_armed) send_head(c);
    }
  } else if (res != -ENOBUFS) {
    fail(c); /* EOF or an error */
  }
  if (!more && !k->closing) {
    if (k->head == NONE)
      arm_recv(c);
    else
      k->rearm = 1; /* after the queued sends: backpressure */
  }
  maybe_close(c);
}

static void on_send(unsigned c, int res) {
  struct conn *k = &conns[c];
  k->send_armed = 0;
  if (res <= 0 || k->closing) {
    fail(c);
    maybe_close(c);
    return;
  }
  k->off += (uint32_t)res;
  if (plain) {
    if (k->off < k->len)
      arm_send(c, k->buf + k->off, k->len - k->off);
    else
      arm_recv(c);
    return;
  }
  uint32_t b = k->head;
  if (k->off < bufs.len[b]) {
    send_head(c); /* a short send: the rest first */
    return;
  }
  k->head = bufs.next[b];
  k->off = 0;
  recycle(b);
  if (k->head != NONE) {
    send_head(c);
  } else if (k->rearm) {
    k->rearm = 0;
    arm_recv(c);
  }
}

static void setup_ring(unsigned setup_flags) {
  struct io_uring_params p;
  memset(&p, 0, sizeof(p));
  p.flags = setup_flags | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
  p.cq_entries = 16384;
  ring.fd = sys_setup(4096, &p);
  if (ring.fd < 0) die("io_uring_setup");
  if (!(p.features & IORING_FEAT_SINGLE_MMAP)) {
    fprintf(stderr, "io_uring: no IORING_FEAT_SINGLE_MMAP\n");
    exit(1);
  }
  size_t sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  size_t cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  size_t size = sq_size > cq_size ? sq_size : cq_size;
  char *q = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring.fd, IORING_OFF_SQ_RING);
  if (q == MAP_FAILED) die("mmap SQ/CQ ring");
  ring.sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, ring.fd, IORING_OFF_SQES);
  if (ring.sqes == MAP_FAILED) die("mmap SQEs");
  ring.sq_entries = p.sq_entries;
  ring.sq_mask = *(unsigned *)(q + p.sq_off.ring_mask);
  ring.sq_ktail = (_Atomic unsigned *)(q + p.sq_off.tail);
  unsigned *array = (unsigned *)(q + p.sq_off.array);
  for (unsigned i = 0; i < p.sq_entries; i++) array[i] = i; /* SQE i at slot i, for good */
  ring.sq_tail = *(unsigned *)(q + p.sq_off.tail);
  ring.cq_mask = *(unsigned *)(q + p.cq_off.ring_mask);
  ring.cq_khead = (_Atomic unsigned *)(q + p.cq_off.head);
  ring.cq_ktail = (_Atomic unsigned *)(q + p.cq_off.tail);
  ring.cqes = (struct io_uring_cqe *)(q + p.cq_off.cqes);
  ring.enter_fd = ring.fd;
  /* The ring's own fd registered: io_uring_enter skips the fd lookup (5.18+; without it, the plain fd). */
  struct io_uring_rsrc_update up = {.offset = -1U, .data = (uint64_t)ring.fd};
  if (sys_register(IORING_REGISTER_RING_FDS, &up, 1) == 1) {
    ring.enter_fd = (int)up.offset;
    ring.enter_flags = IORING_ENTER_REGISTERED_RING;
  }
}

static void setup_bufs(unsigned nbufs) {
  size_t ring_size = nbufs * sizeof(struct io_uring_buf);
  bufs.br = mmap(NULL, ring_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (bufs.br == MAP_FAILED) die("mmap buffer ring");
  bufs.base = mmap(NULL, (size_t)nbufs * bufs.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (bufs.base == MAP_FAILED) die("mmap buffers");
  bufs.next = malloc(nbufs * sizeof(uint32_t));
  bufs.len = malloc(nbufs * sizeof(uint32_t));
  if (bufs.next == NULL || bufs.len == NULL) die("malloc");
  bufs.mask = nbufs - 1;
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof(reg));
  reg.ring_addr = (uint64_t)(uintptr_t)bufs.br;
  reg.ring_entries = nbufs;
  reg.bgid = 0;
  if (sys_register(IORING_REGISTER_PBUF_RING, &reg, 1) < 0) die("IORING_REGISTER_PBUF_RING");
  for (unsigned b = 0; b < nbufs; b++) recycle(b);
  publish_bufs();
}

int main(int argc, char **argv) {
  int port = 0, probe = 0;
  unsigned setup_flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  unsigned nbufs = 1024;
  bufs.size = 16384;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "probe") == 0) probe = 1;
    else if (strcmp(a, "--plain") == 0) plain = 1;
    else if (strcmp(a, "--coop") == 0) setup_flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    else if (strcmp(a, "--no-defer") == 0) setup_flags = 0;
    else if (strcmp(a, "--no-fixed") == 0) fixed = 0;
    else if (strcmp(a, "--bufsize") == 0 && i + 1 < argc) bufs.size = (uint32_t)atoi(argv[++i]);
    else if (strcmp(a, "--nbufs") == 0 && i + 1 < argc) nbufs = (unsigned)atoi(argv[++i]);
    else if (a[0] != '-') port = atoi(a);
    else {
      fprintf(stderr, "usage: %s [port] [--plain] [--coop|--no-defer] [--no-fixed] [--bufsize N] [--nbufs N]\n", argv[0]);
      return 2;
    }
  }
  if (nbufs == 0 || nbufs > 32768 || (nbufs & (nbufs - 1)) != 0 || bufs.size == 0) {
    fprintf(stderr, "--nbufs: a power of two up to 32768; --bufsize: > 0\n");
    return 2;
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  nconns = rl.rlim_cur > 65536 ? 65536 : (unsigned)rl.rlim_cur;
  setup_ring(setup_flags);
  if (!plain) setup_bufs(nbufs);
  if (fixed) {
    struct io_uring_rsrc_register reg;
    memset(&reg, 0, sizeof(reg));
    reg.nr = nconns;
    reg.flags = IORING_RSRC_REGISTER_SPARSE;
    if (sys_register(IORING_REGISTER_FILES2, &reg, sizeof(reg)) < 0) die("IORING_REGISTER_FILES2 (sparse)");
  }
  if (probe) return 0;
  conns = calloc(nconns, sizeof(*conns));
  if (conns == NULL) die("calloc");

  lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0) die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* inherited by accepted sockets */
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0) die("bind");
  if (listen(lfd, 4096) < 0) die("listen");
  socklen_t alen = sizeof(addr);
  getsockname(lfd, (struct sockaddr *)&addr, &alen);
  printf("listening %d\n", ntohs(addr.sin_port));
  fflush(stdout);

  arm_accept();
  for (;;) {
    if (!plain) publish_bufs();
    enter(1);
    unsigned head = atomic_load_explicit(ring.cq_khead, memory_order_relaxed);
    unsigned tail = atomic_load_explicit(ring.cq_ktail, memory_order_acquire);
    for (; head != tail; head++) {
      struct io_uring_cqe *cqe = &ring.cqes[head & ring.cq_mask];
      uint64_t ud = cqe->user_data;
      unsigned c = (unsigned)(ud >> 3);
      switch (ud & 7) {
        case OP_ACCEPT:
          on_accept(cqe->res, cqe->flags);
          break;
        case OP_RECV:
          on_recv(c, cqe->res, cqe->flags);
          break;
        case OP_SEND:
          on_send(c, cqe->res);
          break;
        default:
          break; /* a failed cancel (the recv ended already) or close: nothing to do */
      }
    }
    atomic_store_explicit(ring.cq_khead, head, memory_order_release);
  }
}
