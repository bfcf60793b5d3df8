/* Wi-Fi weather for lwipgw; see weather.h. No lwIP headers in this file. */
#define _GNU_SOURCE
#include "weather.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_WINDOWS 32

struct wframe {
    struct wframe *next;
    uint64_t release_us;
    unsigned len;
    uint8_t data[];
};

struct wdir {
    struct weather_params p;
    int on;                      /* any setting other than the defaults */
    uint64_t index;              /* frames seen since the last seed: the decisions' position */
    struct wframe *head, *tail;  /* release times never decrease from head to tail */
    uint64_t last_release_us;    /* release of the last frame queued: the next is not earlier */
    uint64_t link_free_us;       /* rate: when the serialiser has sent what it holds */
    unsigned queued, queued_max;
    unsigned long seen, dropped_loss, dropped_down, duplicated, reordered, delayed,
        dropped_queue, delivered;
};

static const char *const dir_names[WEATHER_DIRS] = { "to_client", "from_client" };
static struct wdir dirs[WEATHER_DIRS];
static weather_deliver_fn deliver_fn;
static uint64_t seed;
static uint64_t start_us;
static uint64_t down_until_us;   /* on demand (weather_down); 0: none */
static struct { uint64_t from_us, to_us; } windows[MAX_WINDOWS];
static unsigned n_windows;
static unsigned long generation;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* splitmix64: output n of the stream that starts at state s is mix(s + (n + 1) * GAMMA), so a
 * frame's draws are found from its index alone, whatever happened to the frames before. */
#define GAMMA 0x9e3779b97f4a7c15ULL
static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

enum { DRAW_LOSS, DRAW_DUP, DRAW_REORDER, DRAW_JITTER, DRAWS_PER_FRAME };

/* Uniform in [0, 1): draw k of frame i of direction dir. */
static double draw(int dir, uint64_t i, unsigned k)
{
    uint64_t stream = mix(seed + (uint64_t)(dir + 1) * GAMMA);   /* one stream per direction */
    uint64_t z = mix(stream + (i * DRAWS_PER_FRAME + k + 1) * GAMMA);
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

static int link_down(uint64_t now)
{
    unsigned i;
    if (down_until_us) {
        if (now < down_until_us)
            return 1;
        down_until_us = 0;
    }
    for (i = 0; i < n_windows; i++)
        if (now >= windows[i].from_us && now < windows[i].to_us)
            return 1;
    return 0;
}

/* When the link is up again, if it is down at now (else now). */
static uint64_t up_again(uint64_t now)
{
    uint64_t t = now;
    int moved = 1;
    while (moved) {           /* windows may overlap or touch each other */
        unsigned i;
        moved = 0;
        if (t < down_until_us) {
            t = down_until_us;
            moved = 1;
        }
        for (i = 0; i < n_windows; i++)
            if (t >= windows[i].from_us && t < windows[i].to_us) {
                t = windows[i].to_us;
                moved = 1;
            }
    }
    return t;
}

void weather_init(weather_deliver_fn deliver)
{
    int d;
    deliver_fn = deliver;
    start_us = now_us();
    for (d = 0; d < WEATHER_DIRS; d++)
        dirs[d].p.limit = WEATHER_LIMIT_DEFAULT;
}

static void set_err(char *err, size_t errlen, const char *what, const char *tok)
{
    if (err && errlen)
        snprintf(err, errlen, "%s: %.40s", what, tok);
}

/* A number with an optional unit suffix: k/M/G multiply (rate), "%", "ms", "bit", "bps" are
 * just units. -1 when it is not a number >= 0. */
static double number(const char *s, int allow_scale)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v >= 0) || v > 1e15)
        return -1;
    if (allow_scale && (*end == 'k' || *end == 'K'))
        v *= 1e3, end++;
    else if (allow_scale && (*end == 'm' || *end == 'M') && strncmp(end, "ms", 2) != 0)
        v *= 1e6, end++;
    else if (allow_scale && (*end == 'g' || *end == 'G'))
        v *= 1e9, end++;
    if (*end == 0 || !strcmp(end, "%") || !strcmp(end, "ms") || !strcmp(end, "bit") ||
        !strcmp(end, "bps") || !strcmp(end, "bit/s"))
        return v;
    return -1;
}

int weather_parse(const char *spec, struct weather_params *p, char *err, size_t errlen)
{
    char buf[256], *tok, *save = NULL;
    memset(p, 0, sizeof *p);
    p->limit = WEATHER_LIMIT_DEFAULT;
    if (!spec)
        return 0;
    if (strlen(spec) >= sizeof buf) {
        set_err(err, errlen, "spec too long", spec);
        return -1;
    }
    strcpy(buf, spec);
    for (tok = strtok_r(buf, ", \t\n", &save); tok; tok = strtok_r(NULL, ", \t\n", &save)) {
        char *eq = strchr(tok, '=');
        double v;
        if (!strcmp(tok, "off") || !strcmp(tok, "none"))
            continue;
        if (!eq) {
            set_err(err, errlen, "expected key=value", tok);
            return -1;
        }
        *eq = 0;
        v = number(eq + 1, !strcmp(tok, "rate"));
        if (v < 0) {
            set_err(err, errlen, "bad value for", tok);
            return -1;
        }
        if (!strcmp(tok, "loss") || !strcmp(tok, "dup") || !strcmp(tok, "duplicate") ||
            !strcmp(tok, "reorder")) {
            if (v > 100) {
                set_err(err, errlen, "a percentage is 0..100", tok);
                return -1;
            }
            if (!strcmp(tok, "loss"))
                p->loss = v;
            else if (!strcmp(tok, "reorder"))
                p->reorder = v;
            else
                p->dup = v;
        } else if (!strcmp(tok, "delay") || !strcmp(tok, "jitter")) {
            if (v > 600000) {
                set_err(err, errlen, "at most 600000 ms", tok);
                return -1;
            }
            if (!strcmp(tok, "delay"))
                p->delay_ms = (unsigned)v;
            else
                p->jitter_ms = (unsigned)v;
        } else if (!strcmp(tok, "rate")) {
            if (v != 0 && v < 1000) {
                set_err(err, errlen, "rate below 1000 bit/s", tok);
                return -1;
            }
            p->rate_bps = v;
        } else if (!strcmp(tok, "limit")) {
            if (v < 1 || v > 100000) {
                set_err(err, errlen, "limit is 1..100000 frames", tok);
                return -1;
            }
            p->limit = (unsigned)v;
        } else {
            set_err(err, errlen, "unknown key (loss, delay, jitter, reorder, dup, rate, limit)", tok);
            return -1;
        }
    }
    return 0;
}

void weather_set(int dir, const struct weather_params *p)
{
    struct wdir *d = &dirs[dir];
    d->p = *p;
    d->on = p->loss > 0 || p->dup > 0 || p->reorder > 0 || p->delay_ms || p->jitter_ms ||
            p->rate_bps > 0 || p->limit != WEATHER_LIMIT_DEFAULT;
    generation++;
}

void weather_seed(uint64_t s)
{
    int d;
    seed = s;
    for (d = 0; d < WEATHER_DIRS; d++)
        dirs[d].index = 0;
    generation++;
}

int weather_down_schedule(const char *spec, char *err, size_t errlen)
{
    const char *s = spec;
    while (*s) {
        char *end;
        unsigned long at, len;
        at = strtoul(s, &end, 10);
        if (end == s || *end != ':') {
            set_err(err, errlen, "expected AT_MS:LEN_MS", s);
            return -1;
        }
        s = end + 1;
        len = strtoul(s, &end, 10);
        if (end == s || (*end && *end != ',')) {
            set_err(err, errlen, "expected AT_MS:LEN_MS", s);
            return -1;
        }
        if (n_windows == MAX_WINDOWS) {
            set_err(err, errlen, "at most 32 down windows", spec);
            return -1;
        }
        windows[n_windows].from_us = start_us + (uint64_t)at * 1000u;
        windows[n_windows].to_us = windows[n_windows].from_us + (uint64_t)len * 1000u;
        n_windows++;
        s = *end ? end + 1 : end;
    }
    generation++;
    return 0;
}

void weather_down(unsigned ms)
{
    down_until_us = ms ? now_us() + (uint64_t)ms * 1000u : 0;
    generation++;
}

int weather_active(void)
{
    int d;
    if (n_windows || down_until_us)
        return 1;
    for (d = 0; d < WEATHER_DIRS; d++)
        if (dirs[d].on || dirs[d].head)
            return 1;
    return 0;
}

unsigned long weather_generation(void)
{
    return generation;
}

static void enqueue(struct wdir *d, const uint8_t *frame, unsigned len, uint64_t release)
{
    struct wframe *f = malloc(sizeof *f + len);
    if (!f) {
        d->dropped_queue++;
        return;
    }
    f->next = NULL;
    f->release_us = release;
    f->len = len;
    memcpy(f->data, frame, len);
    if (d->tail)
        d->tail->next = f;
    else
        d->head = f;
    d->tail = f;
    d->last_release_us = release;
    if (++d->queued > d->queued_max)
        d->queued_max = d->queued;
}

void weather_frame(int dir, const uint8_t *frame, unsigned len)
{
    struct wdir *d = &dirs[dir];
    const struct weather_params *p = &d->p;
    uint64_t now, i = d->index++, ready;
    int copies, c;

    d->seen++;
    if (!d->on && !d->head && !n_windows && !down_until_us) {
        d->delivered++;      /* no weather: as if this file did not exist */
        deliver_fn(dir, frame, len);
        return;
    }
    generation++;
    now = now_us();
    if (link_down(now)) {
        d->dropped_down++;
        return;
    }
    if (p->loss > 0 && draw(dir, i, DRAW_LOSS) * 100.0 < p->loss) {
        d->dropped_loss++;
        return;
    }
    copies = p->dup > 0 && draw(dir, i, DRAW_DUP) * 100.0 < p->dup ? 2 : 1;
    if (copies == 2)
        d->duplicated++;
    if (p->reorder > 0 && (p->delay_ms || p->jitter_ms) &&
        draw(dir, i, DRAW_REORDER) * 100.0 < p->reorder) {
        /* netem's reorder: sent now, ahead of whatever waits in the delayed queue */
        d->reordered++;
        for (c = 0; c < copies; c++) {
            d->delivered++;
            deliver_fn(dir, frame, len);
        }
        return;
    }
    ready = now;
    if (p->delay_ms || p->jitter_ms) {
        double delay = p->delay_ms * 1000.0;
        if (p->jitter_ms)
            delay += (draw(dir, i, DRAW_JITTER) * 2.0 - 1.0) * p->jitter_ms * 1000.0;
        if (delay > 0)
            ready += (uint64_t)delay;
    }
    if (ready < d->last_release_us)
        ready = d->last_release_us;  /* never overtake the frame queued ahead */
    for (c = 0; c < copies; c++) {
        uint64_t release = ready;
        if (!d->head && release <= now && p->rate_bps <= 0) {
            d->delivered++;
            deliver_fn(dir, frame, len);
            continue;
        }
        if (d->queued >= p->limit) {
            d->dropped_queue++;  /* the queue is full: tail drop */
            continue;
        }
        if (p->rate_bps > 0) {
            /* serialisation: one frame after the other at the link's rate */
            uint64_t start = release > d->link_free_us ? release : d->link_free_us;
            release = start + (uint64_t)(len * 8.0 * 1e6 / p->rate_bps) + 1;
            d->link_free_us = release;
        }
        if (release > now)
            d->delayed++;
        enqueue(d, frame, len, release);
    }
}

int weather_next_ms(void)
{
    uint64_t now = 0, next = 0;
    int d, any = 0;
    for (d = 0; d < WEATHER_DIRS; d++)
        if (dirs[d].head && (!any || dirs[d].head->release_us < next)) {
            next = dirs[d].head->release_us;
            any = 1;
        }
    if (!any)
        return -1;
    now = now_us();
    if (next <= now)
        return 0;
    return (int)((next - now + 999) / 1000);
}

void weather_flush(void)
{
    /* from the client first: lwIP's answers to those frames go out in the same pass */
    static const int order[WEATHER_DIRS] = { WEATHER_FROM_CLIENT, WEATHER_TO_CLIENT };
    int k;
    for (k = 0; k < WEATHER_DIRS; k++) {
        int dir = order[k];
        struct wdir *d = &dirs[dir];
        uint64_t now = now_us();
        while (d->head && d->head->release_us <= now) {
            struct wframe *f = d->head;
            d->head = f->next;
            if (!d->head)
                d->tail = NULL;
            d->queued--;
            generation++;
            if (link_down(now)) {
                d->dropped_down++;   /* on the air when the link went down */
            } else {
                d->delivered++;
                deliver_fn(dir, f->data, f->len);
            }
            free(f);
        }
    }
}

static void fmt_num(char *buf, size_t len, double v)
{
    if (v < 1e15 && v == (double)(long long)v)
        snprintf(buf, len, "%.0f", v);
    else
        snprintf(buf, len, "%g", v);
}

void weather_spec(int dir, char *buf, size_t len)
{
    const struct weather_params *p = &dirs[dir].p;
    char num[32];
    size_t n = 0;
    buf[0] = 0;
#define ADD(fmt, ...) do { if (n < len) n += (size_t)snprintf(buf + n, len - n, "%s" fmt, n ? "," : "", __VA_ARGS__); } while (0)
    if (p->loss > 0) { fmt_num(num, sizeof num, p->loss); ADD("loss=%s", num); }
    if (p->delay_ms) ADD("delay=%u", p->delay_ms);
    if (p->jitter_ms) ADD("jitter=%u", p->jitter_ms);
    if (p->reorder > 0) { fmt_num(num, sizeof num, p->reorder); ADD("reorder=%s", num); }
    if (p->dup > 0) { fmt_num(num, sizeof num, p->dup); ADD("dup=%s", num); }
    if (p->rate_bps > 0) { fmt_num(num, sizeof num, p->rate_bps); ADD("rate=%s", num); }
    if (p->limit != WEATHER_LIMIT_DEFAULT) ADD("limit=%u", p->limit);
#undef ADD
    if (!buf[0])
        snprintf(buf, len, "off");
}

void weather_json(FILE *f)
{
    uint64_t now = now_us();
    int down = link_down(now), d;
    unsigned i;
    fprintf(f, "\"weather\": {\"active\": %d, \"seed\": %llu, \"start_ms\": %llu, \"down\": %d, "
            "\"down_left_ms\": %llu, \"down_schedule\": [",
            weather_active(), (unsigned long long)seed, (unsigned long long)(start_us / 1000), down,
            (unsigned long long)(down ? (up_again(now) - now + 999) / 1000 : 0));
    for (i = 0; i < n_windows; i++)
        fprintf(f, "%s[%llu, %llu]", i ? ", " : "",
                (unsigned long long)((windows[i].from_us - start_us) / 1000),
                (unsigned long long)((windows[i].to_us - windows[i].from_us) / 1000));
    fprintf(f, "]");
    for (d = 0; d < WEATHER_DIRS; d++) {
        const struct wdir *w = &dirs[d];
        char spec[200], loss[32], reorder[32], dup[32], rate[32];
        weather_spec(d, spec, sizeof spec);
        fmt_num(loss, sizeof loss, w->p.loss);
        fmt_num(reorder, sizeof reorder, w->p.reorder);
        fmt_num(dup, sizeof dup, w->p.dup);
        fmt_num(rate, sizeof rate, w->p.rate_bps);
        fprintf(f, ", \"%s\": {\"spec\": \"%s\", \"loss\": %s, \"delay_ms\": %u, \"jitter_ms\": %u, "
                "\"reorder\": %s, \"dup\": %s, \"rate_bps\": %s, \"limit\": %u, "
                "\"index\": %llu, \"frames\": %lu, \"dropped_loss\": %lu, \"dropped_down\": %lu, "
                "\"duplicated\": %lu, \"reordered\": %lu, \"delayed\": %lu, \"dropped_queue\": %lu, "
                "\"delivered\": %lu, \"queued\": %u, \"queued_max\": %u}",
                dir_names[d], spec, loss, w->p.delay_ms, w->p.jitter_ms, reorder, dup, rate, w->p.limit,
                (unsigned long long)w->index, w->seen, w->dropped_loss, w->dropped_down, w->duplicated,
                w->reordered, w->delayed, w->dropped_queue, w->delivered, w->queued, w->queued_max);
    }
    fprintf(f, "}");
}
