/* promise_wire.h - the delivery promise on the wire: a location's calendar arguments and fields,
 * and the items of avail.get with promise: true (net/handlers_promise.c).
 *
 * Contract: called by the inventory handlers (location.put/get/list, avail.get) on the loop
 * thread. promise_calendar_args reads location.put's calendar keys into a calendar that holds
 * the defaults: INVALID_ARGUMENT naming the field (a zone missing from the tz database, a cutoff
 * that is not "HH:MM", a date that does not exist, a day name that is not mon..sun), TOO_LARGE
 * (holidays); nothing is changed on error but the calendar. promise_avail_items packs avail.get's
 * "items" array with low, incoming and delivery added to each item (docs/protocol.md).
 */
#ifndef ALLOT_NET_PROMISE_WIRE_H
#define ALLOT_NET_PROMISE_WIRE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "command.h"
#include "core/inventory.h"
#include "core/promise.h"

/* Number of calendar fields promise_calendar_pack packs (add it to the location map's size). */
#define PROMISE_CALENDAR_FIELDS 5

int promise_calendar_args(const msgpack_object *params, allot_calendar_t *calendar,
                          allot_error_detail_t *error);
/* timezone, cutoff, processing_days, work_days, holidays as key/value pairs. */
void promise_calendar_pack(msgpack_packer *pk, const allot_calendar_t *calendar);

/* The items of skus[0..count) (indices from allot_sku_index_find_many) under the query; `list`:
 * each item has its "locations" (detail, or pickup). */
void promise_avail_items(command_call_t *call, const allot_avail_query_t *query,
                         const allot_str_t *skus, const uint32_t *sku_indices, uint32_t count,
                         bool list);

#endif
