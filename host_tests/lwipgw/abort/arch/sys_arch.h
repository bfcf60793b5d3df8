/*
 * lwIP's operating-system layer for abort_check on Linux: POSIX threads.
 * Written for this project: Debian's source package has lwIP's contrib unix port only inside
 * its own patch (debian/patches/port, GPL-2+ with all of debian/ in
 * debian/copyright),
 * and this is only what lwIP 2.1.3 asks for.
 * Every object is a pointer to a heap block, so NULL means "invalid".
 */
#ifndef ABORT_CHECK_SYS_ARCH_H
#define ABORT_CHECK_SYS_ARCH_H

struct sys_sem;
struct sys_mbox;
typedef struct sys_sem *sys_sem_t;
typedef struct sys_mbox *sys_mbox_t;
typedef struct sys_mutex *sys_mutex_t;
typedef unsigned long sys_thread_t;   /* pthread_t */
typedef int sys_prot_t;

#define sys_sem_valid(s)            ((s) != NULL && *(s) != NULL)
#define sys_sem_set_invalid(s)      do { if ((s) != NULL) *(s) = NULL; } while (0)
#define sys_mutex_valid(m)          ((m) != NULL && *(m) != NULL)
#define sys_mutex_set_invalid(m)    do { if ((m) != NULL) *(m) = NULL; } while (0)
#define sys_mbox_valid(m)           ((m) != NULL && *(m) != NULL)
#define sys_mbox_set_invalid(m)     do { if ((m) != NULL) *(m) = NULL; } while (0)

/* LWIP_NETCONN_SEM_PER_THREAD: one semaphore per thread, made on first use (as ESP-IDF's
 * sys_thread_sem_get does), freed with the thread. */
sys_sem_t *sys_arch_thread_sem(void);
void sys_arch_thread_sem_free(void);
#define LWIP_NETCONN_THREAD_SEM_GET()   sys_arch_thread_sem()
#define LWIP_NETCONN_THREAD_SEM_ALLOC() ((void)sys_arch_thread_sem())
#define LWIP_NETCONN_THREAD_SEM_FREE()  sys_arch_thread_sem_free()

#endif /* ABORT_CHECK_SYS_ARCH_H */
