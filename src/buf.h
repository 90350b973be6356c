/* A growable byte buffer with a hard cap, shared by signing and HTTP. */
#ifndef MR_BUF_H
#define MR_BUF_H

#include <stddef.h>

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    size_t limit; /* 0: no limit */
} mr_buf;

void mr_buf_init(mr_buf *b, size_t limit);
void mr_buf_free(mr_buf *b);
void mr_buf_reset(mr_buf *b);
/* 0 on success, -1 when out of memory or over the limit. */
int mr_buf_append(mr_buf *b, const void *data, size_t n);
int mr_buf_appends(mr_buf *b, const char *s);
/* Ensures room for n more bytes plus a NUL; 0 on success. */
int mr_buf_reserve(mr_buf *b, size_t n);

#endif
