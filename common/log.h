/*
 * log.h — log lines for people and log collectors: one line per call on stderr,
 *   ts=2026-11-23T08:56:01.123Z level=warn daemon=router event=transfer_rejected case=… reason=…
 * The first word of the format is the event name; the rest is key=value pairs
 * that the caller formats (quote values that may hold spaces). No personal data.
 *
 * log_warn appends the errno text; log_warnx does not (the OpenBSD convention).
 * fatal/fatalx log and exit(1): main() only.
 */
#ifndef CB_LOG_H
#define CB_LOG_H

#include <stdbool.h>

enum { CB_LOG_DEBUG = 0, CB_LOG_INFO = 1, CB_LOG_WARN = 2, CB_LOG_ERROR = 3 };

/* Sets the daemon name printed on every line and the lowest level printed.
 * Called once from main; before it, lines say daemon=casebus at level info. */
void log_init(const char *daemon, int min_level);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
