# _nostall_tcp: abort(sock) closes an idle connection with a RST, so no TIME_WAIT stays on the
# board (tcp_abort_idle.h says why); unacked(sock) says whether lwIP still holds data of the
# board's that the peer has not acknowledged. Compiled into the esp32 port's main component,
# which already has lwIP's headers.
add_library(usermod_nostall_tcp INTERFACE)

target_sources(usermod_nostall_tcp INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}/modnostall_tcp.c
    ${CMAKE_CURRENT_LIST_DIR}/tcp_abort_idle.c
)

target_include_directories(usermod_nostall_tcp INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}
)

target_link_libraries(usermod INTERFACE usermod_nostall_tcp)
