/* Linux side of abort_check; see linux.h. No lwIP headers in this file. */
#define _GNU_SOURCE
#include "linux.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int lx_private_netns(void)
{
    return unshare(CLONE_NEWNET) < 0 ? -errno : 0;
}

static int set_addr(int sock, const char *ifname, unsigned long req, const char *ip)
{
    struct ifreq ifr;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;

    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
    sin->sin_family = AF_INET;
    if (inet_pton(AF_INET, ip, &sin->sin_addr) != 1) {
        return -EINVAL;
    }
    return ioctl(sock, req, &ifr) < 0 ? -errno : 0;
}

int lx_if_up(const char *ifname, const char *ip, const char *mask)
{
    struct ifreq ifr;
    int err;
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    if (sock < 0) {
        return -errno;
    }
    err = set_addr(sock, ifname, SIOCSIFADDR, ip);
    if (err == 0) {
        err = set_addr(sock, ifname, SIOCSIFNETMASK, mask);
    }
    if (err == 0) {
        memset(&ifr, 0, sizeof ifr);
        strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
        if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0) {
            err = -errno;
        } else {
            ifr.ifr_flags |= IFF_UP;
            err = ioctl(sock, SIOCSIFFLAGS, &ifr) < 0 ? -errno : 0;
        }
    }
    close(sock);
    return err;
}

int lx_connect(const char *ip, int port, int rcvbuf, int timeout_ms, int *local_port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    struct pollfd pfd;
    int err = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        return -errno;
    }
    if (rcvbuf > 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
        err = -EINVAL;
    } else if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
        err = -errno;
    } else {
        pfd.fd = fd;
        pfd.events = POLLOUT;
        if (poll(&pfd, 1, timeout_ms) <= 0) {
            err = -ETIMEDOUT;
        } else {
            socklen_t elen = sizeof err;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
            err = -err;
        }
    }
    if (err == 0 && getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        err = -errno;
    }
    if (err != 0) {
        close(fd);
        return err;
    }
    *local_port = ntohs(sa.sin_port);
    return fd;
}

int lx_recv(int fd, void *buf, int len, int timeout_ms)
{
    struct pollfd pfd;
    ssize_t n;

    pfd.fd = fd;
    pfd.events = POLLIN;
    if (poll(&pfd, 1, timeout_ms) <= 0) {
        return -ETIMEDOUT;
    }
    n = recv(fd, buf, (size_t)len, MSG_DONTWAIT);
    return n < 0 ? -errno : (int)n;
}

int lx_send(int fd, const void *buf, int len)
{
    ssize_t n = send(fd, buf, (size_t)len, MSG_NOSIGNAL);
    return n < 0 ? -errno : (int)n;
}

int lx_readable(int fd, int timeout_ms)
{
    struct pollfd pfd;

    pfd.fd = fd;
    pfd.events = POLLIN;
    return poll(&pfd, 1, timeout_ms) > 0;
}

void lx_close(int fd)
{
    close(fd);
}

const char *lx_errname(int ret)
{
    const char *name;

    if (ret > 0) {
        return "ok";
    }
    if (ret == 0) {
        return "EOF";
    }
    name = strerrorname_np(-ret);
    return name != NULL ? name : "E?";
}

void lx_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}
