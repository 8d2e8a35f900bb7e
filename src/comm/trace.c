/* trace.c — a fixed-size event buffer per rank, serialized as Chrome
 * trace-event JSON and gathered to rank 0, which writes one file with a
 * track (pid 0, tid = rank) per rank. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include "comm/trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "comm/mpicall.h"
#include "mimo/error.h"

typedef struct {
    const char *cat, *name;
    double ts, dur;  /* microseconds; dur < 0 marks an instant */
    long arg;
} event;

struct mimo_trace {
    int rank;
    size_t n, cap, dropped;
    event *ev;
    double t0;
};

static double wall_us(void) { return 1e6 * mimo_clock(); }

int mimo_trace_create(int rank, size_t capacity, mimo_trace **out)
{
    mimo_trace *t = calloc(1, sizeof *t);
    if (t)
        t->ev = calloc(capacity ? capacity : 1, sizeof *t->ev);
    if (!t || !t->ev) {
        free(t);
        return mimo_error(MIMO_ENOMEM, "out of memory for a trace of %zu events",
                          capacity);
    }
    t->rank = rank;
    t->cap = capacity;
    t->t0 = wall_us();
    *out = t;
    return 0;
}

void mimo_trace_free(mimo_trace **tp)
{
    if (!tp || !*tp)
        return;
    free((*tp)->ev);
    free(*tp);
    *tp = NULL;
}

double mimo_trace_now(const mimo_trace *t) { return t ? wall_us() - t->t0 : 0; }

static void push(mimo_trace *t, const char *cat, const char *name, double ts,
                 double dur, long arg)
{
    if (t->n == t->cap) {
        t->dropped++;
        return;
    }
    t->ev[t->n++] = (event){cat, name, ts, dur, arg};
}

void mimo_trace_span(mimo_trace *t, const char *cat, const char *name,
                     double t0, double t1)
{
    if (t)
        push(t, cat, name, t0, t1 - t0, 0);
}

void mimo_trace_instant(mimo_trace *t, const char *cat, const char *name,
                        long arg)
{
    if (t)
        push(t, cat, name, mimo_trace_now(t), -1, arg);
}

/* JSON-escapes s into f. */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if ((unsigned char)*s >= 0x20)
            fputc(*s, f);
    }
    fputc('"', f);
}

/* This rank's events as JSON objects, each followed by ",\n". */
static char *serialize(const mimo_trace *t, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        return NULL;
    fprintf(f, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":0,\"tid\":%d,"
               "\"args\":{\"name\":\"rank %d\"}},\n", t->rank, t->rank);
    for (size_t i = 0; i < t->n; i++) {
        const event *e = &t->ev[i];
        fprintf(f, "{\"name\":");
        json_str(f, e->name);
        fprintf(f, ",\"cat\":\"%s\",\"pid\":0,\"tid\":%d,\"ts\":%.3f", e->cat,
                t->rank, e->ts);
        if (e->dur >= 0)
            fprintf(f, ",\"ph\":\"X\",\"dur\":%.3f},\n", e->dur);
        else
            fprintf(f, ",\"ph\":\"i\",\"s\":\"t\",\"args\":{\"bucket\":%ld}},\n", e->arg);
    }
    if (t->dropped)
        fprintf(f, "{\"name\":\"dropped %zu events\",\"ph\":\"i\",\"s\":\"g\","
                   "\"pid\":0,\"tid\":%d,\"ts\":0},\n", t->dropped, t->rank);
    fclose(f);
    return buf;
}

/* Every rank's events to rank 0: (lengths, then the texts). */
static int gather(MPI_Comm comm, int rank, int size, const char *mine, int n,
                  int *lens, int *offs, char **all, long *total)
{
    MIMO_MPI(MPI_Gather(&n, 1, MPI_INT, lens, 1, MPI_INT, 0, comm));
    if (rank == 0) {
        for (int r = 0; r < size; r++)
            offs[r] = (int)*total, *total += lens[r];
        *all = malloc((size_t)*total + 1);
    }
    MIMO_MPI(MPI_Gatherv(mine, n, MPI_CHAR, *all, lens, offs, MPI_CHAR, 0, comm));
    return 0;
}

int mimo_trace_write(mimo_trace *t, MPI_Comm comm, const char *path)
{
    int rank = 0, size = 1, rc = 0;
    if (comm != MPI_COMM_NULL) {
        MIMO_MPI(MPI_Comm_rank(comm, &rank));
        MIMO_MPI(MPI_Comm_size(comm, &size));
    }
    size_t len = 0;
    char *mine = serialize(t, &len);
    int n = mine && len < (size_t)1 << 30 ? (int)len : 0;
    int *lens = rank == 0 ? calloc((size_t)size, sizeof *lens) : NULL;
    int *offs = rank == 0 ? calloc((size_t)size, sizeof *offs) : NULL;
    char *all = NULL;
    long total = 0;
    if (size == 1) { /* one process: no MPI needed */
        all = mine, mine = NULL, total = n;
    } else
        rc = gather(comm, rank, size, mine, n, lens, offs, &all, &total);
    if (rank == 0 && !rc) {
        FILE *f = all ? fopen(path, "w") : NULL;
        if (!f)
            rc = mimo_error(MIMO_EIO, "%s: cannot write the trace", path);
        else {
            fputs("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n", f);
            fwrite(all, 1, (size_t)total, f);
            fputs("{\"name\":\"end\",\"ph\":\"i\",\"s\":\"g\",\"pid\":0,\"tid\":0,"
                  "\"ts\":0}]}\n", f);
            if (fclose(f))
                rc = mimo_error(MIMO_EIO, "%s: write failed", path);
        }
    }
    free(mine);
    free(all);
    free(lens);
    free(offs);
    return rc;
}
