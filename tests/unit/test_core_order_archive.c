/* test_core_order_archive.c - an order archive that cannot be read is an error, never "not
 * found": order.create must not reuse the id of an order it could not look up. */
#include "test_core_fixture.h"

#include "core/order.h"

static int archive_calls;

/* An archive whose every read fails as a disk would (EIO). */
static int failing_get(void *ctx, allot_str_t id, const uint8_t **payload, size_t *len)
{
    (void)ctx, (void)id, (void)payload, (void)len;
    archive_calls++;
    return ALLOT_EIO;
}

static int failing_list(void *ctx, allot_str_t customer, int64_t before_ms, allot_str_t before_id,
                        uint32_t max, allot_order_archive_each_cb each_cb, void *each_ctx)
{
    (void)ctx, (void)customer, (void)before_ms, (void)before_id, (void)max, (void)each_cb;
    (void)each_ctx;
    return ALLOT_EIO;
}

/* An archive that holds nothing. */
static int empty_get(void *ctx, allot_str_t id, const uint8_t **payload, size_t *len)
{
    (void)ctx, (void)id, (void)payload, (void)len;
    archive_calls++;
    return ALLOT_ENOT_FOUND;
}

static allot_state_t *world(allot_order_archive_get_cb get_cb)
{
    allot_state_t *st = fx_state();
    fx_location(st, (fx_loc_t){.id = "W1", .lat = 52.0, .lon = 13.0, .priority = 1});
    fx_stock(st, "A", "W1", 5, 0);
    static allot_order_archive_t archive;
    archive = (allot_order_archive_t){get_cb, failing_list, NULL};
    allot_state_set_archive(st, &archive);
    archive_calls = 0;
    return st;
}

static allot_order_create_request_t create_request(const char *id)
{
    static const allot_line_input_t lines[] = {{{"A", 1}, 1}};
    allot_order_create_request_t r;
    memset(&r, 0, sizeof(r));
    r.id = S(id);
    r.customer = S("cust-1");
    r.reservation = r.location = r.address = r.instructions = (allot_str_t){"", 0};
    r.lines = lines;
    r.line_count = 1;
    return r;
}

Test(order_archive, create_fails_when_the_archive_read_fails_and_changes_nothing)
{
    allot_state_t *st = world(failing_get);
    char *before = fx_dump(st);
    size_t events_before = fx_log.count;
    allot_order_create_request_t req = create_request("o-archived-maybe");
    const allot_order_view_t *v = NULL;
    allot_error_detail_clear(&fx_err);
    int rc = allot_order_create(st, &req, FX_T0, &v, &fx_err);
    cr_expect_eq(rc, ALLOT_EIO, "the archive error is the answer (got %d: %s)", rc, fx_err.message);
    cr_expect_gt(archive_calls, 0, "the archive was asked");
    cr_expect(strstr(fx_err.message, "o-archived-maybe") != NULL, "%s", fx_err.message);
    char *after = fx_dump(st);
    cr_expect_str_eq(after, before, "nothing changed");
    cr_expect_eq(fx_log.count, events_before, "no event emitted");
    free(before);
    free(after);
    allot_state_destroy(st);
    fx_log_reset();
}

Test(order_archive, a_change_to_an_order_the_archive_cannot_read_is_that_error_not_not_found)
{
    allot_state_t *st = world(failing_get);
    const allot_order_view_t *v = NULL;
    allot_error_detail_clear(&fx_err);
    int rc = allot_order_cancel(st, S("o-gone"), (allot_str_t){"", 0}, FX_T0, &v, &fx_err);
    cr_expect_eq(rc, ALLOT_EIO, "got %d: %s", rc, fx_err.message);
    allot_state_destroy(st);
    fx_log_reset();
}

Test(order_archive, create_goes_ahead_when_the_archive_does_not_have_the_id)
{
    allot_state_t *st = world(empty_get);
    allot_order_create_request_t req = create_request("o-new");
    const allot_order_view_t *v = NULL;
    allot_error_detail_clear(&fx_err);
    cr_assert_eq(allot_order_create(st, &req, FX_T0, &v, &fx_err), 0, "%s", fx_err.message);
    cr_expect_gt(archive_calls, 0);
    cr_expect(allot_str_equal(v->id, S("o-new")));
    allot_state_destroy(st);
    fx_log_reset();
}
