/* cli.c — shared helpers of the mimo subcommands: messages, option values
 * and strict number parsing. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/error.h"

int mimo_cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mimo: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(run 'mimo --help' for usage)\n");
    va_end(ap);
    return 2;
}

int mimo_cli_fail(void)
{
    fprintf(stderr, "mimo: error: %s\n", mimo_errmsg());
    return 1;
}

int mimo_cli_long(const char *flag, const char *s, long min, long *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || end == s || *end || errno || v < min)
        return mimo_cli_usage_error("%s expects an integer >= %ld, got '%s'", flag,
                                    min, s ? s : "");
    *out = v;
    return 0;
}

int mimo_cli_double(const char *flag, const char *s, double *out)
{
    char *end;
    double v = s ? strtod(s, &end) : 0;
    if (!s || end == s || *end || !isfinite(v))
        return mimo_cli_usage_error("%s expects a number, got '%s'", flag,
                                    s ? s : "");
    *out = v;
    return 0;
}

int mimo_cli_is(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

const char *mimo_cli_value(int argc, char **argv, int *i)
{
    const char *eq = strchr(argv[*i], '=');
    if (eq && strncmp(argv[*i], "--", 2) == 0)
        return eq + 1;
    if (*i + 1 < argc)
        return argv[++*i];
    return NULL;
}
