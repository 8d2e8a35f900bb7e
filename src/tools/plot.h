/* plot.h — a training run's history.csv drawn as a PNG (`mimo plot`):
 * one panel per quantity (the total loss, each head's loss and metrics,
 * the learning rate), training and validation (val_ columns) as two lines
 * of the same panel. Drawn by gnuplot (Debian: gnuplot-nox), which runs
 * as a child process: the script goes to its stdin, the PNG comes from
 * its stdout, so no file name or title ever becomes gnuplot code. */
#ifndef MIMO_PLOT_H
#define MIMO_PLOT_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *history;  /* history.csv, or a run directory holding one */
    const char *out;      /* the PNG; missing parent directories are made */
    const char *title;    /* NULL = "mimo: <history>" */
    const char *gnuplot;  /* NULL = "gnuplot" found on PATH */
} mimo_plot_opts;

/* Writes the PNG (atomically: OUT.tmp, then renamed). Errors: the history
 * is missing or unreadable (MIMO_EIO), not a mimo history -- no 'epoch'
 * first column, no rows, a non-numeric value (MIMO_EINVAL, naming
 * file:line); gnuplot not found or failing (MIMO_EIO, with its exit
 * status; its own messages go to stderr); the output cannot be written
 * (MIMO_EIO naming it). */
int mimo_plot_history(const mimo_plot_opts *o);

#ifdef __cplusplus
}
#endif
#endif
