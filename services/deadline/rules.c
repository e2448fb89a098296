/*
 * rules.c — the rules file (deploy/deadlines.conf): one INI section per rule of
 * DOMAIN.md's tables, so a county tunes lengths, warning points and escalation
 * without a rebuild. What triggers and stops a rule, and who is responsible,
 * is code (handlers.c): it follows the events, not the county's taste.
 *
 *   [transfer]
 *   title = …                      what the obligation is, for people
 *   source = seed 002 §五(三)3     the document that sets the limit
 *   enabled = yes
 *   length = 3wd                   3wd (working days) | 24h (hours) | 10d (days)
 *   warn = 1wd, 2h                 points before the limit: Nwd, Nd, Nh, Nm, Ns, N%
 *   escalate_after = 0s            grace after red before 督办 (none: no escalation)
 *   escalate_every = 1d            repeat while open (0s: once)
 *   escalate_to = LEADING_GROUP_OFFICE, JUDICIAL_BUREAU
 *   move_to_working_day = yes      days and date rules: a last day off moves on
 */
#include "deadline.h"
#include "config.h"
#include "orgs.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define U(x) CASEBUS__V1__TIME_UNIT__TIME_UNIT_##x

static const char *const rule_names[DL_NRULES] = {
    [DL_RULE_TRANSFER] = "transfer",
    [DL_RULE_TRANSFER_EMERGENCY] = "transfer_emergency",
    [DL_RULE_SIGN] = "sign",
    [DL_RULE_ASSISTANCE] = "assistance",
    [DL_RULE_APPROVAL_NOTICE] = "approval_notice",
    [DL_RULE_DECISION_FEEDBACK] = "decision_feedback",
    [DL_RULE_MAJOR_DECISION_FILING] = "major_decision_filing",
    [DL_RULE_CRIME_DECIDE] = "crime_decide",
    [DL_RULE_CRIME_HANDOVER] = "crime_handover",
    [DL_RULE_POLICE_ANSWER] = "police_answer",
    [DL_RULE_RECONSIDERATION] = "reconsideration",
    [DL_RULE_JOINT_OPERATION] = "joint_operation",
    [DL_RULE_CASE_FILE_CATALOGUE] = "case_file_catalogue",
    [DL_RULE_ENFORCEMENT_DATA] = "enforcement_data",
    [DL_RULE_MONTHLY_STATUS] = "monthly_status",
    [DL_RULE_APPROVAL_NOTICE_URGENT] = "approval_notice_urgent",
    [DL_RULE_RECONSIDERATION_ANSWER] = "reconsideration_answer",
    [DL_RULE_EXHIBITS_HANDOVER] = "exhibits_handover",
    [DL_RULE_DISPATCH_SIGN] = "dispatch_sign",
    [DL_RULE_RETURN_REVIEW] = "return_review",
    [DL_RULE_SUPERVISION_ANSWER] = "supervision_answer",
};

static const char *const known_keys[] = {"title",          "source",         "enabled",
                                         "length",         "warn",           "escalate_after",
                                         "escalate_every", "escalate_to",    "due",
                                         "responsible",    "move_to_working_day", NULL};

const char *dl_rule_name(dl_rule_id_t id)
{
    return id < DL_NRULES ? rule_names[id] : "";
}

/* "3wd", "24h", "90m", "30s", "10d", "25%": a number and a unit. */
static int parse_amount(const char *text, uint64_t *n, char unit[4])
{
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    if (!isdigit((unsigned char)*p))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno != 0 || v > 1000000)
        return -1;
    size_t k = 0;
    while (*end && !isspace((unsigned char)*end) && k < 3)
        unit[k++] = *end++;
    unit[k] = '\0';
    while (isspace((unsigned char)*end))
        end++;
    if (*end != '\0')
        return -1;
    *n = v;
    return 0;
}

static int64_t wall_ms(uint64_t n, const char *unit)
{
    if (strcmp(unit, "d") == 0)
        return (int64_t)n * 86400000;
    if (strcmp(unit, "h") == 0)
        return (int64_t)n * 3600000;
    if (strcmp(unit, "m") == 0)
        return (int64_t)n * 60000;
    if (strcmp(unit, "s") == 0)
        return (int64_t)n * 1000;
    return -1;
}

static int bad(cb_error_t *err, const char *source, const char *section, const char *key,
               const char *value, const char *rule)
{
    char field[96];
    snprintf(field, sizeof(field), "%s.%s", section, key);
    return cb_error_set(err, CB_ERR_CONFIG, field, "%s: [%s] %s = '%s': %s", source, section, key,
                        value, rule);
}

static int parse_rule(const cb_config_t *cfg, const char *source, const char *sec, dl_rule_t *r,
                      cb_error_t *err)
{
    int rc;
    memset(r, 0, sizeof(*r));
    if ((rc = cb_config_get_bool(cfg, sec, "enabled", true, &r->enabled, err)) != 0)
        return rc;
    const char *title = cb_config_get(cfg, sec, "title", NULL);
    const char *src = cb_config_get(cfg, sec, "source", NULL);
    if (title == NULL || *title == '\0')
        return bad(err, source, sec, "title", "", "every rule needs a title");
    if (src == NULL || *src == '\0')
        return bad(err, source, sec, "source", "", "every rule names the document it comes from");
    snprintf(r->title, sizeof(r->title), "%s", title);
    snprintf(r->source, sizeof(r->source), "%s", src);

    const char *length = cb_config_get(cfg, sec, "length", "");
    uint64_t n;
    char unit[4];
    const char *due = cb_config_get(cfg, sec, "due", NULL);
    char buf[256];
    char *save = NULL;
    if (due) {
        /* A date rule: "MM-DD" every year, or "DD" every month. */
        int m = 0, dd = 0;
        char tail;
        bool yearly = sscanf(due, "%d-%d%c", &m, &dd, &tail) == 2;
        if (!yearly && (sscanf(due, "%d%c", &dd, &tail) != 1 || strchr(due, '-')))
            return bad(err, source, sec, "due", due, "want MM-DD (every year) or DD (every month)");
        if ((yearly && (m < 1 || m > 12)) || dd < 1 || dd > 28 + (yearly && m != 2 ? 3 : 0))
            return bad(err, source, sec, "due", due, "not a day every such period has");
        r->unit = U(DATE);
        r->due_month = yearly ? m : 0;
        r->due_day = dd;
        const char *resp = cb_config_get(cfg, sec, "responsible", "");
        snprintf(buf, sizeof(buf), "%s", resp);
        for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
            int kind = cb_org_kind_parse(tok);
            if (kind == 0 || r->nresp_kinds == DL_MAX_ESC_KINDS)
                return bad(err, source, sec, "responsible", resp,
                           "up to 4 organisation kinds, e.g. TOWNSHIP, COUNTY_DEPARTMENT");
            r->resp_kinds[r->nresp_kinds++] = kind;
        }
        if (r->nresp_kinds == 0)
            return bad(err, source, sec, "responsible", resp, "a date rule names who files");
        goto warnings;
    }
    if (parse_amount(length, &n, unit) != 0 || n == 0)
        return bad(err, source, sec, "length", length,
                   "want a positive number of working days, hours or days: 3wd, 24h, 10d");
    if (strcmp(unit, "wd") == 0)
        r->unit = U(WORKING_DAYS);
    else if (strcmp(unit, "h") == 0)
        r->unit = U(HOURS);
    else if (strcmp(unit, "d") == 0)
        r->unit = U(DAYS);
    else
        return bad(err, source, sec, "length", length, "the unit is wd, h or d");
    r->length = (uint32_t)n;

warnings:;
    /* 民法典 第二百零三条 moves a period's last day off to the next working day;
     * a date a document fixes ("1月底之前") stays where it is unless told. */
    const char *mv = cb_config_get(cfg, sec, "move_to_working_day", NULL);
    if (mv && r->unit != U(DAYS) && r->unit != U(DATE))
        return bad(err, source, sec, "move_to_working_day", mv,
                   "applies to calendar-day (d) and date rules only: working days and hours "
                   "never end on a day off");
    if ((rc = cb_config_get_bool(cfg, sec, "move_to_working_day", r->unit == U(DAYS), &r->move,
                                 err)) != 0)
        return rc;
    const char *warn = cb_config_get(cfg, sec, "warn", "");
    snprintf(buf, sizeof(buf), "%s", warn);
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (r->nwarn == DL_MAX_WARN)
            return bad(err, source, sec, "warn", warn, "at most 4 warning points");
        dl_offset_t *o = &r->warn[r->nwarn];
        if (parse_amount(tok, &n, unit) != 0 || n == 0)
            return bad(err, source, sec, "warn", warn,
                       "each point is a positive amount before the limit: 1wd, 2h, 30m, 25%");
        if (strcmp(unit, "wd") == 0) {
            o->kind = DL_OFF_WORKING;
            o->value = (int64_t)n * 86400000;
        } else if (strcmp(unit, "%") == 0) {
            if (n >= 100)
                return bad(err, source, sec, "warn", warn, "a share of the period is below 100%");
            o->kind = DL_OFF_PERCENT;
            o->value = (int64_t)n;
        } else if ((o->value = wall_ms(n, unit)) > 0) {
            o->kind = DL_OFF_WALL;
        } else {
            return bad(err, source, sec, "warn", warn, "the unit is wd, d, h, m, s or %");
        }
        r->nwarn++;
    }

    const char *after = cb_config_get(cfg, sec, "escalate_after", NULL);
    r->escalate = after != NULL && strcmp(after, "none") != 0;
    if (!r->escalate)
        return 0;
    if (parse_amount(after, &n, unit) != 0 || (r->esc_grace_ms = wall_ms(n, unit)) < 0)
        return bad(err, source, sec, "escalate_after", after,
                   "a time after the limit: 0s, 4h, 1d (or none)");
    const char *every = cb_config_get(cfg, sec, "escalate_every", "1d");
    if (parse_amount(every, &n, unit) != 0 || (r->esc_every_ms = wall_ms(n, unit)) < 0)
        return bad(err, source, sec, "escalate_every", every, "a period: 1d, 12h (0s: once)");
    const char *to = cb_config_get(cfg, sec, "escalate_to", "");
    snprintf(buf, sizeof(buf), "%s", to);
    for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        int kind = cb_org_kind_parse(tok);
        if (kind == 0)
            return bad(err, source, sec, "escalate_to", to,
                       "organisation kinds such as LEADING_GROUP_OFFICE, JUDICIAL_BUREAU");
        if (r->nesc_kinds == DL_MAX_ESC_KINDS)
            return bad(err, source, sec, "escalate_to", to, "at most 4 kinds");
        r->esc_kinds[r->nesc_kinds++] = kind;
    }
    if (r->nesc_kinds == 0)
        return bad(err, source, sec, "escalate_to", to,
                   "escalation needs someone to escalate to (or escalate_after = none)");
    return 0;
}

int dl_rules_parse(dl_rules_t *rules, const char *text, const char *source, cb_error_t *err)
{
    cb_config_t *cfg;
    int rc = cb_config_parse(&cfg, text, err);
    if (rc != 0)
        return rc;
    /* A closed vocabulary: a misspelt section or key must not pass unnoticed. */
    const char *sec, *key;
    for (size_t i = 0; rc == 0 && cb_config_entry(cfg, i, &sec, &key); i++) {
        size_t r = 0;
        while (r < DL_NRULES && strcmp(rule_names[r], sec) != 0)
            r++;
        size_t k = 0;
        while (known_keys[k] && strcmp(known_keys[k], key) != 0)
            k++;
        if (r == DL_NRULES)
            rc = cb_error_set(err, CB_ERR_CONFIG, sec, "%s: [%s] is not a rule casebus knows",
                              source, sec);
        else if (known_keys[k] == NULL)
            rc = cb_error_set(err, CB_ERR_CONFIG, key, "%s: [%s] %s is not a rule setting",
                              source, sec, key);
    }
    dl_rules_t parsed;
    for (size_t r = 0; rc == 0 && r < DL_NRULES; r++) {
        if (!cb_config_has_section(cfg, rule_names[r]))
            rc = cb_error_set(err, CB_ERR_CONFIG, rule_names[r],
                              "%s: rule [%s] is missing (set enabled = no to turn it off)",
                              source, rule_names[r]);
        else
            rc = parse_rule(cfg, source, rule_names[r], &parsed.rule[r], err);
    }
    cb_config_destroy(&cfg);
    if (rc == 0)
        *rules = parsed;
    return rc;
}

int dl_rules_load(dl_rules_t *rules, const char *path, cb_error_t *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return cb_error_set(err, CB_ERR_CONFIG, "rules", "cannot open rules file %s: %s", path,
                            strerror(errno));
    char text[65536];
    size_t len = fread(text, 1, sizeof(text) - 1, f);
    bool too_big = !feof(f);
    fclose(f);
    if (too_big)
        return cb_error_set(err, CB_ERR_CONFIG, "rules", "rules file %s is larger than 64 KiB",
                            path);
    text[len] = '\0';
    return dl_rules_parse(rules, text, path, err);
}
