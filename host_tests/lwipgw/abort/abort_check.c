/*
 * abort_check - the firmware's abortive close (boards/cmodules/nostall_tcp/tcp_abort_idle.c,
 * compiled unchanged) on real lwIP 2.1.3, with lwIP's tcpip thread and socket layer as on the
 * board, against a Linux TCP client.
 *
 * Layout: this process moves itself into a new, unnamed network namespace (gone when it exits,
 * however it exits), makes a TAP device there, gives the Linux side 10.78.0.1 and lwIP
 * 10.78.0.2 on it; lwIP listens on port 80 through lwip_socket()/lwip_listen(), the Linux
 * client connects from the namespace.
 *
 * Output: one line per case, "case=NAME ok=0|1 key=value ...", then
 * "summary passed=N failed=M". Exit 0 when every case is ok. host_tests/emulator/
 * test_tcp_abort.py runs it and reads the keys itself too. An alarm ends a hung run (exit 3).
 *
 * Cases: an idle, fully acknowledged connection (abort: RST, pcb gone at once, no TIME_WAIT);
 * the same closed with lwip_close() and with SO_LINGER {1, 0} (both leave TIME_WAIT: the
 * negative controls); data sent but unacknowledged, or unsent behind a full window (no
 * abort, nothing changed); a listening socket, bad fds, a freed fd, a UDP socket, an
 * unconnected socket, a peer-reset connection (no abort).
 *
 * nostall_tcp_unacked() (the same file's query: is the board's data still in flight?) is asked
 * in each of them (keys query...: 1 only while data is unacknowledged or unsent), and in two
 * cases of its own: a stopped client that reads everything again (drained: 1, then 0) and a
 * FIN left unacknowledged, then TIME_WAIT (fin_unacked: 1, then 0).
 */
#include "lwip/opt.h"
#include "lwip/api.h"
#include "lwip/etharp.h"
#include "lwip/init.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/sockets_priv.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/priv/tcpip_priv.h"
#include "lwip/sockets.h"
#include "lwip/tcpip.h"
#include "netif/ethernet.h"

#include "../hostio.h"
#include "linux.h"
#include "tcp_abort_idle.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TAP_NAME "abtap0"
#define LINUX_IP "10.78.0.1"
#define LWIP_IP "10.78.0.2"
#define NETMASK "255.255.255.0"
#define PORT 80
#define WAIT_MS 3000          /* any one wait for the peer or for lwIP */
#define RUN_TIMEOUT_S 60      /* the whole run; normally a few seconds */
#define FRAME_MAX 1600

static int tap_fd = -1;
static struct netif tap_netif;
static volatile int stopping;
static volatile int drop_input;   /* 1: frames from Linux are lost (its ACKs never arrive) */
static int passed, failed;

/* ---- lwIP on the TAP ------------------------------------------------------ */

/* In the tcpip thread: one Ethernet frame out to Linux. */
static err_t tap_linkoutput(struct netif *nif, struct pbuf *p)
{
    unsigned char frame[FRAME_MAX];
    u16_t len = pbuf_copy_partial(p, frame, sizeof frame, 0);

    (void)nif;
    if (write(tap_fd, frame, len) != (ssize_t)len) {
        return ERR_IF;
    }
    return ERR_OK;
}

static err_t tap_netif_init(struct netif *nif)
{
    static const u8_t mac[6] = { 0x02, 0x00, 0x00, 0x4e, 0x00, 0x02 };

    nif->name[0] = 't';
    nif->name[1] = 'p';
    nif->mtu = 1500;
    nif->hwaddr_len = 6;
    memcpy(nif->hwaddr, mac, 6);
    nif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_LINK_UP;
    nif->output = etharp_output;
    nif->linkoutput = tap_linkoutput;
    return ERR_OK;
}

/* In the tcpip thread, once it runs: the netif (lwIP wants it added there). */
static void tcpip_ready(void *arg)
{
    ip4_addr_t ip, mask, gw;

    ip4addr_aton(LWIP_IP, &ip);
    ip4addr_aton(NETMASK, &mask);
    ip4addr_aton(LINUX_IP, &gw);
    netif_add(&tap_netif, &ip, &mask, &gw, NULL, tap_netif_init, tcpip_input);
    netif_set_default(&tap_netif);
    netif_set_up(&tap_netif);
    sys_sem_signal((sys_sem_t *)arg);
}

/* Frames from Linux into lwIP (tcpip_input queues them for the tcpip thread). */
static void tap_reader(void *arg)
{
    unsigned char frame[FRAME_MAX];

    (void)arg;
    while (!stopping) {
        ssize_t n;
        struct pbuf *p;

        if (!lx_readable(tap_fd, 50)) {
            continue;
        }
        n = read(tap_fd, frame, sizeof frame);
        if (n <= 0 || drop_input) {
            continue;
        }
        p = pbuf_alloc(PBUF_RAW, (u16_t)n, PBUF_POOL);
        if (p == NULL) {
            continue;   /* dropped, as a busy board would; TCP retransmits */
        }
        pbuf_take(p, frame, (u16_t)n);
        if (tap_netif.input(p, &tap_netif) != ERR_OK) {
            pbuf_free(p);
        }
    }
}

/* ---- looking at lwIP from the test -------------------------------------- */

struct probe {
    struct tcpip_api_call_data call;   /* first: tcpip_api_call() passes a pointer to it */
    int fd;
    u16_t port;                        /* the Linux client's port */
    int has_pcb, state, unsent, unacked;
    int active, time_wait;             /* pcbs whose remote port is `port` */
};

static err_t probe_in_tcpip(struct tcpip_api_call_data *call)
{
    struct probe *pr = (struct probe *)call;
    struct lwip_sock *sock = lwip_socket_dbg_get_socket(pr->fd);
    struct netconn *conn = sock != NULL ? sock->conn : NULL;
    struct tcp_pcb *pcb = conn != NULL ? conn->pcb.tcp : NULL;

    pr->has_pcb = pcb != NULL;
    pr->state = pcb != NULL ? (int)pcb->state : -1;
    pr->unsent = pcb != NULL && pcb->state != LISTEN && pcb->unsent != NULL;
    pr->unacked = pcb != NULL && pcb->state != LISTEN && pcb->unacked != NULL;
    pr->active = pr->time_wait = 0;
    for (pcb = tcp_active_pcbs; pcb != NULL; pcb = pcb->next) {
        pr->active += pcb->remote_port == pr->port;
    }
    for (pcb = tcp_tw_pcbs; pcb != NULL; pcb = pcb->next) {
        pr->time_wait += pcb->remote_port == pr->port;
    }
    return ERR_OK;
}

static struct probe probe(int fd, int port)
{
    struct probe pr;

    memset(&pr, 0, sizeof pr);
    pr.fd = fd;
    pr.port = (u16_t)port;
    tcpip_api_call(probe_in_tcpip, &pr.call);
    return pr;
}

enum wait_for { IDLE, BACKLOGGED, PCB_GONE, TIME_WAIT_SEEN };

/* Probe every 10 ms until `what` holds or WAIT_MS passed; returns the last probe. */
static struct probe wait_until(int fd, int port, enum wait_for what)
{
    u32_t start = sys_now();

    for (;;) {
        struct probe pr = probe(fd, port);
        int done = (what == IDLE && pr.has_pcb && !pr.unsent && !pr.unacked)
                   || (what == BACKLOGGED && (pr.unsent || pr.unacked))
                   || (what == PCB_GONE && !pr.has_pcb)
                   || (what == TIME_WAIT_SEEN && pr.time_wait > 0);
        if (done || sys_now() - start > WAIT_MS) {
            return pr;
        }
        lx_sleep_ms(10);
    }
}

static const char *state_name(int state)
{
    static const char *const names[] = {
        "CLOSED", "LISTEN", "SYN_SENT", "SYN_RCVD", "ESTABLISHED", "FIN_WAIT_1",
        "FIN_WAIT_2", "CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT",
    };
    return state >= 0 && state <= TIME_WAIT ? names[state] : "none";
}

static const char *result_name(nostall_tcp_result_t r)
{
    switch (r) {
    case NOSTALL_TCP_ABORTED: return "aborted";
    case NOSTALL_TCP_NO_SOCKET: return "no_socket";
    case NOSTALL_TCP_NOT_TCP: return "not_tcp";
    case NOSTALL_TCP_NO_PCB: return "no_pcb";
    case NOSTALL_TCP_STATE: return "state";
    case NOSTALL_TCP_BUSY: return "busy";
    case NOSTALL_TCP_UNACKED: return "unacked";
    case NOSTALL_TCP_NOT_RUN: return "not_run";
    }
    return "?";
}

static void report(int ok, const char *line)
{
    printf("%s ok=%d\n", line, ok);
    fflush(stdout);
    if (ok) {
        passed++;
    } else {
        failed++;
    }
}

/* ---- connections ---------------------------------------------------------- */

static int listen_fd = -1;

static void set_timeouts(int fd)
{
    struct timeval tv = { WAIT_MS / 1000, 0 };

    lwip_setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    lwip_setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

struct pair {
    int server;   /* lwIP socket, accepted */
    int client;   /* Linux socket */
    int port;     /* the client's port */
};

/* A fresh connection: the Linux client connects, lwIP accepts. rcvbuf as for lx_connect. */
static int open_pair(struct pair *pr, int rcvbuf)
{
    pr->client = lx_connect(LWIP_IP, PORT, rcvbuf, WAIT_MS, &pr->port);
    if (pr->client < 0) {
        fprintf(stderr, "abort_check: connect: %s\n", lx_errname(pr->client));
        return -1;
    }
    pr->server = lwip_accept(listen_fd, NULL, NULL);
    if (pr->server < 0) {
        fprintf(stderr, "abort_check: lwip_accept failed (errno %d)\n", errno);
        lx_close(pr->client);
        return -1;
    }
    set_timeouts(pr->server);
    return 0;
}

/* A request and an answer, both read: nothing unread, nothing unacknowledged (waited for).
 * Returns 0 with the idle connection's probe in *idle; else reports case `name` as failed. */
static int open_idle_pair(struct pair *pr, const char *name, struct probe *idle)
{
    char buf[64];

    if (open_pair(pr, 0) == 0) {
        lx_send(pr->client, "ping", 4);
        lwip_recv(pr->server, buf, 4, 0);
        lwip_send(pr->server, "hello", 5, 0);
        lx_recv(pr->client, buf, 5, WAIT_MS);
        *idle = wait_until(pr->server, pr->port, IDLE);
        if (idle->has_pcb && !idle->unsent && !idle->unacked) {
            return 0;
        }
        lx_close(pr->client);
        lwip_close(pr->server);
    }
    snprintf(buf, sizeof buf, "case=%s setup=failed", name);
    report(0, buf);
    return -1;
}

/* ---- the cases ------------------------------------------------------------- */

/* Every case asks nostall_tcp_unacked() too, before anything else changes the connection: the
 * keys query=, query_before=... are its answers (1: the board's data is still in flight). */

/* (a) The point: an idle, fully acknowledged connection is reset and gone at once. */
static void case_idle_acked(void)
{
    struct pair p;
    struct probe before, after, later;
    nostall_tcp_result_t r;
    int client, closed, q_before, q_after;
    u32_t t0;
    char line[320];
    char buf[8];

    if (open_idle_pair(&p, "idle_acked", &before) < 0) {
        return;
    }
    q_before = nostall_tcp_unacked(p.server);   /* everything acknowledged: 0 */
    r = nostall_tcp_abort(p.server, 0);
    after = probe(p.server, p.port);     /* the very next look: no timer ran in between */
    q_after = nostall_tcp_unacked(p.server);    /* no pcb any more: 0 */
    t0 = sys_now();
    client = lx_recv(p.client, buf, sizeof buf, WAIT_MS);
    snprintf(line, sizeof line, "case=idle_acked query_before=%d result=%s state_before=%s "
             "pcbs_before=%d pcb_after=%d pcbs_after=%d time_wait_after=%d query_after=%d "
             "client_recv=%s client_ms=%u",
             q_before, result_name(r), state_name(before.state), before.active, after.has_pcb,
             after.active, after.time_wait, q_after, lx_errname(client), (unsigned)(sys_now() - t0));
    closed = lwip_close(p.server);       /* must be safe on a netconn whose pcb is gone */
    lx_close(p.client);
    lx_sleep_ms(300);
    later = probe(-1, p.port);
    snprintf(line + strlen(line), sizeof line - strlen(line), " close=%d pcbs_later=%d time_wait_later=%d",
             closed, later.active, later.time_wait);
    report(q_before == 0 && r == NOSTALL_TCP_ABORTED && before.active == 1 && !after.has_pcb
           && after.active == 0 && after.time_wait == 0 && q_after == 0 && client == -ECONNRESET
           && closed == 0 && later.active == 0 && later.time_wait == 0, line);
}

/* (b) Negative controls: the same connection closed by lwIP itself keeps a TIME_WAIT pcb,
 * plainly and with SO_LINGER {1, 0} (it aborts only with unacknowledged data). */
static void case_close(int linger0)
{
    struct pair p;
    struct probe before, after;
    int client, closed, set = 0;
    char line[256];
    char buf[8];

    if (open_idle_pair(&p, linger0 ? "linger0_close" : "close", &before) < 0) {
        return;
    }
    if (linger0) {
        struct linger lg = { 1, 0 };
        set = lwip_setsockopt(p.server, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    closed = lwip_close(p.server);
    client = lx_recv(p.client, buf, sizeof buf, WAIT_MS);
    lx_close(p.client);                  /* the client's FIN: lwIP, which closed first, goes to TIME_WAIT */
    after = wait_until(-1, p.port, TIME_WAIT_SEEN);
    snprintf(line, sizeof line, "case=%s setsockopt=%d close=%d client_recv=%s time_wait=%d",
             linger0 ? "linger0_close" : "close", set, closed, lx_errname(client), after.time_wait);
    report(set == 0 && closed == 0 && client == 0 && after.time_wait == 1, line);
}

/* A client that stopped reading: a small receive buffer, never read, so its window closes and
 * lwIP's queue fills with what the board wrote (*sent bytes). Returns 0 with the backlogged
 * connection's probe in *before; else reports case `name` as failed. */
static int open_stopped_pair(struct pair *p, const char *name, int *sent, struct probe *before)
{
    static char chunk[1024];
    char line[64];
    int n, i;

    *sent = 0;
    if (open_pair(p, 2048) < 0) {
        snprintf(line, sizeof line, "case=%s setup=failed", name);
        report(0, line);
        return -1;
    }
    memset(chunk, 'x', sizeof chunk);
    for (i = 0; i < 256; i++) {        /* bounded: lwIP's send buffer is TCP_SND_BUF */
        n = lwip_send(p->server, chunk, sizeof chunk, MSG_DONTWAIT);
        if (n <= 0) {
            break;
        }
        *sent += n;
    }
    lx_sleep_ms(300);                  /* let the window close */
    *before = wait_until(p->server, p->port, BACKLOGGED);
    return 0;
}

/* (c) Data the client has not taken (its window is full, lwIP still holds it unsent): no
 * abort, and the connection goes on untouched. */
static void case_window_full(void)
{
    struct pair p;
    struct probe before, after;
    nostall_tcp_result_t r;
    int sent, client, q_before, q_after;
    char line[384];
    char buf[4096];

    if (open_stopped_pair(&p, "window_full", &sent, &before) < 0) {
        return;
    }
    q_before = nostall_tcp_unacked(p.server);
    r = nostall_tcp_abort(p.server, 0);
    after = probe(p.server, p.port);
    q_after = nostall_tcp_unacked(p.server);
    client = lx_recv(p.client, buf, sizeof buf, WAIT_MS);   /* still alive: data, no reset */
    snprintf(line, sizeof line, "case=window_full sent=%d unsent_before=%d unacked_before=%d "
             "query_before=%d result=%s pcb_after=%d state_before=%s state_after=%s "
             "unsent_after=%d unacked_after=%d query_after=%d client_recv=%s client_bytes=%d",
             sent, before.unsent, before.unacked, q_before, result_name(r), after.has_pcb,
             state_name(before.state), state_name(after.state), after.unsent, after.unacked,
             q_after, lx_errname(client), client > 0 ? client : 0);
    report(r == NOSTALL_TCP_UNACKED && (before.unsent || before.unacked) && q_before == 1
           && after.has_pcb && after.state == before.state && after.state == ESTABLISHED
           && (after.unsent || after.unacked) && q_after == 1 && client > 0, line);
    hio_close_reset(p.client);
    lwip_close(p.server);
}

/* The same connection, aborted with force (a client that stopped reading): RST, pcb freed at
 * once, no TIME_WAIT; the client reads what arrived, then the reset. */
static void case_window_full_forced(void)
{
    struct pair p;
    struct probe before, after;
    nostall_tcp_result_t r;
    int sent, i, client = 0, got = 0, q_after;
    char line[352];
    char buf[4096];

    if (open_stopped_pair(&p, "window_full_forced", &sent, &before) < 0) {
        return;
    }
    r = nostall_tcp_abort(p.server, 1);
    after = probe(p.server, p.port);
    q_after = nostall_tcp_unacked(p.server);    /* no pcb any more: 0 */
    for (i = 0; i < 64; i++) {         /* bounded: what arrived before the RST, then the RST */
        client = lx_recv(p.client, buf, sizeof buf, WAIT_MS);
        if (client <= 0) {
            break;
        }
        got += client;
    }
    snprintf(line, sizeof line, "case=window_full_forced sent=%d unsent_before=%d unacked_before=%d "
             "result=%s pcb_after=%d pcbs_after=%d time_wait_after=%d query_after=%d "
             "client_recv=%s client_bytes=%d",
             sent, before.unsent, before.unacked, result_name(r), after.has_pcb, after.active,
             after.time_wait, q_after, lx_errname(client), got);
    report(r == NOSTALL_TCP_ABORTED && (before.unsent || before.unacked) && !after.has_pcb
           && after.active == 0 && after.time_wait == 0 && q_after == 0 && client == -ECONNRESET,
           line);
    lx_close(p.client);
    lwip_close(p.server);
}

/* The stopped client reads again, everything: the query says 1 while lwIP holds data for it,
 * 0 once the client has acknowledged the last byte (what a linger waits for). */
static void case_drained(void)
{
    struct pair p;
    struct probe before, idle;
    int sent, i, n, got = 0, q_stopped, q_drained;
    char line[320];
    char buf[4096];

    if (open_stopped_pair(&p, "drained", &sent, &before) < 0) {
        return;
    }
    q_stopped = nostall_tcp_unacked(p.server);
    for (i = 0; i < 256 && got < sent; i++) {   /* bounded: sent is at most TCP_SND_BUF + buffers */
        n = lx_recv(p.client, buf, sizeof buf, WAIT_MS);
        if (n <= 0) {
            break;
        }
        got += n;
    }
    idle = wait_until(p.server, p.port, IDLE);
    q_drained = nostall_tcp_unacked(p.server);
    snprintf(line, sizeof line, "case=drained sent=%d unsent_before=%d unacked_before=%d "
             "query_stopped=%d client_bytes=%d state_drained=%s unsent_drained=%d "
             "unacked_drained=%d query_drained=%d",
             sent, before.unsent, before.unacked, q_stopped, got, state_name(idle.state),
             idle.unsent, idle.unacked, q_drained);
    report((before.unsent || before.unacked) && q_stopped == 1 && sent > 0 && got == sent
           && idle.state == ESTABLISHED && !idle.unsent && !idle.unacked && q_drained == 0, line);
    lx_close(p.client);
    lwip_close(p.server);
}

/* (c) Data sent and received, its ACK lost on the way back: no abort, the connection goes on;
 * the query says 1 until the ACK gets through, then 0. */
static void case_unacked(void)
{
    struct pair p;
    struct probe before, inflight, after, later;
    nostall_tcp_result_t r;
    int client, q_inflight, q_later;
    char line[384];
    char buf[64];

    if (open_idle_pair(&p, "unacked", &before) < 0) {
        return;
    }
    drop_input = 1;                    /* from here the client's ACKs are lost */
    lwip_send(p.server, "more", 4, 0);
    inflight = wait_until(p.server, p.port, BACKLOGGED);
    q_inflight = nostall_tcp_unacked(p.server);
    r = nostall_tcp_abort(p.server, 0);
    after = probe(p.server, p.port);
    client = lx_recv(p.client, buf, sizeof buf, WAIT_MS);   /* the data did arrive */
    drop_input = 0;
    lx_send(p.client, "ack?", 4);      /* carries an ACK that gets through now */
    lwip_recv(p.server, buf, 4, 0);
    later = wait_until(p.server, p.port, IDLE);
    q_later = nostall_tcp_unacked(p.server);
    snprintf(line, sizeof line, "case=unacked unacked_before=%d unsent_before=%d query_inflight=%d "
             "result=%s pcb_after=%d state_after=%s unacked_after=%d client_recv=%s client_bytes=%d "
             "acked_later=%d query_later=%d", inflight.unacked, inflight.unsent, q_inflight,
             result_name(r), after.has_pcb, state_name(after.state), after.unacked,
             lx_errname(client), client > 0 ? client : 0, later.has_pcb && !later.unacked, q_later);
    report(r == NOSTALL_TCP_UNACKED && inflight.unacked && q_inflight == 1 && after.has_pcb
           && after.state == ESTABLISHED && after.unacked && client == 4
           && later.has_pcb && !later.unacked && q_later == 0, line);
    lx_close(p.client);
    lwip_close(p.server);
}

/* A FIN counts as data in flight (lwIP queues it as a segment): lwip_shutdown(SHUT_WR) with the
 * client's ACKs lost leaves it unacknowledged in FIN_WAIT_1 (1). Then the client's FIN, with
 * its ACK, gets through: TIME_WAIT, the pcb still on the socket (0; abort: state). MicroPython's
 * esp32 sockets have no shutdown(); this pins down what the query counts. */
static void case_fin_unacked(void)
{
    struct pair p;
    struct probe before, fin, tw;
    nostall_tcp_result_t r;
    int shut, client, q_fin, q_tw, closed;
    char line[320];
    char buf[8];

    if (open_idle_pair(&p, "fin_unacked", &before) < 0) {
        return;
    }
    drop_input = 1;
    shut = lwip_shutdown(p.server, SHUT_WR);
    fin = wait_until(p.server, p.port, BACKLOGGED);
    q_fin = nostall_tcp_unacked(p.server);
    client = lx_recv(p.client, buf, sizeof buf, WAIT_MS);   /* EOF: the FIN did arrive */
    drop_input = 0;
    lx_close(p.client);                /* its FIN acknowledges ours: lwIP goes to TIME_WAIT */
    tw = wait_until(p.server, p.port, TIME_WAIT_SEEN);   /* looks at p.server's pcb too */
    q_tw = nostall_tcp_unacked(p.server);
    r = nostall_tcp_abort(p.server, 0);
    closed = lwip_close(p.server);
    snprintf(line, sizeof line, "case=fin_unacked shutdown=%d state_fin=%s unacked_fin=%d "
             "query_fin=%d client_recv=%s state_later=%s query_later=%d result_later=%s close=%d",
             shut, state_name(fin.state), fin.unacked, q_fin, lx_errname(client),
             state_name(tw.state), q_tw, result_name(r), closed);
    report(shut == 0 && fin.state == FIN_WAIT_1 && fin.unacked && q_fin == 1 && client == 0
           && tw.state == TIME_WAIT && q_tw == 0 && r == NOSTALL_TCP_STATE && closed == 0, line);
}

/* (d) Not an established connection: no abort, nothing changed, nothing in flight. */
static void case_listening(void)
{
    int q = nostall_tcp_unacked(listen_fd);
    nostall_tcp_result_t r = nostall_tcp_abort(listen_fd, 0);
    struct probe after = probe(listen_fd, 0);
    struct pair p;
    int accepts = open_pair(&p, 0) == 0;  /* the listener still works */
    char line[160];

    if (accepts) {
        lx_close(p.client);
        lwip_close(p.server);
    }
    snprintf(line, sizeof line, "case=listening query=%d result=%s state_after=%s accepts_after=%d",
             q, result_name(r), state_name(after.state), accepts);
    report(q == 0 && r == NOSTALL_TCP_STATE && after.state == LISTEN && accepts, line);
}

static void case_bad_fd(const char *name, int fd, nostall_tcp_result_t want)
{
    int q = nostall_tcp_unacked(fd);
    nostall_tcp_result_t r = nostall_tcp_abort(fd, 0);
    char line[128];

    snprintf(line, sizeof line, "case=%s fd=%d query=%d result=%s", name, fd, q, result_name(r));
    report(q == 0 && r == want, line);
}

static void case_other_sockets(void)
{
    int freed = lwip_socket(AF_INET, SOCK_STREAM, 0);
    int udp, unconnected;

    lwip_close(freed);                  /* its slot is free now */
    case_bad_fd("bad_fd", -1, NOSTALL_TCP_NO_SOCKET);
    case_bad_fd("bad_fd", LWIP_SOCKET_OFFSET + MEMP_NUM_NETCONN, NOSTALL_TCP_NO_SOCKET);
    case_bad_fd("bad_fd", 9999, NOSTALL_TCP_NO_SOCKET);
    case_bad_fd("closed_fd", freed, NOSTALL_TCP_NO_SOCKET);
    udp = lwip_socket(AF_INET, SOCK_DGRAM, 0);
    case_bad_fd("udp", udp, NOSTALL_TCP_NOT_TCP);
    lwip_close(udp);
    unconnected = lwip_socket(AF_INET, SOCK_STREAM, 0);
    case_bad_fd("unconnected", unconnected, NOSTALL_TCP_STATE);
    lwip_close(unconnected);
}

/* The client reset the connection first: lwIP freed the pcb already. */
static void case_peer_reset(void)
{
    struct pair p;
    struct probe before, gone;
    nostall_tcp_result_t r;
    int closed, q;
    char line[160];

    if (open_idle_pair(&p, "peer_reset", &before) < 0) {
        return;
    }
    hio_close_reset(p.client);
    gone = wait_until(p.server, p.port, PCB_GONE);
    q = nostall_tcp_unacked(p.server);
    r = nostall_tcp_abort(p.server, 0);
    closed = lwip_close(p.server);
    snprintf(line, sizeof line, "case=peer_reset pcb_before_call=%d query=%d result=%s close=%d",
             gone.has_pcb, q, result_name(r), closed);
    report(!gone.has_pcb && q == 0 && r == NOSTALL_TCP_NO_PCB && closed == 0, line);
}

/* ---- setup ------------------------------------------------------------------ */

static void on_alarm(int sig)
{
    static const char msg[] = "abort_check: timeout: a wait did not end\n";

    (void)sig;
    if (write(STDOUT_FILENO, msg, sizeof msg - 1) < 0) {
        /* nothing more to do: exiting anyway */
    }
    _exit(3);
}

static int setup(void)
{
    struct sockaddr_in sa;
    sys_sem_t ready;
    int err;

    err = lx_private_netns();
    if (err < 0) {
        fprintf(stderr, "abort_check: unshare(CLONE_NEWNET): %s (needs root)\n", lx_errname(err));
        return -1;
    }
    tap_fd = hio_tap_open(TAP_NAME);
    if (tap_fd < 0) {
        fprintf(stderr, "abort_check: TAP: %s (needs /dev/net/tun)\n", lx_errname(tap_fd));
        return -1;
    }
    err = lx_if_up(TAP_NAME, LINUX_IP, NETMASK);
    if (err < 0) {
        fprintf(stderr, "abort_check: configuring %s: %s\n", TAP_NAME, lx_errname(err));
        return -1;
    }
    if (sys_sem_new(&ready, 0) != ERR_OK) {
        return -1;
    }
    tcpip_init(tcpip_ready, &ready);
    sys_arch_sem_wait(&ready, 0);
    sys_sem_free(&ready);
    sys_thread_new("tap", tap_reader, NULL, 0, 0);

    listen_fd = lwip_socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_len = sizeof sa;
    sa.sin_family = AF_INET;
    sa.sin_port = lwip_htons(PORT);
    sa.sin_addr.s_addr = PP_HTONL(INADDR_ANY);
    if (listen_fd < 0 || lwip_bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) < 0
        || lwip_listen(listen_fd, 4) < 0) {
        fprintf(stderr, "abort_check: cannot listen on lwIP port %d\n", PORT);
        return -1;
    }
    set_timeouts(listen_fd);
    return 0;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, on_alarm);
    alarm(RUN_TIMEOUT_S);
    if (setup() < 0) {
        return 2;
    }
    printf("abort_check lwip=%s core_locking=%d tcp_msl=%d max_pcbs=%d\n", LWIP_VERSION_STRING,
           LWIP_TCPIP_CORE_LOCKING, TCP_MSL, MEMP_NUM_TCP_PCB);

    case_listening();
    case_other_sockets();
    case_idle_acked();
    case_close(0);
    case_close(1);
    case_unacked();
    case_window_full();
    case_window_full_forced();
    case_drained();
    case_fin_unacked();
    case_peer_reset();

    printf("summary passed=%d failed=%d\n", passed, failed);
    stopping = 1;
    return failed == 0 ? 0 : 1;
}
