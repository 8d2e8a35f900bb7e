/* cmd_plot.c — `mimo plot HISTORY.csv|RUN_DIR -o FILE.png [--title T]`:
 * a run's history as a PNG, one panel per quantity, training vs
 * validation (src/plot.c, drawn by gnuplot). Runs on rank 0 alone. Only
 * parses arguments; usage errors exit 2, failures exit 1. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "tools/plot.h"

static const char *usage =
    "usage: mimo plot HISTORY.csv|RUN_DIR -o FILE.png [--title T]\n"
    "\n"
    "Draws a training run's history.csv (or RUN_DIR/history.csv) as a PNG:\n"
    "one panel per quantity -- the total loss, each head's loss and\n"
    "metrics, the learning rate -- with the training value and, where the\n"
    "history has a val_ column, the validation value as two lines. Needs\n"
    "gnuplot (Debian: gnuplot-nox).\n"
    "  -o, --out FILE   the PNG to write (missing directories are made)\n"
    "  --title T        the figure's title (default: mimo: HISTORY)\n";

int mimo_cmd_plot(int argc, char **argv)
{
    mimo_plot_opts o = {0};
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        const char **dst = NULL;
        if (strcmp(s, "-o") == 0 || mimo_cli_is(s, "--out"))
            dst = &o.out;
        else if (mimo_cli_is(s, "--title"))
            dst = &o.title;
        if (dst) {
            const char *v = strcmp(s, "-o") == 0 ? (i + 1 < argc ? argv[++i] : NULL)
                                                 : mimo_cli_value(argc, argv, &i);
            if (!v)
                return mimo_cli_usage_error("plot: %s needs a value", s);
            *dst = v;
        } else if (s[0] == '-' && s[1] != '\0') {
            return mimo_cli_usage_error("plot: unknown option '%s'", s);
        } else if (o.history) {
            return mimo_cli_usage_error("plot: unexpected argument '%s'", s);
        } else {
            o.history = s;
        }
    }
    if (!o.history)
        return mimo_cli_usage_error("plot: missing HISTORY.csv (or a run "
                                    "directory)");
    if (!o.out)
        return mimo_cli_usage_error("plot: missing -o FILE.png");
    if (mimo_plot_history(&o))
        return mimo_cli_fail();
    printf("wrote %s\n", o.out);
    return 0;
}
