/* cmd_import.c — `mimo import csv|idx`: converts a CSV file or an IDX
 * (MNIST) pair into a dataset file (tools/import.c; with --schema,
 * tools/tabular.c). Only parses arguments; usage errors exit 2, bad input
 * files exit 1. */
#define _POSIX_C_SOURCE 200809L /* isatty, fileno */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "tools/datagen.h"
#include "mimo/import.h"

#define MAX_COLUMNS 64

static const char *csv_usage =
    "usage: mimo import csv FILE.csv --out F.h5 --schema SCHEMA.yaml\n"
    "                       [--delimiter C] [--memory-mb M]\n"
    "       mimo import csv FILE.csv --infer-schema [--delimiter C]\n"
    "       mimo import csv FILE.csv --out F.h5 --columns NAME=SPEC "
    "[--columns NAME=SPEC]...\n"
    "                       [--labels NAME]... [--delimiter C] [--no-header]\n"
    "\n"
    "With --schema, each column of the CSV (by its header name) becomes what\n"
    "the schema says: numeric (float32, empty -> NaN), category (strings ->\n"
    "int32 ids: 0 mask, 1 out-of-vocabulary, then by frequency), hashed\n"
    "(SipHash-2-4 mod num_bins), multi_hot (\"a|b\" -> (N, max_length) ids),\n"
    "skip; rows split into F.h5 (train), F.val.h5 and F.test.h5, the\n"
    "vocabularies and statistics from the training rows only, stored in each\n"
    "file under /preprocessing. With window: L (and horizon: H) in the\n"
    "schema the rows are a time series: split by time (train first), each\n"
    "split cut into windows of L rows, (N, L) ids and (N, L, F) numbers, the\n"
    "targets H rows after a window's last. See README, 'Tabular data'.\n"
    "  --schema F      the schema (YAML)\n"
    "  --infer-schema  print a schema guessed from the first 100000 rows\n"
    "  --memory-mb M   memory for the rows being written (default 256); a\n"
    "                  shuffled split larger than that is read once per M\n"
    "\n"
    "Without a schema (numbers only):\n"
    "Each --columns NAME=SPEC writes a float32 (N, k) dataset NAME from the\n"
    "columns in SPEC: header names, 0-based indices and ranges, comma\n"
    "separated, e.g. x=sepal_length,sepal_width  x=0-3  y=4.\n"
    "  --labels NAME   store NAME (one column of integers) as int32 (N,)\n"
    "  --delimiter C   field separator (default ','; 'tab' or '\\t' for tabs)\n"
    "  --no-header     the first row is data; address columns by index\n";

static const char *idx_usage =
    "usage: mimo import idx --images IMAGES.idx[.gz] --labels LABELS.idx[.gz]\n"
    "                       --out F.h5 [--image-name NAME] [--label-name NAME]\n"
    "                       [--scale | --no-scale] [--pool K [--pool-name NAME]]\n"
    "                       [--label-map NAME=M0,M1,...]\n"
    "                       [--image-shape flat|full] [--pool-shape flat|full]\n"
    "                       [--keep-labels NAME=FRACTION [--keep-seed S]\n"
    "                        [--only-kept]]\n"
    "\n"
    "Converts MNIST-style IDX files (plain or gzip): images to float32\n"
    "(N, rows*cols) named 'image', labels to int32 (N,) named 'label'.\n"
    "  --scale        divide pixels by 255 (the default)\n"
    "  --no-scale     keep pixels 0..255\n"
    "  --image-shape full   write the images (N, rows, cols, 1), the shape of\n"
    "                 a conv2d input [rows, cols, 1]; flat (the default):\n"
    "                 (N, rows*cols), the same values in the same order\n"
    "  --pool K       also write each image K x K average-pooled, float32\n"
    "                 (N, rows/K * cols/K) (K must divide rows and cols;\n"
    "                 28x28 with --pool 4: 7x7 = 49 values)\n"
    "  --pool-name NAME   its dataset name (default 'pooled')\n"
    "  --pool-shape full  write it (N, rows/K, cols/K, 1) (default flat)\n"
    "  --label-map NAME=M0,M1,...   also write int32 (N,) NAME = M[label]:\n"
    "                 one integer >= 0 per class, e.g. Fashion-MNIST's groups\n"
    "                 group=0,1,0,1,0,2,0,2,3,2 (tops, bottoms/dresses, shoes,\n"
    "                 bags)\n"
    "  --keep-labels NAME=FRACTION   keep the labels of dataset NAME (the\n"
    "                 label or a --label-map) for a random FRACTION of the\n"
    "                 rows, -1 on the others (a head's missing: -1)\n"
    "  --keep-seed S  the draw of those rows (default 1)\n"
    "  --only-kept    write only those rows (every label kept)\n";

#define MAX_MAP 4096

/* The delimiter of --delimiter: one character, or tab. */
static int delimiter(const char *v, char *out)
{
    if (strcmp(v, "tab") == 0 || strcmp(v, "\\t") == 0 || strcmp(v, "\t") == 0)
        *out = '\t';
    else if (strlen(v) == 1 && v[0] != '"' && v[0] != '\n' && v[0] != '\r')
        *out = v[0];
    else
        return mimo_cli_usage_error("import csv: --delimiter expects one "
                                    "character (or 'tab'), got '%s'", v);
    return 0;
}

/* Splits NAME=SPEC (in place) into a column entry. */
static int column(char *v, mimo_csv_column *c)
{
    char *eq = strchr(v, '=');
    if (!eq || eq == v || !eq[1])
        return mimo_cli_usage_error("import csv: --columns expects NAME=SPEC "
                                    "(e.g. x=0-3), got '%s'", v);
    *eq = '\0';
    c->name = v;
    c->spec = eq + 1;
    return 0;
}

/* Takes the value of the valued option argv[*i] into o; 0 or 2. */
static int csv_option(int argc, char **argv, int *i, mimo_csv_opts *o,
                      mimo_csv_column *cols, const char **labels,
                      mimo_tab_opts *t)
{
    const char *s = argv[*i];
    int is_cols = mimo_cli_is(s, "--columns"), is_lab = mimo_cli_is(s, "--labels");
    int is_schema = mimo_cli_is(s, "--schema"), is_mem = mimo_cli_is(s, "--memory-mb");
    if (!is_cols && !is_lab && !is_schema && !is_mem && !mimo_cli_is(s, "--out") &&
        !mimo_cli_is(s, "--delimiter"))
        return mimo_cli_usage_error("import csv: unknown option '%s'", s);
    char *v = (char *)mimo_cli_value(argc, argv, i); /* points into argv */
    if (!v)
        return mimo_cli_usage_error("import csv: %s needs a value", s);
    if (is_schema) {
        t->schema = v;
        return 0;
    }
    if (is_mem) {
        if (mimo_cli_double("--memory-mb", v, &t->memory_mb))
            return 2;
        if (!(t->memory_mb > 0))
            return mimo_cli_usage_error("import csv: --memory-mb expects a "
                                        "number > 0, got '%s'", v);
        return 0;
    }
    if ((is_cols && o->n_columns == MAX_COLUMNS) ||
        (is_lab && o->n_labels == MAX_COLUMNS))
        return mimo_cli_usage_error("import csv: too many %s (at most %d)", s,
                                    MAX_COLUMNS);
    if (is_cols)
        return column(v, &cols[o->n_columns++]);
    if (is_lab)
        labels[o->n_labels++] = v;
    else if (mimo_cli_is(s, "--out"))
        o->out = v;
    else
        return delimiter(v, &o->delimiter);
    return 0;
}

/* --schema or --infer-schema: the schema import (tools/tabular.c). */
static int csv_schema(const mimo_csv_opts *o, mimo_tab_opts *t, int infer)
{
    if (o->n_columns || o->n_labels || o->no_header)
        return mimo_cli_usage_error("import csv: %s replaces --columns, --labels "
                                    "and --no-header (the schema names each "
                                    "column by the header)", infer ?
                                    "--infer-schema" : "--schema");
    if (infer && (t->schema || o->out))
        return mimo_cli_usage_error("import csv: --infer-schema prints a schema; "
                                    "it takes no --schema or --out");
    if (infer)
        return mimo_infer_schema(o->path, o->delimiter, 100000, stdout)
                   ? mimo_cli_fail() : 0;
    if (!o->out)
        return mimo_cli_usage_error("import csv: missing --out F.h5");
    t->path = o->path;
    t->out = o->out;
    t->delimiter = o->delimiter;
    t->report = stdout;
    t->progress = isatty(fileno(stderr)) ? stderr : NULL;
    return mimo_import_tabular(t) ? mimo_cli_fail() : 0;
}

static int csv(int argc, char **argv)
{
    mimo_csv_column cols[MAX_COLUMNS];
    const char *labels[MAX_COLUMNS];
    mimo_csv_opts o = {NULL, NULL, cols, 0, labels, 0, 0, 0};
    mimo_tab_opts t = {0};
    int infer = 0;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            fputs(csv_usage, stdout);
            return 0;
        } else if (strcmp(s, "--no-header") == 0) {
            o.no_header = 1;
        } else if (strcmp(s, "--infer-schema") == 0) {
            infer = 1;
        } else if (s[0] == '-' && s[1] != '\0') {
            int rc = csv_option(argc, argv, &i, &o, cols, labels, &t);
            if (rc)
                return rc;
        } else if (o.path) {
            return mimo_cli_usage_error("import csv: unexpected argument '%s'", s);
        } else {
            o.path = s;
        }
    }
    if (!o.path)
        return mimo_cli_usage_error("import csv: missing FILE.csv");
    if (infer || t.schema)
        return csv_schema(&o, &t, infer);
    if (t.memory_mb)
        return mimo_cli_usage_error("import csv: --memory-mb applies to "
                                    "--schema");
    if (!o.out)
        return mimo_cli_usage_error("import csv: missing --out F.h5");
    if (!o.n_columns && o.n_labels)
        return mimo_cli_usage_error("import csv: --labels %s needs --columns "
                                    "%s=COLUMN too (or, for string categories, "
                                    "a schema: mimo import csv FILE "
                                    "--infer-schema)", labels[0], labels[0]);
    if (!o.n_columns)
        return mimo_cli_usage_error("import csv: no --columns NAME=SPEC given "
                                    "(or --schema F; --infer-schema writes one)");
    if (mimo_import_csv(&o))
        return mimo_cli_fail();
    printf("wrote %s\n", o.out);
    return 0;
}

/* --label-map NAME=M0,M1,...: splits v (in place) into the view's name and
 * map (map has MAX_MAP entries). 0 or 2. */
static int label_map(char *v, int32_t *map, mimo_idx_views *w)
{
    char *eq = strchr(v, '=');
    if (!eq || eq == v || !eq[1])
        return mimo_cli_usage_error("import idx: --label-map expects "
                                    "NAME=M0,M1,... (e.g. group=0,1,0,1,0,2,0,2,"
                                    "3,2), got '%s'", v);
    *eq = '\0';
    w->map_name = v;
    w->n_map = 0;
    for (char *p = eq + 1;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        long x = 0;
        char flag[64];
        snprintf(flag, sizeof flag, "--label-map %s: class %zu", v, w->n_map);
        if (w->n_map == MAX_MAP)
            return mimo_cli_usage_error("import idx: --label-map %s: more than "
                                        "%d classes", v, MAX_MAP);
        if (mimo_cli_long(flag, p, 0, &x))
            return 2;
        if (x > INT32_MAX)
            return mimo_cli_usage_error("import idx: --label-map %s: class %zu "
                                        "maps to %ld, too large", v, w->n_map, x);
        map[w->n_map++] = (int32_t)x;
        if (!comma)
            break;
        p = comma + 1;
    }
    w->map = map;
    return 0;
}

static int idx(int argc, char **argv)
{
    mimo_idx_opts o = {.scale = 1};
    mimo_idx_views w = {0};
    w.keep_seed = 1;
    static int32_t map[MAX_MAP];
    enum { N_VALUED = 12 };
    static const char *const valued[N_VALUED] = {
        "--images", "--labels", "--out", "--image-name", "--label-name",
        "--pool-name", "--pool", "--label-map", "--keep-labels", "--keep-seed",
        "--image-shape", "--pool-shape"};
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            fputs(idx_usage, stdout);
            return 0;
        }
        if (strcmp(s, "--scale") == 0 || strcmp(s, "--no-scale") == 0) {
            o.scale = s[2] == 's';
            continue;
        }
        if (strcmp(s, "--only-kept") == 0) {
            w.only_kept = 1;
            continue;
        }
        size_t k = 0;
        while (k < N_VALUED && !mimo_cli_is(s, valued[k]))
            k++;
        if (k == N_VALUED)
            return mimo_cli_usage_error(s[0] == '-' ? "import idx: unknown option "
                                        "'%s'" : "import idx: unexpected argument "
                                        "'%s'", s);
        char *v = (char *)mimo_cli_value(argc, argv, &i); /* points into argv */
        if (!v)
            return mimo_cli_usage_error("import idx: %s needs a value", s);
        if (k == 6) {
            long K = 0;
            if (mimo_cli_long("--pool", v, 1, &K))
                return 2;
            if (K > 4096)
                return mimo_cli_usage_error("import idx: --pool %ld is larger "
                                            "than any image", K);
            w.pool = (int)K;
        } else if (k == 7) {
            int rc = label_map(v, map, &w);
            if (rc)
                return rc;
        } else if (k == 8) {
            char given[256], *eq = strchr(v, '='), *end = NULL;
            snprintf(given, sizeof given, "%s", v);
            if (eq)
                *eq = '\0', w.keep = strtod(eq + 1, &end);
            if (!eq || eq == v || end == eq + 1 || *end || !(w.keep > 0 && w.keep <= 1))
                return mimo_cli_usage_error("import idx: --keep-labels expects "
                                            "NAME=FRACTION with a fraction in "
                                            "(0, 1] (e.g. group=0.1), got '%s'",
                                            given);
            w.keep_name = v;
        } else if (k == 9) {
            long seed = 0;
            if (mimo_cli_long("--keep-seed", v, 0, &seed))
                return 2;
            w.keep_seed = (uint64_t)seed;
        } else if (k == 10 || k == 11) {
            int full = strcmp(v, "full") == 0;
            if (!full && strcmp(v, "flat") != 0)
                return mimo_cli_usage_error("import idx: %s expects flat or full, "
                                            "got '%s'", s, v);
            *(k == 10 ? &o.image_full : &w.pool_full) = full;
        } else {
            const char **dst[6] = {&o.images, &o.labels, &o.out, &o.image_name,
                                   &o.label_name, &w.pool_name};
            *dst[k] = v;
        }
    }
    if (!o.images || !o.labels || !o.out)
        return mimo_cli_usage_error("import idx: --images, --labels and --out "
                                    "are required");
    if (w.pool_name && !w.pool)
        return mimo_cli_usage_error("import idx: --pool-name needs --pool K");
    if (w.pool_full && !w.pool)
        return mimo_cli_usage_error("import idx: --pool-shape needs --pool K");
    if (w.only_kept && !w.keep_name)
        return mimo_cli_usage_error("import idx: --only-kept needs --keep-labels "
                                    "NAME=FRACTION");
    if (mimo_import_idx_views(&o, &w))
        return mimo_cli_fail();
    printf("wrote %s\n", o.out);
    return 0;
}

int mimo_cmd_import(int argc, char **argv)
{
    if (argc < 1)
        return mimo_cli_usage_error("import: expected 'csv' or 'idx'");
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        printf("usage: mimo import csv|idx ... (see mimo import csv --help, "
               "mimo import idx --help)\n");
        return 0;
    }
    if (strcmp(argv[0], "csv") == 0)
        return csv(argc - 1, argv + 1);
    if (strcmp(argv[0], "idx") == 0)
        return idx(argc - 1, argv + 1);
    return mimo_cli_usage_error("import: unknown format '%s' (expected csv or "
                                "idx)", argv[0]);
}
