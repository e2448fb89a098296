/*
 * log.c — formats log lines (see log.h). The daemon name and level are set once
 * in main; everything else is per call. Writes with one write(2) per line so
 * that lines of concurrent processes sharing stderr do not interleave.
 */
#include "log.h"
#include "cbtime.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *log_daemon = "casebus";
static int log_min_level = CB_LOG_INFO;

void log_init(const char *daemon, int min_level)
{
    log_daemon = daemon;
    log_min_level = min_level;
}

static void log_vline(int level, const char *errtext, const char *fmt, va_list ap)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (level < log_min_level)
        return;
    char line[2048];
    char ts[40];
    cb_time_format_utc(cb_now_ms(), ts, sizeof(ts));
    int n = snprintf(line, sizeof(line), "ts=%s level=%s daemon=%s event=", ts, names[level],
                     log_daemon);
    if (n < 0)
        return;
    size_t used = (size_t)n;
    int m = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
    if (m > 0)
        used += (size_t)m < sizeof(line) - used ? (size_t)m : sizeof(line) - used - 1;
    if (errtext != NULL && used < sizeof(line) - 1) {
        m = snprintf(line + used, sizeof(line) - used, " error=\"%s\"", errtext);
        if (m > 0)
            used += (size_t)m < sizeof(line) - used ? (size_t)m : sizeof(line) - used - 1;
    }
    if (used >= sizeof(line) - 1)
        used = sizeof(line) - 2;
    line[used++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, used);
    (void)w;
}

#define LOG_BODY(level, errtext)                                                               \
    do {                                                                                       \
        va_list ap;                                                                            \
        va_start(ap, fmt);                                                                     \
        log_vline(level, errtext, fmt, ap);                                                    \
        va_end(ap);                                                                            \
    } while (0)

void log_debug(const char *fmt, ...) { LOG_BODY(CB_LOG_DEBUG, NULL); }
void log_info(const char *fmt, ...) { LOG_BODY(CB_LOG_INFO, NULL); }
void log_warnx(const char *fmt, ...) { LOG_BODY(CB_LOG_WARN, NULL); }
void log_error(const char *fmt, ...) { LOG_BODY(CB_LOG_ERROR, NULL); }

void log_warn(const char *fmt, ...)
{
    const char *e = strerror(errno);
    LOG_BODY(CB_LOG_WARN, e);
}

void fatal(const char *fmt, ...)
{
    const char *e = strerror(errno);
    LOG_BODY(CB_LOG_ERROR, e);
    exit(1);
}

void fatalx(const char *fmt, ...)
{
    LOG_BODY(CB_LOG_ERROR, NULL);
    exit(1);
}
