/* csv.c — the streaming CSV reader of csv.h. A record is scanned byte by
 * byte through a small state machine (unquoted, quoted, after a closing
 * quote); the bytes of its fields are copied into c->rec, so a block
 * boundary anywhere (inside a quote, between \r and \n) changes nothing. */
#define _POSIX_C_SOURCE 200809L /* fdopen */
#include "io/csv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fsutil.h"
#include "mimo/error.h"

#define CSV_BLOCK ((size_t)1 << 20)

int mimo_csv_open(mimo_csv *c, const char *path, char delim)
{
    memset(c, 0, sizeof *c);
    c->path = path;
    c->delim = delim ? delim : ',';
    int fd, rc = mimo_open_regular(path, NULL, &fd);
    if (rc)
        return rc;
    struct stat st;
    if (fstat(fd, &st) == 0)
        c->size = (uint64_t)st.st_size;
    /* opened O_NONBLOCK by mimo_open_regular: a regular file reads the same */
    if (!(c->fp = fdopen(fd, "rb"))) {
        close(fd);
        return mimo_error(MIMO_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    if (!(c->in = malloc(CSV_BLOCK))) {
        mimo_csv_close(c);
        return mimo_error(MIMO_ENOMEM, "%s: out of memory", path);
    }
    return mimo_csv_rewind(c);
}

/* Refills the block; 0 with c->in_len 0 at the end of the file. */
static int refill(mimo_csv *c)
{
    c->in_pos = 0;
    c->in_len = c->eof ? 0 : fread(c->in, 1, CSV_BLOCK, c->fp);
    if (c->in_len < CSV_BLOCK) {
        if (ferror(c->fp))
            return mimo_error(MIMO_EIO, "%s: read error: %s", c->path,
                              strerror(errno));
        c->eof = 1;
    }
    return 0;
}

int mimo_csv_rewind(mimo_csv *c)
{
    if (fseek(c->fp, 0, SEEK_SET))
        return mimo_error(MIMO_EIO, "%s: cannot seek: %s", c->path,
                          strerror(errno));
    clearerr(c->fp);
    c->eof = 0;
    c->line = 1;
    c->bytes = 0;
    int rc = refill(c);
    if (!rc && c->in_len >= 3 && memcmp(c->in, "\xEF\xBB\xBF", 3) == 0)
        c->in_pos = 3; /* a UTF-8 byte-order mark */
    return rc;
}

/* The next byte, or -1 at the end (or -2 on a read error). */
static inline int get(mimo_csv *c)
{
    if (c->in_pos == c->in_len) {
        if (c->eof || refill(c) || c->in_len == 0)
            return ferror(c->fp) ? -2 : -1;
    }
    c->bytes++;
    return (unsigned char)c->in[c->in_pos++];
}

static inline int peek(mimo_csv *c)
{
    if (c->in_pos == c->in_len && (c->eof || refill(c) || c->in_len == 0))
        return -1;
    return (unsigned char)c->in[c->in_pos];
}

static int put(mimo_csv *c, char ch)
{
    if (c->rec_len == c->rec_cap) {
        size_t cap = c->rec_cap ? 2 * c->rec_cap : 4096;
        char *p = cap > c->rec_cap ? realloc(c->rec, cap) : NULL;
        if (!p)
            return mimo_error(MIMO_ENOMEM, "%s:%ld: out of memory (a record "
                              "this long)", c->path, c->rec_line);
        c->rec = p;
        c->rec_cap = cap;
    }
    c->rec[c->rec_len++] = ch;
    return 0;
}

/* Starts a new field at the record's end. */
static int new_field(mimo_csv *c)
{
    if (c->nf == c->off_cap) {
        size_t cap = c->off_cap ? 2 * c->off_cap : 64;
        size_t *p = realloc(c->off, cap * sizeof *p);
        if (!p)
            return mimo_error(MIMO_ENOMEM, "%s: out of memory", c->path);
        c->off = p;
        c->off_cap = cap;
    }
    c->off[c->nf++] = c->rec_len;
    return 0;
}

/* Ends the current field: the NUL, and an unquoted field's trailing \r
 * dropped (a CRLF line end). */
static int end_field(mimo_csv *c, int quoted)
{
    size_t start = c->off[c->nf - 1];
    if (!quoted && c->rec_len > start && c->rec[c->rec_len - 1] == '\r')
        c->rec_len--;
    return put(c, '\0');
}

/* A quoted field, after its opening quote: up to the closing one. */
static int quoted(mimo_csv *c)
{
    for (;;) {
        int ch = get(c);
        if (ch < 0)
            return mimo_error(ch == -2 ? MIMO_EIO : MIMO_EINVAL,
                              ch == -2 ? "%s:%ld: read error"
                                       : "%s:%ld: unterminated quoted field "
                                         "(the file ends inside it)",
                              c->path, c->rec_line);
        if (ch == '"') {
            if (peek(c) != '"')
                return 0;
            get(c);
        } else if (ch == '\n') {
            c->line++;
        }
        int rc = put(c, (char)ch);
        if (rc)
            return rc;
    }
}

/* Room for n more bytes in the record. */
static int reserve(mimo_csv *c, size_t n)
{
    if (c->rec_cap - c->rec_len >= n)
        return 0;
    size_t cap = c->rec_cap ? c->rec_cap : 4096;
    while (cap - c->rec_len < n)
        cap *= 2;
    char *p = realloc(c->rec, cap);
    if (!p)
        return mimo_error(MIMO_ENOMEM, "%s:%ld: out of memory (a record this "
                          "long)", c->path, c->rec_line);
    c->rec = p;
    c->rec_cap = cap;
    return 0;
}

/* An unquoted field: its bytes up to the delimiter or line end, copied a
 * block's run at a time (the common case, kept off the byte-wise path).
 * *end: the delimiter, '\n', -1 at the end of the file, -2 on an error. */
static int unquoted(mimo_csv *c, int *end)
{
    for (;;) {
        if (c->in_pos == c->in_len && (c->eof || refill(c) || c->in_len == 0)) {
            *end = ferror(c->fp) ? -2 : -1;
            return 0;
        }
        const char *p = c->in + c->in_pos, *stop = c->in + c->in_len, *q = p;
        while (q < stop && *q != c->delim && *q != '\n')
            q++;
        size_t n = (size_t)(q - p);
        int rc = reserve(c, n + 1);
        if (rc)
            return rc;
        memcpy(c->rec + c->rec_len, p, n);
        c->rec_len += n;
        c->in_pos += n;
        c->bytes += n;
        if (q < stop) {
            *end = (unsigned char)*q;
            c->in_pos++;
            c->bytes++;
            return 0;
        }
    }
}

/* After a closing quote: blanks, then the delimiter, a line end or the
 * end of the file (*end: the delimiter, '\n' or -1). 0 or an error. */
static int after_quote(mimo_csv *c, int *end)
{
    for (;;) {
        int ch = get(c);
        *end = ch;
        if (ch == c->delim || ch == '\n' || ch == -1)
            return 0;
        if (ch != ' ' && ch != '\t' && ch != '\r')
            return mimo_error(MIMO_EINVAL, "%s:%ld: field %zu: unexpected '%c' "
                              "after a closing quote (a quote inside a quoted "
                              "field is written \"\")", c->path, c->line, c->nf,
                              ch < 0 ? '?' : ch);
    }
}

int mimo_csv_next(mimo_csv *c)
{
    int ch;
    /* blank lines (and \r\n pairs) between records */
    while ((ch = peek(c)) == '\n' || ch == '\r') {
        get(c);
        if (ch == '\n')
            c->line++;
    }
    if (ch < 0)
        return ferror(c->fp) ? mimo_error(MIMO_EIO, "%s: read error", c->path) : 0;
    c->rec_len = 0;
    c->nf = 0;
    c->rec_line = c->line;
    for (;;) {
        int rc = new_field(c), q = 0;
        if (rc)
            return rc;
        if (peek(c) == '"') {
            get(c);
            q = 1;
            if ((rc = quoted(c)) || (rc = end_field(c, 1)))
                return rc;
            if ((rc = after_quote(c, &ch)))
                return rc;
        } else {
            if ((rc = unquoted(c, &ch)))
                return rc;
            if (ch == -2)
                return mimo_error(MIMO_EIO, "%s:%ld: read error", c->path,
                                  c->line);
            if ((rc = end_field(c, q)))
                return rc;
        }
        if (ch == '\n') {
            c->line++;
            return 1;
        }
        if (ch == -1)
            return 1;
    }
}

void mimo_csv_close(mimo_csv *c)
{
    if (c->fp)
        fclose(c->fp);
    free(c->in);
    free(c->rec);
    free(c->off);
    memset(c, 0, sizeof *c);
}
