/* promise.h - delivery promises: location calendars, time-zone descriptions, transit bands, and
 * the promise {order_by_ms, earliest_ms, latest_ms} of a location for a ready instant.
 *
 * Contract: pure and deterministic. Core never reads the tz database, the clock or TZ: the edge
 * (net/zone.h) resolves a zone name into an allot_zone_t (UTC offset transitions over a span of
 * years) and hands it in, directly or through an allot_zone_lookup_cb; "now" is an argument.
 * The rules (docs/promise.md):
 *   - a local day is a work day when its weekday is in work_days and it is not a holiday; a
 *     business day (transit) is Monday..Friday and not a holiday of the location;
 *   - first day F: the first work day on or after the ready instant's local date whose cutoff
 *     (local cutoff time) is after the ready instant; order_by_ms = the cutoff instant of F;
 *   - dispatch day S: processing_days work days after F (F itself when 0);
 *   - ship: the band for the great-circle distance (the first with distance <= max_km; without
 *     ship_to the last band), delivery days S + min_days and S + max_days business days (0: S);
 *     no bands, or no band covering the distance: no promise;
 *   - same_day: from stock on hand only, ship_to within same_day_radius_km, and S is the ready
 *     instant's local date (a work day before its cutoff, processing_days 0): delivery day S;
 *   - pickup: ready at the store on S;
 *   - earliest_ms = the first instant of the first delivery day (local midnight), latest_ms =
 *     one ms before the local midnight that ends the last delivery day.
 * Local times in a spring-forward gap are shifted forward by the gap (02:30 that does not exist
 * is 03:30 of the new offset); an ambiguous local time in the fall-back hour is its first, the
 * earlier, instant. A computation that leaves the zone description's span gives no promise.
 * Writers (allot_transit_set) validate first and change nothing on error (INVALID_ARGUMENT with
 * the field, TOO_LARGE, NOMEM); on success they emit one event record and apply it. libc only.
 */
#ifndef ALLOT_CORE_PROMISE_H
#define ALLOT_CORE_PROMISE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/common.h"
#include "core/errors.h"
#include "core/limits.h"

struct allot_state;
struct allot_avail_query;

/* ---- dates ----------------------------------------------------------------------------------- */
/* A date is a count of days since 1970-01-01 (a local date in the location's zone). */
#define ALLOT_DATE_MIN 0       /* 1970-01-01 */
#define ALLOT_DATE_MAX 2932896 /* 9999-12-31 */

/* "mon".."sun", NULL-terminated; bit i of a work-day mask is allot_weekday_names[i]. */
extern const char *const allot_weekday_names[];

/* Days since 1970-01-01 of a proleptic Gregorian date (no range check). */
int64_t allot_date_from_civil(int64_t year, int64_t month, int64_t day);
/* The date's year, month (1..12) and day (1..31). */
void allot_date_to_civil(int64_t date, int64_t *year, int64_t *month, int64_t *day);
/* 0 Monday .. 6 Sunday. */
int allot_date_weekday(int64_t date);
/* "YYYY-MM-DD" (a valid date in 1970..9999) -> days since 1970-01-01. */
bool allot_date_parse(allot_str_t text, int32_t *date);
/* out receives "YYYY-MM-DD" and a NUL (11 bytes). */
void allot_date_format(int64_t date, char *out);
/* "HH:MM" (00:00..23:59) -> minutes after midnight. */
bool allot_cutoff_parse(allot_str_t text, uint16_t *minute);
/* out receives "HH:MM" and a NUL (6 bytes). */
void allot_cutoff_format(uint16_t minute, char *out);

/* ---- calendars ---------------------------------------------------------------------------------
 */
#define ALLOT_WORK_DAYS_DEFAULT     0x1Fu /* Monday..Friday */
#define ALLOT_WORK_DAYS_ALL         0x7Fu
#define ALLOT_CUTOFF_MINUTE_DEFAULT (23 * 60 + 59)
#define ALLOT_TIMEZONE_DEFAULT      "UTC"

/* A location's calendar: where its days begin and end, and which of them work. */
typedef struct allot_calendar {
    uint16_t cutoff_minute;  /* 0..1439, local: orders before it are picked that day */
    uint8_t processing_days; /* 0..ALLOT_PROCESSING_DAYS_MAX */
    uint8_t work_days;       /* bit 0 Monday .. bit 6 Sunday; never 0 */
    uint8_t holiday_count;   /* 0..ALLOT_HOLIDAYS_MAX */
    uint8_t timezone_len;    /* 1..ALLOT_TIMEZONE_BYTES_MAX */
    char timezone[ALLOT_TIMEZONE_BYTES_MAX + 1]; /* an IANA name, NUL-terminated */
    int32_t holidays[ALLOT_HOLIDAYS_MAX];        /* local dates, ascending, distinct */
} allot_calendar_t;

/* UTC, cutoff 23:59, no processing days, Monday..Friday, no holidays. */
void allot_calendar_defaults(allot_calendar_t *calendar);
allot_str_t allot_calendar_timezone(const allot_calendar_t *calendar);
/* Is the zone name sane: 1..ALLOT_TIMEZONE_BYTES_MAX bytes of [A-Za-z0-9/_+-], no leading '/',
 * no "..", no empty path part? (Whether the zone exists is the edge's question, net/zone.h.) */
bool allot_timezone_name_valid(allot_str_t name);
/* Sort the dates and fold duplicates; returns how many remain. */
uint32_t allot_holidays_fold(int32_t *dates, uint32_t count);
/* Every field in range, holidays ascending and distinct (INVALID_ARGUMENT naming the field). */
int allot_calendar_check(const allot_calendar_t *calendar, allot_error_detail_t *detail);

/* ---- zones ----------------------------------------------------------------------------------- */
typedef struct allot_zone_transition {
    int64_t at_ms;    /* UTC instant from which offset_s applies */
    int32_t offset_s; /* local = UTC + offset_s */
} allot_zone_transition_t;

/* A time zone over [from_ms, to_ms): the offset at from_ms, then its transitions (ascending, each
 * within the span, each changing the offset). */
typedef struct allot_zone {
    int64_t from_ms;
    int64_t to_ms;
    int32_t offset_s;
    uint32_t transition_count;
    allot_zone_transition_t transitions[ALLOT_ZONE_TRANSITIONS_MAX];
} allot_zone_t;

/* A fixed offset over every representable time (UTC is offset 0). */
void allot_zone_fixed(allot_zone_t *zone, int32_t offset_s);
/* Offset at a UTC instant; false outside the span. */
bool allot_zone_offset_at(const allot_zone_t *zone, int64_t utc_ms, int32_t *offset_s);
/* The UTC instant of a local wall time (local_ms = the wall time read as if it were UTC), with
 * the gap and fold rules above; false outside the span. */
bool allot_zone_utc_of_local(const allot_zone_t *zone, int64_t local_ms, int64_t *utc_ms);

/* The zone description for a location's timezone covering the ready instant's year, one year
 * before and ALLOT_ZONE_YEARS_AHEAD after; NULL when it cannot be resolved. Valid until the next
 * call. */
typedef const allot_zone_t *(*allot_zone_lookup_cb)(void *ctx, allot_str_t timezone,
                                                    int64_t ready_ms);

/* ---- transit bands -----------------------------------------------------------------------------
 */
typedef struct allot_transit_band {
    double max_km;    /* (0, ALLOT_RADIUS_KM_MAX], strictly ascending within a method */
    int32_t min_days; /* business days, 0..max_days */
    int32_t max_days; /* business days, min_days..ALLOT_TRANSIT_DAYS_MAX */
} allot_transit_band_t;

/* The bands of one method (transit.set replaces them whole). */
typedef struct allot_transit {
    uint32_t band_count;
    allot_transit_band_t bands[ALLOT_TRANSIT_BANDS_MAX];
} allot_transit_t;

/* transit.set: only `ship` takes bands (same_day and pickup promise by their own rules:
 * INVALID_ARGUMENT, field "method"); 0..ALLOT_TRANSIT_BANDS_MAX bands (none: the method has no
 * bands, so it promises nothing). */
int allot_transit_set(struct allot_state *state, int method, const allot_transit_band_t *bands,
                      uint32_t band_count, allot_error_detail_t *detail);
/* The method's bands, or NULL when transit.set never named it. */
const allot_transit_t *allot_transit_get(const struct allot_state *state, int method);

/* ---- the promise ------------------------------------------------------------------------------
 */
typedef struct allot_promise {
    int64_t order_by_ms;
    int64_t earliest_ms;
    int64_t latest_ms;
} allot_promise_t;

typedef struct allot_promise_input {
    const allot_calendar_t *calendar;
    const allot_zone_t *zone;       /* the calendar's timezone */
    const allot_transit_t *transit; /* the method's bands (ship); NULL = none */
    int method;                     /* allot_method_t (core/inventory.h) */
    int64_t ready_ms;               /* stock on hand: now; incoming supply: its eta_ms */
    bool incoming;                  /* ready_ms is a supply's eta (same_day promises none) */
    bool has_ship_to;
    double distance_km;        /* location -> ship_to (meaningful with has_ship_to) */
    double same_day_radius_km; /* the location's (same_day) */
} allot_promise_input_t;

/* The promise of one location, or false when it gives none. */
bool allot_promise_compute(const allot_promise_input_t *input, allot_promise_t *out);

/* ---- the promise of a SKU (avail.get promise: true) ------------------------------------------ */
/* One open inbound supply as the promise sees it (the fields of core/supply.h's
 * allot_supply_incoming_t it reads). */
typedef struct allot_promise_incoming {
    int64_t eta_ms;
    int64_t qty;       /* what can still be promised, > 0 */
    uint32_t location; /* location index */
} allot_promise_incoming_t;

/* Locations (by index) whose on-hand promise one allot_promise_memo_t remembers. */
#define ALLOT_PROMISE_MEMO_LOCATIONS 256

/* The on-hand promise of each location under one request (it depends on the location, method,
 * ship_to and now, never on the SKU), worked out on first use. */
typedef struct allot_promise_memo {
    uint64_t known[ALLOT_PROMISE_MEMO_LOCATIONS / 64];
    uint64_t eligible[ALLOT_PROMISE_MEMO_LOCATIONS / 64];
    uint64_t promised[ALLOT_PROMISE_MEMO_LOCATIONS / 64];
    double distance_km[ALLOT_PROMISE_MEMO_LOCATIONS];
    allot_promise_t promises[ALLOT_PROMISE_MEMO_LOCATIONS];
} allot_promise_memo_t;

/* One request's promise context: the availability query, now, the memo and the zone source. */
typedef struct allot_promise_query {
    const struct allot_avail_query *avail;
    int64_t now_ms;
    allot_promise_memo_t *memo;
    void *zone_ctx;
    allot_zone_lookup_cb zone_cb;
} allot_promise_query_t;

void allot_promise_query_init(allot_promise_query_t *query, const struct allot_avail_query *avail,
                              int64_t now_ms, allot_promise_memo_t *memo, void *zone_ctx,
                              allot_zone_lookup_cb zone_cb);

/* What avail.get promise:true adds to an item. */
typedef struct allot_promise_item {
    bool low;          /* 0 < available <= the SKU's low_stock */
    bool has_delivery; /* else nothing can be promised */
    uint32_t location; /* the promising location (index) */
    allot_promise_t delivery;
    uint32_t incoming_count; /* entries of `incoming` at eligible locations, written in place */
} allot_promise_item_t;

/* The promise of a SKU (index, or ALLOT_SKU_NONE) whose availability under the query is
 * `available`: the earliest promise (earliest_ms, then latest_ms, then priority, then id) among
 * eligible locations (not at daily capacity) with at least one unit available, and only when
 * none has any, among those of the incoming supply (earliest eta first). `incoming` (the SKU's
 * open supply, earliest eta first) is filtered in place to the entries at eligible locations. */
void allot_promise_sku(const struct allot_state *state, allot_promise_query_t *query,
                       uint32_t sku_index, int64_t available, allot_promise_incoming_t *incoming,
                       uint32_t incoming_count, allot_promise_item_t *out);

#endif
