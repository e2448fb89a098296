/*
 * main.c — casebus-deadline: options, wiring, the loop.
 *
 *   casebus-deadline --config FILE
 *
 * [deadline] keys: data_dir, map_size, bus_bind (its log), control_bind
 * (calendar imports, status), pull = intake ENDPOINT, pull = router ENDPOINT,
 * rules (the rules file), calendar_dir (years loaded on first start, when the
 * store has none of them yet), batch (obligations per firing transaction),
 * late_after_ms (a point fired later than this is marked late), log_level.
 */
#include "deadline.h"
#include "cbtime.h"
#include "log.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void stop_doors(cb_daemon_t *d, void *ctx)
{
    (void)d;
    deadline_t *dl = ctx;
    dl_control_stop(dl);
    dl_timer_close(dl);
}

/* Years of calendar_dir the store does not have yet: loaded and recorded, so
 * a fresh deployment starts with the shipped calendars and an operator's later
 * correction (casebus calendar import) is never overwritten by a restart. */
static int seed_calendars(deadline_t *dl, const char *dir, cb_error_t *err)
{
    DIR *dp = opendir(dir);
    if (dp == NULL) {
        log_warnx("calendar_dir_missing dir=%s", dir);
        return 0;
    }
    MDB_txn *txn;
    int rc = cb_store_begin(dl->d.store, true, &txn, err);
    int loaded = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(dp)) != NULL) {
        int year;
        char tail[8];
        if (sscanf(de->d_name, "%4d.%7s", &year, tail) != 2 || strcmp(tail, "cal") != 0 ||
            dl_calendar_stored(dl, txn, year))
            continue;
        char path[4096], text[16384];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            rc = cb_error_set(err, CB_ERR_NOT_FOUND, "calendar_dir", "cannot open %s", path);
            break;
        }
        size_t len = fread(text, 1, sizeof(text), f);
        fclose(f);
        uint64_t recomputed;
        if ((rc = dl_calendar_import(dl, txn, text, len, path, &year, &recomputed, err)) == 0)
            loaded++;
    }
    closedir(dp);
    if (rc == 0 && loaded > 0)
        rc = cb_store_commit(&txn, err);
    cb_store_abort(&txn);
    return rc;
}

int main(int argc, char **argv)
{
    /* Static: the daemon's state lives until exit. */
    static deadline_t dl;
    cb_daemon_main(&dl.d, "deadline", argc, argv);
    cb_error_t err;
    dl.now = cb_now_ms;
    const cb_config_t *cfg = dl.d.cfg;
    uint64_t batch, late_after, compress_after;
    const cb_config_u64_spec_t nums[] = {
        {"batch", 256, 1, 65536, &batch},
        {"late_after_ms", 1000, 0, 86400000, &late_after},
        {"compress_log_after", 1000, 0, UINT32_MAX, &compress_after},
    };
    const char *rules = cb_config_get(cfg, "deadline", "rules", "deploy/deadlines.conf");
    if (cb_config_get_u64s(cfg, "deadline", nums, sizeof(nums) / sizeof(nums[0]), &err) != 0 ||
        dl_rules_load(&dl.rules, rules, &err) != 0)
        fatalx("config_failed error=\"%s\"", err.message);
    /* Its events are large and alike (an obligation each): a dictionary
     * trained on the first of them keeps the log small. */
    cb_log_compress(dl.d.log, compress_after);
    dl.batch = (unsigned)batch;
    dl.late_after_ms = (int64_t)late_after;
    dl.cal = cb_cal_new();
    if (dl.cal == NULL || dl_state_open(&dl, &err) != 0 || dl_state_load(&dl, &err) != 0 ||
        seed_calendars(&dl, cb_config_get(cfg, "deadline", "calendar_dir", "deploy/calendar"),
                       &err) != 0)
        fatalx("store_failed error=\"%s\"", dl.cal ? err.message : "out of memory");
    if (cb_daemon_pull(&dl.d, dl_apply, &dl, &err) != 0)
        fatalx("bus_failed error=\"%s\"", err.message);
    const char *control = cb_config_get(cfg, "deadline", "control_bind", "ipc://var/deadline.ctl");
    if (dl_control_start(&dl, control, &err) != 0 || dl_timer_init(&dl, &err) != 0)
        fatalx("control_failed error=\"%s\"", err.message);
    dl.d.on_stop = stop_doors;
    dl.d.hook_ctx = &dl;
    dl_metrics_init(&dl);
    log_info("rules=%s control=%s batch=%u", rules, control, dl.batch);
    int rc = cb_daemon_run(&dl.d);
    if (dl.orgs)
        casebus__v1__orgs_imported__free_unpacked(dl.orgs, NULL);
    cb_cal_destroy(&dl.cal);
    cb_daemon_close(&dl.d);
    return rc;
}
