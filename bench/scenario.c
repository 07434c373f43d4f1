/* scenario.c - what each scenario's sessions do, step by step (target-independent). */
#include <string.h>

#include "bench.h"

bench_op_t scenario_primary_op(bench_scenario_t scenario)
{
    switch (scenario) {
    case SCENARIO_BROWSE:
    case SCENARIO_MIXED:
        return OP_AVAIL;
    case SCENARIO_LOAD:
        return OP_STOCK_SET;
    case SCENARIO_PING:
        return OP_PING;
    default:
        return OP_RESERVE;
    }
}

bool scenario_sessions_single(bench_scenario_t scenario)
{
    return scenario != SCENARIO_CHECKOUT && scenario != SCENARIO_MIXED;
}

static bench_scenario_t mixed_pick(worker_t *w)
{
    const bench_config_t *config = w->run->config;
    uint32_t total = 0;
    for (int k = 0; k < SCENARIO_COUNT; k++)
        total += config->mix_weights[k];
    uint32_t r = (uint32_t)(bench_rng_next(&w->rng) % (total ? total : 1));
    for (int k = 0; k < SCENARIO_COUNT; k++) {
        if (r < config->mix_weights[k])
            return (bench_scenario_t)k;
        r -= config->mix_weights[k];
    }
    return SCENARIO_BROWSE;
}

void scenario_session_start(worker_t *w, session_t *s)
{
    const bench_config_t *config = w->run->config;
    bench_scenario_t kind = config->scenario;
    if (kind == SCENARIO_MIXED)
        kind = mixed_pick(w);
    s->kind = (uint8_t)kind;
    s->cart = w->carts++;
    s->lines = 1;
    switch (kind) {
    case SCENARIO_BROWSE:
        s->op = OP_AVAIL;
        break;
    case SCENARIO_CHECKOUT: {
        uint32_t span = config->lines_max - config->lines_min + 1;
        s->lines = (uint8_t)(config->lines_min + bench_rng_next(&w->rng) % span);
        double u = (double)(bench_rng_next(&w->rng) >> 11) / 9007199254740992.0;
        s->abandon = u < config->release_ratio;
        s->op = OP_RESERVE;
        break;
    }
    case SCENARIO_LOAD:
        s->op = OP_STOCK_SET;
        break;
    case SCENARIO_PING:
        s->op = OP_PING;
        break;
    default: /* reserve, flashsale */
        s->op = OP_RESERVE;
        break;
    }
}

bool scenario_session_next(worker_t *w, session_t *s, bool is_error, const char *code)
{
    bench_run_t *run = w->run;
    if (s->kind != SCENARIO_CHECKOUT)
        return false;
    bool unknown = is_error && strcmp(code, "UNKNOWN_METHOD") == 0;
    switch (s->op) {
    case OP_RESERVE:
        if (is_error)
            return false;
        s->op = s->abandon || run->config->no_orders ||
                        atomic_load_explicit(&run->orders_unsupported, memory_order_relaxed)
                    ? OP_RELEASE
                    : OP_ORDER_CREATE;
        return true;
    case OP_ORDER_CREATE:
        if (unknown)
            atomic_store(&run->orders_unsupported, true);
        s->op = is_error ? OP_RELEASE : OP_ORDER_PAY; /* a failed order gives its hold back */
        return true;
    case OP_ORDER_PAY:
        if (is_error)
            return false;
        s->op = OP_ORDER_RELEASE;
        return true;
    default:
        return false;
    }
}
