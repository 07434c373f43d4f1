/* zone.h - time zones from the system tz database, resolved at the edge for core/promise.h.
 *
 * Contract: loop thread only (it switches TZ while it reads a zone). zone_exists says whether a
 * name is sane (allot_timezone_name_valid) and names a zone of the tz database: a TZif file
 * under $TZDIR, else /usr/share/zoneinfo ("UTC" always exists, without the database).
 * zone_lookup is core's allot_zone_lookup_cb: the description of a zone (its UTC offset and
 * offset transitions) over the ready instant's year, one year before and ALLOT_ZONE_YEARS_AHEAD
 * after, assembled from per-(zone, year) tables. A table is built once by stepping localtime_r
 * through the year with TZ set to the zone (then TZ is put back) and kept in a cache of
 * ALLOT_ZONE_CACHE_ENTRIES tables (emptied when full). Nothing else in allotd reads local time: log
 * timestamps are gmtime_r and strftime without %Z/%z, so switching TZ changes no other output.
 * A zone whose year has more than ALLOT_ZONE_YEAR_TRANSITIONS_MAX transitions, or that
 * disappeared from the database, resolves to NULL (that location then promises nothing).
 */
#ifndef ALLOT_NET_ZONE_H
#define ALLOT_NET_ZONE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/common.h"
#include "core/promise.h"

/* The one description zone_lookup fills (per caller: a request, a test), and the last zone and
 * year it was filled for (asked again, it is returned as it is). */
typedef struct zone_view {
    allot_zone_t zone;
    int64_t year;
    uint32_t name_len; /* 0: empty */
    char name[ALLOT_TIMEZONE_BYTES_MAX + 1];
} zone_view_t;

bool zone_exists(allot_str_t name);
/* allot_zone_lookup_cb with ctx a zone_view_t (its name_len set to 0 before the first call). */
const allot_zone_t *zone_lookup(void *ctx, allot_str_t name, int64_t ready_ms);
/* Drop every cached table (tests; after the tz database changed). */
void zone_cache_clear(void);
/* (zone, year) tables read from the tz database since the process began. */
uint64_t zone_tables_built(void);

#endif
