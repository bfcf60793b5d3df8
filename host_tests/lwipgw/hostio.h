/*
 * Linux side of lwipgw: TAP device, upstream TCP sockets, monotonic clock.
 * Kept apart from lwIP's headers because the netinet headers and lwIP both define
 * TCP_MSS, htons and friends. Only plain C types cross this boundary.
 */
#ifndef LWIPGW_HOSTIO_H
#define LWIPGW_HOSTIO_H

#include <stdint.h>

/* Create (non-persistent) TAP device `name`, no packet-info header,
 * non-blocking. Returns the fd or -errno. The device vanishes when the fd
 * is closed, i.e. when the gateway exits however it exits. */
int hio_tap_open(const char *name);

/* Non-blocking TCP connect to host:port (IPv4 literal). Returns the fd
 * (connect possibly in progress) or -errno. TCP_NODELAY is set so the
 * relay adds no Nagle delay on the loopback leg. */
int hio_connect(const char *host, int port);

/* 0 once a non-blocking connect succeeded, else the errno it failed with. */
int hio_connect_error(int fd);

/* Without waiting: 1 if the non-blocking connect on fd has succeeded, else 0
 * (still in progress, or failed: hio_connect_error() says which). */
int hio_connected(int fd);

/* Half-close: the upstream reads EOF, its own writes still reach us. */
int hio_shutdown_wr(int fd);

/* close() with SO_LINGER 0, so the peer gets a RST, mirroring a reset. */
void hio_close_reset(int fd);

/* The upstream's accept queue, asked of the kernel (sock_diag, like `ss -lt`):
 * the TCP listener on host:port (or on 0.0.0.0:port) in this namespace.
 * *queued: connections the kernel has established that the upstream has not
 * accept()ed yet; *backlog: the backlog it passed to listen(). Returns 0, or
 * -ENOENT when nothing listens there, or -errno. */
int hio_listen_queue(const char *host, int port, unsigned *queued, unsigned *backlog);

/* The local port of a socket (getsockname), or -errno. The gateway records it for each
 * upstream connection: it is the peer port the firmware sees, so the control socket's
 * requests name a connection by it. */
int hio_local_port(int fd);

/* Bytes waiting unread in fd's receive queue (FIONREAD); 0 when it cannot tell. */
int hio_unread(int fd);

/* A datagram's sender, kept opaque here (struct sockaddr_storage fits). */
struct hio_addr {
    unsigned long long raw[16];  /* 128 bytes, aligned for any sockaddr */
    unsigned len;
};

/* Non-blocking UDP socket bound to host:port (IPv4 literal): the fd or -errno. */
int hio_udp_bind(const char *host, int port);

/* One datagram (without waiting): its length, or -errno (-EAGAIN: none). */
int hio_udp_recv(int fd, char *buf, unsigned len, struct hio_addr *from);

/* One datagram to `to`; 0 or -errno. */
int hio_udp_send(int fd, const char *buf, unsigned len, const struct hio_addr *to);

/* Monotonic milliseconds (also lwIP's sys_now()). */
uint32_t hio_now_ms(void);

#endif
