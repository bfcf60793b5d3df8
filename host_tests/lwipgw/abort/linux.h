/*
 * Linux side of abort_check: its private network namespace, the TAP's address, and the Linux
 * TCP client. Apart from lwIP's headers (they define their own sockaddr, TCP_MSS, FD_SET...);
 * only plain C types cross. Errors are negative errno values (Linux's, which lwIP's errno.h
 * also uses here: LWIP_ERRNO_STDINCLUDE).
 */
#ifndef ABORT_CHECK_LINUX_H
#define ABORT_CHECK_LINUX_H

/* Move this process (call it before any thread starts) into a new, unnamed network namespace:
 * it and the TAP in it vanish when the process exits, however it exits. */
int lx_private_netns(void);

/* Give interface `ifname` the IPv4 address ip/mask and bring it up. */
int lx_if_up(const char *ifname, const char *ip, const char *mask);

/* TCP connect to ip:port within timeout_ms. rcvbuf > 0 sets SO_RCVBUF first (a small receive
 * window). Returns the fd and stores the local port, or -errno. */
int lx_connect(const char *ip, int port, int rcvbuf, int timeout_ms, int *local_port);

/* Wait up to timeout_ms, then receive: bytes (> 0), 0 at EOF, or -errno (-ETIMEDOUT if
 * nothing came). */
int lx_recv(int fd, void *buf, int len, int timeout_ms);

int lx_send(int fd, const void *buf, int len);

/* 1 if fd became readable within timeout_ms, else 0 (lwIP's sockets.h has its own pollfd). */
int lx_readable(int fd, int timeout_ms);
void lx_close(int fd);

/* "ECONNRESET" for -ECONNRESET, "EOF" for 0, "ok" for > 0. */
const char *lx_errname(int ret);

void lx_sleep_ms(int ms);

#endif /* ABORT_CHECK_LINUX_H */
