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

/* Monotonic milliseconds (also lwIP's sys_now()). */
uint32_t hio_now_ms(void);

#endif
