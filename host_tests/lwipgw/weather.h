/*
 * Wi-Fi weather for lwipgw: frame-level impairment of the TAP link, per direction.
 *
 * Why: the kernels here have no netem, and what a weak Wi-Fi does to the board's TCP (lost
 * segments, lwIP's retransmission timer, a link that drops for seconds) is exactly what the
 * never-stall promise has to survive. So the gateway impairs its own link: every frame lwIP
 * sends (to the client, tap_linkoutput) and every frame read from the TAP (from the client,
 * tap_input) passes weather_frame(), which drops, duplicates, delays or passes it on.
 *
 * Per direction (struct weather_params, a spec string "loss=3,delay=20,jitter=10"):
 *   loss=P      percent of frames dropped
 *   delay=MS    added one-way delay; jitter=MS: uniform +-jitter around it (never below 0).
 *               Frames keep their order within a direction (a frame is never released
 *               before the one queued ahead of it)
 *   reorder=P   percent of frames sent at once, ahead of the delayed queue (netem's reorder;
 *               needs delay or jitter to reorder anything)
 *   dup=P       percent of frames sent twice
 *   rate=BPS    link rate in bits/s (suffix k, M, G; "bit"/"bps" ignored): each frame takes
 *               len*8/rate to serialise, one after the other
 *   limit=N     frames the direction's queue holds at most (netem's limit, default 1000); a
 *               frame that finds it full is dropped and counted (dropped_queue)
 * Link down (both directions, every frame dropped, also frames queued before, at their release):
 * scheduled (weather_down_schedule, "AT_MS:LEN_MS,..." from weather_init) or now for a while
 * (weather_down).
 *
 * Replay: decisions for the i-th frame of a direction (counted from weather_init or the last
 * weather_seed) are a pure function of (seed, direction, i): splitmix64 of those, four draws
 * per frame (loss, dup, reorder, jitter) whatever is enabled. Same seed and same frames ->
 * same decisions.
 *
 * Without any setting the weather is off: weather_frame() hands every frame on at once, no
 * queue, weather_next_ms() is -1, nothing is drawn.
 *
 * No lwIP headers here: frames are bytes, delivery is a callback.
 */
#ifndef LWIPGW_WEATHER_H
#define LWIPGW_WEATHER_H

#include <stdint.h>
#include <stdio.h>

enum { WEATHER_TO_CLIENT = 0, WEATHER_FROM_CLIENT = 1, WEATHER_DIRS = 2 };

#define WEATHER_LIMIT_DEFAULT 1000

struct weather_params {
    double loss, dup, reorder;   /* percent, 0..100 */
    unsigned delay_ms, jitter_ms;
    double rate_bps;             /* 0: no rate limit */
    unsigned limit;              /* frames queued at most */
};

/* Hands a frame on: to the TAP (WEATHER_TO_CLIENT) or to lwIP (WEATHER_FROM_CLIENT). */
typedef void (*weather_deliver_fn)(int dir, const uint8_t *frame, unsigned len);

/* Start of the clock the down schedule counts from; the delivery callback. */
void weather_init(weather_deliver_fn deliver);

/* Parse a spec ("loss=3,delay=20,jitter=10"; "off" or "" for none) into *p. 0 on success,
 * else -1 with a one-line reason in err. */
int weather_parse(const char *spec, struct weather_params *p, char *err, size_t errlen);

/* Settings of one direction from now on (frames already queued keep their release times). */
void weather_set(int dir, const struct weather_params *p);

/* Seed of the decisions; restarts both directions' frame count at 0. */
void weather_seed(uint64_t seed);

/* Link-down windows "AT_MS:LEN_MS[,AT_MS:LEN_MS...]" from weather_init. 0, or -1 (bad spec). */
int weather_down_schedule(const char *spec, char *err, size_t errlen);

/* Link down from now for ms (0: up again now; a scheduled window still applies). */
void weather_down(unsigned ms);

/* One frame entering direction dir: dropped, handed on now (through the callback), or queued. */
void weather_frame(int dir, const uint8_t *frame, unsigned len);

/* ms until the next queued frame is due (0: due now), or -1 when nothing is queued. */
int weather_next_ms(void);

/* Hand on every queued frame that is due (dropped instead if the link is down then). */
void weather_flush(void);

/* 1 when any setting, a down window or a queued frame is in force (the counters then move). */
int weather_active(void);

/* Changes whenever a counter moved while the weather was active (for the stats file's throttle). */
unsigned long weather_generation(void);

/* The settings in force and the counters: `"weather": {...}` (no trailing comma). */
void weather_json(FILE *f);

/* A spec string of the settings of dir (as weather_parse takes it). */
void weather_spec(int dir, char *buf, size_t len);

#endif
