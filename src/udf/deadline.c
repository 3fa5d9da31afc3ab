/* deadline.c: the wall-clock deadline of a UDF block (issue 13 #3). Fuel bounds the work a call
** does, not the time it takes (a block of 10M-unit documents ran 5 s); so while a block runs,
** its instance is armed here with a deadline, and one watchdog thread per process interrupts
** (qw_instance_interrupt) every armed instance whose deadline has passed; the call then traps
** at its next back-edge or call, on either tier. Arming and disarming cost one uncontended lock
** per block, not per document, and no wake-up unless the deadline is before the watchdog's.
** Invariant: an entry is on the list exactly while its block runs; the watchdog touches an
** instance only under mu and only while it is armed, so it never interrupts an instance that
** has been checked in or freed; an interrupt that lands as the call returns is withdrawn at
** disarm. */
#include <pthread.h>
#include <time.h>

#include "internal.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv; /* on CLOCK_MONOTONIC (start), the clock of qb_now_ns and wake_ns */
static qu__deadline *armed; /* doubly linked, under mu */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int started;
/* under mu: when the watchdog's timed wait ends (qb_now_ns), 0 while it is not waiting (it
** scans the list before it waits again, so an entry armed then is seen); an entry due before
** it signals, any other is seen at that wake-up at the latest */
static uint64_t wake_ns;

static void *watchdog(void *arg) {
  (void)arg;
  pthread_mutex_lock(&mu);
  for (;;) {
    uint64_t now = qb_now_ns(), next = 0;
    for (qu__deadline *d = armed; d; d = d->next) {
      if (d->fired) continue;
      if (now >= d->at_ns) {
        qw_instance_interrupt(d->inst);
        d->fired = 1;
      } else if (!next || d->at_ns < next) {
        next = d->at_ns;
      }
    }
    /* sleep until the earliest deadline (or until an earlier one is armed), at most 100 ms;
    ** the wait is on the monotonic clock, so a step of the wall clock cannot stretch it past
    ** wake_ns (arm relies on that) */
    uint64_t wait = next ? next - now : 100000000u;
    if (wait > 100000000u) wait = 100000000u;
    wake_ns = now + wait;
    struct timespec ts = {(time_t)(wake_ns / 1000000000u), (long)(wake_ns % 1000000000u)};
    pthread_cond_timedwait(&cv, &mu, &ts);
    wake_ns = 0;
  }
  return NULL;
}

static void start(void) {
  pthread_t t;
  pthread_attr_t a;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  started = pthread_create(&t, &a, watchdog, NULL) == 0;
  pthread_attr_destroy(&a);
}

void qu__deadline_arm(qu__deadline *d, qw_instance *inst, uint64_t timeout_ms) {
  pthread_once(&once, start);
  d->inst = inst;
  d->at_ns = qb_now_ns() + timeout_ms * 1000000u;
  d->fired = 0;
  d->prev = NULL;
  pthread_mutex_lock(&mu);
  d->next = armed;
  if (armed) armed->prev = d;
  armed = d;
  /* wake the watchdog only when it would sleep past this deadline: it sleeps at most 100 ms
  ** and a block's deadline is usually further away, so most blocks make no wake-up (a futex
  ** call and a context switch per block, most of the UDF layer's cost around a native block) */
  if (wake_ns && d->at_ns < wake_ns) pthread_cond_signal(&cv);
  pthread_mutex_unlock(&mu);
}

int qu__deadline_disarm(qu__deadline *d) {
  pthread_mutex_lock(&mu);
  if (d->prev) d->prev->next = d->next;
  else armed = d->next;
  if (d->next) d->next->prev = d->prev;
  int fired = d->fired;
  pthread_mutex_unlock(&mu);
  if (fired) qw_instance_interrupt_clear(d->inst); /* taken by the call, or withdrawn here */
  return fired;
}

int qu__deadline_available(void) {
  pthread_once(&once, start);
  return started;
}
