/* See tcp_abort_idle.h. Checked against lwIP 2.1.3 and Espressif's esp-lwip (2.1.3-esp). */
#include "tcp_abort_idle.h"

#include "lwip/opt.h"

#if !LWIP_SOCKET || !LWIP_TCP || NO_SYS
#error "tcp_abort_idle.c needs lwIP's sockets and TCP (LWIP_SOCKET, LWIP_TCP, NO_SYS=0)"
#endif

#include "lwip/api.h"
#include "lwip/priv/sockets_priv.h"  /* struct lwip_sock, lwip_socket_dbg_get_socket() */
#include "lwip/priv/tcpip_priv.h"    /* tcpip_api_call() */
#include "lwip/tcp.h"

/* One call into lwIP's TCP/IP context, for abort and for the unacked query alike. */
struct tcp_call {
    /* First member: tcpip_api_call() hands our function a pointer to it. */
    struct tcpip_api_call_data call;
    int fd;
    int force;                      /* abort: also with data in flight */
    nostall_tcp_result_t result;    /* abort: what happened; the query: why there is no pcb */
    int unacked;                    /* the query's answer */
};

/* In lwIP's TCP/IP context: the pcb of fd's TCP connection, with its netconn in *conn_out; or
 * NULL, with *why saying what fd is instead. A pcb returned here is neither LISTEN, TIME_WAIT
 * nor CLOSED, so its unsent/unacked queues are there to read and tcp_abort() may take it. */
static struct tcp_pcb *connected_pcb(int fd, struct netconn **conn_out, nostall_tcp_result_t *why)
{
    /* The slot of fd in lwIP's socket table, without taking a reference: the caller owns fd,
     * and only lwip_close() frees a slot. NULL for an fd outside the table. */
    struct lwip_sock *sock = lwip_socket_dbg_get_socket(fd);
    struct netconn *conn = sock != NULL ? sock->conn : NULL;  /* NULL: a free slot */
    struct tcp_pcb *pcb;

    *conn_out = conn;
    if (conn == NULL) {
        *why = NOSTALL_TCP_NO_SOCKET;
    } else if (NETCONNTYPE_GROUP(netconn_type(conn)) != NETCONN_TCP) {
        *why = NOSTALL_TCP_NOT_TCP;
    } else if ((pcb = conn->pcb.tcp) == NULL) {
        /* err_tcp() (src/api/api_msg.c) cleared it when lwIP freed the pcb. */
        *why = NOSTALL_TCP_NO_PCB;
    } else if (pcb->state == LISTEN || pcb->state == TIME_WAIT || pcb->state == CLOSED) {
        /* A listening netconn's pcb is a tcp_pcb_listen: `state` is in the part both share
         * (TCP_PCB_COMMON), as api_msg.c itself reads it, but it has no unsent/unacked; and
         * tcp_abort() must not see LISTEN. TIME_WAIT and CLOSED hold no data of ours. */
        *why = NOSTALL_TCP_STATE;
    } else {
        return pcb;
    }
    return NULL;
}

/* Data of ours the peer has not acknowledged: queued unsent, or sent and awaiting its ACK (a
 * queued SYN or FIN is such a segment too). */
static int holds_unacked(const struct tcp_pcb *pcb)
{
    return pcb->unacked != NULL || pcb->unsent != NULL;
}

/* In lwIP's TCP/IP context: nothing else touches the pcb or the netconn's state meanwhile. */
static err_t abort_in_tcpip(struct tcpip_api_call_data *call)
{
    struct tcp_call *c = (struct tcp_call *)call;
    struct netconn *conn;
    struct tcp_pcb *pcb = connected_pcb(c->fd, &conn, &c->result);

    if (pcb == NULL) {
        /* c->result says why */
    } else if (conn->state != NETCONN_NONE) {
        /* A blocking connect/write/close holds conn->current_msg; leave it to finish. */
        c->result = NOSTALL_TCP_BUSY;
    } else if (!c->force && holds_unacked(pcb)) {
        /* The peer has not got everything we sent: a RST would drop it. Close normally. */
        c->result = NOSTALL_TCP_UNACKED;
    } else {
        /* RST to the peer, pcb freed at once; err_tcp(ERR_ABRT) clears conn->pcb.tcp, so the
         * caller's lwip_close() takes the path of a connection the peer reset. */
        tcp_abort(pcb);
        c->result = NOSTALL_TCP_ABORTED;
    }
    return ERR_OK;
}

/* In lwIP's TCP/IP context, so the queues are not changing under us; reads only. */
static err_t unacked_in_tcpip(struct tcpip_api_call_data *call)
{
    struct tcp_call *c = (struct tcp_call *)call;
    struct netconn *conn;
    struct tcp_pcb *pcb = connected_pcb(c->fd, &conn, &c->result);

    c->unacked = pcb != NULL && holds_unacked(pcb);
    return ERR_OK;
}

/* Run fn in lwIP's TCP/IP context on a call for fd; returns the call as fn left it. Waits for
 * the tcpip thread like every lwIP socket call does; fails only when it cannot make a semaphore
 * (LWIP_NETCONN_SEM_PER_THREAD=0), and then nothing ran: result NOSTALL_TCP_NOT_RUN, unacked 0
 * (the query's caller then waits as it would without asking). */
static struct tcp_call run_in_tcpip(tcpip_api_call_fn fn, int fd, int force)
{
    struct tcp_call c;

    c.fd = fd;
    c.force = force;
    c.result = NOSTALL_TCP_NOT_RUN;
    c.unacked = 0;
    if (tcpip_api_call(fn, &c.call) != ERR_OK) {
        c.result = NOSTALL_TCP_NOT_RUN;
        c.unacked = 0;
    }
    return c;
}

nostall_tcp_result_t nostall_tcp_abort(int fd, int force)
{
    return run_in_tcpip(abort_in_tcpip, fd, force).result;
}

int nostall_tcp_unacked(int fd)
{
    return run_in_tcpip(unacked_in_tcpip, fd, 0).unacked;
}
