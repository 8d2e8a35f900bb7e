/* csv.h — a streaming CSV record reader (RFC 4180 and what spreadsheets
 * write): fields may be quoted ("a,b", "say ""hi""", line breaks inside),
 * CRLF or LF line ends, a UTF-8 byte-order mark skipped, blank lines
 * skipped. Reads the file in 1 MiB blocks: memory is one block plus the
 * longest record, whatever the file's size. Used by the schema import
 * (tabular.c); the --columns import keeps its own whole-file reader. */
#ifndef MIMO_TOOLS_CSV_H
#define MIMO_TOOLS_CSV_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    const char *path;
    FILE *fp;
    char delim;
    char *in;            /* the block being read */
    size_t in_len, in_pos;
    int eof;
    char *rec;           /* the record's fields, each NUL-terminated */
    size_t rec_len, rec_cap;
    size_t *off;         /* field i starts at rec + off[i] */
    size_t nf, off_cap;
    long line;           /* the line the reader is at */
    long rec_line;       /* the current record's first line */
    uint64_t bytes;      /* bytes consumed (progress) */
    uint64_t size;       /* the file's size */
} mimo_csv;

/* Opens path (a regular file) for reading with delimiter delim. */
int mimo_csv_open(mimo_csv *c, const char *path, char delim);
/* Back to the first record (the header), for another pass. */
int mimo_csv_rewind(mimo_csv *c);
/* Reads the next non-blank record: 1, 0 at the end, or a negative error
 * naming path:line (an unterminated quote, text after a closing quote). */
int mimo_csv_next(mimo_csv *c);
static inline const char *mimo_csv_field(const mimo_csv *c, size_t i)
{
    return c->rec + c->off[i];
}
void mimo_csv_close(mimo_csv *c);

#endif
