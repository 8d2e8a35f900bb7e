/* stall.c — the stall detector (see stall.h): a watchdog thread per rank
 * that watches how long its main thread has been inside a collective;
 * reports of waits longer than warn_s go to rank 0 on a communicator of
 * their own, and rank 0 says which ranks have not arrived. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, pthread_cond_timedwait */
#include "comm/stall.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"

mimo_stall_mark mimo_stall_marks;

static const char *const what_names[MIMO_STALL_N] = {
    "the gradient sum", "the batch statistics' sum", "the step's stop/save vote",
    "the replica check", "a sum of logged values", "an agreement between ranks",
    "the parameter broadcast"};
static const char *const busy_names[MIMO_BUSY_N] = {
    "training", "writing a checkpoint", "validating"};

enum { LEFT, WAITING };

typedef struct {
    int waiting, what;
    long long step;
    double since; /* on rank 0's clock */
} seen;

static struct {
    MPI_Comm comm;
    int rank, size, multiple, on, stop, fatal_sent;
    double tick;
    mimo_stall_opts o;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    seen *table;          /* rank 0: what each rank reported */
    double next_print;    /* rank 0 */
    MPI_Request req;      /* a report in flight */
    long long out[4];     /* its buffer: type, what, step, waited ms */
} w = {.comm = MPI_COMM_NULL, .req = MPI_REQUEST_NULL};

static const char *what_name(int k)
{
    return k >= 0 && k < MIMO_STALL_N ? what_names[k] : "a collective";
}

/* "1, 3, 4" (at most 32 named). */
static void rank_list(char *buf, size_t len, int want_waiting)
{
    size_t used = 0;
    int n = 0;
    buf[0] = '\0';
    for (int r = 0; r < w.size && used < len; r++)
        if (!!w.table[r].waiting == want_waiting) {
            if (n++ == 32) {
                snprintf(buf + used, len - used, ", ...");
                break;
            }
            used += (size_t)snprintf(buf + used, len - used, "%s%d", n > 1 ? ", " : "", r);
        }
}

static void send_report(int type, int what, long long step, double waited)
{
    int flag = 1;
    if (w.req != MPI_REQUEST_NULL) /* the last one is out (small: eager) */
        MPI_Test(&w.req, &flag, MPI_STATUS_IGNORE);
    if (!flag)
        return;
    w.out[0] = type, w.out[1] = what, w.out[2] = step, w.out[3] = (long long)(waited * 1e3);
    MPI_Isend(w.out, 4, MPI_LONG_LONG, 0, 0, w.comm, &w.req);
}

/* Rank 0: every report that came in. */
static void drain(double now)
{
    for (;;) {
        int flag = 0;
        MPI_Status st;
        long long in[4];
        if (MPI_Iprobe(MPI_ANY_SOURCE, 0, w.comm, &flag, &st) != MPI_SUCCESS || !flag)
            return;
        if (MPI_Recv(in, 4, MPI_LONG_LONG, st.MPI_SOURCE, 0, w.comm,
                     MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return;
        seen *s = &w.table[st.MPI_SOURCE];
        s->waiting = in[0] == WAITING;
        s->what = (int)in[1], s->step = in[2], s->since = now - (double)in[3] / 1e3;
    }
}

/* Rank 0: who waits and who has not arrived, every warn_s while it lasts. */
static void maybe_print(double now, int fatal)
{
    int n_wait = 0, oldest = -1;
    for (int r = 0; r < w.size; r++)
        if (w.table[r].waiting) {
            n_wait++;
            if (oldest < 0 || w.table[r].since < w.table[oldest].since)
                oldest = r;
        }
    if (!n_wait) {
        w.next_print = 0;
        return;
    }
    if (!fatal && w.next_print == 0)
        w.next_print = now + w.tick; /* a tick for the others' reports */
    if (!fatal && now < w.next_print)
        return;
    w.next_print = now + w.o.warn_s;
    char waiting[256], absent[256], busy[96] = "", msg[1024];
    rank_list(waiting, sizeof waiting, 1);
    rank_list(absent, sizeof absent, 0);
    if (!w.table[0].waiting) {
        int b = atomic_load_explicit(&mimo_stall_marks.busy, memory_order_relaxed);
        snprintf(busy, sizeof busy, " (rank 0 is %s)",
                 b >= 0 && b < MIMO_BUSY_N ? busy_names[b] : "busy");
    }
    const seen *s = &w.table[oldest];
    snprintf(msg, sizeof msg, "%s: rank(s) %s of %d have waited %.0f s in %s at "
             "step %lld for rank(s) %s%s, which have not arrived (stopped, hung or "
             "much slower?)%s", fatal ? "stalled" : "warning: stall", waiting, w.size,
             now - s->since, what_name(s->what), s->step, absent, busy,
             fatal ? ": ending the job (--stall-abort)" : "");
    if (fatal)
        w.o.fatal(w.o.user, msg);
    else if (w.o.note)
        w.o.note(w.o.user, msg);
}

static void *watch(void *arg)
{
    unsigned long last = 0;
    double since = mimo_clock();
    int reported = 0;
    (void)arg;
    pthread_mutex_lock(&w.mu);
    while (!w.stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long ns = ts.tv_nsec + (long)(w.tick * 1e9);
        ts.tv_sec += ns / 1000000000L, ts.tv_nsec = ns % 1000000000L;
        pthread_cond_timedwait(&w.cv, &w.mu, &ts);
        if (w.stop)
            break;
        pthread_mutex_unlock(&w.mu);
        double now = mimo_clock();
        unsigned long seq = atomic_load_explicit(&mimo_stall_marks.seq, memory_order_acquire);
        int inside = (int)(seq & 1);
        int what = atomic_load_explicit(&mimo_stall_marks.what, memory_order_relaxed);
        long long step = atomic_load_explicit(&mimo_stall_marks.step, memory_order_relaxed);
        if (!inside || seq != last) { /* a new wait, or none */
            if (reported && w.rank != 0 && w.multiple)
                send_report(LEFT, what, step, 0);
            if (w.rank == 0)
                w.table[0].waiting = 0;
            reported = 0, last = seq, since = now;
        }
        double waited = inside ? now - since : 0;
        if (inside && !reported &&
            waited >= (w.o.warn_s > 0 ? w.o.warn_s : w.o.abort_s)) {
            reported = 1;
            if (w.rank == 0)
                w.table[0] = (seen){1, what, step, since};
            else if (w.multiple)
                send_report(WAITING, what, step, waited);
            else if (w.o.note && w.o.warn_s > 0) {
                char msg[256];
                snprintf(msg, sizeof msg, "warning: stall: rank %d of %d has waited "
                         "%.0f s in %s at step %lld", w.rank, w.size, waited,
                         what_name(what), step);
                w.o.note(w.o.user, msg);
            }
        }
        if (w.rank == 0 && w.multiple) {
            drain(now);
            if (w.o.warn_s > 0)
                maybe_print(now, 0);
        }
        /* rank 0 ends the job with the whole picture; the others a little
         * later (rank 0 may be the one that stopped) */
        double limit = w.o.abort_s + (w.rank ? 2 * w.tick + 1 : 0);
        if (inside && w.o.abort_s > 0 && waited >= limit && !w.fatal_sent) {
            w.fatal_sent = 1;
            if (w.rank == 0 && w.multiple)
                maybe_print(now, 1);
            else {
                char msg[256];
                snprintf(msg, sizeof msg, "stalled: rank %d of %d waited %.0f s in %s "
                         "at step %lld for ranks that have not arrived: ending the "
                         "job (--stall-abort)", w.rank, w.size, waited,
                         what_name(what), step);
                w.o.fatal(w.o.user, msg);
            }
        }
        pthread_mutex_lock(&w.mu);
    }
    pthread_mutex_unlock(&w.mu);
    return NULL;
}

int mimo_stall_start(MPI_Comm comm, const mimo_stall_opts *o)
{
    int size = 1, provided = MPI_THREAD_SINGLE;
    if (w.on || comm == MPI_COMM_NULL || !o || (o->warn_s <= 0 && o->abort_s <= 0))
        return 0;
    if (MPI_Comm_size(comm, &size) != MPI_SUCCESS || size < 2)
        return 0;
    MPI_Query_thread(&provided);
    if (MPI_Comm_dup(comm, &w.comm) != MPI_SUCCESS)
        return 0; /* no detector: training goes on */
    MPI_Comm_set_errhandler(w.comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(w.comm, &w.rank);
    w.size = size;
    w.multiple = provided == MPI_THREAD_MULTIPLE;
    w.o = *o;
    double shortest = o->warn_s > 0 && (o->abort_s <= 0 || o->warn_s < o->abort_s)
                          ? o->warn_s : o->abort_s;
    w.tick = shortest / 10 < 0.05 ? 0.05 : shortest / 10 > 1 ? 1 : shortest / 10;
    w.stop = w.fatal_sent = 0;
    w.next_print = 0;
    w.req = MPI_REQUEST_NULL;
    w.table = w.rank == 0 ? calloc((size_t)size, sizeof *w.table) : NULL;
    if ((w.rank == 0 && !w.table) || pthread_mutex_init(&w.mu, NULL) ||
        pthread_cond_init(&w.cv, NULL) || pthread_create(&w.thread, NULL, watch, NULL)) {
        free(w.table);
        w.table = NULL;
        MPI_Comm_free(&w.comm);
        return 0;
    }
    w.on = 1;
    return 0;
}

void mimo_stall_stop(void)
{
    if (!w.on)
        return;
    pthread_mutex_lock(&w.mu);
    w.stop = 1;
    pthread_cond_broadcast(&w.cv);
    pthread_mutex_unlock(&w.mu);
    pthread_join(w.thread, NULL);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    if (w.req != MPI_REQUEST_NULL)
        MPI_Request_free(&w.req);
    if (w.rank == 0 && w.multiple)
        drain(mimo_clock());
    MPI_Comm_free(&w.comm);
    free(w.table);
    w.table = NULL;
    w.on = 0;
}
