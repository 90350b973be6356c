#include "buf.h"

#include <stdlib.h>
#include <string.h>

void mr_buf_init(mr_buf *b, size_t limit)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->limit = limit;
}

void mr_buf_free(mr_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void mr_buf_reset(mr_buf *b)
{
    b->len = 0;
}

int mr_buf_reserve(mr_buf *b, size_t n)
{
    size_t need;
    if (n > (size_t)-1 - b->len - 1)
        return -1;
    need = b->len + n;
    if (b->limit != 0 && need > b->limit)
        return -1;
    if (need + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;
        while (cap < need + 1)
            cap = cap > (size_t)-1 / 2 ? need + 1 : cap * 2;
        p = realloc(b->data, cap);
        if (p == NULL)
            return -1;
        b->data = p;
        b->cap = cap;
    }
    return 0;
}

int mr_buf_append(mr_buf *b, const void *data, size_t n)
{
    if (n == 0)
        return 0;
    if (mr_buf_reserve(b, n) != 0)
        return -1;
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0'; /* keeps the buffer usable as a C string */
    return 0;
}

int mr_buf_appends(mr_buf *b, const char *s)
{
    return mr_buf_append(b, s, strlen(s));
}
