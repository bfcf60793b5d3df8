/*
 * lwipgw - the "board TCP emulator": real lwIP between a test client and
 * the firmware.
 *
 * Why: the stall users hit on an ESP32 lives in lwIP's TCP (a server that
 * closes first keeps a TIME_WAIT pcb for 2*TCP_MSL; a client that reuses
 * its source port is ACKed for the old connection, answers RST, and lwIP
 * ignores RST in TIME_WAIT). Linux on loopback does not behave like that,
 * so tests put lwIP, built with the board's options (lwipopts.h), in front
 * of the firmware running on the MicroPython unix port.
 *
 * How: lwIP owns an IPv4 address on a TAP device (which the test harness
 * moves into its own network namespace, where the Linux client lives). It
 * listens on one TCP port. Each accepted lwIP connection gets a Linux TCP
 * connection to the upstream (the firmware on 127.0.0.1:PORT), and bytes
 * are relayed both ways with flow control: client bytes are tcp_recved()
 * only once the upstream socket took them, upstream bytes are read only
 * while lwIP has send buffer for them. So lwIP's windows behave as on the
 * board and nothing is buffered without bound.
 *
 * Close order is mirrored, because it decides who holds TIME_WAIT:
 *   upstream EOF first  -> tcp_close(): lwIP closes actively (FIN_WAIT_1 ...
 *                          TIME_WAIT in lwIP), like the board's close().
 *   client FIN first    -> shutdown(SHUT_WR) upstream, so the firmware sees
 *                          EOF and closes; then tcp_close() from CLOSE_WAIT
 *                          (passive close: no TIME_WAIT on the board).
 *   client RST          -> upstream closed with SO_LINGER 0 (RST).
 *   upstream RST/error  -> tcp_abort() (RST to the client).
 *
 * Listen backlog, tied to the firmware's accept(), because it decides who
 * gets a pcb under a flood. On the board (esp-lwip, TCP_LISTEN_BACKLOG 1)
 * the listener counts a connection from its SYN until the application's
 * accept() takes it from the accept mailbox (SYN_RCVD, then
 * tcp_backlog_delayed() in the netconn accept callback, then
 * tcp_backlog_accepted() in netconn_accept); with listen(2) a third SYN is
 * dropped without a pcb and the client retransmits it. Here lwIP's listener
 * gets --backlog (the firmware's listen_backlog), on_accept() delays each
 * new pcb the same way, and the gateway calls tcp_backlog_accepted() once
 * the firmware has accept()ed the upstream connection: the first bytes or
 * EOF from upstream prove it, and so does the upstream listener's accept
 * queue (asked of the kernel with sock_diag every 2 ms while pcbs wait, and
 * at once before a SYN or a handshake is refused), which accept() empties
 * oldest first. A completed handshake that finds
 * DEFAULT_ACCEPTMBOX_SIZE (6) connections waiting is reset, as on the board
 * when its accept mailbox is full (reachable only with a backlog above 6).
 *
 * The firmware build's C module (_nostall_tcp: abort(sock, force), unacked(sock)) works on
 * the board's lwIP pcb, which here is ours: the sim's stand-in (host_tests/sim/_nostall_tcp.py)
 * asks us over a UDP control socket on the upstream's address and port number (UDP and TCP
 * ports are separate). "abort PORT FORCE" makes tcp_abort_idle.c's decision on the pcb of the
 * connection whose upstream leg has local port PORT (the peer port the firmware sees): declined
 * while data is unsent or unacknowledged (unless forced), counting as such also what the relay
 * holds and what the firmware wrote that we have not read yet, since on a board all of it would
 * be in the pcb's send queue; otherwise tcp_abort() (RST, no TIME_WAIT) and the upstream leg is
 * reset. "unacked PORT" answers the same test. The same socket takes the weather commands.
 *
 * Wi-Fi weather (weather.c): every frame in either direction passes weather_frame(), which
 * drops, duplicates, delays or passes it on; --weather*, --seed, --down and the control socket
 * set it. Without any, frames pass at once as if it were not there.
 *
 * Observability: one JSON object with all counters, rewritten atomically
 * (tmp + rename) to --stats PATH whenever a counter changes (at most every
 * 20 ms) and once a second; one line per event on stdout, written once per
 * pass of the main loop; a READY line on stdout once listening.
 *
 * Single thread, NO_SYS=1: poll() over the TAP fd and the upstream sockets,
 * sys_check_timeouts() for lwIP's timers on a monotonic clock.
 */
#include "lwip/init.h"
#include "lwip/ip4_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "netif/etharp.h"
#include "netif/ethernet.h"

#include "hostio.h"
#include "weather.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 64           /* > MEMP_NUM_TCP_PCB; lwIP refuses first */
#define BACKLOG_POLL_MS 2      /* how often the upstream's accept queue is asked while pcbs wait */
#define FRAME_MAX 2048

/* ---- configuration (command line) -------------------------------------- */
static const char *opt_tap;
static const char *opt_ip = "10.77.1.2";
static const char *opt_netmask = "255.255.255.0";
static const char *opt_gw = "10.77.1.1";
static int opt_listen = 80;
static char opt_up_host[64] = "127.0.0.1";
static int opt_up_port;
static const char *opt_stats;
static int opt_backlog = 2;     /* the firmware's listen_backlog (config.py), as listen() on the board */
static int opt_ctl_port = -1;   /* UDP control socket; -1: the upstream's port number, 0: none */
static const char *opt_weather[WEATHER_DIRS];
static const char *opt_down;
static unsigned long long opt_seed;
static int opt_seed_given;

/* ---- counters ---------------------------------------------------------- */
struct stats {
    unsigned long accepted;          /* lwIP connections handed to us */
    unsigned long active_closes;     /* upstream (firmware) closed first */
    unsigned long passive_closes;    /* client closed first */
    unsigned long client_resets;     /* RST from the client (ERR_RST) */
    unsigned long upstream_resets;   /* upstream socket error -> tcp_abort */
    unsigned long lwip_aborts;       /* lwIP killed a pcb (ERR_ABRT: pcb shortage, retransmit limit) */
    unsigned long upstream_connect_failed;
    unsigned long syns;              /* SYNs seen on the wire */
    unsigned long syn_to_time_wait;  /* SYNs whose 4-tuple matched a TIME_WAIT pcb */
    unsigned long syns_dropped_backlog; /* SYNs the listener dropped: backlog full (no pcb taken) */
    unsigned long syns_dropped_no_pcb;  /* SYNs dropped: all MEMP_NUM_TCP_PCB pcbs in use */
    unsigned long accept_mbox_full;     /* handshakes reset: the accept mailbox was full */
    unsigned long upstream_accepted;    /* upstream connections the firmware has accept()ed */
    unsigned long bytes_to_upstream;
    unsigned long bytes_to_client;
    unsigned long rx_dropped;        /* no pbuf for an incoming frame */
    unsigned long tx_dropped;        /* TAP write failed (link down) */
    unsigned long firmware_aborts;   /* _nostall_tcp.abort() on the sim: tcp_abort() ran */
    unsigned long firmware_aborts_forced;        /* of those, forced past unacknowledged data */
    unsigned long firmware_aborts_declined;      /* declined: data unsent or unacknowledged */
    unsigned long ctl_requests;      /* datagrams on the control socket */
    unsigned time_wait;              /* TIME_WAIT pcbs now */
    unsigned time_wait_max;
    unsigned pcbs_active;            /* non-listening, non-TIME_WAIT pcbs now */
    unsigned pcbs_max;               /* max of active + TIME_WAIT */
    unsigned open;                   /* relays in progress */
    unsigned pending_accept;         /* the listener's backlog count now: SYN_RCVD + not yet accept()ed */
    unsigned pending_accept_max;
    int upstream_backlog;            /* the upstream's own listen() backlog (-1: not seen yet) */
};
static struct stats st;

/* ---- relays ------------------------------------------------------------ */
enum { CLOSER_NONE, CLOSER_UPSTREAM, CLOSER_CLIENT };

struct conn {
    struct conn *next;
    unsigned id;
    struct tcp_pcb *pcb;     /* NULL once lwIP freed it or we closed it */
    int fd;                  /* upstream socket, -1 once closed */
    int connecting;          /* non-blocking connect in progress */
    struct pbuf *rx;         /* client bytes the upstream has not taken yet */
    int client_eof;          /* lwIP delivered the client's FIN */
    int shut_wr;             /* we half-closed the upstream */
    int up_eof;              /* upstream closed */
    int closer;
    int dead;
    int pending;             /* counted in the listener's backlog until the firmware accept()s */
    unsigned long up_seq;    /* n-th upstream connection to be established (0: not yet) */
    int up_port;             /* local port of the upstream leg: the firmware's peer port */
    u16_t up_len;            /* upstream bytes lwIP has not taken yet */
    char up[TCP_SND_BUF];
};

static struct conn *conns;  /* oldest first, as the upstream accept queue */
static unsigned next_id;
static struct tcp_pcb_listen *listener;
static unsigned long up_established;  /* upstream connections established so far */
static u32_t last_backlog_poll;
static struct netif tap_netif;
static int tap_fd = -1;
static int ctl_fd = -1;
static volatile sig_atomic_t stop;

u32_t sys_now(void) { return hio_now_ms(); }

static void ev(const struct conn *c, const char *what)
{
    printf("ev=%s id=%u t=%u\n", what, c ? c->id : 0, (unsigned)sys_now());
}

/* Drop the pcb's link to us so lwIP calls nothing of ours any more. */
static void detach(struct tcp_pcb *pcb)
{
    tcp_arg(pcb, NULL);
    tcp_recv(pcb, NULL);
    tcp_sent(pcb, NULL);
    tcp_err(pcb, NULL);
    tcp_poll(pcb, NULL, 0);
}

static void kill_conn(struct conn *c, int reset_upstream)
{
    c->pending = 0;          /* lwIP releases the backlog entry of a pcb it frees */
    if (c->pcb) {
        detach(c->pcb);
        tcp_abort(c->pcb);       /* RST to the client */
        c->pcb = NULL;
    }
    if (c->fd >= 0) {
        if (reset_upstream)
            hio_close_reset(c->fd);
        else
            close(c->fd);
        c->fd = -1;
    }
    c->dead = 1;
}

static void upstream_failed(struct conn *c)
{
    st.upstream_resets++;
    ev(c, "upstream_reset");
    kill_conn(c, 1);
}

/* The firmware has accept()ed c's upstream connection: its pcb leaves the
 * listener's backlog, as netconn_accept() does on the board. */
static void firmware_accepted(struct conn *c)
{
    if (!c->pending)
        return;
    c->pending = 0;
    st.upstream_accepted++;
    if (c->pcb)
        tcp_backlog_accepted(c->pcb);
}

static unsigned count_waiting(void)
{
    const struct conn *c;
    unsigned n = 0;
    for (c = conns; c; c = c->next)
        n += c->pending && !c->dead;
    return n;
}

/* The firmware's accept() leaves no trace on our side of a silent
 * connection, so ask the kernel: connections established upstream minus
 * those still queued = those accept()ed, and accept() takes the oldest
 * first. A foreign connection in the queue only delays the release. now:
 * ask at once (a SYN or a handshake is about to be refused on this count). */
static void sync_backlog(int now)
{
    unsigned queued, backlog;
    unsigned long accepted;
    struct conn *c;
    int waiting = 0;
    for (c = conns; c; c = c->next)
        waiting |= c->pending;
    if (!waiting || (!now && sys_now() - last_backlog_poll < BACKLOG_POLL_MS))
        return;
    last_backlog_poll = sys_now();
    /* Count connects that completed since the last poll(), so that the
     * queue's length is set against all of them. */
    for (c = conns; c; c = c->next)
        if (c->connecting && !c->dead && hio_connected(c->fd)) {
            c->connecting = 0;
            c->up_seq = ++up_established;
        }
    if (hio_listen_queue(opt_up_host, opt_up_port, &queued, &backlog) != 0)
        return;              /* not listening (any more): its resets free the pcbs */
    st.upstream_backlog = (int)backlog;
    accepted = up_established > queued ? up_established - queued : 0;
    for (c = conns; c; c = c->next)
        if (c->pending && c->up_seq && c->up_seq <= accepted)
            firmware_accepted(c);
}

/* ---- lwIP callbacks ---------------------------------------------------- */
static void on_err(void *arg, err_t err)
{
    struct conn *c = arg;
    if (!c)
        return;
    c->pcb = NULL;           /* lwIP has freed it already */
    c->pending = 0;
    if (err == ERR_RST) {
        st.client_resets++;
        ev(c, "client_reset");
    } else {
        st.lwip_aborts++;
        ev(c, "lwip_abort");
    }
    kill_conn(c, 1);
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    struct conn *c = arg;
    (void)err;
    if (!c || c->dead) {
        if (p) {
            tcp_recved(pcb, p->tot_len);
            pbuf_free(p);
        }
        return ERR_OK;
    }
    if (!p) {
        c->client_eof = 1;
        if (c->closer == CLOSER_NONE)
            c->closer = CLOSER_CLIENT;
        ev(c, "client_fin");
        return ERR_OK;
    }
    /* Keep it until the upstream socket takes it: the unacknowledged window
     * bounds what can pile up here, exactly as on the board. */
    if (c->rx)
        pbuf_cat(c->rx, p);
    else
        c->rx = p;
    return ERR_OK;
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
    struct conn *c, **pp;
    int fd;
    (void)arg;
    if (!pcb) {
        /* tcp_listen_input found no free pcb for a SYN: dropped, the
         * client retransmits (on the board: the same, via tcp_alloc) */
        st.syns_dropped_no_pcb++;
        ev(NULL, "syn_dropped_no_pcb");
        return ERR_VAL;
    }
    if (err != ERR_OK)
        return ERR_VAL;
    if (count_waiting() >= DEFAULT_ACCEPTMBOX_SIZE)
        sync_backlog(1);
    if (count_waiting() >= DEFAULT_ACCEPTMBOX_SIZE) {
        /* accept_function() on the board: the accept mailbox is full, the
         * callback fails and tcp_process() aborts the pcb (RST). */
        st.accept_mbox_full++;
        ev(NULL, "accept_mbox_full");
        return ERR_MEM;
    }
    fd = hio_connect(opt_up_host, opt_up_port);
    c = fd >= 0 ? calloc(1, sizeof *c) : NULL;
    if (!c) {
        if (fd >= 0)
            close(fd);
        st.upstream_connect_failed++;
        ev(NULL, "upstream_connect_failed");
        tcp_abort(pcb);
        return ERR_ABRT;
    }
    c->id = ++next_id;
    c->pcb = pcb;
    c->fd = fd;
    c->up_port = hio_local_port(fd);   /* bound by connect(), even while it is in progress */
    c->connecting = 1;
    for (pp = &conns; *pp; pp = &(*pp)->next)
        ;
    *pp = c;                 /* appended: the list stays oldest first */
    /* Counted in the backlog until the firmware accepts it (the netconn
     * accept callback does the same before posting to the accept mailbox). */
    tcp_backlog_delayed(pcb);
    c->pending = 1;
    /* The firmware sets TCP_NODELAY on every accepted socket (server.py); on
     * a board that lands on this pcb. Without it lwIP's Nagle holds a
     * response's second segment for the client's delayed ACK (~40 ms). */
    tcp_nagle_disable(pcb);
    tcp_arg(pcb, c);
    tcp_recv(pcb, on_recv);
    tcp_err(pcb, on_err);
    st.accepted++;
    /* the client's port and the upstream leg's (the firmware's peer port, which control
     * requests name) */
    printf("ev=accept id=%u t=%u client_port=%u up_port=%d\n", c->id, (unsigned)sys_now(),
           (unsigned)pcb->remote_port, c->up_port);
    return ERR_OK;
}

/* ---- relay steps (main loop only, never inside an lwIP callback) ------- */

/* client -> upstream; tcp_recved() only what the socket accepted. */
static void flush_rx(struct conn *c)
{
    static char buf[TCP_WND];
    while (c->rx && !c->dead) {
        u16_t want = c->rx->tot_len < sizeof buf ? c->rx->tot_len : (u16_t)sizeof buf;
        ssize_t n;
        pbuf_copy_partial(c->rx, buf, want, 0);
        n = write(c->fd, buf, want);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            upstream_failed(c);
            return;
        }
        c->rx = pbuf_free_header(c->rx, (u16_t)n);
        if (c->pcb)
            tcp_recved(c->pcb, (u16_t)n);
        st.bytes_to_upstream += (unsigned long)n;
        if (n < want)
            return;
    }
}

/* upstream -> client; only as much as lwIP's send buffer takes. */
static void push_up(struct conn *c)
{
    int wrote = 0;
    while (c->up_len && c->pcb) {
        u16_t room = tcp_sndbuf(c->pcb);
        u16_t n = c->up_len < room ? c->up_len : room;
        err_t e;
        if (n == 0)
            break;
        e = tcp_write(c->pcb, c->up, n, TCP_WRITE_FLAG_COPY);
        if (e == ERR_MEM)
            break;           /* queue full: retried after the next ACK */
        if (e != ERR_OK) {
            st.lwip_aborts++;
            ev(c, "tcp_write_error");
            kill_conn(c, 1);
            return;
        }
        memmove(c->up, c->up + n, c->up_len - n);
        c->up_len -= n;
        st.bytes_to_client += n;
        wrote = 1;
    }
    if (wrote && c->pcb)
        tcp_output(c->pcb);
}

/* The upstream closed and everything it sent is queued in lwIP: close the
 * lwIP side the way the board's close() would. */
static void close_client(struct conn *c)
{
    struct tcp_pcb *pcb = c->pcb;
    firmware_accepted(c);    /* an upstream close proves it was accept()ed */
    if (c->closer == CLOSER_CLIENT) {
        st.passive_closes++;
        ev(c, "close_passive");
    } else {
        c->closer = CLOSER_UPSTREAM;
        st.active_closes++;
        ev(c, "close_active");
    }
    detach(pcb);
    /* Unread client data makes lwIP send RST instead of FIN, as on the board. */
    if (tcp_close(pcb) != ERR_OK)
        tcp_abort(pcb);
    c->pcb = NULL;
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->dead = 1;
}

static void service(struct conn *c, short rev)
{
    if (c->dead)
        return;
    if (c->connecting) {
        int e;
        if (!(rev & (POLLOUT | POLLERR | POLLHUP)))
            return;
        e = hio_connect_error(c->fd);
        if (e) {
            st.upstream_connect_failed++;
            ev(c, "upstream_connect_failed");
            kill_conn(c, 0);
            return;
        }
        c->connecting = 0;
        c->up_seq = ++up_established;
    }
    if ((rev & POLLERR) && c->up_len && hio_connect_error(c->fd)) {
        /* reset by the firmware while lwIP still holds its last chunk: mirror the abort now */
        upstream_failed(c);
        return;
    }
    /* upstream -> us: read only when lwIP has taken the previous chunk */
    if ((rev & (POLLIN | POLLHUP | POLLERR)) && c->up_len == 0 && !c->up_eof) {
        ssize_t n = read(c->fd, c->up, sizeof c->up);
        if (n >= 0)
            firmware_accepted(c);    /* it wrote or closed: it accept()ed */
        if (n > 0) {
            c->up_len = (u16_t)n;
        } else if (n == 0) {
            c->up_eof = 1;
            ev(c, "upstream_eof");
        } else if (errno != EAGAIN && errno != EINTR) {
            upstream_failed(c);
            return;
        }
    }
    if (c->up_eof && c->rx) {
        /* The firmware closed without reading this; the board would drop it. */
        pbuf_free(c->rx);
        c->rx = NULL;
    }
    flush_rx(c);
    if (c->dead)
        return;
    if (c->client_eof && !c->rx && !c->shut_wr && !c->up_eof) {
        hio_shutdown_wr(c->fd);
        c->shut_wr = 1;
    }
    push_up(c);
    if (!c->dead && c->up_eof && c->up_len == 0 && c->pcb)
        close_client(c);
    else if (!c->dead && !c->pcb)
        kill_conn(c, 1);
}

static short wanted_events(const struct conn *c)
{
    short e = 0;
    if (c->dead)
        return 0;
    if (c->connecting)
        return POLLOUT;
    if (c->rx)
        e |= POLLOUT;
    if (c->up_len == 0 && !c->up_eof)
        e |= POLLIN;
    return e;
}

/* ---- TAP netif --------------------------------------------------------- */
static err_t tap_linkoutput(struct netif *nif, struct pbuf *p)
{
    static u8_t frame[FRAME_MAX];
    u16_t n = pbuf_copy_partial(p, frame, sizeof frame, 0);
    (void)nif;
    weather_frame(WEATHER_TO_CLIENT, frame, n);   /* on to the TAP (weather_deliver), now, later or never */
    return ERR_OK;
}

static err_t tap_netif_init(struct netif *nif)
{
    /* Locally administered MAC, fixed: nothing else shares the segment. */
    static const u8_t mac[6] = { 0x02, 0x00, 0x00, 0x77, 0x00, 0x02 };
    nif->name[0] = 't';
    nif->name[1] = 'p';
    nif->output = etharp_output;
    nif->linkoutput = tap_linkoutput;
    nif->mtu = 1500;
    nif->hwaddr_len = 6;
    memcpy(nif->hwaddr, mac, 6);
    nif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_LINK_UP;
    return ERR_OK;
}

static int pcb_match(struct tcp_pcb *list, u32_t src_be, u16_t sport, u16_t dport)
{
    struct tcp_pcb *pcb;
    for (pcb = list; pcb; pcb = pcb->next)
        if (pcb->remote_port == sport && pcb->local_port == dport &&
            ip4_addr_get_u32(&pcb->remote_ip) == src_be)
            return 1;
    return 0;
}

/* Count SYNs, those that will land on a TIME_WAIT pcb (the stall), and those
 * the listener will drop because its backlog is full (after asking whether
 * the firmware has accepted meanwhile). Runs just before lwIP sees the frame,
 * so it sees the state tcp_input() will. */
static void inspect_frame(const u8_t *f, ssize_t n)
{
    const u8_t *ip, *th;
    u32_t src;
    u16_t sport, dport;
    if (n < 14 + 20 + 20 || f[12] != 0x08 || f[13] != 0x00)
        return;
    ip = f + 14;
    if (ip[9] != 6 || n < 14 + (ip[0] & 0xf) * 4 + 20)
        return;
    th = ip + (ip[0] & 0xf) * 4;
    if (!(th[13] & TCP_SYN) || (th[13] & TCP_ACK))
        return;
    st.syns++;
    memcpy(&src, ip + 12, 4);
    sport = (u16_t)(th[0] << 8 | th[1]);
    dport = (u16_t)(th[2] << 8 | th[3]);
    if (pcb_match(tcp_tw_pcbs, src, sport, dport)) {
        st.syn_to_time_wait++;
        ev(NULL, "syn_to_time_wait");
        return;
    }
    if (dport != listener->local_port || pcb_match(tcp_active_pcbs, src, sport, dport))
        return;
    if (listener->accepts_pending >= listener->backlog)
        sync_backlog(1);
    if (listener->accepts_pending >= listener->backlog) {
        /* tcp_listen_input(): "listen backlog exceeded", no pcb, no answer */
        st.syns_dropped_backlog++;
        ev(NULL, "syn_dropped_backlog");
    }
}

/* A frame from the client, past the weather: into lwIP. */
static void lwip_input(const u8_t *frame, unsigned n)
{
    struct pbuf *p;
    inspect_frame(frame, (ssize_t)n);
    p = pbuf_alloc(PBUF_RAW, (u16_t)n, PBUF_POOL);
    if (!p) {
        st.rx_dropped++;
        return;
    }
    pbuf_take(p, frame, (u16_t)n);
    if (tap_netif.input(p, &tap_netif) != ERR_OK)
        pbuf_free(p);
}

/* weather.c hands each frame that gets through to its direction's side. */
static void weather_deliver(int dir, const uint8_t *frame, unsigned len)
{
    if (dir == WEATHER_FROM_CLIENT)
        lwip_input(frame, len);
    else if (write(tap_fd, frame, len) < 0)
        st.tx_dropped++;     /* TAP down or its queue full: TCP retransmits */
}

static void tap_input(void)
{
    static u8_t frame[FRAME_MAX];
    int i;
    for (i = 0; i < 64; i++) {      /* bounded, so sockets get their turn */
        ssize_t n = read(tap_fd, frame, sizeof frame);
        if (n <= 0)
            return;
        weather_frame(WEATHER_FROM_CLIENT, frame, (unsigned)n);   /* on to lwip_input() */
    }
}

/* ---- control socket: the C module's calls, the weather -------------------- */
static struct conn *conn_by_port(int port)
{
    struct conn *c;
    for (c = conns; c; c = c->next)
        if (!c->dead && c->up_port == port)
            return c;
    return NULL;
}

/* What the board's pcb would still have to deliver: its own unsent and unacknowledged
 * segments, plus what the relay holds and what the firmware wrote that we have not read (on a
 * board both would be in the pcb's send queue). */
static int conn_unacked(struct conn *c)
{
    return c->pcb && (c->pcb->unacked || c->pcb->unsent || c->up_len ||
                      (c->fd >= 0 && hio_unread(c->fd) > 0));
}

/* tcp_abort_idle.c's decision (boards/cmodules/nostall_tcp), on this connection's pcb. */
static const char *ctl_abort(int port, int force)
{
    struct conn *c = conn_by_port(port);
    enum tcp_state state;
    if (!c)
        return "no_conn";
    if (!c->pcb)
        return "no_pcb";
    state = c->pcb->state;
    if (state == LISTEN || state == TIME_WAIT || state == CLOSED)
        return "state";
    if (conn_unacked(c)) {
        if (!force) {
            st.firmware_aborts_declined++;
            ev(c, "firmware_abort_declined");
            return "unacked";
        }
        st.firmware_aborts_forced++;
    }
    st.firmware_aborts++;
    ev(c, "firmware_abort");
    firmware_accepted(c);
    kill_conn(c, 1);         /* tcp_abort(): RST to the client, pcb freed; upstream leg reset */
    return "aborted";
}

static int parse_dir(const char *s)
{
    if (!strcmp(s, "to_client"))
        return WEATHER_TO_CLIENT;
    if (!strcmp(s, "from_client"))
        return WEATHER_FROM_CLIENT;
    if (!strcmp(s, "both"))
        return WEATHER_DIRS;
    return -1;
}

static void ctl_command(char *line, char *out, size_t outlen)
{
    char *arg[3] = { NULL, NULL, NULL }, *rest = NULL, *save = NULL, *cmd;
    int n;
    line[strcspn(line, "\r\n")] = 0;
    cmd = strtok_r(line, " ", &save);
    for (n = 0; cmd && n < 2; n++)
        if (!(arg[n] = strtok_r(NULL, " ", &save)))
            break;
    rest = save;             /* what follows the first two arguments (a weather spec) */
    if (!cmd) {
        snprintf(out, outlen, "error empty");
    } else if (!strcmp(cmd, "abort") && arg[0]) {
        snprintf(out, outlen, "%s", ctl_abort(atoi(arg[0]), arg[1] && atoi(arg[1]) != 0));
    } else if (!strcmp(cmd, "unacked") && arg[0]) {
        struct conn *c = conn_by_port(atoi(arg[0]));
        snprintf(out, outlen, "%d", c && conn_unacked(c));
    } else if (!strcmp(cmd, "down") && arg[0]) {
        weather_down((unsigned)strtoul(arg[0], NULL, 10));
        ev(NULL, "link_down");
        snprintf(out, outlen, "ok");
    } else if (!strcmp(cmd, "seed") && arg[0]) {
        weather_seed(strtoull(arg[0], NULL, 0));
        snprintf(out, outlen, "ok");
    } else if (!strcmp(cmd, "weather") && arg[0] && parse_dir(arg[0]) >= 0) {
        struct weather_params p;
        char err[120], spec[256];
        int d = parse_dir(arg[0]);
        snprintf(spec, sizeof spec, "%s %s", arg[1] ? arg[1] : "", rest ? rest : "");
        if (weather_parse(spec, &p, err, sizeof err) != 0) {
            snprintf(out, outlen, "error %s", err);
            return;
        }
        if (d == WEATHER_DIRS || d == WEATHER_TO_CLIENT)
            weather_set(WEATHER_TO_CLIENT, &p);
        if (d == WEATHER_DIRS || d == WEATHER_FROM_CLIENT)
            weather_set(WEATHER_FROM_CLIENT, &p);
        ev(NULL, "weather");
        snprintf(out, outlen, "ok");
    } else if (!strcmp(cmd, "ping")) {
        snprintf(out, outlen, "pong");
    } else {
        snprintf(out, outlen, "error usage: abort PORT 0|1 | unacked PORT | down MS | "
                 "weather to_client|from_client|both SPEC | seed N | ping");
    }
}

static void ctl_input(void)
{
    char buf[512], out[256];
    struct hio_addr from;
    int i;
    for (i = 0; i < 16; i++) {      /* bounded, as tap_input */
        int n = hio_udp_recv(ctl_fd, buf, sizeof buf - 1, &from);
        if (n < 0)
            return;
        buf[n] = 0;
        st.ctl_requests++;
        ctl_command(buf, out, sizeof out);
        fflush(stdout);      /* its events are in the log before the caller has the reply */
        hio_udp_send(ctl_fd, out, (unsigned)strlen(out), &from);
    }
}

/* ---- stats file -------------------------------------------------------- */
static void count_pcbs(void)
{
    struct tcp_pcb *pcb;
    struct conn *c;
    unsigned tw = 0, act = 0, open = 0;
    for (pcb = tcp_tw_pcbs; pcb; pcb = pcb->next)
        tw++;
    for (pcb = tcp_active_pcbs; pcb; pcb = pcb->next)
        act++;
    for (c = conns; c; c = c->next)
        open += !c->dead;
    st.time_wait = tw;
    st.pcbs_active = act;
    st.pending_accept = listener->accepts_pending;
    if (st.pending_accept > st.pending_accept_max)
        st.pending_accept_max = st.pending_accept;
    st.open = open;
    if (tw > st.time_wait_max)
        st.time_wait_max = tw;
    if (tw + act > st.pcbs_max)
        st.pcbs_max = tw + act;
}

static void write_stats(void)
{
    char tmp[4096];
    FILE *f;
    if (!opt_stats)
        return;
    snprintf(tmp, sizeof tmp, "%s.tmp", opt_stats);
    f = fopen(tmp, "w");
    if (!f)
        return;
    fprintf(f,
            "{\"pid\": %d, \"t_ms\": %u, \"msl_ms\": %d, \"max_pcbs\": %d, "
            "\"accepted\": %lu, \"active_closes\": %lu, \"passive_closes\": %lu, "
            "\"client_resets\": %lu, \"upstream_resets\": %lu, \"lwip_aborts\": %lu, "
            "\"upstream_connect_failed\": %lu, \"syns\": %lu, \"syn_to_time_wait\": %lu, "
            "\"bytes_to_upstream\": %lu, \"bytes_to_client\": %lu, "
            "\"rx_dropped\": %lu, \"tx_dropped\": %lu, "
            "\"time_wait\": %u, \"time_wait_max\": %u, \"pcbs_active\": %u, "
            "\"pcbs_max\": %u, \"open\": %u, "
            "\"backlog\": %d, \"accept_mbox\": %d, \"pending_accept\": %u, \"pending_accept_max\": %u, "
            "\"syns_dropped_backlog\": %lu, \"syns_dropped_no_pcb\": %lu, \"accept_mbox_full\": %lu, "
            "\"upstream_accepted\": %lu, \"upstream_backlog\": %d, "
            "\"ctl_port\": %d, \"ctl_requests\": %lu, \"firmware_aborts\": %lu, "
            "\"firmware_aborts_forced\": %lu, \"firmware_aborts_declined\": %lu, ",
            (int)getpid(), (unsigned)sys_now(), TCP_MSL, MEMP_NUM_TCP_PCB,
            st.accepted, st.active_closes, st.passive_closes,
            st.client_resets, st.upstream_resets, st.lwip_aborts,
            st.upstream_connect_failed, st.syns, st.syn_to_time_wait,
            st.bytes_to_upstream, st.bytes_to_client, st.rx_dropped, st.tx_dropped,
            st.time_wait, st.time_wait_max, st.pcbs_active, st.pcbs_max, st.open,
            opt_backlog, DEFAULT_ACCEPTMBOX_SIZE, st.pending_accept, st.pending_accept_max,
            st.syns_dropped_backlog, st.syns_dropped_no_pcb, st.accept_mbox_full,
            st.upstream_accepted, st.upstream_backlog,
            ctl_fd >= 0 ? opt_ctl_port : 0, st.ctl_requests, st.firmware_aborts,
            st.firmware_aborts_forced, st.firmware_aborts_declined);
    weather_json(f);
    fprintf(f, "}\n");
    if (fclose(f) == 0)
        rename(tmp, opt_stats);
}

/* ---- main -------------------------------------------------------------- */
static void on_signal(int sig) { (void)sig; stop = 1; }

static void usage(void)
{
    fprintf(stderr,
            "usage: lwipgw --tap NAME --upstream HOST:PORT [--ip A.B.C.D] [--netmask M] [--gw G]\n"
            "              [--listen PORT] [--backlog N] [--stats FILE] [--ctl-port N]\n"
            "              [--weather SPEC] [--weather-to-client SPEC] [--weather-from-client SPEC]\n"
            "              [--seed N] [--down AT_MS:LEN_MS[,AT_MS:LEN_MS...]]\n"
            "  --backlog N  the firmware's listen() backlog, 1-255 (default 2)\n"
            "  --ctl-port N UDP control socket on the upstream host (default: the upstream's port\n"
            "               number; 0: none): abort PORT 0|1, unacked PORT, down MS,\n"
            "               weather to_client|from_client|both SPEC, seed N, ping\n"
            "  --weather SPEC  both directions; SPEC: loss=P,delay=MS,jitter=MS,reorder=P,dup=P,\n"
            "               rate=BITS_PER_S,limit=FRAMES (P in percent); \"off\"\n"
            "  --seed N     seed of the per-frame decisions (default: from the clock, printed)\n"
            "  --down AT_MS:LEN_MS,...  link down (both ways) for LEN_MS from AT_MS after start\n"
            "lwIP %s, TCP_MSL %d ms, MEMP_NUM_TCP_PCB %d, accept mailbox %d\n",
            LWIP_VERSION_STRING, TCP_MSL, MEMP_NUM_TCP_PCB, DEFAULT_ACCEPTMBOX_SIZE);
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    int i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            usage();
        if (!v)
            usage();
        if (!strcmp(a, "--tap")) opt_tap = v;
        else if (!strcmp(a, "--ip")) opt_ip = v;
        else if (!strcmp(a, "--netmask")) opt_netmask = v;
        else if (!strcmp(a, "--gw")) opt_gw = v;
        else if (!strcmp(a, "--listen")) opt_listen = atoi(v);
        else if (!strcmp(a, "--backlog")) opt_backlog = atoi(v);
        else if (!strcmp(a, "--stats")) opt_stats = v;
        else if (!strcmp(a, "--ctl-port")) opt_ctl_port = atoi(v);
        else if (!strcmp(a, "--weather")) opt_weather[WEATHER_TO_CLIENT] = opt_weather[WEATHER_FROM_CLIENT] = v;
        else if (!strcmp(a, "--weather-to-client")) opt_weather[WEATHER_TO_CLIENT] = v;
        else if (!strcmp(a, "--weather-from-client")) opt_weather[WEATHER_FROM_CLIENT] = v;
        else if (!strcmp(a, "--down")) opt_down = v;
        else if (!strcmp(a, "--seed")) {
            opt_seed = strtoull(v, NULL, 0);
            opt_seed_given = 1;
        }
        else if (!strcmp(a, "--upstream")) {
            const char *colon = strrchr(v, ':');
            if (!colon || (size_t)(colon - v) >= sizeof opt_up_host)
                usage();
            memcpy(opt_up_host, v, (size_t)(colon - v));
            opt_up_host[colon - v] = 0;
            opt_up_port = atoi(colon + 1);
        } else
            usage();
        i++;
    }
    if (!opt_tap || opt_up_port <= 0 || opt_listen <= 0 || opt_backlog < 1 || opt_backlog > 255 ||
        opt_ctl_port < -1 || opt_ctl_port > 65535)
        usage();
    if (opt_ctl_port < 0)
        opt_ctl_port = opt_up_port;
}

/* The weather options, once the clock the down schedule counts from has started. */
static int setup_weather(void)
{
    char err[160];
    int d;
    weather_init(weather_deliver);
    if (!opt_seed_given)     /* a different run each time; printed, so a failing one replays */
        opt_seed = ((unsigned long long)time(NULL) << 20) ^ (unsigned long long)getpid();
    weather_seed(opt_seed);
    for (d = 0; d < WEATHER_DIRS; d++) {
        struct weather_params p;
        if (!opt_weather[d])
            continue;
        if (weather_parse(opt_weather[d], &p, err, sizeof err) != 0) {
            fprintf(stderr, "lwipgw: --weather: %s\n", err);
            return -1;
        }
        weather_set(d, &p);
    }
    if (opt_down && weather_down_schedule(opt_down, err, sizeof err) != 0) {
        fprintf(stderr, "lwipgw: --down: %s\n", err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    ip4_addr_t ip, mask, gw;
    struct tcp_pcb *lpcb;
    struct sigaction sa;
    struct pollfd pfds[2 + MAX_CONNS];
    struct conn *slot[2 + MAX_CONNS];
    struct stats last;
    unsigned long last_gen;
    u32_t last_write = 0;
    int dirty = 0;
    char spec[2][200];

    parse_args(argc, argv);
    /* Event lines are flushed once per pass of the main loop (and before a control reply), not
     * one write() each: a new connection makes four of them. */
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    signal(SIGPIPE, SIG_IGN);    /* a vanished upstream is an EPIPE, not a death */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;   /* no SA_RESTART: poll() returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    if (!ip4addr_aton(opt_ip, &ip) || !ip4addr_aton(opt_netmask, &mask) || !ip4addr_aton(opt_gw, &gw)) {
        fprintf(stderr, "lwipgw: bad --ip/--netmask/--gw\n");
        return 2;
    }
    if (setup_weather() != 0)
        return 2;
    tap_fd = hio_tap_open(opt_tap);
    if (tap_fd < 0) {
        fprintf(stderr, "lwipgw: cannot create TAP %s: %s\n", opt_tap, strerror(-tap_fd));
        return 1;
    }

    lwip_init();
    netif_add(&tap_netif, &ip, &mask, &gw, NULL, tap_netif_init, ethernet_input);
    netif_set_default(&tap_netif);
    netif_set_up(&tap_netif);

    lpcb = tcp_new();
    if (!lpcb || tcp_bind(lpcb, IP_ADDR_ANY, (u16_t)opt_listen) != ERR_OK) {
        fprintf(stderr, "lwipgw: cannot bind lwIP port %d\n", opt_listen);
        return 1;
    }
    lpcb = tcp_listen_with_backlog(lpcb, (u8_t)opt_backlog);
    tcp_accept(lpcb, on_accept);
    listener = (struct tcp_pcb_listen *)lpcb;
    st.upstream_backlog = -1;

    if (opt_ctl_port) {
        ctl_fd = hio_udp_bind(opt_up_host, opt_ctl_port);
        if (ctl_fd < 0)      /* e.g. a second gateway in front of the same upstream */
            printf("ctl_unavailable port=%d err=%s\n", opt_ctl_port, strerror(-ctl_fd));
    }

    write_stats();
    memcpy(&last, &st, sizeof last);
    last_gen = weather_generation();
    weather_spec(WEATHER_TO_CLIENT, spec[0], sizeof spec[0]);
    weather_spec(WEATHER_FROM_CLIENT, spec[1], sizeof spec[1]);
    printf("READY tap=%s ip=%s listen=%d upstream=%s:%d msl_ms=%d max_pcbs=%d backlog=%d lwip=%s pid=%d "
           "ctl=%d weather_to_client=%s weather_from_client=%s seed=%llu\n",
           opt_tap, opt_ip, opt_listen, opt_up_host, opt_up_port, TCP_MSL, MEMP_NUM_TCP_PCB,
           opt_backlog, LWIP_VERSION_STRING, (int)getpid(), ctl_fd >= 0 ? opt_ctl_port : 0,
           spec[0], spec[1], opt_seed);
    fflush(stdout);

    while (!stop) {
        int n = 2, i, timeout, wx;
        struct conn *c, **pp;

        pfds[0].fd = tap_fd;
        pfds[0].events = POLLIN;
        pfds[0].revents = 0;
        pfds[1].fd = ctl_fd;     /* -1: none, poll() skips it */
        pfds[1].events = POLLIN;
        pfds[1].revents = 0;
        slot[0] = slot[1] = NULL;
        for (c = conns; c && n < 2 + MAX_CONNS; c = c->next) {
            short e = wanted_events(c);
            /* Blocked on lwIP (its client does not read), we do not read upstream, yet a reset
             * from the firmware must reach lwIP at once, as on a board: events 0 still reports
             * POLLERR. (No POLLHUP without it while our write side is open.) */
            int watch_err = !e && !c->dead && !c->connecting && c->up_len && !c->shut_wr;
            /* fd -1 when we want nothing: POLLHUP would otherwise spin us */
            pfds[n].fd = (e || watch_err) ? c->fd : -1;
            pfds[n].events = e;
            pfds[n].revents = 0;
            slot[n++] = c;
        }
        timeout = (int)sys_timeouts_sleeptime();
        if (timeout < 0 || timeout > 100)
            timeout = 100;
        if (count_waiting() && timeout > BACKLOG_POLL_MS)
            timeout = BACKLOG_POLL_MS;  /* the firmware's accept() shows only upstream */
        wx = weather_next_ms();         /* -1: no frame waits in the weather */
        if (wx >= 0 && wx < timeout)
            timeout = wx;
        if (dirty) {         /* a throttled stats write is due soon */
            u32_t since = sys_now() - last_write;
            int left = since >= 20 ? 0 : (int)(20 - since);
            if (left < timeout)
                timeout = left;
        }
        if (poll(pfds, (nfds_t)n, timeout) < 0 && errno != EINTR) {
            perror("lwipgw: poll");
            break;
        }
        if (pfds[0].revents & POLLIN)
            tap_input();
        weather_flush();         /* frames whose delay is over, both ways */
        if (pfds[1].revents & POLLIN)
            ctl_input();
        for (i = 2; i < n; i++)
            service(slot[i], pfds[i].revents);
        /* Connections with nothing to wait for (ACK freed send buffer, FIN
         * arrived) progress here rather than on a socket event. */
        for (c = conns; c; c = c->next)
            if (!c->dead && !c->connecting)
                service(c, 0);
        sync_backlog(0);
        sys_check_timeouts();

        for (pp = &conns; *pp;) {
            c = *pp;
            if (c->dead) {
                *pp = c->next;
                if (c->rx)
                    pbuf_free(c->rx);
                free(c);
            } else {
                pp = &c->next;
            }
        }

        count_pcbs();
        {
            u32_t now = sys_now();
            dirty = memcmp(&last, &st, sizeof st) != 0 || weather_generation() != last_gen;
            if ((dirty && now - last_write >= 20) || now - last_write >= 1000) {
                write_stats();
                memcpy(&last, &st, sizeof last);
                last_gen = weather_generation();
                last_write = now;
                dirty = 0;
            }
        }
        fflush(stdout);          /* this pass's events: one write(), none when there were none */
    }
    count_pcbs();
    write_stats();
    printf("EXIT\n");
    return 0;
}
