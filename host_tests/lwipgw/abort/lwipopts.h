/*
 * lwIP options for abort_check (host_tests/lwipgw/abort/): lwIP 2.1.3 with its threads,
 * netconns and sockets, as the board runs it, to test tcp_abort_idle.c unchanged.
 *
 * The gateway (../lwipopts.h) runs lwIP bare (NO_SYS=1); this program needs the tcpip thread
 * and the socket layer the firmware's MicroPython sockets sit on. Each option names the
 * ESP-IDF (v5.5) setting it mirrors. Written for this project; Debian's
 * port/include/lwipopts.h is not used.
 */
#ifndef ABORT_CHECK_LWIPOPTS_H
#define ABORT_CHECK_LWIPOPTS_H

/* ABORT_CORE_LOCKING comes from mk/emu.mk: 0 like the board (CONFIG_LWIP_TCPIP_CORE_LOCKING=n,
 * calls are messages to the tcpip thread), 1 for the other path of tcpip_api_call(). */
#ifndef ABORT_CORE_LOCKING
#define ABORT_CORE_LOCKING 0
#endif
#ifndef ABORT_TCP_MSL
#define ABORT_TCP_MSL 6000
#endif

/* ---- system: threads, as in esp-lwip's port --------------------------- */
#define NO_SYS                          0
#define SYS_LIGHTWEIGHT_PROT            1   /* IDF: a mutex (sys_arch_protect) */
#define LWIP_TCPIP_CORE_LOCKING         ABORT_CORE_LOCKING
#define LWIP_TCPIP_CORE_LOCKING_INPUT   0   /* CONFIG_LWIP_TCPIP_CORE_LOCKING_INPUT=n */
#define LWIP_NETCONN_SEM_PER_THREAD     1   /* IDF: 1 */
#define LWIP_NETCONN_FULLDUPLEX         1   /* IDF: 1 */
#define TCPIP_MBOX_SIZE                 32  /* CONFIG_LWIP_TCPIP_RECVMBOX_SIZE=32 */
#define DEFAULT_TCP_RECVMBOX_SIZE       6   /* CONFIG_LWIP_TCP_RECVMBOX_SIZE=6 */
#define DEFAULT_ACCEPTMBOX_SIZE         6   /* CONFIG_LWIP_TCP_ACCEPTMBOX_SIZE=6 */
#define DEFAULT_UDP_RECVMBOX_SIZE       6   /* CONFIG_LWIP_UDP_RECVMBOX_SIZE=6 */
#define LWIP_RAND()                     ((u32_t)rand())
/* The C library's errno and struct timeval, as on the board (newlib there, glibc here). */
#define LWIP_ERRNO_STDINCLUDE           1
#define LWIP_TIMEVAL_PRIVATE            0
#include <sys/time.h>

/* ---- sockets: what MicroPython's esp32 modsocket.c calls --------------- */
#define LWIP_NETCONN                    1
#define LWIP_SOCKET                     1
#define LWIP_COMPAT_SOCKETS             0   /* lwip_* names only: no clash with libc's */
#define LWIP_POSIX_SOCKETS_IO_NAMES     0
#define LWIP_SOCKET_SELECT              1   /* modsocket's poll is select() */
#define LWIP_SOCKET_POLL                0
#define LWIP_SO_RCVTIMEO                1   /* IDF: 1; bounds every blocking call here */
#define LWIP_SO_SNDTIMEO                1   /* IDF: 1 */
#define LWIP_SO_LINGER                  1   /* CONFIG_LWIP_SO_LINGER is n on the board; on here to
                                               show that SO_LINGER {1, 0} would not help either */
#define SO_REUSE                        1   /* CONFIG_LWIP_SO_REUSE=y */
#define LWIP_STATS                      0
#define MEMP_NUM_NETCONN                10  /* CONFIG_LWIP_MAX_SOCKETS=10 */
#define LWIP_SOCKET_OFFSET              54  /* IDF: FD_SETSIZE (newlib: 64) - CONFIG_LWIP_MAX_SOCKETS */
/* Debian's patch of src/api/sockets.c (debian/patches/port) reads sockaddr lengths through
 * these, which its port headers define; here they say what upstream lwIP 2.1.3 writes. */
#define IP4ADDR_SOCKADDR_SET_LEN(sin)   ((sin)->sin_len = sizeof(struct sockaddr_in))
#define IPADDR_SOCKADDR_GET_LEN(addr)   ((addr)->sa.sa_len)

/* ---- memory ------------------------------------------------------------ */
#define MEM_LIBC_MALLOC                 1
#define MEM_ALIGNMENT                   8
#define MEMP_MEM_MALLOC                 0   /* static pools: MEMP_NUM_TCP_PCB is a hard cap */
#define MEMP_NUM_TCP_PCB                12  /* CONFIG_LWIP_MAX_ACTIVE_TCP=12 (MicroPython's sdkconfig.base) */
#define MEMP_NUM_TCP_PCB_LISTEN         16
#define MEMP_NUM_TCP_SEG                (MEMP_NUM_TCP_PCB * TCP_SND_QUEUELEN)
#define MEMP_NUM_NETBUF                 16
#define MEMP_NUM_TCPIP_MSG_INPKT        64
#define MEMP_NUM_TCPIP_MSG_API          16
#define MEMP_NUM_PBUF                   64
#define PBUF_POOL_SIZE                  128
#define PBUF_POOL_BUFSIZE               1600
#define MEMP_NUM_SYS_TIMEOUT            (LWIP_NUM_SYS_TIMEOUT_INTERNAL + 4)

/* ---- link / IP --------------------------------------------------------- */
#define LWIP_ETHERNET                   1
#define LWIP_ARP                        1
#define ARP_QUEUEING                    1
#define LWIP_IPV4                       1
#define LWIP_IPV6                       0
#define IP_REASSEMBLY                   0
#define IP_FRAG                         1
#define LWIP_ICMP                       1
#define LWIP_RAW                        0
#define LWIP_UDP                        1   /* a UDP socket is one of the "not TCP" cases */
#define LWIP_DHCP                       0
#define LWIP_DNS                        0
#define LWIP_IGMP                       0
#define LWIP_NETIF_TX_SINGLE_PBUF       1

/* ---- TCP, as on the board (see ../lwipopts.h for each setting's source) */
#define LWIP_TCP                        1
#define TCP_MSL                         ABORT_TCP_MSL
#define TCP_MSS                         1440
#define TCP_WND                         (4 * TCP_MSS)
#define TCP_SND_BUF                     (4 * TCP_MSS)
#define TCP_SND_QUEUELEN                ((4 * (TCP_SND_BUF) + (TCP_MSS - 1)) / (TCP_MSS))
#define TCP_QUEUE_OOSEQ                 1
#define TCP_OVERSIZE                    TCP_MSS
#define TCP_LISTEN_BACKLOG              1
#define LWIP_TCP_KEEPALIVE              1
#define LWIP_WND_SCALE                  0

#endif /* ABORT_CHECK_LWIPOPTS_H */
