/* zone.c - the system tz database through libc: offset transitions per (zone, year), cached. */
#include "zone.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Samples per day while looking for transitions: real zones change at most a few times a year,
 * never twice within this step. */
#define ZONE_STEP_S         (6 * 3600)
#define ZONE_PATH_BYTES_MAX 4096
#define ZONE_MS_PER_DAY     86400000LL

/* One zone's offsets in one year (UTC): the offset at its first instant, then its transitions. */
typedef struct zone_year {
    int64_t year;
    bool used;
    bool ok; /* false: the zone could not be described (too many transitions) */
    int32_t offset_s;
    uint32_t transition_count;
    allot_zone_transition_t transitions[ALLOT_ZONE_YEAR_TRANSITIONS_MAX];
    uint32_t name_len;
    char name[ALLOT_TIMEZONE_BYTES_MAX + 1];
} zone_year_t;

static zone_year_t zone_cache[ALLOT_ZONE_CACHE_ENTRIES];
static uint64_t zone_built;

uint64_t zone_tables_built(void)
{
    return zone_built;
}

void zone_cache_clear(void)
{
    memset(zone_cache, 0, sizeof(zone_cache));
}

static bool zone_is_utc(allot_str_t name)
{
    return allot_str_equal(name, ALLOT_STR_LITERAL(ALLOT_TIMEZONE_DEFAULT));
}

bool zone_exists(allot_str_t name)
{
    if (!allot_timezone_name_valid(name))
        return false;
    if (zone_is_utc(name))
        return true;
    const char *dir = getenv("TZDIR");
    char path[ZONE_PATH_BYTES_MAX];
    int n = snprintf(path, sizeof path, "%s/%.*s",
                     dir != NULL && dir[0] != '\0' ? dir : "/usr/share/zoneinfo", (int)name.len,
                     name.ptr);
    if (n < 0 || (size_t)n >= sizeof path)
        return false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char magic[4];
    ssize_t got = read(fd, magic, sizeof magic); /* a directory fails here (EISDIR) */
    close(fd);
    return got == (ssize_t)sizeof magic && memcmp(magic, "TZif", 4) == 0;
}

static int32_t zone_offset_local(time_t t)
{
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL)
        return 0;
    return (int32_t)tm.tm_gmtoff;
}

/* First instant in (lo, hi] whose offset differs from lo's (hi's differs). */
static time_t zone_transition_find(time_t lo, time_t hi)
{
    int32_t before = zone_offset_local(lo);
    while (hi - lo > 1) {
        time_t mid = lo + (hi - lo) / 2;
        if (zone_offset_local(mid) == before)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

/* Fill y's offsets by stepping through its year under the current TZ. */
static void zone_year_scan(zone_year_t *y)
{
    time_t start = (time_t)(allot_date_from_civil(y->year, 1, 1) * 86400);
    time_t last = (time_t)(allot_date_from_civil(y->year + 1, 1, 1) * 86400) - 1;
    int32_t offset = zone_offset_local(start);
    y->offset_s = offset;
    y->transition_count = 0;
    y->ok = true;
    for (time_t t = start; t < last;) {
        time_t next = t + ZONE_STEP_S < last ? t + ZONE_STEP_S : last;
        if (zone_offset_local(next) == offset) {
            t = next;
            continue;
        }
        time_t at = zone_transition_find(t, next);
        if (y->transition_count == ALLOT_ZONE_YEAR_TRANSITIONS_MAX) {
            y->ok = false;
            return;
        }
        offset = zone_offset_local(at);
        y->transitions[y->transition_count++] =
            (allot_zone_transition_t){(int64_t)at * 1000, offset};
        t = at;
    }
}

/* Build y for its zone: TZ is set to the zone for the scan and put back after it. */
static void zone_year_build(zone_year_t *y)
{
    const char *previous = getenv("TZ");
    char *saved = previous != NULL ? strdup(previous) : NULL;
    char tz[ALLOT_TIMEZONE_BYTES_MAX + 2];
    snprintf(tz, sizeof tz, ":%s", y->name);
    if (setenv("TZ", tz, 1) != 0 || (previous != NULL && saved == NULL)) {
        y->ok = false;
    } else {
        tzset();
        zone_year_scan(y);
    }
    if (saved != NULL)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    free(saved);
}

static uint32_t zone_slot(allot_str_t name, int64_t year)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (uint32_t i = 0; i < name.len; i++)
        h = (h ^ (uint8_t)name.ptr[i]) * 16777619u;
    h = (h ^ (uint32_t)year) * 16777619u;
    return h % ALLOT_ZONE_CACHE_ENTRIES;
}

static bool zone_year_is(const zone_year_t *y, allot_str_t name, int64_t year)
{
    return y->year == year && y->name_len == name.len && memcmp(y->name, name.ptr, name.len) == 0;
}

/* The cached table of (name, year), built if missing: open addressing with linear probing, so
 * tables in use never push each other out; a full cache is emptied first. */
static const zone_year_t *zone_year_get(allot_str_t name, int64_t year)
{
    uint32_t home = zone_slot(name, year);
    zone_year_t *y = NULL;
    for (uint32_t i = 0; i < ALLOT_ZONE_CACHE_ENTRIES; i++) {
        zone_year_t *probe = &zone_cache[(home + i) % ALLOT_ZONE_CACHE_ENTRIES];
        if (!probe->used) {
            y = probe;
            break;
        }
        if (zone_year_is(probe, name, year))
            return probe;
    }
    if (y == NULL) {
        zone_cache_clear();
        y = &zone_cache[home];
    }
    y->used = true;
    y->year = year;
    y->name_len = name.len;
    memcpy(y->name, name.ptr, name.len);
    y->name[name.len] = '\0';
    y->ok = false;
    if (zone_exists(name)) {
        zone_year_build(y);
        zone_built++;
    }
    return y;
}

/* Assemble years first..last into z; false when a year could not be described. */
static bool zone_view_fill(allot_zone_t *z, allot_str_t name, int64_t first, int64_t last)
{
    z->from_ms = allot_date_from_civil(first, 1, 1) * ZONE_MS_PER_DAY;
    z->to_ms = allot_date_from_civil(last + 1, 1, 1) * ZONE_MS_PER_DAY;
    z->transition_count = 0;
    for (int64_t year = first; year <= last; year++) {
        const zone_year_t *y = zone_year_get(name, year);
        if (!y->ok)
            return false;
        int32_t current = z->transition_count > 0 ? z->transitions[z->transition_count - 1].offset_s
                                                  : z->offset_s;
        if (year == first) {
            z->offset_s = y->offset_s;
        } else if (y->offset_s != current) { /* a change on the stroke of the new year (UTC) */
            z->transitions[z->transition_count++] = (allot_zone_transition_t){
                allot_date_from_civil(year, 1, 1) * ZONE_MS_PER_DAY, y->offset_s};
        }
        if (z->transition_count + y->transition_count + 1 > ALLOT_ZONE_TRANSITIONS_MAX)
            return false;
        memcpy(&z->transitions[z->transition_count], y->transitions,
               y->transition_count * sizeof(*y->transitions));
        z->transition_count += y->transition_count;
    }
    return true;
}

const allot_zone_t *zone_lookup(void *ctx, allot_str_t name, int64_t ready_ms)
{
    zone_view_t *view = ctx;
    if (zone_is_utc(name)) {
        allot_zone_fixed(&view->zone, 0);
        view->name_len = 0;
        return &view->zone;
    }
    if (name.len == 0 || name.len > ALLOT_TIMEZONE_BYTES_MAX)
        return NULL;
    int64_t day = ready_ms / ZONE_MS_PER_DAY - (ready_ms % ZONE_MS_PER_DAY < 0);
    int64_t year, month, mday;
    allot_date_to_civil(day, &year, &month, &mday);
    if (view->name_len == name.len && view->year == year &&
        memcmp(view->name, name.ptr, name.len) == 0)
        return &view->zone;
    view->name_len = 0;
    if (!zone_view_fill(&view->zone, name, year - 1, year + ALLOT_ZONE_YEARS_AHEAD))
        return NULL;
    view->year = year;
    view->name_len = name.len;
    memcpy(view->name, name.ptr, name.len);
    view->name[name.len] = '\0';
    return &view->zone;
}
