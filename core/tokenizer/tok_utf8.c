/* tok_utf8.c - UTF-8 validation, decoding, sanitizing, and GPT-2's byte <-> unicode alphabet. */
#include <string.h>

#include "tok_internal.h"

size_t tok_utf8_valid_len(const unsigned char *s, size_t n) {
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c == 0xE0) {
        len = 3;
        lo = 0xA0;
    } else if (c >= 0xE1 && c <= 0xEC)
        len = 3;
    else if (c == 0xED) {
        len = 3;
        hi = 0x9F;
    } /* no surrogates */
    else if (c >= 0xEE && c <= 0xEF)
        len = 3;
    else if (c == 0xF0) {
        len = 4;
        lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3)
        len = 4;
    else if (c == 0xF4) {
        len = 4;
        hi = 0x8F;
    } else
        return 0;
    if (n < 2 || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (i >= n || (s[i] & 0xC0) != 0x80) return 0;
    return len;
}

/* Length of the maximal prefix of an ill-formed sequence at s that is a valid start of a
 * sequence (the Unicode "maximal subpart"), at least 1: one U+FFFD replaces it. */
size_t tok_utf8_subpart(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c == 0xE0) {
        len = 3;
        lo = 0xA0;
    } else if (c >= 0xE1 && c <= 0xEC)
        len = 3;
    else if (c == 0xED) {
        len = 3;
        hi = 0x9F;
    } else if (c >= 0xEE && c <= 0xEF)
        len = 3;
    else if (c == 0xF0) {
        len = 4;
        lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3)
        len = 4;
    else if (c == 0xF4) {
        len = 4;
        hi = 0x8F;
    } else
        return 1;
    size_t i = 1;
    if (i < n && s[i] >= lo && s[i] <= hi) {
        i++;
        while (i < len && i < n && (s[i] & 0xC0) == 0x80) i++;
    }
    return i;
}

size_t tok_utf8_decode(const char *s, size_t n, uint32_t *cp) {
    const unsigned char *u = (const unsigned char *)s;
    size_t len = tok_utf8_valid_len(u, n);
    if (len == 0) {
        *cp = 0xFFFD;
        return 1;
    }
    uint32_t c = u[0];
    if (len == 2)
        c = ((c & 0x1F) << 6) | (u[1] & 0x3F);
    else if (len == 3)
        c = ((c & 0x0F) << 12) | ((u[1] & 0x3F) << 6) | (u[2] & 0x3F);
    else if (len == 4)
        c = ((c & 0x07) << 18) | ((u[1] & 0x3F) << 12) | ((u[2] & 0x3F) << 6) | (u[3] & 0x3F);
    *cp = c;
    return len;
}

size_t tok_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

bool tok_utf8_sanitize(tok_buf *out, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    if (!tok_buf_reserve(out, n)) return false;
    while (i < n) {
        /* copy the longest valid run at once */
        size_t j = i;
        while (j < n) {
            if (u[j] < 0x80) {
                j++;
                continue;
            }
            size_t l = tok_utf8_valid_len(u + j, n - j);
            if (!l) break;
            j += l;
        }
        if (j > i && !tok_buf_append(out, s + i, j - i)) return false;
        if (j >= n) break;
        if (!tok_buf_append(out, "\xEF\xBF\xBD", 3)) return false;
        i = j + tok_utf8_subpart(u + j, n - j);
    }
    return true;
}

/* ---- GPT-2 bytes_to_unicode ----------------------------------------------------------------- */
/* Printable bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF map to the code point of the same value;
 * the other 68 bytes map, in increasing byte order, to U+0100, U+0101, ... */

static bool byte_is_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t tok_byte_to_cp(uint8_t b) {
    if (byte_is_printable(b)) return b;
    if (b <= 0x20) return 0x100u + b;                             /* 33 control bytes and space */
    if (b >= 0x7F && b <= 0xA0) return 0x100u + 33 + (b - 0x7Fu); /* DEL, C1, NBSP: 34 */
    return 0x100u + 67;                                           /* 0xAD soft hyphen */
}

int tok_cp_to_byte(uint32_t cp) {
    if (cp < 0x100) return byte_is_printable(cp) ? (int)cp : -1;
    if (cp >= 0x100 + 68) return -1;
    uint32_t k = cp - 0x100;
    if (k < 33) return (int)k;
    if (k < 67) return (int)(0x7F + (k - 33));
    return 0xAD;
}
