/*
 * Abortive close of an idle TCP connection behind an lwIP socket, and the question it rests on:
 * does the board still have data in flight on it?
 *
 * Why: when the board has to close a connection first (idle expiry, eviction, shutdown), a
 * normal close sends a FIN and leaves the board's pcb in TIME_WAIT for 2 * TCP_MSL; a client
 * that reuses the source port meanwhile stalls. lwIP's SO_LINGER {1, 0} does not help here:
 * it aborts only while sent data is unacknowledged (lwip_netconn_do_close_internal,
 * src/api/api_msg.c), and tcp_close() sends a RST only when received data was left unread
 * (tcp_close_shutdown, src/core/tcp.c). tcp_abort() always sends a RST and frees the pcb.
 *
 * And while the board waits for the client to close first, lwIP may still be retransmitting
 * the board's answer on a lossy link: nostall_tcp_unacked() says so, so that a linger timer
 * does not run out (and close first) while the answer is still on its way.
 *
 * This part knows lwIP only (no MicroPython), so it is built and tested against plain lwIP
 * 2.1.3 too (host_tests/lwipgw/abort/).
 */
#ifndef NOSTALL_TCP_ABORT_IDLE_H
#define NOSTALL_TCP_ABORT_IDLE_H

typedef enum {
    NOSTALL_TCP_ABORTED = 0,    /* tcp_abort() ran: RST sent, pcb freed, no TIME_WAIT */
    NOSTALL_TCP_NO_SOCKET,      /* fd is not an open lwIP socket */
    NOSTALL_TCP_NOT_TCP,        /* a UDP or RAW socket */
    NOSTALL_TCP_NO_PCB,         /* the pcb is already gone (peer reset, error, abort) */
    NOSTALL_TCP_STATE,          /* LISTEN, TIME_WAIT or CLOSED (never connected) */
    NOSTALL_TCP_BUSY,           /* a blocking connect, write or close is running on it */
    NOSTALL_TCP_UNACKED,        /* sent data not yet acknowledged, or not yet sent (not forced) */
    NOSTALL_TCP_NOT_RUN         /* the tcpip thread could not be asked (no semaphore) */
} nostall_tcp_result_t;

/*
 * Abort the connection of lwIP socket `fd` (as returned by lwip_socket/lwip_accept): a TCP
 * socket whose pcb exists and is not LISTEN/TIME_WAIT/CLOSED. Unless `force`, only while it is
 * idle: no unsent or unacknowledged data (a RST would drop what the peer has not got). With
 * `force` also then: for a client that stopped reading, whose pcb lwIP would otherwise keep
 * through 12 persist probes (minutes) after a normal close. Returns NOSTALL_TCP_ABORTED when
 * tcp_abort() ran; anything else changed nothing. Either way the caller still closes fd
 * (lwip_close) to free the socket.
 *
 * Runs the check and the abort in lwIP's TCP/IP context (tcpip_api_call: the core lock, or a
 * message to the tcpip thread and a wait for its answer), so the pcb cannot change between them.
 * The caller must own fd: no other thread may close it meanwhile (as for any call on an fd).
 */
nostall_tcp_result_t nostall_tcp_abort(int fd, int force);

/*
 * 1 while the connection of lwIP socket `fd` holds data the board sent that the peer has not
 * acknowledged: exactly what makes nostall_tcp_abort() answer NOSTALL_TCP_UNACKED, i.e. its pcb
 * has segments queued unsent (behind the peer's window, Nagle, or not yet output) or sent and
 * unacknowledged (lwIP retransmits them). A FIN counts when it is queued as such a segment, as
 * lwIP queues it (only lwip_shutdown() sends one on an open fd; close() frees the fd).
 * 0 otherwise: everything acknowledged, and whatever nostall_tcp_abort() declines before that
 * test: no open lwIP socket at fd, not TCP, no pcb any more, LISTEN, TIME_WAIT or CLOSED; also 0
 * when the tcpip thread could not be asked (the caller then waits as it would without asking).
 * Changes nothing. Runs in lwIP's TCP/IP context like nostall_tcp_abort(), same ownership rule.
 */
int nostall_tcp_unacked(int fd);

#endif /* NOSTALL_TCP_ABORT_IDLE_H */
