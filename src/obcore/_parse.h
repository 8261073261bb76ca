/* Exact decimal and Bybit v5 orderbook-frame parsing, in C, without floats.
 *
 * A scale is a grid step written as mant * 10^-dec ("0.1" -> 1,1; "0.50" -> 50,2; "5" -> 5,0).
 * A decimal string is parsed to an integer number of 10^-dec units, then divided by mant;
 * a nonzero remainder (or nonzero digits past dec) means the value is off the grid.
 *
 * The frame parser validates the whole JSON text and stages every level into caller-owned
 * buffers before anything touches a book, so a bad frame is rejected without side effects.
 * It never reads outside [buf, buf + len) and never recurses deeper than OB_MAX_DEPTH.
 */
#ifndef OBCORE_PARSE_H
#define OBCORE_PARSE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define OB_OK 0
#define OB_MALFORMED 1
#define OB_OFF_GRID 2
#define OB_NEGATIVE 3
#define OB_OVERFLOW 4
#define OB_NOMEM 5
#define OB_FRAME 6

#define OB_SNAPSHOT 1
#define OB_DELTA 2

#define OB_MAX_DEPTH 64

typedef struct {
    int64_t mant;
    int dec;
} ob_scale;

#if defined(__GNUC__) || defined(__clang__)
#define OB_ALWAYS_INLINE inline __attribute__((always_inline))
#define OB_NOINLINE __attribute__((noinline))
#else
#define OB_ALWAYS_INLINE inline
#define OB_NOINLINE
#endif

static const int64_t ob_pow10[19] = {
    1LL, 10LL, 100LL, 1000LL, 10000LL, 100000LL, 1000000LL, 10000000LL, 100000000LL,
    1000000000LL, 10000000000LL, 100000000000LL, 1000000000000LL, 10000000000000LL,
    100000000000000LL, 1000000000000000LL, 10000000000000000LL, 100000000000000000LL,
    1000000000000000000LL};

/* One pass over a plain decimal in [p, end) with no overflow checks while at most 18
 * digits are accumulated. Returns the first byte after the number, or NULL for anything
 * unusual (sign, >18 digits, off-grid, no digits), which the checked parser then explains. */
static OB_ALWAYS_INLINE const char *ob_decimal_fast(const char *p, const char *end,
                                                    const ob_scale *sc, int64_t *out)
{
    uint64_t v = 0;
    int nd = 0, nfrac = 0, dec = sc->dec;
    unsigned d;
    while (p < end && (d = (unsigned)(unsigned char)(*p - '0')) < 10) {
        v = v * 10 + d;
        nd++;
        p++;
    }
    if (!nd)
        return NULL;
    if (p < end && *p == '.') {
        const char *f = ++p;
        while (p < end && (d = (unsigned)(unsigned char)(*p - '0')) < 10) {
            if (nfrac < dec) {
                v = v * 10 + d;
                nfrac++;
                nd++;
            } else if (d) {
                return NULL;
            }
            p++;
        }
        if (p == f)
            return NULL;
    }
    if (nd + (dec - nfrac) > 18)
        return NULL;
    v *= (uint64_t)ob_pow10[dec - nfrac];
    if (sc->mant != 1) {
        if (v % (uint64_t)sc->mant)
            return NULL;
        v /= (uint64_t)sc->mant;
    }
    *out = (int64_t)v;
    return p;
}

/* The checked parse behind ob_parse_scaled, for what the fast path refuses. Out of line: the
 * callers' level loops inline only the fast path, and keep it small. */
static OB_NOINLINE int ob_parse_checked(const char *s, size_t n, const ob_scale *sc,
                                        int64_t *out)
{
    size_t i = 0;
    int neg = 0, overflow = 0, offgrid = 0, nfrac = 0;
    int64_t v = 0;
    size_t start;
    if (n && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    start = i;
    while (i < n && (unsigned char)(s[i] - '0') < 10) {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s[i] - '0', &v))
            overflow = 1;
        i++;
    }
    if (i == start)
        return OB_MALFORMED;
    if (i < n && s[i] == '.') {
        size_t fstart = ++i;
        while (i < n && (unsigned char)(s[i] - '0') < 10) {
            if (nfrac < sc->dec) {
                if (__builtin_mul_overflow(v, 10, &v) ||
                    __builtin_add_overflow(v, s[i] - '0', &v))
                    overflow = 1;
                nfrac++;
            } else if (s[i] != '0') {
                offgrid = 1;
            }
            i++;
        }
        if (i == fstart)
            return OB_MALFORMED;
    }
    if (i != n)
        return OB_MALFORMED;
    if (neg)
        return OB_NEGATIVE;
    if (!overflow && nfrac < sc->dec &&
        __builtin_mul_overflow(v, ob_pow10[sc->dec - nfrac], &v))
        overflow = 1;
    if (overflow)
        return OB_OVERFLOW;
    if (offgrid || v % sc->mant)
        return OB_OFF_GRID;
    *out = v / sc->mant;
    return OB_OK;
}

/* Parse s[0..n) as a non-negative decimal on the grid `sc`; store grid units in *out.
 * Grammar: digits+ ('.' digits+)?  -- no sign, exponent, spaces or leading '+'.
 * The most basic problem wins: malformed, then negative, then overflow, then off-grid.
 * Always inlined: it runs twice per level, and a call costs about a fifth of a parse. */
static OB_ALWAYS_INLINE int ob_parse_scaled(const char *s, size_t n, const ob_scale *sc,
                                            int64_t *out)
{
    if (ob_decimal_fast(s, s + n, sc, out) == s + n)
        return OB_OK;
    return ob_parse_checked(s, n, sc, out);
}

/* Parse a grid step such as "0.1", "0.50", "5" into a scale. Zero and >18 decimals fail. */
static inline int ob_parse_step(const char *s, size_t n, ob_scale *sc)
{
    ob_scale probe;
    size_t dot;
    int64_t units;
    int rc;
    for (dot = 0; dot < n && s[dot] != '.'; dot++) {
    }
    probe.mant = 1;
    probe.dec = dot < n ? (int)(n - dot - 1) : 0;
    if (probe.dec > 18)
        return OB_OVERFLOW;
    rc = ob_parse_scaled(s, n, &probe, &units);
    if (rc != OB_OK)
        return rc;
    if (units == 0)
        return OB_MALFORMED;
    sc->mant = units;
    sc->dec = probe.dec;
    return OB_OK;
}

/* Write grid value `q` as decimal text with exactly sc->dec decimals; return length, or -1
 * when q * mant overflows. buf needs 48 bytes. */
static inline int ob_format_scaled(int64_t q, const ob_scale *sc, char *buf)
{
    int64_t v;
    uint64_t a, ip, fp;
    char tmp[48];
    int k = 0, len = 0, d;
    if (__builtin_mul_overflow(q, sc->mant, &v))
        return -1;
    a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    ip = a / (uint64_t)ob_pow10[sc->dec];
    fp = a % (uint64_t)ob_pow10[sc->dec];
    for (d = 0; d < sc->dec; d++) {
        tmp[k++] = (char)('0' + fp % 10);
        fp /= 10;
    }
    if (sc->dec)
        tmp[k++] = '.';
    do {
        tmp[k++] = (char)('0' + ip % 10);
        ip /= 10;
    } while (ip);
    if (v < 0)
        tmp[k++] = '-';
    while (k)
        buf[len++] = tmp[--k];
    buf[len] = 0;
    return len;
}

/* ------------------------------------------------------------------------------------- */
/* Frame parsing                                                                          */

typedef struct {
    int64_t *v; /* interleaved key, qty */
    size_t len; /* pairs */
    size_t cap; /* pairs */
} ob_levels;

/* Where one frame's levels are staged. An orderbook.rpi level [price, size, rpiSize] puts
 * (key, size) in bids/asks and (key, rpiSize) in rpi_bids/rpi_asks. */
typedef struct {
    ob_levels bids, asks, rpi_bids, rpi_asks;
} ob_staged;

typedef struct {
    int type; /* OB_SNAPSHOT / OB_DELTA / 0 when absent */
    int64_t u, seq, ts, cts;
    int has_u, has_seq, has_ts, has_cts, has_b, has_a, has_data;
    const char *topic;
    size_t topic_len;
    const char *sym;
    size_t sym_len;
    /* error detail: code, dotted field name, level index (-1: none), the offending bytes */
    int err;
    const char *err_field;
    long err_index;
    size_t err_pos;
    size_t err_len;
    const char *err_what;
    /* Strings with escapes are decoded here (topic and s point into it). Owned by the frame
     * and kept across resets: a frame's decoded text is never longer than the frame. */
    char *dbuf;
    size_t dcap;
    size_t dlen;
} ob_frame;

typedef struct {
    const char *buf;
    const char *p;
    const char *end;
    ob_frame *f;
    const char *raw; /* the last string's bytes in buf, before decoding, for error reports */
    size_t raw_len;
} ob_cursor;

static inline void ob_frame_reset(ob_frame *f)
{
    char *dbuf = f->dbuf;
    size_t dcap = f->dcap;
    memset(f, 0, sizeof(*f));
    f->err_index = -1;
    f->dbuf = dbuf;
    f->dcap = dcap;
}

static inline void ob_frame_free(ob_frame *f)
{
    free(f->dbuf);
    f->dbuf = NULL;
    f->dcap = f->dlen = 0;
}

static inline int ob_levels_push(ob_levels *l, int64_t key, int64_t qty)
{
    if (l->len == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        int64_t *v = (int64_t *)realloc(l->v, cap * 2 * sizeof(int64_t));
        if (!v)
            return OB_NOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[2 * l->len] = key;
    l->v[2 * l->len + 1] = qty;
    l->len++;
    return OB_OK;
}

/* Room for `extra` more pairs, so a loop can store them without checking each one. */
static inline int ob_levels_reserve(ob_levels *l, size_t extra)
{
    if (l->len + extra > l->cap) {
        size_t cap = l->cap ? l->cap : 64;
        int64_t *v;
        while (cap < l->len + extra)
            cap *= 2;
        v = (int64_t *)realloc(l->v, cap * 2 * sizeof(int64_t));
        if (!v)
            return OB_NOMEM;
        l->v = v;
        l->cap = cap;
    }
    return OB_OK;
}

static inline void ob_levels_free(ob_levels *l)
{
    free(l->v);
    l->v = NULL;
    l->len = l->cap = 0;
}

static int ob_fail(ob_cursor *c, int code, const char *field, const char *what, const char *at,
                   size_t len)
{
    ob_frame *f = c->f;
    f->err = code;
    f->err_field = field;
    f->err_what = what;
    f->err_pos = (size_t)(at - c->buf);
    f->err_len = len;
    return code;
}

static inline void ob_ws(ob_cursor *c)
{
    while (c->p < c->end &&
           (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

static inline int ob_expect(ob_cursor *c, char ch, const char *field)
{
    const char *what;
    ob_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return OB_OK;
    }
    if (c->p >= c->end)
        return ob_fail(c, OB_FRAME, field, "unexpected end of text", c->end, 0);
    switch (ch) {
    case '{': what = "expected an object"; break;
    case '[': what = "expected an array"; break;
    case '"': what = "expected a string"; break;
    case ':': what = "expected ':'"; break;
    case ',': what = "expected ','"; break;
    case '}': what = "expected ',' or '}'"; break;
    case ']': what = "expected ',' or ']'"; break;
    default: what = "unexpected character"; break;
    }
    return ob_fail(c, OB_FRAME, field, what, c->p, 1);
}

/* Length of the valid UTF-8 sequence starting at p (lead byte >= 0x80), or 0 when it is
 * invalid: overlong forms, surrogates and code points above U+10FFFF are refused, as a
 * strict UTF-8 decoder (Python's) refuses them. */
static inline size_t ob_utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char b = p[0], lo = 0x80, hi = 0xBF;
    size_t n, i;
    if (b >= 0xC2 && b <= 0xDF)
        n = 2;
    else if (b >= 0xE0 && b <= 0xEF) {
        n = 3;
        if (b == 0xE0)
            lo = 0xA0;
        else if (b == 0xED)
            hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4;
        if (b == 0xF0)
            lo = 0x90;
        else if (b == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

static inline int ob_hex4(const char *p, unsigned *out)
{
    unsigned v = 0, i, d;
    for (i = 0; i < 4; i++) {
        char ch = p[i];
        if (ch >= '0' && ch <= '9')
            d = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            d = (unsigned)(ch - 'A' + 10);
        else
            return -1;
        v = v * 16 + d;
    }
    *out = v;
    return 0;
}

static inline char *ob_put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* What ob_string does with the text between the quotes. */
#define OB_STR_SKIP 0   /* validate only */
#define OB_STR_KEY 1    /* decode escapes; a lone surrogate decodes to bytes that match nothing */
#define OB_STR_TEXT 2   /* decode escapes; a lone surrogate is an error (it has no UTF-8) */

/* Decode the escapes of raw string bytes [p, end), already validated, into the frame's
 * buffer. A lone surrogate becomes its 3-byte generalized-UTF-8 form, which no key or
 * number matches; returns 1 when one was seen. */
static int ob_unescape(ob_frame *f, const char *p, const char *end, const char **s, size_t *n)
{
    char *o = f->dbuf + f->dlen, *start = o;
    int lone = 0;
    while (p < end) {
        unsigned cp = 0, lo = 0;
        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }
        p++;
        switch (*p++) {
        case 'b': *o++ = '\b'; continue;
        case 'f': *o++ = '\f'; continue;
        case 'n': *o++ = '\n'; continue;
        case 'r': *o++ = '\r'; continue;
        case 't': *o++ = '\t'; continue;
        case 'u': break;
        default: *o++ = p[-1]; continue;   /* '"', '\\', '/' */
        }
        ob_hex4(p, &cp);
        p += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
            !ob_hex4(p + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        } else if (cp >= 0xD800 && cp <= 0xDFFF) {
            lone = 1;
        }
        o = ob_put_utf8(o, cp);
    }
    *s = start;
    *n = (size_t)(o - start);
    f->dlen += *n;
    return lone;
}

/* The rest of a string that holds an escape, a non-ASCII byte or a control character,
 * from p (inside the string) on; see ob_string. Kept out of line: Bybit's strings are plain
 * ASCII, and the common case must stay small enough to inline. */
static int ob_string_slow(ob_cursor *c, const char *field, const char *p, const char **s,
                          size_t *n, int mode)
{
    int esc = 0;
    while (p < c->end && *p != '"') {
        unsigned char ch = (unsigned char)*p;
        if (ch < 0x20)
            return ob_fail(c, OB_FRAME, field, "control character in string", p, 1);
        if (ch == '\\') {
            unsigned cp;
            esc = 1;
            if (p + 1 >= c->end)
                break;
            switch (p[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                p += 2;
                continue;
            case 'u':
                if (c->end - p >= 6 && !ob_hex4(p + 2, &cp)) {
                    p += 6;
                    continue;
                }
                /* fall through */
            default:
                return ob_fail(c, OB_FRAME, field, "invalid escape in string", p,
                               (size_t)(c->end - p < 6 ? c->end - p : 6));
            }
        }
        if (ch >= 0x80) {
            size_t k = ob_utf8_len((const unsigned char *)p, (const unsigned char *)c->end);
            if (!k)
                return ob_fail(c, OB_FRAME, field, "invalid UTF-8 in string", p, 1);
            p += k;
            continue;
        }
        p++;
    }
    if (p >= c->end)
        return ob_fail(c, OB_FRAME, field, "unterminated string", c->p - 1, (size_t)(c->end - c->p + 1));
    c->raw = c->p;
    c->raw_len = (size_t)(p - c->p);
    *s = c->p;
    *n = (size_t)(p - c->p);
    c->p = p + 1;
    if (esc && mode != OB_STR_SKIP) {
        ob_frame *f = c->f;
        if (!f->dbuf || f->dcap < (size_t)(c->end - c->buf)) {
            /* Only at the first escape of a parse (dlen == 0): no pointer into dbuf exists. */
            size_t cap = (size_t)(c->end - c->buf) + 1;
            char *d = f->dlen ? NULL : (char *)realloc(f->dbuf, cap);
            if (!d)
                return ob_fail(c, OB_NOMEM, field, "out of memory", c->raw, 0);
            f->dbuf = d;
            f->dcap = cap;
        }
        if (ob_unescape(f, c->raw, c->raw + c->raw_len, s, n) && mode == OB_STR_TEXT)
            return ob_fail(c, OB_FRAME, field, "lone surrogate escape in string", c->raw,
                           c->raw_len);
    }
    return OB_OK;
}

/* 1 for the bytes a string's common case is made of: printable ASCII (and DEL) other than the
 * quote and the backslash. One load and test a byte, where the comparisons took four. */
static const unsigned char ob_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

/* A JSON string, checked as strictly as json.loads checks it: no control characters, valid
 * escapes only, valid UTF-8. s and n get the bytes between the quotes, or their decoded
 * form when they hold escapes (mode OB_STR_KEY / OB_STR_TEXT). */
static inline int ob_string(ob_cursor *c, const char *field, const char **s, size_t *n, int mode)
{
    const char *p, *end = c->end;
    int rc = ob_expect(c, '"', field);
    if (rc)
        return rc;
    p = c->p;
    while (p < end && ob_plain[(unsigned char)*p])
        p++;
    if (p >= end || *p != '"')
        return ob_string_slow(c, field, p, s, n, mode);
    c->raw = *s = c->p;
    c->raw_len = *n = (size_t)(p - c->p);
    c->p = p + 1;
    return OB_OK;
}

/* A JSON number that must be a non-negative integer fitting int64. JSON's grammar holds:
 * no leading zeros, and "-0" is zero (json.loads reads it as 0). */
static inline int ob_int(ob_cursor *c, const char *field, int64_t *out)
{
    const char *start, *d, *p;
    int neg = 0, overflow = 0;
    int64_t v = 0;
    ob_ws(c);
    start = p = c->p;
    {
        /* up to 18 digits cannot overflow: no checks on the common path */
        uint64_t u = 0;
        unsigned dig;
        while (p < c->end && (dig = (unsigned)(unsigned char)(*p - '0')) < 10 && p - start < 18) {
            u = u * 10 + dig;
            p++;
        }
        if (p > start && (*start != '0' || p - start == 1) &&
            !(p < c->end && ((unsigned char)(*p - '0') < 10 || *p == '.' || *p == 'e' ||
                             *p == 'E'))) {
            *out = (int64_t)u;
            c->p = p;
            return OB_OK;
        }
    }
    p = start;
    if (p < c->end && *p == '-') {
        neg = 1;
        p++;
    }
    d = p;
    while (p < c->end && (unsigned char)(*p - '0') < 10) {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *p - '0', &v))
            overflow = 1;
        p++;
    }
    if (p == d || (p < c->end && (*p == '.' || *p == 'e' || *p == 'E')) ||
        (*d == '0' && p - d > 1)) {
        const char *q = p;
        while (q < c->end && *q != ',' && *q != '}' && *q != ']' && q - start < 40)
            q++;
        return ob_fail(c, OB_FRAME, field,
                       p > d + 1 && *d == '0' ? "leading zero in a number" : "expected an integer",
                       start, (size_t)(q - start));
    }
    if (neg && (overflow || v))
        return ob_fail(c, OB_NEGATIVE, field, "must not be negative", start, (size_t)(p - start));
    if (overflow)
        return ob_fail(c, OB_OVERFLOW, field, "does not fit in int64", start, (size_t)(p - start));
    *out = v;
    c->p = p;
    return OB_OK;
}

static int ob_skip_value(ob_cursor *c, const char *field, int depth);

static int ob_skip_container(ob_cursor *c, const char *field, int depth, char close)
{
    int rc;
    const char *s;
    size_t n;
    if (depth >= OB_MAX_DEPTH)
        return ob_fail(c, OB_FRAME, field, "nested too deeply", c->p, 1);
    ob_ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return OB_OK;
    }
    for (;;) {
        if (close == '}') {
            if ((rc = ob_string(c, field, &s, &n, OB_STR_SKIP)) || (rc = ob_expect(c, ':', field)))
                return rc;
        }
        if ((rc = ob_skip_value(c, field, depth + 1)))
            return rc;
        ob_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        return ob_expect(c, close, field);
    }
}

static int ob_skip_value(ob_cursor *c, const char *field, int depth)
{
    const char *s;
    size_t n;
    ob_ws(c);
    if (c->p >= c->end)
        return ob_fail(c, OB_FRAME, field, "unexpected end of text", c->end, 0);
    switch (*c->p) {
    case '"':
        return ob_string(c, field, &s, &n, OB_STR_SKIP);
    case '{':
        c->p++;
        return ob_skip_container(c, field, depth, '}');
    case '[':
        c->p++;
        return ob_skip_container(c, field, depth, ']');
    case 't':
        if (c->end - c->p >= 4 && !memcmp(c->p, "true", 4)) {
            c->p += 4;
            return OB_OK;
        }
        break;
    case 'f':
        if (c->end - c->p >= 5 && !memcmp(c->p, "false", 5)) {
            c->p += 5;
            return OB_OK;
        }
        break;
    case 'n':
        if (c->end - c->p >= 4 && !memcmp(c->p, "null", 4)) {
            c->p += 4;
            return OB_OK;
        }
        break;
    default: {
        /* number: -?(0|[1-9]digits*)(.digits)?([eE][+-]?digits)? */
        const char *p = c->p;
        const char *d;
        if (p < c->end && *p == '-')
            p++;
        d = p;
        while (p < c->end && (unsigned char)(*p - '0') < 10)
            p++;
        if (p == d || (*d == '0' && p - d > 1))
            break;
        if (p < c->end && *p == '.') {
            d = ++p;
            while (p < c->end && (unsigned char)(*p - '0') < 10)
                p++;
            if (p == d)
                break;
        }
        if (p < c->end && (*p == 'e' || *p == 'E')) {
            p++;
            if (p < c->end && (*p == '+' || *p == '-'))
                p++;
            d = p;
            while (p < c->end && (unsigned char)(*p - '0') < 10)
                p++;
            if (p == d)
                break;
        }
        c->p = p;
        return OB_OK;
    }
    }
    return ob_fail(c, OB_FRAME, field, "invalid JSON value", c->p, 1);
}

#define OB_KEY(s, n, lit) ((n) == sizeof(lit) - 1 && !memcmp((s), (lit), sizeof(lit) - 1))

/* A quoted plain decimal ("65114.2") straight from frame text: 1 and past the closing quote
 * on success, 0 without moving otherwise. */
static inline int ob_quoted_fast(ob_cursor *c, const ob_scale *sc, int64_t *out)
{
    const char *e;
    if (c->p >= c->end || *c->p != '"')
        return 0;
    e = ob_decimal_fast(c->p + 1, c->end, sc, out);
    if (!e || e >= c->end || *e != '"')
        return 0;
    c->p = e + 1;
    return 1;
}

/* One quoted price (part 0), size (part 1) or RPI size (part 2) of a level, on the general path: whitespace
 * allowed, and any failure named with the field, the part and the offending text. */
static int ob_level_number(ob_cursor *c, const char *field, const ob_scale *sc, int part,
                           int64_t *out)
{
    const char *s;
    size_t n;
    int rc;
    ob_ws(c);
    if (ob_quoted_fast(c, sc, out))
        return OB_OK;
    if ((rc = ob_string(c, field, &s, &n, OB_STR_KEY)))
        return rc;
    rc = ob_parse_scaled(s, n, sc, out);
    return rc ? ob_fail(c, rc, field, part == 2 ? "rpi size" : part ? "size" : "price", c->raw,
                        c->raw_len)
              : OB_OK;
}

/* [[price, size], ...] -> staged (key, qty) pairs; bid prices are negated into keys. A level
 * [price, size, rpiSize] (orderbook.rpi) also stages (key, rpiSize) in rpi. */
static int ob_levels_parse(ob_cursor *c, const char *field, const ob_scale *px,
                           const ob_scale *qty, int negate, ob_levels *out, ob_levels *rpi)
{
    int rc;
    long idx = 0;
    int64_t price, size, rpi_size;
    out->len = 0;
    rpi->len = 0;
    if ((rc = ob_expect(c, '[', field)))
        return rc;
    ob_ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        return OB_OK;
    }
    for (;;) {
        const char *save = c->p;
        c->f->err_index = idx;
        /* Compact ["price","size"] as Bybit sends it: no whitespace, no generic helpers. */
        if (c->p < c->end && *c->p == '[') {
            c->p++;
            if (ob_quoted_fast(c, px, &price) && c->p < c->end && *c->p == ',') {
                c->p++;
                if (ob_quoted_fast(c, qty, &size) && c->p < c->end && *c->p == ']') {
                    c->p++;
                    goto push;
                }
            }
        }
        c->p = save;
        if ((rc = ob_expect(c, '[', field)))
            return rc;
        if ((rc = ob_level_number(c, field, px, 0, &price)) ||
            (rc = ob_expect(c, ',', field)) ||
            (rc = ob_level_number(c, field, qty, 1, &size)))
            return rc;
        ob_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            if ((rc = ob_level_number(c, field, qty, 2, &rpi_size)))
                return rc;
            if (ob_levels_push(rpi, negate ? -price : price, rpi_size))
                return ob_fail(c, OB_NOMEM, field, "out of memory", c->p, 0);
        }
        if ((rc = ob_expect(c, ']', field)))
            return rc;
    push:
        if (ob_levels_push(out, negate ? -price : price, size))
            return ob_fail(c, OB_NOMEM, field, "out of memory", c->p, 0);
        idx++;
        ob_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        rc = ob_expect(c, ']', field);
        if (!rc)
            c->f->err_index = -1;
        return rc;
    }
}

/* Called right after the key was read: c->raw is its text as written. */
static int ob_dup(ob_cursor *c, const char *field, const char *key, size_t n)
{
    (void)key;
    (void)n;
    return ob_fail(c, OB_FRAME, field, "duplicate key", c->raw, c->raw_len);
}

static int ob_data_parse(ob_cursor *c, const ob_scale *px, const ob_scale *qty, ob_staged *st)
{
    ob_frame *f = c->f;
    const char *k;
    size_t kn;
    int rc;
    if ((rc = ob_expect(c, '{', "data")))
        return rc;
    ob_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return OB_OK;
    }
    for (;;) {
        if ((rc = ob_string(c, "data", &k, &kn, OB_STR_KEY)) || (rc = ob_expect(c, ':', "data")))
            return rc;
        if (OB_KEY(k, kn, "b")) {
            if (f->has_b)
                return ob_dup(c, "data", k, kn);
            f->has_b = 1;
            rc = ob_levels_parse(c, "data.b", px, qty, 1, &st->bids, &st->rpi_bids);
        } else if (OB_KEY(k, kn, "a")) {
            if (f->has_a)
                return ob_dup(c, "data", k, kn);
            f->has_a = 1;
            rc = ob_levels_parse(c, "data.a", px, qty, 0, &st->asks, &st->rpi_asks);
        } else if (OB_KEY(k, kn, "u")) {
            if (f->has_u)
                return ob_dup(c, "data", k, kn);
            f->has_u = 1;
            rc = ob_int(c, "data.u", &f->u);
        } else if (OB_KEY(k, kn, "seq")) {
            if (f->has_seq)
                return ob_dup(c, "data", k, kn);
            f->has_seq = 1;
            rc = ob_int(c, "data.seq", &f->seq);
        } else if (OB_KEY(k, kn, "s")) {
            if (f->sym)
                return ob_dup(c, "data", k, kn);
            rc = ob_string(c, "data.s", &f->sym, &f->sym_len, OB_STR_TEXT);
        } else {
            rc = ob_skip_value(c, "data", 1);
        }
        if (rc)
            return rc;
        ob_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        return ob_expect(c, '}', "data");
    }
}

/* Parse one whole frame. Required: type, data.b, data.a, data.u; everything else optional.
 * Unknown keys are skipped (after validating their JSON). */
static int ob_frame_parse(const char *buf, size_t len, const ob_scale *px, const ob_scale *qty,
                          ob_frame *f, ob_staged *st)
{
    ob_cursor c;
    const char *k, *s;
    size_t kn, n;
    int rc;
    c.buf = c.p = buf;
    c.end = buf + len;
    c.f = f;
    ob_frame_reset(f);
    st->bids.len = st->asks.len = st->rpi_bids.len = st->rpi_asks.len = 0;
    if ((rc = ob_expect(&c, '{', "frame")))
        return rc;
    ob_ws(&c);
    if (c.p < c.end && *c.p == '}') {
        c.p++;
    } else {
        for (;;) {
            if ((rc = ob_string(&c, "frame", &k, &kn, OB_STR_KEY)) || (rc = ob_expect(&c, ':', "frame")))
                return rc;
            if (OB_KEY(k, kn, "topic")) {
                if (f->topic)
                    return ob_dup(&c, "frame", k, kn);
                rc = ob_string(&c, "topic", &f->topic, &f->topic_len, OB_STR_TEXT);
            } else if (OB_KEY(k, kn, "type")) {
                if (f->type)
                    return ob_dup(&c, "frame", k, kn);
                if (!(rc = ob_string(&c, "type", &s, &n, OB_STR_KEY))) {
                    if (OB_KEY(s, n, "snapshot"))
                        f->type = OB_SNAPSHOT;
                    else if (OB_KEY(s, n, "delta"))
                        f->type = OB_DELTA;
                    else
                        return ob_fail(&c, OB_FRAME, "type", "must be \"snapshot\" or \"delta\"",
                                       c.raw, c.raw_len);
                }
            } else if (OB_KEY(k, kn, "ts")) {
                if (f->has_ts)
                    return ob_dup(&c, "frame", k, kn);
                f->has_ts = 1;
                rc = ob_int(&c, "ts", &f->ts);
            } else if (OB_KEY(k, kn, "cts")) {
                if (f->has_cts)
                    return ob_dup(&c, "frame", k, kn);
                f->has_cts = 1;
                rc = ob_int(&c, "cts", &f->cts);
            } else if (OB_KEY(k, kn, "data")) {
                if (f->has_data)
                    return ob_dup(&c, "frame", k, kn);
                f->has_data = 1;
                rc = ob_data_parse(&c, px, qty, st);
            } else {
                rc = ob_skip_value(&c, "frame", 1);
            }
            if (rc)
                return rc;
            ob_ws(&c);
            if (c.p < c.end && *c.p == ',') {
                c.p++;
                continue;
            }
            if ((rc = ob_expect(&c, '}', "frame")))
                return rc;
            break;
        }
    }
    ob_ws(&c);
    if (c.p != c.end)
        return ob_fail(&c, OB_FRAME, "frame", "trailing text after the JSON object", c.p,
                       (size_t)(c.end - c.p));
    if (!f->type)
        return ob_fail(&c, OB_FRAME, "type", "missing", c.end, 0);
    if (!f->has_data)
        return ob_fail(&c, OB_FRAME, "data", "missing", c.end, 0);
    if (!f->has_b)
        return ob_fail(&c, OB_FRAME, "data.b", "missing", c.end, 0);
    if (!f->has_a)
        return ob_fail(&c, OB_FRAME, "data.a", "missing", c.end, 0);
    if (!f->has_u)
        return ob_fail(&c, OB_FRAME, "data.u", "missing", c.end, 0);
    return OB_OK;
}

/* The "topic" string of a frame without validating the rest (for routing). Returns 0 and
 * sets s and n when found at the top level; s may point into f's decode buffer, which the
 * caller frees with ob_frame_free. */
static int ob_frame_topic(const char *buf, size_t len, ob_frame *f, const char **s, size_t *n)
{
    ob_cursor c;
    const char *k;
    size_t kn;
    ob_frame_reset(f);
    c.buf = c.p = buf;
    c.end = buf + len;
    c.f = f;
    if (ob_expect(&c, '{', "frame"))
        return -1;
    for (;;) {
        if (ob_string(&c, "frame", &k, &kn, OB_STR_KEY) || ob_expect(&c, ':', "frame"))
            return -1;
        if (OB_KEY(k, kn, "topic"))
            return ob_string(&c, "topic", s, n, OB_STR_TEXT) ? -1 : 0;
        if (ob_skip_value(&c, "frame", 1))
            return -1;
        ob_ws(&c);
        if (c.p < c.end && *c.p == ',') {
            c.p++;
            continue;
        }
        return -1;
    }
}

#endif
