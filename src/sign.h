/* Gateway key-pair HMAC signing: pure C, no Lua, so it can be fuzzed. */
#ifndef MR_SIGN_H
#define MR_SIGN_H

#include <stddef.h>
#include <time.h>

#include "buf.h"

#define MR_HMAC_MAX 64      /* SHA-512 */
#define MR_HTTP_DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */

/* Returns the OpenSSL digest for "hmac-sha1" … "hmac-sha512", or NULL. */
const void *mr_hmac_digest(const char *algorithm);

/* 0 on success; out must hold MR_HMAC_MAX bytes. */
int mr_hmac(const void *digest, const void *key, size_t keylen,
            const void *data, size_t len, unsigned char *out, unsigned *outlen);

/* Standard base64 without line breaks; 0 on success. */
int mr_base64(mr_buf *out, const unsigned char *data, size_t len);

/* RFC 1123 date in English whatever the locale; 0 on success. */
int mr_http_date(time_t t, char out[MR_HTTP_DATE_LEN + 1]);

/* A header name is an RFC 9110 token (tchar bytes), 1 to 256 of them. */
int mr_valid_header_name(const char *s, size_t len);
/* A header value holds no CR, LF, NUL or other control byte but TAB. */
int mr_valid_header_value(const char *s, size_t len);

/*
 * Appends "name: value" lines, names lower-cased, joined by '\n' with no
 * trailing newline. Returns 0, or a static message naming what is invalid.
 */
const char *mr_signing_string(mr_buf *out, size_t n, const char *const *names,
                              const size_t *name_lens, const char *const *values,
                              const size_t *value_lens);

/* Builds the Authorization value; returns 0, or a static error message. */
const char *mr_authorization(mr_buf *out, const char *id, size_t id_len,
                             const char *algorithm, const char *headers_field,
                             const char *signature);

#endif
