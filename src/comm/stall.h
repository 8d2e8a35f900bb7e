/* stall.h — the stall detector (in the spirit of Horovod's stall check):
 * a watchdog thread on every rank notices when this rank has waited in a
 * collective for longer than warn_s seconds; rank 0 gathers who waits and
 * prints which ranks have not arrived (a stopped, hung or much slower
 * rank), again every warn_s while it lasts; after abort_s the job ends
 * through o->fatal (the app's MPI_Abort), with that message.
 *
 * The step pays two relaxed atomic stores per collective (mimo_stall_enter
 * and _leave) and nothing else: the watchdog reads them about ten times
 * per warn_s (at most once a second), and talks to rank 0 only after a
 * wait of warn_s. Needs MPI_THREAD_MULTIPLE to gather on rank 0; without
 * it each rank reports only its own wait. One detector per process. */
#ifndef MIMO_DIST_STALL_H
#define MIMO_DIST_STALL_H

#include <mpi.h>
#include <stdatomic.h>

typedef struct {
    double warn_s, abort_s; /* 0: no warning / no abort */
    void (*note)(void *user, const char *msg);  /* a warning (another thread) */
    void (*fatal)(void *user, const char *msg); /* must end the job */
    void *user;
} mimo_stall_opts;

/* What the main thread of this rank is doing (written by it alone). */
typedef struct {
    atomic_ulong seq;       /* odd while inside a collective */
    atomic_int what;        /* which collective (MIMO_STALL_*) */
    atomic_int busy;        /* outside collectives: MIMO_BUSY_* */
    atomic_llong step;      /* the global step */
    int depth;              /* nested enters */
} mimo_stall_mark;

extern mimo_stall_mark mimo_stall_marks;

enum {
    MIMO_STALL_GRADIENTS, MIMO_STALL_BATCH_STATS, MIMO_STALL_VOTE,
    MIMO_STALL_REPLICAS, MIMO_STALL_SUM, MIMO_STALL_AGREE, MIMO_STALL_BCAST,
    MIMO_STALL_N
};
enum { MIMO_BUSY_STEP, MIMO_BUSY_CHECKPOINT, MIMO_BUSY_VALIDATION, MIMO_BUSY_N };

/* Entering and leaving a collective that waits for the other ranks. */
static inline void mimo_stall_enter(int what)
{
    mimo_stall_mark *m = &mimo_stall_marks;
    if (m->depth++ == 0) {
        atomic_store_explicit(&m->what, what, memory_order_relaxed);
        atomic_store_explicit(&m->seq, atomic_load_explicit(&m->seq, memory_order_relaxed) + 1,
                              memory_order_release);
    }
}

static inline void mimo_stall_leave(void)
{
    mimo_stall_mark *m = &mimo_stall_marks;
    if (--m->depth == 0)
        atomic_store_explicit(&m->seq, atomic_load_explicit(&m->seq, memory_order_relaxed) + 1,
                              memory_order_release);
}

static inline void mimo_stall_at(long long step, int busy)
{
    atomic_store_explicit(&mimo_stall_marks.step, step, memory_order_relaxed);
    atomic_store_explicit(&mimo_stall_marks.busy, busy, memory_order_relaxed);
}

/* Starts the watchdog on every rank of comm (nothing when comm is
 * MPI_COMM_NULL or of size 1, or both times are 0). Collective. */
int mimo_stall_start(MPI_Comm comm, const mimo_stall_opts *o);
/* Stops it. Collective (when started). */
void mimo_stall_stop(void);

#endif
