/* test_core_echo.c - client bytes shown in error messages (allot_str_echo) and messages cut on
 * character boundaries (allot_utf8_prefix_bytes, allot_error_set). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/errors.h"
#include "tests/utf8_strict.h"

#define ECHO_RENDERING_BYTES_MAX (ALLOT_ECHO_BYTES_MAX + 3) /* with "..." */

static const char *echo_of(const char *bytes, size_t len, allot_echo_t *echo)
{
    return allot_str_echo((allot_str_t){bytes, (uint32_t)len}, echo);
}

/* Undo the escapes of a rendering (without its "..."): the bytes it stands for. Returns the
 * length written to out, or SIZE_MAX when the rendering holds a malformed escape. */
static size_t echo_unescape(const char *text, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] != '\\') {
            out[n++] = text[i];
        } else if (i + 1 < len && text[i + 1] == '\\') {
            out[n++] = '\\';
            i++;
        } else if (i + 3 < len && text[i + 1] == 'x') {
            char hex[3] = {text[i + 2], text[i + 3], '\0'};
            char *end;
            unsigned long byte = strtoul(hex, &end, 16);
            if (*end != '\0' || hex[0] == '\0')
                return SIZE_MAX;
            out[n++] = (char)byte;
            i += 3;
        } else {
            return SIZE_MAX;
        }
    }
    return n;
}

/* The properties every rendering has: valid UTF-8, bounded, no raw control byte, and it stands
 * for a prefix of the input (all of it unless marked "..."); a cut leaves no room for one more
 * piece (at most 4 bytes). */
static void echo_check(const char *input, size_t len, const char *context)
{
    allot_echo_t echo;
    const char *text = echo_of(input, len, &echo);
    cr_assert_eq(text, echo.text);
    size_t text_len = strlen(text);
    cr_assert(utf8_strict_valid(text, text_len), "%s: invalid UTF-8 '%s'", context, text);
    cr_assert_leq(text_len, ECHO_RENDERING_BYTES_MAX, "%s", context);
    for (size_t i = 0; i < text_len; i++)
        cr_assert((unsigned char)text[i] >= 0x20 && text[i] != 0x7F, "%s: raw control byte at %zu",
                  context, i);
    /* "..." is a cut unless the whole rendering stands for the whole input (text ending so) */
    char decoded[ECHO_RENDERING_BYTES_MAX];
    size_t whole_len = echo_unescape(text, text_len, decoded);
    bool cut = text_len >= 3 && strcmp(text + text_len - 3, "...") == 0 &&
               !(whole_len == len && memcmp(decoded, input, len) == 0);
    size_t shown_len = cut ? text_len - 3 : text_len;
    size_t decoded_len = echo_unescape(text, shown_len, decoded);
    cr_assert_neq(decoded_len, SIZE_MAX, "%s: malformed escape in '%s'", context, text);
    cr_assert_leq(decoded_len, len, "%s", context);
    cr_assert(memcmp(decoded, input, decoded_len) == 0, "%s: '%s' is not a prefix", context, text);
    if (cut) {
        cr_assert_lt(decoded_len, len, "%s", context);
        cr_assert_gt(shown_len, ALLOT_ECHO_BYTES_MAX - 4, "%s: cut too early: '%s'", context, text);
    } else {
        cr_assert_eq(decoded_len, len, "%s: '%s' lost bytes", context, text);
    }
}

Test(echo, printable_text_is_kept_and_a_backslash_is_doubled)
{
    allot_echo_t echo;
    cr_assert_str_eq(echo_of("cart-9", 6, &echo), "cart-9");
    cr_assert_str_eq(echo_of("", 0, &echo), "");
    cr_assert_str_eq(echo_of("a\\b", 3, &echo), "a\\\\b");
    cr_assert_str_eq(echo_of("a\\x41", 5, &echo), "a\\\\x41", "a literal \\x is not an escape");
    cr_assert_str_eq(echo_of("'quoted' \"text\"", 15, &echo), "'quoted' \"text\"");
}

Test(echo, valid_multibyte_characters_are_kept)
{
    static const char *const kept[] = {
        "\xc3\xa9",         /* U+00E9 */
        "\xc2\x80",         /* U+0080, the smallest two-byte character */
        "\xe2\x82\xac",     /* U+20AC */
        "\xef\xbf\xbf",     /* U+FFFF */
        "\xf0\x9f\x98\x80", /* U+1F600 */
        "\xf4\x8f\xbf\xbf", /* U+10FFFF, the largest */
        "gr\xc3\xbc\xc3\x9f"
        "e \xe6\x97\xa5", /* mixed */
    };
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        allot_echo_t echo;
        cr_assert_str_eq(echo_of(kept[i], strlen(kept[i]), &echo), kept[i], "case %zu", i);
    }
}

Test(echo, control_characters_and_invalid_bytes_become_hex_escapes)
{
    static const struct {
        const char *bytes;
        size_t len;
        const char *shown;
    } cases[] = {
        {"\xff\xfe", 2, "\\xff\\xfe"},
        {"a\0b", 3, "a\\x00b"},
        {"\t\n\r\x1f\x7f", 5, "\\x09\\x0a\\x0d\\x1f\\x7f"},
        {"\x80", 1, "\\x80"}, /* a stray continuation byte */
        {"\xbf\xbf", 2, "\\xbf\\xbf"},
        {"\xc3", 1, "\\xc3"},   /* cut short at the end */
        {"\xc3(", 2, "\\xc3("}, /* cut short by the next character */
        {"\xe2\x82", 2, "\\xe2\\x82"},
        {"\xf0\x9f\x98", 3, "\\xf0\\x9f\\x98"},
        {"\xc0\xaf", 2, "\\xc0\\xaf"}, /* overlong '/' in two bytes */
        {"\xc1\xbf", 2, "\\xc1\\xbf"},
        {"\xe0\x80\xaf", 3, "\\xe0\\x80\\xaf"}, /* overlong in three */
        {"\xe0\x9f\xbf", 3, "\\xe0\\x9f\\xbf"},
        {"\xf0\x80\x80\xaf", 4, "\\xf0\\x80\\x80\\xaf"}, /* overlong in four */
        {"\xf0\x8f\xbf\xbf", 4, "\\xf0\\x8f\\xbf\\xbf"},
        {"\xed\xa0\x80", 3, "\\xed\\xa0\\x80"}, /* a surrogate */
        {"\xed\xbf\xbf", 3, "\\xed\\xbf\\xbf"},
        {"\xf4\x90\x80\x80", 4, "\\xf4\\x90\\x80\\x80"}, /* above U+10FFFF */
        {"\xf5\x80\x80\x80", 4, "\\xf5\\x80\\x80\\x80"},
        {"\xf8\x88\x80\x80\x80", 5, "\\xf8\\x88\\x80\\x80\\x80"},
        {"ok\xff\xc3\xa9", 5, "ok\\xff\xc3\xa9"}, /* the character after a bad byte is kept */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        allot_echo_t echo;
        cr_assert_str_eq(echo_of(cases[i].bytes, cases[i].len, &echo), cases[i].shown, "case %zu",
                         i);
    }
}

Test(echo, long_text_is_cut_to_the_bound_and_marked)
{
    char input[200];
    memset(input, 'k', sizeof(input));
    allot_echo_t echo;
    cr_assert_eq(strlen(echo_of(input, ALLOT_ECHO_BYTES_MAX, &echo)), ALLOT_ECHO_BYTES_MAX);
    const char *text = echo_of(input, ALLOT_ECHO_BYTES_MAX + 1, &echo);
    cr_assert_eq(strlen(text), ALLOT_ECHO_BYTES_MAX + 3);
    cr_assert_str_eq(text + ALLOT_ECHO_BYTES_MAX, "...");
    text =
        echo_of("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 17, &echo);
    cr_assert_eq(strlen(text), 16 * 4 + 3, "sixteen escapes fit, the seventeenth does not");
}

/* Every length of input, so that the bound falls on every byte of every kind of piece, and the
 * input itself ends inside a character. */
Test(echo, every_cut_through_multibyte_characters_keeps_whole_characters)
{
    static const char *const pieces[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                         "\\",       "\x01",         "\xff"};
    char input[128];
    char context[64];
    for (size_t p = 0; p < sizeof(pieces) / sizeof(pieces[0]); p++) {
        size_t piece_len = strlen(pieces[p]);
        for (size_t ascii = 0; ascii <= 8; ascii++) {
            memset(input, 'a', ascii);
            for (size_t at = ascii; at + piece_len <= sizeof(input); at += piece_len)
                memcpy(input + at, pieces[p], piece_len);
            for (size_t len = 0; len <= sizeof(input) - piece_len; len++) {
                snprintf(context, sizeof(context), "piece %zu, %zu ASCII, length %zu", p, ascii,
                         len);
                echo_check(input, len, context);
            }
        }
    }
}

Test(echo, random_bytes_round_trip_through_the_escapes)
{
    static const char *const characters[] = {
        "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xed\xa0\x80", "\xc0\xaf", "\\", "'"};
    srand(21);
    char input[120];
    char context[32];
    for (int round = 0; round < 20000; round++) {
        size_t len = 0;
        size_t target = (size_t)(rand() % 100);
        while (len < target) {
            int kind = rand() % 8;
            if (kind < 3) {
                input[len++] = (char)(0x20 + rand() % 0x5F); /* printable ASCII */
            } else if (kind < 5) {
                input[len++] = (char)(rand() % 256); /* any byte */
            } else {
                const char *c = characters[rand() % (sizeof(characters) / sizeof(characters[0]))];
                size_t n = strlen(c);
                memcpy(input + len, c, n);
                len += n;
            }
        }
        snprintf(context, sizeof(context), "round %d", round);
        echo_check(input, len, context);
    }
}

Test(utf8_prefix, every_cut_of_valid_text_ends_on_a_character_boundary)
{
    static const char text[] = "a\xe2\x82\xac\xc3\xa9\xf0\x9f\x98\x80"
                               "b\xe2\x82\xac";
    static const size_t boundaries[] = {0, 1, 4, 6, 10, 11, 14};
    size_t b = 0;
    for (size_t len = 0; len <= sizeof(text) - 1; len++) {
        while (b + 1 < sizeof(boundaries) / sizeof(boundaries[0]) && boundaries[b + 1] <= len)
            b++;
        cr_assert_eq(allot_utf8_prefix_bytes(text, len), boundaries[b], "cut at %zu", len);
        cr_assert(utf8_strict_valid(text, allot_utf8_prefix_bytes(text, len)), "cut at %zu", len);
    }
}

Test(error_set, a_message_cut_by_its_buffer_keeps_whole_characters)
{
    char euros[3 * 120 + 1];
    for (size_t i = 0; i < 120; i++)
        memcpy(euros + 3 * i, "\xe2\x82\xac", 3);
    euros[sizeof(euros) - 1] = '\0';
    for (int pad = 0; pad < 4; pad++) {
        allot_error_detail_t detail;
        allot_error_detail_clear(&detail);
        cr_assert_eq(allot_error_set(&detail, ALLOT_ENOT_FOUND, "id", "%.*s%s", pad, "aaaa", euros),
                     ALLOT_ENOT_FOUND);
        size_t len = strlen(detail.message);
        cr_assert(utf8_strict_valid(detail.message, len), "pad %d", pad);
        cr_assert_geq(len, sizeof(detail.message) - 3, "pad %d: only the split character goes",
                      pad);
    }
}
