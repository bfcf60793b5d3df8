/* lwIP's operating-system layer on POSIX threads; see arch/sys_arch.h. */
#define _GNU_SOURCE
#include "lwip/opt.h"
#include "lwip/err.h"
#include "lwip/sys.h"

#include "../hostio.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct sys_sem {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned count;
};

struct sys_mutex {
    pthread_mutex_t lock;
};

struct sys_mbox {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    int size, head, count;
    void **slots;
};

/* SYS_ARCH_PROTECT: one recursive mutex (lwIP may nest it). */
static pthread_mutex_t prot_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

static __thread sys_sem_t thread_sem;

/* Absolute CLOCK_MONOTONIC deadline timeout_ms from now, for pthread_cond_timedwait. */
static struct timespec deadline_after(u32_t timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static void cond_init_monotonic(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
}

/* Wait on cond until woken or the deadline (timeout_ms 0: lwIP's "forever").
 * Returns 0, or ETIMEDOUT. */
static int cond_wait(pthread_cond_t *cond, pthread_mutex_t *lock, u32_t timeout_ms,
                     const struct timespec *deadline)
{
    if (timeout_ms == 0) {
        return pthread_cond_wait(cond, lock);
    }
    return pthread_cond_timedwait(cond, lock, deadline);
}

void sys_init(void)
{
}

u32_t sys_now(void)
{
    return hio_now_ms();
}

sys_prot_t sys_arch_protect(void)
{
    pthread_mutex_lock(&prot_lock);
    return 0;
}

void sys_arch_unprotect(sys_prot_t pval)
{
    (void)pval;
    pthread_mutex_unlock(&prot_lock);
}

/* ---- semaphores ---------------------------------------------------------- */
err_t sys_sem_new(sys_sem_t *sem, u8_t count)
{
    struct sys_sem *s = malloc(sizeof *s);
    if (s == NULL) {
        return ERR_MEM;
    }
    pthread_mutex_init(&s->lock, NULL);
    cond_init_monotonic(&s->cond);
    s->count = count;
    *sem = s;
    return ERR_OK;
}

void sys_sem_free(sys_sem_t *sem)
{
    struct sys_sem *s = *sem;
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
    *sem = NULL;
}

void sys_sem_signal(sys_sem_t *sem)
{
    struct sys_sem *s = *sem;
    pthread_mutex_lock(&s->lock);
    s->count++;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

u32_t sys_arch_sem_wait(sys_sem_t *sem, u32_t timeout)
{
    struct sys_sem *s = *sem;
    u32_t start = sys_now();
    struct timespec deadline = deadline_after(timeout);
    u32_t ret = 0;

    pthread_mutex_lock(&s->lock);
    while (s->count == 0) {
        if (cond_wait(&s->cond, &s->lock, timeout, &deadline) == ETIMEDOUT) {
            ret = SYS_ARCH_TIMEOUT;
            break;
        }
    }
    if (ret != SYS_ARCH_TIMEOUT) {
        s->count--;
        ret = sys_now() - start;
    }
    pthread_mutex_unlock(&s->lock);
    return ret;
}

sys_sem_t *sys_arch_thread_sem(void)
{
    if (thread_sem == NULL && sys_sem_new(&thread_sem, 0) != ERR_OK) {
        abort();   /* out of memory in a test program: nothing sensible is left to do */
    }
    return &thread_sem;
}

void sys_arch_thread_sem_free(void)
{
    if (thread_sem != NULL) {
        sys_sem_free(&thread_sem);
    }
}

/* ---- mutexes (LWIP_TCPIP_CORE_LOCKING) ---------------------------------- */
err_t sys_mutex_new(sys_mutex_t *mutex)
{
    struct sys_mutex *m = malloc(sizeof *m);
    if (m == NULL) {
        return ERR_MEM;
    }
    pthread_mutex_init(&m->lock, NULL);
    *mutex = m;
    return ERR_OK;
}

void sys_mutex_free(sys_mutex_t *mutex)
{
    pthread_mutex_destroy(&(*mutex)->lock);
    free(*mutex);
    *mutex = NULL;
}

void sys_mutex_lock(sys_mutex_t *mutex)
{
    pthread_mutex_lock(&(*mutex)->lock);
}

void sys_mutex_unlock(sys_mutex_t *mutex)
{
    pthread_mutex_unlock(&(*mutex)->lock);
}

/* ---- mailboxes: bounded queues of pointers ------------------------------ */
err_t sys_mbox_new(sys_mbox_t *mbox, int size)
{
    struct sys_mbox *m = malloc(sizeof *m);
    if (m == NULL) {
        return ERR_MEM;
    }
    m->size = size > 0 ? size : 32;
    m->slots = calloc((size_t)m->size, sizeof *m->slots);
    if (m->slots == NULL) {
        free(m);
        return ERR_MEM;
    }
    m->head = m->count = 0;
    pthread_mutex_init(&m->lock, NULL);
    cond_init_monotonic(&m->not_empty);
    cond_init_monotonic(&m->not_full);
    *mbox = m;
    return ERR_OK;
}

void sys_mbox_free(sys_mbox_t *mbox)
{
    struct sys_mbox *m = *mbox;
    pthread_cond_destroy(&m->not_full);
    pthread_cond_destroy(&m->not_empty);
    pthread_mutex_destroy(&m->lock);
    free(m->slots);
    free(m);
    *mbox = NULL;
}

static void mbox_put(struct sys_mbox *m, void *msg)
{
    m->slots[(m->head + m->count) % m->size] = msg;
    m->count++;
    pthread_cond_signal(&m->not_empty);
}

void sys_mbox_post(sys_mbox_t *mbox, void *msg)
{
    struct sys_mbox *m = *mbox;
    pthread_mutex_lock(&m->lock);
    while (m->count == m->size) {
        pthread_cond_wait(&m->not_full, &m->lock);
    }
    mbox_put(m, msg);
    pthread_mutex_unlock(&m->lock);
}

err_t sys_mbox_trypost(sys_mbox_t *mbox, void *msg)
{
    struct sys_mbox *m = *mbox;
    err_t err = ERR_MEM;
    pthread_mutex_lock(&m->lock);
    if (m->count < m->size) {
        mbox_put(m, msg);
        err = ERR_OK;
    }
    pthread_mutex_unlock(&m->lock);
    return err;
}

err_t sys_mbox_trypost_fromisr(sys_mbox_t *mbox, void *msg)
{
    return sys_mbox_trypost(mbox, msg);
}

static void *mbox_take(struct sys_mbox *m)
{
    void *msg = m->slots[m->head];
    m->head = (m->head + 1) % m->size;
    m->count--;
    pthread_cond_signal(&m->not_full);
    return msg;
}

u32_t sys_arch_mbox_fetch(sys_mbox_t *mbox, void **msg, u32_t timeout)
{
    struct sys_mbox *m = *mbox;
    u32_t start = sys_now();
    struct timespec deadline = deadline_after(timeout);
    void *got;

    pthread_mutex_lock(&m->lock);
    while (m->count == 0) {
        if (cond_wait(&m->not_empty, &m->lock, timeout, &deadline) == ETIMEDOUT) {
            pthread_mutex_unlock(&m->lock);
            if (msg != NULL) {
                *msg = NULL;
            }
            return SYS_ARCH_TIMEOUT;
        }
    }
    got = mbox_take(m);
    pthread_mutex_unlock(&m->lock);
    if (msg != NULL) {
        *msg = got;
    }
    return sys_now() - start;
}

u32_t sys_arch_mbox_tryfetch(sys_mbox_t *mbox, void **msg)
{
    struct sys_mbox *m = *mbox;
    void *got;

    pthread_mutex_lock(&m->lock);
    if (m->count == 0) {
        pthread_mutex_unlock(&m->lock);
        return SYS_MBOX_EMPTY;
    }
    got = mbox_take(m);
    pthread_mutex_unlock(&m->lock);
    if (msg != NULL) {
        *msg = got;
    }
    return 0;
}

/* ---- threads --------------------------------------------------------------- */
struct thread_start {
    lwip_thread_fn fn;
    void *arg;
};

static void *thread_main(void *p)
{
    struct thread_start start = *(struct thread_start *)p;
    free(p);
    start.fn(start.arg);
    sys_arch_thread_sem_free();
    return NULL;
}

sys_thread_t sys_thread_new(const char *name, lwip_thread_fn thread, void *arg, int stacksize,
                            int prio)
{
    pthread_t tid;
    struct thread_start *start = malloc(sizeof *start);

    (void)name;
    (void)stacksize;
    (void)prio;
    if (start == NULL) {
        abort();
    }
    start->fn = thread;
    start->arg = arg;
    /* lwIP's threads (the tcpip thread) live until the process exits. */
    if (pthread_create(&tid, NULL, thread_main, start) != 0) {
        abort();
    }
    pthread_detach(tid);
    return (sys_thread_t)tid;
}
