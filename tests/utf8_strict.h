/* utf8_strict.h - a strict UTF-8 validator for tests, written apart from core/base/common.c's.
 *
 * Contract: utf8_strict_valid decodes every sequence to its code point and accepts exactly the
 * well-formed UTF-8 of RFC 3629: no stray continuation bytes, no sequence cut short, no overlong
 * form, no surrogate (U+D800..U+DFFF), nothing above U+10FFFF. It shares no code with the server,
 * so a test that uses it checks the server's output against an independent reading. Header only.
 */
#ifndef ALLOT_TESTS_UTF8_STRICT_H
#define ALLOT_TESTS_UTF8_STRICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline bool utf8_strict_valid(const void *bytes, size_t len)
{
    const unsigned char *s = bytes;
    size_t i = 0;
    while (i < len) {
        unsigned lead = s[i];
        size_t n;
        uint32_t cp;
        uint32_t cp_min;
        if (lead < 0x80) {
            i++;
            continue;
        }
        if ((lead & 0xE0) == 0xC0) {
            n = 2, cp = lead & 0x1F, cp_min = 0x80;
        } else if ((lead & 0xF0) == 0xE0) {
            n = 3, cp = lead & 0x0F, cp_min = 0x800;
        } else if ((lead & 0xF8) == 0xF0) {
            n = 4, cp = lead & 0x07, cp_min = 0x10000;
        } else {
            return false;
        }
        if (n > len - i)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < cp_min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n;
    }
    return true;
}

#endif
