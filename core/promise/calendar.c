/* calendar.c - dates, cutoffs, location calendars and the evaluation of zone descriptions. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/promise.h"

const char *const allot_weekday_names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun", NULL};

/* ---- dates (the civil-calendar algorithms of H. Hinnant, proleptic Gregorian) --------------- */

int64_t allot_date_from_civil(int64_t year, int64_t month, int64_t day)
{
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t year_of_era = year - era * 400;
    int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

void allot_date_to_civil(int64_t date, int64_t *year, int64_t *month, int64_t *day)
{
    date += 719468;
    int64_t era = (date >= 0 ? date : date - 146096) / 146097;
    int64_t day_of_era = date - era * 146097;
    int64_t year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    int64_t mp = (5 * day_of_year + 2) / 153;
    *day = day_of_year - (153 * mp + 2) / 5 + 1;
    *month = mp < 10 ? mp + 3 : mp - 9;
    *year = year_of_era + era * 400 + (*month <= 2);
}

int allot_date_weekday(int64_t date)
{
    int64_t w = (date + 3) % 7; /* 1970-01-01 was a Thursday */
    return (int)(w < 0 ? w + 7 : w);
}

static bool digits_read(const char *p, uint32_t n, int64_t *out)
{
    int64_t v = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

bool allot_date_parse(allot_str_t text, int32_t *date)
{
    int64_t year, month, day;
    if (text.len != 10 || text.ptr[4] != '-' || text.ptr[7] != '-')
        return false;
    if (!digits_read(text.ptr, 4, &year) || !digits_read(text.ptr + 5, 2, &month) ||
        !digits_read(text.ptr + 8, 2, &day))
        return false;
    if (year < 1970 || month < 1 || month > 12 || day < 1)
        return false;
    int64_t days = allot_date_from_civil(year, month, day);
    int64_t y, m, d;
    allot_date_to_civil(days, &y, &m, &d);
    if (y != year || m != month || d != day) /* 2026-02-30 comes back as 2026-03-02 */
        return false;
    *date = (int32_t)days;
    return true;
}

void allot_date_format(int64_t date, char *out)
{
    int64_t y, m, d;
    allot_date_to_civil(date, &y, &m, &d);
    int64_t parts[3] = {y, m, d};
    uint32_t widths[3] = {4, 2, 2};
    char *p = out;
    for (int i = 0; i < 3; i++) {
        for (uint32_t k = widths[i]; k-- > 0;) {
            p[k] = (char)('0' + parts[i] % 10);
            parts[i] /= 10;
        }
        p += widths[i];
        *p++ = i < 2 ? '-' : '\0';
    }
}

bool allot_cutoff_parse(allot_str_t text, uint16_t *minute)
{
    int64_t h, m;
    if (text.len != 5 || text.ptr[2] != ':' || !digits_read(text.ptr, 2, &h) ||
        !digits_read(text.ptr + 3, 2, &m) || h > 23 || m > 59)
        return false;
    *minute = (uint16_t)(h * 60 + m);
    return true;
}

void allot_cutoff_format(uint16_t minute, char *out)
{
    out[0] = (char)('0' + minute / 600);
    out[1] = (char)('0' + minute / 60 % 10);
    out[2] = ':';
    out[3] = (char)('0' + minute % 60 / 10);
    out[4] = (char)('0' + minute % 10);
    out[5] = '\0';
}

/* ---- calendars ------------------------------------------------------------------------------- */

void allot_calendar_defaults(allot_calendar_t *calendar)
{
    memset(calendar, 0, sizeof(*calendar));
    calendar->cutoff_minute = ALLOT_CUTOFF_MINUTE_DEFAULT;
    calendar->work_days = ALLOT_WORK_DAYS_DEFAULT;
    calendar->timezone_len = sizeof(ALLOT_TIMEZONE_DEFAULT) - 1;
    memcpy(calendar->timezone, ALLOT_TIMEZONE_DEFAULT, sizeof(ALLOT_TIMEZONE_DEFAULT));
}

allot_str_t allot_calendar_timezone(const allot_calendar_t *calendar)
{
    return (allot_str_t){calendar->timezone, calendar->timezone_len};
}

bool allot_timezone_name_valid(allot_str_t name)
{
    if (name.len == 0 || name.len > ALLOT_TIMEZONE_BYTES_MAX || name.ptr[0] == '/' ||
        name.ptr[name.len - 1] == '/')
        return false;
    for (uint32_t i = 0; i < name.len; i++) {
        char c = name.ptr[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '/' || c == '_' || c == '+' || c == '-';
        if (!ok || (c == '/' && name.ptr[i + 1] == '/'))
            return false;
    }
    return true; /* no '.' at all, so no ".." either */
}

static int date_compare(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

uint32_t allot_holidays_fold(int32_t *dates, uint32_t count)
{
    if (count > 1)
        qsort(dates, count, sizeof(*dates), date_compare);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < count; i++)
        if (kept == 0 || dates[kept - 1] != dates[i])
            dates[kept++] = dates[i];
    return kept;
}

int allot_calendar_check(const allot_calendar_t *c, allot_error_detail_t *detail)
{
    if (!allot_timezone_name_valid(allot_calendar_timezone(c)) ||
        c->timezone[c->timezone_len] != '\0')
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "timezone",
                               "timezone must be an IANA zone name");
    if (c->cutoff_minute >= 24 * 60)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "cutoff",
                               "cutoff must be \"HH:MM\", 00:00..23:59");
    if (c->processing_days > ALLOT_PROCESSING_DAYS_MAX)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "processing_days",
                               "processing_days must be 0..%d", ALLOT_PROCESSING_DAYS_MAX);
    if (c->work_days == 0 || (c->work_days & ~ALLOT_WORK_DAYS_ALL) != 0)
        return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "work_days",
                               "work_days must name at least one of mon..sun");
    if (c->holiday_count > ALLOT_HOLIDAYS_MAX)
        return allot_error_set(detail, ALLOT_ETOO_LARGE, "holidays", "at most %d holidays",
                               ALLOT_HOLIDAYS_MAX);
    for (uint32_t i = 0; i < c->holiday_count; i++)
        if (c->holidays[i] < ALLOT_DATE_MIN || c->holidays[i] > ALLOT_DATE_MAX ||
            (i > 0 && c->holidays[i] <= c->holidays[i - 1]))
            return allot_error_set(detail, ALLOT_EINVALID_ARGUMENT, "holidays",
                                   "holidays must be distinct dates \"YYYY-MM-DD\"");
    return 0;
}

/* ---- zones ----------------------------------------------------------------------------------- */

void allot_zone_fixed(allot_zone_t *zone, int32_t offset_s)
{
    zone->from_ms = INT64_MIN / 4;
    zone->to_ms = INT64_MAX / 4;
    zone->offset_s = offset_s;
    zone->transition_count = 0;
}

bool allot_zone_offset_at(const allot_zone_t *zone, int64_t utc_ms, int32_t *offset_s)
{
    if (utc_ms < zone->from_ms || utc_ms >= zone->to_ms)
        return false;
    int32_t offset = zone->offset_s;
    for (uint32_t i = 0; i < zone->transition_count && zone->transitions[i].at_ms <= utc_ms; i++)
        offset = zone->transitions[i].offset_s;
    *offset_s = offset;
    return true;
}

/* Segment i of the zone: [start, end) with its offset (segment 0 before the first transition). */
static void zone_segment(const allot_zone_t *zone, uint32_t i, int64_t *start, int64_t *end,
                         int32_t *offset_s)
{
    *start = i == 0 ? zone->from_ms : zone->transitions[i - 1].at_ms;
    *end = i < zone->transition_count ? zone->transitions[i].at_ms : zone->to_ms;
    *offset_s = i == 0 ? zone->offset_s : zone->transitions[i - 1].offset_s;
}

bool allot_zone_utc_of_local(const allot_zone_t *zone, int64_t local_ms, int64_t *utc_ms)
{
    /* The earliest segment whose offset maps the wall time into the segment: a fold has two
     * (the earlier wins), a normal time one, a gap none. */
    for (uint32_t i = 0; i <= zone->transition_count; i++) {
        int64_t start, end;
        int32_t offset;
        zone_segment(zone, i, &start, &end, &offset);
        int64_t utc = local_ms - (int64_t)offset * 1000;
        if (utc >= start && utc < end) {
            *utc_ms = utc;
            return true;
        }
    }
    /* A gap: the wall time is read with the offset before the transition that skipped it, which
     * lands after the transition (shifted forward by the gap's length). */
    for (uint32_t i = 0; i < zone->transition_count; i++) {
        int64_t start, end;
        int32_t before;
        zone_segment(zone, i, &start, &end, &before);
        int64_t utc = local_ms - (int64_t)before * 1000;
        int32_t after = zone->transitions[i].offset_s;
        if (utc >= end && local_ms - (int64_t)after * 1000 < end &&
            utc < (i + 1 < zone->transition_count ? zone->transitions[i + 1].at_ms : zone->to_ms)) {
            *utc_ms = utc;
            return true;
        }
    }
    return false;
}
