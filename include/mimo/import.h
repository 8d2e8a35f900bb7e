/* import.h — tabular data in: a CSV of numbers, strings and lists into
 * dataset files by a schema, with the vocabularies and statistics of the
 * training split stored in each file under /preprocessing
 * (`mimo import csv --schema`, io/tabular.c; with `window:` in the
 * schema, a time series cut into windows and split by time), and a
 * first schema guessed
 * from a CSV (`--infer-schema`, io/infer_schema.c). */
#ifndef MIMO_IMPORT_H
#define MIMO_IMPORT_H

#include "mimo/api.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#ifdef __cplusplus
}
#endif
#endif

typedef struct {
    const char *path;    /* the CSV */
    const char *out;     /* the training split's file; val and test go to
                            OUT with .val/.test before .h5 */
    const char *schema;  /* the schema's YAML file */
    char delimiter;      /* 0: the schema's, else ',' */
    double memory_mb;    /* the write windows' budget; 0: 256 */
    FILE *report;        /* what was written, per dataset; NULL: nothing */
    FILE *progress;      /* a line redrawn as the passes go (a terminal);
                            NULL: none */
} mimo_tab_opts;

/* Imports the CSV by the schema (see tabular.c's purpose block). Errors
 * name the file and, for the CSV, line and column; no output file is left
 * behind on any error. */
MIMO_API int mimo_import_tabular(const mimo_tab_opts *o);

/* Prints a schema for the CSV to out, each column's kind guessed from the
 * first max_rows rows (numbers -> numeric, few distinct strings ->
 * category, many -> hashed, one distinct value per row -> skip). */
MIMO_API int mimo_infer_schema(const char *path, char delimiter, long max_rows, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
