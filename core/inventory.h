/* inventory.h - locations, SKUs, positions, stock counts and availability.
 *
 * Contract: the state owns every location (an array indexed by a u32 index, at most
 * ALLOT_LOCATIONS_MAX, never deleted: deactivate with active=false), every SKU (interned once,
 * never deleted) and every position (one SKU at one location, kept per SKU in a small array
 * sorted by location index). Writers (allot_location_put, allot_stock_set, allot_stock_adjust)
 * validate every argument first and change nothing on error (negative ALLOT_E* with `detail`
 * filled: field for INVALID_ARGUMENT/TOO_LARGE/NOT_FOUND, shortfalls for INSUFFICIENT_STOCK);
 * on success they emit one event record (core/event.h) and apply it. Readers never allocate and
 * never change state; they fill caller-provided arrays. Pointers returned to state-owned records
 * are valid until the next write to the state.
 *   available = max(0, on_hand - reserved - allocated - safety_stock)
 * Errors: INVALID_ARGUMENT, NOT_FOUND (unknown location/SKU), INSUFFICIENT_STOCK (stock.adjust
 * below zero), CONFLICT (stock.adjust key reused for a different change), TOO_LARGE (location
 * table full), NOMEM. Called by net/ handlers and core/ modules; libc only.
 */
#ifndef ALLOT_CORE_INVENTORY_H
#define ALLOT_CORE_INVENTORY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/common.h"
#include "core/errors.h"
#include "core/promise.h"

struct allot_state;

#define ALLOT_LOCATION_NONE      UINT32_MAX
#define ALLOT_AS_OF_NONE         INT64_MIN
/* An allocation of a backorder hold: its units are held against open supply, not at a location
 * (core/reservation.h). */
#define ALLOT_LOCATION_SUPPLY (UINT32_MAX - 1)
/* Priority, daily capacity and radius bounds: core/limits.h. */
#define ALLOT_MS_PER_DAY 86400000LL

typedef enum allot_location_type {
    ALLOT_LOCATION_WAREHOUSE = 0,
    ALLOT_LOCATION_STORE = 1,
    ALLOT_LOCATION_DC = 2,
    ALLOT_LOCATION_PARTNER = 3,
    ALLOT_LOCATION_TYPE_COUNT
} allot_location_type_t;

typedef enum allot_method {
    ALLOT_METHOD_SHIP = 0,
    ALLOT_METHOD_SAME_DAY = 1,
    ALLOT_METHOD_PICKUP = 2,
    ALLOT_METHOD_COUNT
} allot_method_t;

/* NULL-terminated wire names, indexed by the enums above (usable with args_enum). */
extern const char *const allot_location_type_names[];
extern const char *const allot_method_names[];

typedef struct allot_location {
    int64_t priority;
    double lat;
    double lon;
    double same_day_radius_km; /* 0 = no same-day */
    int64_t daily_capacity;    /* max shipments per UTC day, 0 = unlimited */
    int64_t capacity_day;      /* UTC day (ms / 86400000) that capacity_count counts */
    int64_t capacity_count;    /* shipments assigned on capacity_day */
    uint32_t hash;
    uint32_t id_len;
    uint8_t type; /* allot_location_type_t */
    bool ship;
    bool pickup;
    bool active;
    uint8_t dirty; /* checkpoint marks (core/state_private.h) */
    char id[ALLOT_ID_BYTES_MAX + 1];
    allot_calendar_t calendar; /* the delivery promise's days (core/promise.h) */
} allot_location_t;

typedef struct allot_location_input {
    allot_str_t id;
    allot_location_type_t type;
    double lat;
    double lon;
    int64_t priority;
    bool ship;
    bool pickup;
    bool active;
    double same_day_radius_km;
    int64_t daily_capacity;
    allot_calendar_t calendar; /* timezone, cutoff, processing_days, work_days, holidays */
} allot_location_input_t;

/* One SKU at one location: 48 bytes. */
typedef struct allot_position {
    int64_t on_hand;
    int64_t reserved;
    int64_t allocated;
    int64_t safety_stock;
    int64_t as_of_ms; /* last applied stock.set as_of_ms, ALLOT_AS_OF_NONE if never given */
    uint32_t location;
    uint32_t unused;
} allot_position_t;

/* "No such SKU" from the lookups below. */
#define ALLOT_SKU_NONE UINT32_MAX

/* Longest SKU id kept inside its record; longer ones live in the state's string arena. */
#define ALLOT_SKU_ID_INLINE_MAX 17

/* One SKU: 32 bytes, two per cache line (the array is 64-byte aligned), so that a lookup by id
 * costs a miss on the hash slot and one on this record (id compared in place), then one on the
 * positions. Read the id with allot_sku_id(). */
typedef struct allot_sku {
    allot_position_t *positions; /* sorted by location index */
    uint16_t position_count;
    uint16_t position_capacity;
    uint8_t id_len;
    uint8_t dirty;
    /* id_len <= ALLOT_SKU_ID_INLINE_MAX: the id and a NUL; longer: a `const char *` to the
     * arena copy (NUL-terminated), stored unaligned (read it with memcpy). */
    char id_storage[ALLOT_SKU_ID_INLINE_MAX + 1];
} allot_sku_t;

/* A position as replies show it. */
typedef struct allot_position_view {
    allot_str_t sku;
    allot_str_t location;
    int64_t on_hand;
    int64_t reserved;
    int64_t allocated;
    int64_t safety_stock;
    int64_t available;
} allot_position_view_t;

typedef struct allot_stock_result {
    allot_position_view_t position;
    bool stale;    /* stock.set: as_of_ms older than the last applied one; nothing changed */
    bool repeated; /* stock.adjust: key seen before; the first result, unchanged */
} allot_stock_result_t;

typedef struct allot_stock_set_input {
    allot_str_t sku;
    allot_str_t location;
    int64_t on_hand; /* 0..ALLOT_QUANTITY_MAX */
    bool has_safety_stock;
    int64_t safety_stock; /* 0..ALLOT_QUANTITY_MAX; absent keeps the current value (0 if new) */
    bool has_as_of_ms;
    int64_t as_of_ms;
} allot_stock_set_input_t;

typedef struct allot_stock_adjust_input {
    allot_str_t sku;
    allot_str_t location;
    int64_t delta;   /* != 0, |delta| <= ALLOT_QUANTITY_MAX */
    allot_str_t key; /* len 0 = no idempotency key */
} allot_stock_adjust_input_t;

typedef struct allot_stock_summary {
    allot_str_t sku;
    int64_t on_hand;
    int64_t reserved;
    int64_t allocated;
    int64_t available;
    uint32_t position_count;
} allot_stock_summary_t;

typedef struct allot_avail_request {
    allot_method_t method;
    bool has_ship_to;
    double lat;
    double lon;
    double radius_km;     /* pickup search radius; <= 0 means the default (50 km) */
    allot_str_t location; /* len 0 = any */
} allot_avail_request_t;

/* A validated availability query (resolved location index). */
typedef struct allot_avail_query {
    allot_method_t method;
    bool has_ship_to;
    double lat;
    double lon;
    double radius_km;
    uint32_t location; /* ALLOT_LOCATION_NONE = any */
} allot_avail_query_t;

typedef struct allot_avail_location {
    uint32_t location;
    int64_t available;
    double distance_km; /* meaningful only when the query has ship_to */
} allot_avail_location_t;

/* ---- locations --------------------------------------------------------------------------- */
/* Defaults of location.put (docs/protocol.md): priority 100, ship true, pickup false, active
 * true, same_day_radius_km 0, daily_capacity 0, the default calendar (allot_calendar_defaults).
 * The calendar's zone must have been found in the tz database by the caller (net/zone.h); core
 * checks its name and every other field (allot_calendar_check). */
void allot_location_input_defaults(allot_location_input_t *input);
/* Upsert: the input is the whole record (absent optional fields take their defaults); the
 * daily capacity counter of an existing location is kept. */
int allot_location_put(struct allot_state *state, const allot_location_input_t *input,
                       const allot_location_t **out, allot_error_detail_t *detail);
const allot_location_t *allot_location_find(const struct allot_state *state, allot_str_t id);
uint32_t allot_location_index_find(const struct allot_state *state, allot_str_t id);
uint32_t allot_location_count(const struct allot_state *state);
const allot_location_t *allot_location_at(const struct allot_state *state, uint32_t index);
allot_str_t allot_location_id(const allot_location_t *location);
/* Fill indices[] with every location index sorted by id; returns how many (<= indices_max). */
uint32_t allot_location_list_sorted(const struct allot_state *state, uint32_t *indices,
                                    uint32_t indices_max);
/* True when the location has reached daily_capacity on the UTC day of now_ms. */
bool allot_location_at_capacity(const allot_location_t *location, int64_t now_ms);
/* Floor of ms / 86400000. */
int64_t allot_day_from_ms(int64_t ms);

/* ---- stock ------------------------------------------------------------------------------- */
int64_t allot_position_available(const allot_position_t *position);
int allot_stock_set(struct allot_state *state, const allot_stock_set_input_t *input,
                    allot_stock_result_t *out, allot_error_detail_t *detail);
/* now_ms stamps the idempotency key (kept at least idempotency_age_ms). */
int allot_stock_adjust(struct allot_state *state, const allot_stock_adjust_input_t *input,
                       int64_t now_ms, allot_stock_result_t *out, allot_error_detail_t *detail);
/* Totals and positions (sorted by location id) of one SKU; NOT_FOUND when it has none. At most
 * positions_max positions are written; summary->position_count says how many exist. */
int allot_stock_get(const struct allot_state *state, allot_str_t sku,
                    allot_stock_summary_t *summary, allot_position_view_t *positions,
                    uint32_t positions_max, allot_error_detail_t *detail);

/* ---- SKUs -------------------------------------------------------------------------------- */
uint32_t allot_sku_index_find(const struct allot_state *state, allot_str_t sku);
const allot_sku_t *allot_sku_at(const struct allot_state *state, uint32_t index);
/* The SKU's id; ptr is NUL-terminated. Valid until the next write to the state (the record
 * array moves when it grows). */
allot_str_t allot_sku_id(const allot_sku_t *sku);
/* The position of sku at location, or NULL. */
const allot_position_t *allot_sku_position_find(const allot_sku_t *sku, uint32_t location);

/* ---- availability ------------------------------------------------------------------------ */
/* Validate and resolve a query: same_day needs ship_to; pickup needs ship_to or location;
 * unknown location -> NOT_FOUND (field "location"). */
int allot_avail_prepare(const struct allot_state *state, const allot_avail_request_t *request,
                        allot_avail_query_t *query, allot_error_detail_t *detail);
/* Is this location eligible for the query? *distance_km is set (0 without ship_to). */
bool allot_avail_location_eligible(const allot_avail_query_t *query,
                                   const allot_location_t *location, double *distance_km);
/* Available quantity of one SKU under the query (0 for unknown SKUs): the sum over eligible
 * locations, or for pickup the most any single eligible store has. When `locations` is not NULL
 * it receives up to locations_max eligible positions (nearest first when ship_to is known, else
 * by priority then id); *location_count is the number written. Costs O(positions of the SKU). */
/* Look up many SKUs at once (avail.get of a listing page): out[i] is the index of ids[i] or
 * ALLOT_SKU_NONE. Same result as allot_sku_index_find per id, but the hash slots, SKU records,
 * ids and positions of a group are prefetched together, so their cache misses overlap instead
 * of queueing one after another. No allocation. */
void allot_sku_index_find_many(const struct allot_state *state, const allot_str_t *ids,
                               uint32_t count, uint32_t *out);

/* Start loading the positions of a SKU looked up earlier (ALLOT_SKU_NONE: nothing), a few SKUs
 * ahead of allot_avail_sku_at for it: a SKU's positions span several cache lines, and waiting
 * for them is most of what a listing page costs once the catalogue outgrows the cache. */
void allot_sku_prefetch_positions(const struct allot_state *state, uint32_t sku_index);

/* Loading ahead for a lookup that comes later (net/peek.h: the next requests of a read batch),
 * in stages that each need the line the previous one loaded, so that a caller running each stage
 * over several SKUs before the next overlaps their misses: allot_sku_prefetch_slot hashes the id
 * and starts loading its index slot (returns the hash); allot_sku_prefetch_record takes the
 * slot's first candidate, starts loading its record and returns its index (ALLOT_SKU_NONE: none;
 * not confirmed: a collision loads a record for nothing); then allot_sku_prefetch_positions.
 * Loads only: nothing is changed or decided, and any id is safe. */
uint32_t allot_sku_prefetch_slot(const struct allot_state *state, allot_str_t sku);
uint32_t allot_sku_prefetch_record(const struct allot_state *state, uint32_t hash);
/* Does loading ahead pay: do the tables lookups go through (SKU index, records and positions,
 * hold index and holds) together pass ALLOT_PREFETCH_TABLE_BYTES_MIN? Below it they stay in the
 * caches, where looking for ids to load ahead costs more than it saves. */
bool allot_prefetch_pays(const struct allot_state *state);

/* Locations (by index) whose eligibility an allot_avail_memo_t remembers. */
#define ALLOT_AVAIL_MEMO_LOCATIONS 256

/* Eligibility and distance of each location under one query, worked out on first use: a listing
 * page asks about the same few locations for every SKU, and with ship_to each answer costs a
 * great-circle distance. Valid for one query and no state change in between; set up with
 * allot_avail_memo_init. */
typedef struct allot_avail_memo {
    uint64_t known[ALLOT_AVAIL_MEMO_LOCATIONS / 64];
    uint64_t eligible[ALLOT_AVAIL_MEMO_LOCATIONS / 64];
    double distance_km[ALLOT_AVAIL_MEMO_LOCATIONS];
} allot_avail_memo_t;

void allot_avail_memo_init(allot_avail_memo_t *memo);

/* allot_avail_sku for a SKU already looked up (sku_index may be ALLOT_SKU_NONE: 0); memo may be
 * NULL. */
int64_t allot_avail_sku_at(const struct allot_state *state, const allot_avail_query_t *query,
                           allot_avail_memo_t *memo, uint32_t sku_index,
                           allot_avail_location_t *locations, uint32_t locations_max,
                           uint32_t *location_count);

int64_t allot_avail_sku(const struct allot_state *state, const allot_avail_query_t *query,
                        allot_str_t sku, allot_avail_location_t *locations, uint32_t locations_max,
                        uint32_t *location_count);

#endif
