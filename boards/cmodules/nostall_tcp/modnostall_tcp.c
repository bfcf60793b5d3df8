/*
 * _nostall_tcp: abortive close of an idle connection, and whether the board's data on a
 * connection is still in flight, for the esp32 port of MicroPython v1.28.0.
 *
 *     import _nostall_tcp
 *     if not _nostall_tcp.abort(sock):   # True: RST sent, lwIP freed the pcb, no TIME_WAIT
 *         pass                           # False: nothing changed; close as usual
 *     sock.close()                       # always: it frees the socket itself
 *
 *     _nostall_tcp.unacked(sock)         # True: lwIP still holds data the peer has not acked
 *
 * The firmware calls abort() where the board must close first (idle expiry, eviction,
 * shutdown): see tcp_abort_idle.h for why lwIP's own close cannot do this. unacked() lets it
 * keep waiting for the client's close while lwIP is still (re)sending the board's answer.
 */
#include "py/runtime.h"
#include "py/mpthread.h"

#include "tcp_abort_idle.h"

#if MICROPY_PY_NETWORK

// The esp32 port's socket module (ports/esp32/modsocket.c, MicroPython v1.28.0), whose
// attribute `socket` is its socket type. Defined there without a header; moduledefs.h declares
// it the same way for the module table.
extern const mp_obj_module_t mp_module_socket;

// The lwIP fd behind sock, from the socket's own fileno() (modsocket.c: the fd that
// lwip_socket()/lwip_accept() returned, -1 once closed), so nothing depends on the layout of its
// socket_obj_t. TypeError unless sock is an esp32 socket (or of a subclass).
static mp_int_t socket_fd(mp_obj_t sock_in) {
    mp_obj_t socket_type = mp_load_attr(MP_OBJ_FROM_PTR(&mp_module_socket), MP_QSTR_socket);
    if (!mp_obj_is_subclass_fast(MP_OBJ_FROM_PTR(mp_obj_get_type(sock_in)), socket_type)) {
        mp_raise_TypeError(MP_ERROR_TEXT("expected a socket"));
    }
    mp_obj_t dest[2];
    mp_load_method(sock_in, MP_QSTR_fileno, dest);
    return mp_obj_get_int(mp_call_method_n_kw(0, 0, dest));
}

// abort(sock, force=False) -> bool. force: also with data unsent or unacknowledged (a client
// that stopped reading).
static mp_obj_t nostall_tcp_abort_fn(size_t n_args, const mp_obj_t *args) {
    mp_int_t fd = socket_fd(args[0]);
    int force = n_args > 1 && mp_obj_is_true(args[1]);
    if (fd < 0) {
        return mp_const_false;  // already closed
    }
    // Other Python threads may run while the tcpip thread answers, as around modsocket's calls.
    MP_THREAD_GIL_EXIT();
    nostall_tcp_result_t r = nostall_tcp_abort((int)fd, force);
    MP_THREAD_GIL_ENTER();
    return mp_obj_new_bool(r == NOSTALL_TCP_ABORTED);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(nostall_tcp_abort_obj, 1, 2, nostall_tcp_abort_fn);

// unacked(sock) -> bool: True while the connection's pcb holds data the board sent (or queued)
// that the peer has not acknowledged, i.e. exactly when abort(sock) would decline for it.
// False once all is acknowledged, and for a closed socket, a listening one, a connection
// already gone (reset) or in TIME_WAIT. Changes nothing.
static mp_obj_t nostall_tcp_unacked_fn(mp_obj_t sock_in) {
    mp_int_t fd = socket_fd(sock_in);
    if (fd < 0) {
        return mp_const_false;  // already closed
    }
    MP_THREAD_GIL_EXIT();
    int unacked = nostall_tcp_unacked((int)fd);
    MP_THREAD_GIL_ENTER();
    return mp_obj_new_bool(unacked);
}
static MP_DEFINE_CONST_FUN_OBJ_1(nostall_tcp_unacked_obj, nostall_tcp_unacked_fn);

static const mp_rom_map_elem_t nostall_tcp_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__nostall_tcp) },
    { MP_ROM_QSTR(MP_QSTR_abort), MP_ROM_PTR(&nostall_tcp_abort_obj) },
    { MP_ROM_QSTR(MP_QSTR_unacked), MP_ROM_PTR(&nostall_tcp_unacked_obj) },
};
static MP_DEFINE_CONST_DICT(nostall_tcp_module_globals, nostall_tcp_module_globals_table);

const mp_obj_module_t nostall_tcp_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&nostall_tcp_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR__nostall_tcp, nostall_tcp_module);

#endif // MICROPY_PY_NETWORK
