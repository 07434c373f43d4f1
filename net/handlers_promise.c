/* handlers_promise.c - RPC handlers for transit bands, location calendars on the wire, and the
 * items of avail.get with promise: true. */
#include "args.h"
#include "command.h"
#include "core/inventory.h"
#include "core/promise.h"
#include "core/state.h"
#include "core/supply.h"
#include "pack.h"
#include "promise_wire.h"
#include "zone.h"

static const char *const band_keys[] = {"max_km", "min_days", "max_days", NULL};

/* ---- location calendars ---------------------------------------------------------------------- */

static int calendar_timezone_arg(const msgpack_object *p, allot_calendar_t *c,
                                 allot_error_detail_t *e)
{
    allot_str_t name;
    bool present = false;
    int rc = args_str(p, "timezone", ALLOT_TIMEZONE_BYTES_MAX, &name, &present, e);
    if (rc != 0 || !present)
        return rc;
    if (!allot_timezone_name_valid(name))
        return allot_error_set(e, ALLOT_EINVALID_ARGUMENT, "timezone",
                               "timezone must be an IANA zone name ([A-Za-z0-9/_+-], no '..')");
    if (!zone_exists(name))
        return allot_error_set(e, ALLOT_EINVALID_ARGUMENT, "timezone",
                               "timezone %s is not in the tz database",
                               allot_str_echo(name, &(allot_echo_t){0}));
    memcpy(c->timezone, name.ptr, name.len);
    c->timezone[name.len] = '\0';
    c->timezone_len = (uint8_t)name.len;
    return 0;
}

static int calendar_work_days_arg(const msgpack_object *p, allot_calendar_t *c,
                                  allot_error_detail_t *e)
{
    const msgpack_object_array *days;
    bool present = false;
    int rc = args_array(p, "work_days", 1, 7, &days, &present, e);
    if (rc != 0 || !present)
        return rc;
    uint8_t mask = 0;
    for (uint32_t i = 0; i < days->size; i++) {
        const msgpack_object *o = &days->ptr[i];
        int day = -1;
        for (int k = 0; k < 7 && o->type == MSGPACK_OBJECT_STR; k++)
            if (allot_str_equal((allot_str_t){o->via.str.ptr, o->via.str.size},
                                allot_str_from_cstr(allot_weekday_names[k])))
                day = k;
        if (day < 0)
            return allot_error_set(e, ALLOT_EINVALID_ARGUMENT, "work_days",
                                   "work_days[%u] must be one of mon, tue, wed, thu, fri, sat, sun",
                                   i);
        mask |= (uint8_t)(1u << day);
    }
    c->work_days = mask;
    return 0;
}

static int calendar_holidays_arg(const msgpack_object *p, allot_calendar_t *c,
                                 allot_error_detail_t *e)
{
    const msgpack_object_array *dates;
    bool present = false;
    int rc = args_array(p, "holidays", 0, ALLOT_HOLIDAYS_MAX, &dates, &present, e);
    if (rc != 0 || !present)
        return rc;
    for (uint32_t i = 0; i < dates->size; i++) {
        const msgpack_object *o = &dates->ptr[i];
        if (o->type != MSGPACK_OBJECT_STR ||
            !allot_date_parse((allot_str_t){o->via.str.ptr, o->via.str.size}, &c->holidays[i]))
            return allot_error_set(e, ALLOT_EINVALID_ARGUMENT, "holidays",
                                   "holidays[%u] must be a date \"YYYY-MM-DD\" (1970..9999)", i);
    }
    c->holiday_count = (uint8_t)allot_holidays_fold(c->holidays, dates->size);
    return 0;
}

int promise_calendar_args(const msgpack_object *p, allot_calendar_t *c, allot_error_detail_t *e)
{
    int rc = calendar_timezone_arg(p, c, e);
    allot_str_t cutoff;
    bool has_cutoff = false;
    if (rc == 0)
        rc = args_str(p, "cutoff", 8, &cutoff, &has_cutoff, e);
    if (rc == 0 && has_cutoff && !allot_cutoff_parse(cutoff, &c->cutoff_minute))
        rc = allot_error_set(e, ALLOT_EINVALID_ARGUMENT, "cutoff",
                             "cutoff must be \"HH:MM\", 00:00..23:59 local time");
    int64_t processing_days = c->processing_days;
    if (rc == 0)
        rc = args_int64(p, "processing_days", 0, ALLOT_PROCESSING_DAYS_MAX, &processing_days,
                        &(bool){false}, e);
    c->processing_days = (uint8_t)processing_days;
    if (rc == 0)
        rc = calendar_work_days_arg(p, c, e);
    if (rc == 0)
        rc = calendar_holidays_arg(p, c, e);
    return rc;
}

void promise_calendar_pack(msgpack_packer *pk, const allot_calendar_t *c)
{
    char cutoff[6];
    allot_cutoff_format(c->cutoff_minute, cutoff);
    pack_key_str(pk, "timezone", allot_calendar_timezone(c));
    pack_key_cstr(pk, "cutoff", cutoff);
    pack_key_int(pk, "processing_days", c->processing_days);
    pack_cstr(pk, "work_days");
    msgpack_pack_array(pk, (size_t)__builtin_popcount(c->work_days));
    for (int k = 0; k < 7; k++)
        if (c->work_days >> k & 1)
            pack_cstr(pk, allot_weekday_names[k]);
    pack_cstr(pk, "holidays");
    msgpack_pack_array(pk, c->holiday_count);
    for (uint32_t i = 0; i < c->holiday_count; i++) {
        char date[11];
        allot_date_format(c->holidays[i], date);
        pack_cstr(pk, date);
    }
}

/* ---- transit.set / transit.get --------------------------------------------------------------- */

static void pack_transit(msgpack_packer *pk, int method, const allot_transit_t *t)
{
    msgpack_pack_map(pk, 2);
    pack_key_cstr(pk, "method", allot_method_names[method]);
    pack_cstr(pk, "bands");
    uint32_t n = t != NULL ? t->band_count : 0;
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        msgpack_pack_map(pk, 3);
        pack_key_double(pk, "max_km", t->bands[i].max_km);
        pack_key_int(pk, "min_days", t->bands[i].min_days);
        pack_key_int(pk, "max_days", t->bands[i].max_days);
    }
}

static int transit_band_arg(const msgpack_object *o, uint32_t i, allot_transit_band_t *band,
                            allot_error_detail_t *e)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return allot_error_set(e, ALLOT_EINVALID_ARGUMENT, "bands",
                               "bands[%u] must be a map {max_km, min_days, max_days}", i);
    int64_t min_days = 0, max_days = 0;
    int rc = args_check_keys(o, band_keys, "bands", e);
    if (rc == 0)
        rc = args_double(o, "max_km", 0.0, ALLOT_RADIUS_KM_MAX, &band->max_km, NULL, e);
    if (rc == 0)
        rc = args_int64(o, "min_days", 0, ALLOT_TRANSIT_DAYS_MAX, &min_days, NULL, e);
    if (rc == 0)
        rc = args_int64(o, "max_days", 0, ALLOT_TRANSIT_DAYS_MAX, &max_days, NULL, e);
    band->min_days = (int32_t)min_days;
    band->max_days = (int32_t)max_days;
    if (rc != 0)
        e->field = "bands";
    return rc;
}

int handle_transit_set(command_call_t *call)
{
    static allot_transit_band_t bands[ALLOT_TRANSIT_BANDS_MAX];
    const msgpack_object *p = call->params;
    allot_error_detail_t *e = call->error;
    const msgpack_object_array *items;
    int method = 0;
    int rc = args_enum(p, "method", allot_method_names, &method, NULL, e);
    if (rc == 0)
        rc = args_array(p, "bands", 0, ALLOT_TRANSIT_BANDS_MAX, &items, NULL, e);
    for (uint32_t i = 0; rc == 0 && i < items->size; i++)
        rc = transit_band_arg(&items->ptr[i], i, &bands[i], e);
    if (rc == 0)
        rc = allot_transit_set(call->state, method, bands, items->size, e);
    if (rc != 0)
        return rc;
    pack_transit(call->result, method, allot_transit_get(call->state, method));
    return 0;
}

int handle_transit_get(command_call_t *call)
{
    int method = 0;
    bool has_method = false;
    int rc =
        args_enum(call->params, "method", allot_method_names, &method, &has_method, call->error);
    if (rc != 0)
        return rc;
    if (has_method) {
        pack_transit(call->result, method, allot_transit_get(call->state, method));
        return 0;
    }
    uint32_t n = 0;
    for (int m = 0; m < ALLOT_METHOD_COUNT; m++)
        n += allot_transit_get(call->state, m) != NULL;
    msgpack_pack_map(call->result, 1);
    pack_cstr(call->result, "methods");
    msgpack_pack_array(call->result, n);
    for (int m = 0; m < ALLOT_METHOD_COUNT; m++)
        if (allot_transit_get(call->state, m) != NULL)
            pack_transit(call->result, m, allot_transit_get(call->state, m));
    return 0;
}

/* ---- avail.get promise: true ----------------------------------------------------------------- */

static void pack_promise_locations(msgpack_packer *pk, const allot_state_t *state,
                                   const allot_avail_query_t *query,
                                   const allot_avail_location_t *locations, uint32_t n)
{
    pack_cstr(pk, "locations");
    msgpack_pack_array(pk, n);
    for (uint32_t k = 0; k < n; k++) {
        msgpack_pack_map(pk, query->has_ship_to ? 3 : 2);
        pack_key_str(pk, "id", allot_location_id(allot_location_at(state, locations[k].location)));
        pack_key_int(pk, "available", locations[k].available);
        if (query->has_ship_to)
            pack_key_double(pk, "distance_km", locations[k].distance_km);
    }
}

static void pack_promise_item(msgpack_packer *pk, const allot_state_t *state,
                              const allot_promise_item_t *item,
                              const allot_promise_incoming_t *incoming)
{
    pack_key_bool(pk, "low", item->low);
    pack_cstr(pk, "incoming");
    msgpack_pack_array(pk, item->incoming_count);
    for (uint32_t k = 0; k < item->incoming_count; k++) {
        msgpack_pack_map(pk, 2);
        pack_key_int(pk, "eta_ms", incoming[k].eta_ms);
        pack_key_int(pk, "qty", incoming[k].qty);
    }
    if (!item->has_delivery)
        return;
    pack_cstr(pk, "delivery");
    msgpack_pack_map(pk, 4);
    pack_key_str(pk, "location", allot_location_id(allot_location_at(state, item->location)));
    pack_key_int(pk, "order_by_ms", item->delivery.order_by_ms);
    pack_key_int(pk, "earliest_ms", item->delivery.earliest_ms);
    pack_key_int(pk, "latest_ms", item->delivery.latest_ms);
}

/* The SKU's open supply (core/supply.h), earliest eta first, as the promise takes it. */
static uint32_t promise_incoming_collect(const allot_state_t *state, uint32_t sku,
                                         allot_promise_incoming_t *incoming)
{
    static allot_supply_incoming_t open[ALLOT_PROMISE_INCOMING_MAX];
    if (sku == ALLOT_SKU_NONE)
        return 0;
    uint32_t count = allot_supply_incoming(state, sku, open, ALLOT_PROMISE_INCOMING_MAX);
    for (uint32_t k = 0; k < count; k++) {
        incoming[k].eta_ms = open[k].eta_ms;
        incoming[k].qty = open[k].qty;
        incoming[k].location = open[k].location;
    }
    return count;
}

void promise_avail_items(command_call_t *call, const allot_avail_query_t *query,
                         const allot_str_t *skus, const uint32_t *sku_indices, uint32_t count,
                         bool list)
{
    static allot_avail_location_t locations[ALLOT_LOCATIONS_MAX];
    static allot_avail_memo_t avail_memo;
    static allot_promise_memo_t promise_memo;
    static zone_view_t zone_view;
    static allot_promise_incoming_t incoming[ALLOT_PROMISE_INCOMING_MAX];
    allot_avail_memo_init(&avail_memo);
    zone_view.name_len = 0;
    allot_promise_query_t pq;
    allot_promise_query_init(&pq, query, call->now_ms, &promise_memo, &zone_view, zone_lookup);
    msgpack_packer *pk = call->result;
    msgpack_pack_map(pk, 1);
    pack_cstr(pk, "items");
    msgpack_pack_array(pk, count);
    for (uint32_t i = 0; i < count; i++) {
        uint32_t n = 0;
        int64_t available = allot_avail_sku_at(call->state, query, &avail_memo, sku_indices[i],
                                               list ? locations : NULL, ALLOT_LOCATIONS_MAX, &n);
        uint32_t incoming_count = promise_incoming_collect(call->state, sku_indices[i], incoming);
        allot_promise_item_t item;
        allot_promise_sku(call->state, &pq, sku_indices[i], available, incoming, incoming_count,
                          &item);
        msgpack_pack_map(pk, 4 + (list ? 1 : 0) + (item.has_delivery ? 1 : 0));
        pack_key_str(pk, "sku", skus[i]);
        pack_key_int(pk, "available", available);
        if (list)
            pack_promise_locations(pk, call->state, query, locations, n);
        pack_promise_item(pk, call->state, &item, incoming);
    }
}
