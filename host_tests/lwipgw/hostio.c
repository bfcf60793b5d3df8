/* Linux side of lwipgw; see hostio.h. No lwIP headers in this file. */
#define _GNU_SOURCE
#include "hostio.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int hio_tap_open(const char *name)
{
    struct ifreq ifr;
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* A non-blocking socket of type, with host:port in *sa: its fd, or -errno (-EINVAL for a bad
 * host). */
static int socket_for(int type, const char *host, int port, struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
        close(fd);
        return -EINVAL;
    }
    return fd;
}

int hio_connect(const char *host, int port)
{
    struct sockaddr_in sa;
    int one = 1;
    int fd = socket_for(SOCK_STREAM, host, port, &sa);
    if (fd < 0)
        return fd;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int hio_connect_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return errno;
    return err;
}

int hio_connected(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    return poll(&p, 1, 0) == 1 && (p.revents & POLLOUT) && hio_connect_error(fd) == 0;
}

int hio_shutdown_wr(int fd)
{
    return shutdown(fd, SHUT_WR) < 0 ? -errno : 0;
}

void hio_close_reset(int fd)
{
    struct linger lg = { 1, 0 };
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

int hio_listen_queue(const char *host, int port, unsigned *queued, unsigned *backlog)
{
    static int fd = -1;      /* kept open: asked every few ms while pcbs wait */
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 req;
    } msg;
    static char buf[16384];
    struct in_addr want;
    int found = -ENOENT;

    if (inet_pton(AF_INET, host, &want) != 1)
        return -EINVAL;
    if (fd < 0) {
        fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (fd < 0)
            return -errno;
    }
    /* A dump of the listening IPv4 TCP sockets only: a short list. */
    memset(&msg, 0, sizeof msg);
    msg.nlh.nlmsg_len = sizeof msg;
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    msg.req.sdiag_family = AF_INET;
    msg.req.sdiag_protocol = IPPROTO_TCP;
    msg.req.idiag_states = 1u << 10;    /* TCP_LISTEN (include/net/tcp_states.h) */
    if (send(fd, &msg, sizeof msg, 0) < 0)
        return -errno;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        struct nlmsghdr *h;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            const struct inet_diag_msg *m = NLMSG_DATA(h);
            if (h->nlmsg_type == NLMSG_DONE)
                return found;
            if (h->nlmsg_type == NLMSG_ERROR)
                return -EIO;
            /* For a listener the kernel reports its accept queue as rqueue
             * (sk_ack_backlog) and its listen() backlog as wqueue. */
            if (ntohs(m->id.idiag_sport) == port &&
                (m->id.idiag_src[0] == want.s_addr || m->id.idiag_src[0] == htonl(INADDR_ANY))) {
                *queued = m->idiag_rqueue;
                *backlog = m->idiag_wqueue;
                found = 0;
            }
        }
    }
}

int hio_local_port(int fd)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        return -errno;
    return ntohs(sa.sin_port);
}

int hio_unread(int fd)
{
    int n = 0;
    if (ioctl(fd, FIONREAD, &n) < 0)
        return 0;
    return n;
}

int hio_udp_bind(const char *host, int port)
{
    struct sockaddr_in sa;
    int fd = socket_for(SOCK_DGRAM, host, port, &sa);
    if (fd < 0)
        return fd;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int hio_udp_recv(int fd, char *buf, unsigned len, struct hio_addr *from)
{
    socklen_t alen = sizeof from->raw;
    ssize_t n = recvfrom(fd, buf, len, 0, (struct sockaddr *)from->raw, &alen);
    if (n < 0)
        return -errno;
    from->len = alen;
    return (int)n;
}

int hio_udp_send(int fd, const char *buf, unsigned len, const struct hio_addr *to)
{
    if (sendto(fd, buf, len, 0, (const struct sockaddr *)to->raw, to->len) < 0)
        return -errno;
    return 0;
}

uint32_t hio_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}
