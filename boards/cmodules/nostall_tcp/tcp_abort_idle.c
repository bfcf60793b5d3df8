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

struct abort_call {
    /* First member: tcpip_api_call() hands our function a pointer to it. */
    struct tcpip_api_call_data call;
    int fd;
    int force;
    nostall_tcp_result_t result;
};

/* In lwIP's TCP/IP context: nothing else touches the pcb or the netconn's state meanwhile. */
static err_t abort_in_tcpip(struct tcpip_api_call_data *call)
{
    struct abort_call *a = (struct abort_call *)call;
    /* The slot of fd in lwIP's socket table, without taking a reference: the caller owns fd,
     * and only lwip_close() frees a slot. NULL for an fd outside the table. */
    struct lwip_sock *sock = lwip_socket_dbg_get_socket(a->fd);
    struct netconn *conn = sock != NULL ? sock->conn : NULL;  /* NULL: a free slot */
    struct tcp_pcb *pcb;

    if (conn == NULL) {
        a->result = NOSTALL_TCP_NO_SOCKET;
    } else if (NETCONNTYPE_GROUP(netconn_type(conn)) != NETCONN_TCP) {
        a->result = NOSTALL_TCP_NOT_TCP;
    } else if ((pcb = conn->pcb.tcp) == NULL) {
        /* err_tcp() (src/api/api_msg.c) cleared it when lwIP freed the pcb. */
        a->result = NOSTALL_TCP_NO_PCB;
    } else if (pcb->state == LISTEN || pcb->state == TIME_WAIT || pcb->state == CLOSED) {
        /* A listening netconn's pcb is a tcp_pcb_listen; `state` is in the part both share
         * (TCP_PCB_COMMON), as api_msg.c itself reads it. tcp_abort() must not see LISTEN. */
        a->result = NOSTALL_TCP_STATE;
    } else if (conn->state != NETCONN_NONE) {
        /* A blocking connect/write/close holds conn->current_msg; leave it to finish. */
        a->result = NOSTALL_TCP_BUSY;
    } else if (!a->force && (pcb->unacked != NULL || pcb->unsent != NULL)) {
        /* The peer has not got everything we sent: a RST would drop it. Close normally. */
        a->result = NOSTALL_TCP_UNACKED;
    } else {
        /* RST to the peer, pcb freed at once; err_tcp(ERR_ABRT) clears conn->pcb.tcp, so the
         * caller's lwip_close() takes the path of a connection the peer reset. */
        tcp_abort(pcb);
        a->result = NOSTALL_TCP_ABORTED;
    }
    return ERR_OK;
}

nostall_tcp_result_t nostall_tcp_abort(int fd, int force)
{
    struct abort_call a;

    a.fd = fd;
    a.force = force;
    a.result = NOSTALL_TCP_NOT_RUN;
    /* Waits for the tcpip thread like every lwIP socket call does; it fails only when it
     * cannot make a semaphore (LWIP_NETCONN_SEM_PER_THREAD=0), and then nothing ran. */
    if (tcpip_api_call(abort_in_tcpip, &a.call) != ERR_OK) {
        return NOSTALL_TCP_NOT_RUN;
    }
    return a.result;
}
