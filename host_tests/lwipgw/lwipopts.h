/*
 * lwIP options for the board TCP emulator (lwipgw).
 *
 * Goal: the TCP state machine, timers and pcb limits of an ESP32 running our
 * MicroPython firmware (ESP-IDF 5.x esp-lwip, MicroPython >= v1.24), built
 * from upstream lwIP 2.1.3 (Debian's source package) on Linux.
 * Each option names the ESP-IDF Kconfig / MicroPython setting it mirrors.
 * Written for this project; Debian's port/include/lwipopts.h is not used.
 */
#ifndef LWIPGW_LWIPOPTS_H
#define LWIPGW_LWIPOPTS_H

/* TCP_MSL is the whole point: set at build time (mk/emu.mk passes
 * -DEMU_TCP_MSL from EMU_MSL / sdkconfig.overlay). */
#ifndef EMU_TCP_MSL
#define EMU_TCP_MSL 6000
#endif

/* ---- system ------------------------------------------------------------ */
#define NO_SYS                      1   /* one thread, raw API, poll() loop (IDF runs a tcpip task; same TCP code) */
#define SYS_LIGHTWEIGHT_PROT        0   /* single-threaded: nothing to protect */
#define LWIP_TIMERS                 1   /* sys_check_timeouts() drives tcp_tmr every TCP_TMR_INTERVAL */
#define LWIP_NETCONN                0   /* the gateway uses the raw API; MicroPython's netconn/socket layer sits above TCP */
#define LWIP_SOCKET                 0
#define LWIP_RAND()                 ((u32_t)rand())
#define LWIP_STATS                  0   /* CONFIG_LWIP_STATS=n */

/* ---- memory ------------------------------------------------------------ */
#define MEM_LIBC_MALLOC             1   /* IDF: MEM_LIBC_MALLOC 1 (heap from malloc) */
#define MEM_ALIGNMENT               8   /* IDF uses 4 on a 32-bit CPU; 8 keeps x86-64 happy */
#define MEMP_MEM_MALLOC             0   /* static pools, so MEMP_NUM_TCP_PCB is a hard cap like MicroPython v1.24's memp_malloc wrapper (PR #15952) */
#define MEMP_NUM_TCP_PCB            12  /* CONFIG_LWIP_MAX_ACTIVE_TCP=12 in MicroPython's ports/esp32/boards/sdkconfig.base */
#define MEMP_NUM_TCP_PCB_LISTEN     16  /* CONFIG_LWIP_MAX_LISTENING_TCP=16 (IDF default) */
/* IDF allocates these from the heap (MEMP_MEM_MALLOC=1), so they never run
 * out before RAM does; size the static pools so they never are the limit. */
#define MEMP_NUM_TCP_SEG            (MEMP_NUM_TCP_PCB * TCP_SND_QUEUELEN)
#define MEMP_NUM_PBUF               64
#define PBUF_POOL_SIZE              128
#define PBUF_POOL_BUFSIZE           1600
#define MEMP_NUM_UDP_PCB            4
#define MEMP_NUM_RAW_PCB            4

/* ---- link / IP --------------------------------------------------------- */
#define LWIP_ETHERNET               1   /* Wi-Fi STA netif is an Ethernet-framed netif in IDF */
#define LWIP_ARP                    1
#define ARP_QUEUEING                1   /* IDF: ARP_QUEUEING 1 */
#define LWIP_IPV4                   1   /* CONFIG_LWIP_IPV4=y */
#define LWIP_IPV6                   0   /* our tests are IPv4-only; IDF has IPv6 on, irrelevant to TCP close handling */
#define IP_REASSEMBLY               0   /* CONFIG_LWIP_IP4_REASSEMBLY=n */
#define IP_FRAG                     1   /* CONFIG_LWIP_IP4_FRAG=y (IDF default) */
#define LWIP_ICMP                   1   /* CONFIG_LWIP_ICMP=y: lets tests ping the "board" */
#define LWIP_RAW                    0
#define LWIP_UDP                    1   /* needed by nothing here, but the board has it */
#define LWIP_DHCP                   0   /* static address given on the command line */
#define LWIP_DNS                    0
#define LWIP_IGMP                   0
#define LWIP_NETIF_TX_SINGLE_PBUF   1   /* IDF: 1 */
#define CHECKSUM_CHECK_IP           1   /* a TAP without offloads hands over full checksums */
#define CHECKSUM_CHECK_TCP          1

/* ---- TCP: this is what the emulator is for ----------------------------- */
#define LWIP_TCP                    1
#define TCP_MSL                     EMU_TCP_MSL /* CONFIG_LWIP_TCP_MSL (IDF default 60000; our sdkconfig.overlay sets it) */
#ifndef EMU_TCP_FIN_WAIT_TIMEOUT
#define EMU_TCP_FIN_WAIT_TIMEOUT 20000
#endif
#define TCP_FIN_WAIT_TIMEOUT        EMU_TCP_FIN_WAIT_TIMEOUT /* CONFIG_LWIP_TCP_FIN_WAIT_TIMEOUT (IDF default 20000) */
#define TCP_MSS                     1440        /* CONFIG_LWIP_TCP_MSS=1440 (IDF default) */
#define TCP_WND                     (4 * TCP_MSS) /* CONFIG_LWIP_TCP_WND_DEFAULT=5760 */
#define TCP_SND_BUF                 (4 * TCP_MSS) /* CONFIG_LWIP_TCP_SND_BUF_DEFAULT=5760 */
#define TCP_SND_QUEUELEN            ((4 * (TCP_SND_BUF) + (TCP_MSS - 1)) / (TCP_MSS)) /* lwIP/IDF formula (16) */
#define TCP_MAXRTX                  12          /* CONFIG_LWIP_TCP_MAXRTX=12 */
#define TCP_SYNMAXRTX               12          /* CONFIG_LWIP_TCP_SYNMAXRTX=12 */
#define TCP_QUEUE_OOSEQ             1           /* CONFIG_LWIP_TCP_QUEUE_OOSEQ=y */
#define LWIP_TCP_SACK_OUT           0           /* CONFIG_LWIP_TCP_SACK_OUT=n */
#define TCP_OVERSIZE                TCP_MSS     /* CONFIG_LWIP_TCP_OVERSIZE_MSS=y */
#define TCP_TMR_INTERVAL            250         /* CONFIG_LWIP_TCP_TMR_INTERVAL=250 */
#define TCP_LISTEN_BACKLOG          1           /* IDF: TCP_LISTEN_BACKLOG 1; the backlog is listen()'s (lwipgw --backlog) */
/* CONFIG_LWIP_TCP_ACCEPTMBOX_SIZE=6 (IDF default): connections accepted by
 * lwIP but not yet by the application; one more is reset. lwIP's netconn
 * layer is not built here, lwipgw.c emulates this mailbox. */
#define DEFAULT_ACCEPTMBOX_SIZE     6
#define LWIP_TCP_KEEPALIVE          1           /* IDF: LWIP_TCP_KEEPALIVE 1 (off per pcb until SO_KEEPALIVE, which MicroPython esp32 ignores) */
#define LWIP_WND_SCALE              0           /* CONFIG_LWIP_WND_SCALE=n */
#define TCP_RCV_SCALE               0
#define LWIP_TCP_TIMESTAMPS         0           /* lwIP/IDF default off */
#define LWIP_CALLBACK_API           1
#define LWIP_EVENT_API              0
/* Not mirrored (needs esp-lwip patches): CONFIG_LWIP_TCP_RTO_TIME=1500 (upstream
 * starts at 3000 ms) and IDF's TCP ISN hook. Neither changes who holds
 * TIME_WAIT or for how long. */

/* ---- debugging --------------------------------------------------------- */
#define LWIP_NOASSERT_ON_ERROR      0

#endif /* LWIPGW_LWIPOPTS_H */
