/*
 * authz.c — who may do what to a case: one table, command × role, and the two
 * rules that also depend on the case's state (a transfer's receiver once router
 * has routed it; public security only after a referral). Pure: facts in, a
 * verdict out. command.c gathers the facts from the case view and refs; the
 * door has already checked that the token acts for the organisation named.
 *
 * The roles (seed 002 §五, seed 000 §二):
 *   finder     the organisation that found and reported the case
 *   holder     who has the case now: the finder, the receiver of a routed
 *              transfer, the organisation a failed routing assigned it to, the
 *              sender again after a return
 *   competent  the organisation router found to have jurisdiction
 *   receiver / sender   of the transfer the command is about
 *   decider    the organisation that recorded the decision it is about
 *   addressee  the organisation an assistance request was made of
 *   bureau     the county enforcement bureau, which runs the command platform
 *   office     the leading-group office (reviews a case's third return, supervises)
 *   responsible  the organisation a 督办 order is addressed to
 */
#include "intake.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define K(x) CASEBUS__V1__ORG_KIND__ORG_KIND_##x

enum {
    R_FINDER = 1 << 0,
    R_HOLDER = 1 << 1,
    R_COMPETENT = 1 << 2,
    R_RECEIVER = 1 << 3,
    R_SENDER = 1 << 4,
    R_DECIDER = 1 << 5,
    R_ADDRESSEE = 1 << 6,
    R_BUREAU = 1 << 7,
    R_POLICE = 1 << 8,
    R_OFFICE = 1 << 9,
    R_RESPONSIBLE = 1 << 10,
};

static const struct rule {
    intake_cmd_kind_t kind;
    unsigned roles;   /* any one of them is enough */
    const char *code; /* the refusal's code */
    const char *who;  /* "…may …": the refusal's message */
} rules[] = {
    {CMD_SEND_TRANSFER, R_HOLDER, "not_holder", "only the organisation that holds the case"},
    {CMD_RECEIVE_TRANSFER, R_RECEIVER, "not_receiver", "only the transfer's receiver"},
    {CMD_ACCEPT_TRANSFER, R_RECEIVER, "not_receiver", "only the transfer's receiver"},
    {CMD_RETURN_TRANSFER, R_RECEIVER, "not_receiver", "only the transfer's receiver"},
    {CMD_RAISE_DISPUTE, R_RECEIVER | R_SENDER, "not_party",
     "only the transfer's receiver (or its sender, after a return)"},
    {CMD_REQUEST_ASSISTANCE, R_HOLDER | R_COMPETENT, "not_handling",
     "only the organisation handling the case"},
    {CMD_ANSWER_ASSISTANCE, R_ADDRESSEE, "not_addressee",
     "only the organisation the request was made of"},
    {CMD_RECORD_DECISION, R_HOLDER | R_COMPETENT, "not_handling",
     "only the organisation handling the case"},
    {CMD_GIVE_FEEDBACK, R_DECIDER, "not_decider", "only the organisation that decided"},
    {CMD_FILE_DECISION, R_DECIDER, "not_decider", "only the organisation that decided"},
    {CMD_CANCEL_CASE, R_FINDER | R_BUREAU, "not_allowed",
     "only the organisation that reported the case, or the county command platform (the "
     "enforcement bureau),"},
    {CMD_DISPATCH_CASE, R_BUREAU, "not_platform",
     "only the county command platform (the enforcement bureau)"},
    {CMD_REVIEW_RETURN, R_BUREAU | R_OFFICE, "not_reviewer",
     "only the county command platform (or, from a case's third return, the leading-group "
     "office)"},
    {CMD_ANSWER_SUPERVISION, R_RESPONSIBLE, "not_responsible",
     "only the organisation the order is addressed to"},
    {CMD_CRIME_STEP, R_FINDER | R_HOLDER | R_COMPETENT | R_POLICE, "not_allowed",
     "only the organisation that found or is handling the case (public security: only its "
     "answer)"},
};

static bool same(const char *a, const char *b)
{
    return a && b && *a && strcmp(a, b) == 0;
}

static unsigned roles_of(const intake_facts_t *f, const char *org, int org_kind)
{
    unsigned r = 0;
    const char *holder = f->holder && *f->holder ? f->holder : f->finder;
    r |= same(org, f->finder) ? R_FINDER : 0;
    r |= same(org, holder) ? R_HOLDER : 0;
    r |= same(org, f->competent) ? R_COMPETENT : 0;
    r |= same(org, f->transfer_receiver) ? R_RECEIVER : 0;
    r |= same(org, f->transfer_sender) ? R_SENDER : 0;
    r |= same(org, f->decider) ? R_DECIDER : 0;
    r |= same(org, f->addressee) ? R_ADDRESSEE : 0;
    r |= org_kind == K(ENFORCEMENT_BUREAU) ? R_BUREAU : 0;
    r |= org_kind == K(PUBLIC_SECURITY) ? R_POLICE : 0;
    r |= org_kind == K(LEADING_GROUP_OFFICE) ? R_OFFICE : 0;
    r |= same(org, f->responsible) ? R_RESPONSIBLE : 0;
    return r;
}

static bool refuse(intake_verdict_t *v, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool refuse(intake_verdict_t *v, int status, const char *code, const char *fmt, ...)
{
    v->status = status;
    v->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->message, sizeof(v->message), fmt, ap);
    va_end(ap);
    return false;
}

bool intake_authorize(intake_cmd_kind_t kind, const char *org, int org_kind, int crime_step,
                      const intake_facts_t *f, intake_verdict_t *v)
{
    memset(v, 0, sizeof(*v));
    const struct rule *rule = NULL;
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
        if (rules[i].kind == kind)
            rule = &rules[i];
    if (rule == NULL)
        return true; /* not about a party's role (reports, approvals, filings, …) */
    unsigned roles = roles_of(f, org, org_kind), want = rule->roles;
    /* A transfer router has not routed yet (in this replica) has no receiver to
     * check against: router, the authority on state, checks it when it does. */
    if ((want & R_RECEIVER) && (f->transfer_receiver == NULL || *f->transfer_receiver == '\0'))
        return true;
    if (kind == CMD_CRIME_STEP) {
        /* Decree 310: public security answers a referral, and only one that was
         * made; every other step is the administrative organisation's. */
        bool answer = crime_step == CASEBUS__V1__CRIME_STEP__CRIME_STEP_POLICE_ANSWERED ||
                      crime_step == CASEBUS__V1__CRIME_STEP__CRIME_STEP_RECONSIDERATION_ANSWERED ||
                      crime_step == CASEBUS__V1__CRIME_STEP__CRIME_STEP_SENT_BACK;
        if (answer && !(roles & R_POLICE))
            return refuse(v, 403, "not_allowed", "only public security answers a referral or "
                          "sends a case back; '%s' is not public security", org);
        if (answer && !f->referral_made)
            return refuse(v, 409, "no_referral",
                          "no referral to public security was made on this case, so '%s' has "
                          "none to answer (handed_to_police comes first)", org);
        if (!answer && (roles & R_POLICE) && !(roles & (R_FINDER | R_HOLDER | R_COMPETENT)))
            return refuse(v, 403, "not_allowed",
                          "this step is the administrative organisation's, not public security's "
                          "('%s')", org);
        if (answer)
            return true;
        want = R_FINDER | R_HOLDER | R_COMPETENT;
    }
    if (roles & want)
        return true;
    return refuse(v, 403, rule->code, "%s may %s; '%s' may not", rule->who,
                  intake_cmd_name(kind), org ? org : "");
}

bool intake_may_read(const intake_facts_t *f, const char *const *orgs, const int *kinds,
                     size_t norgs)
{
    for (size_t i = 0; i < norgs; i++) {
        unsigned r = roles_of(f, orgs[i], kinds[i]);
        if (r & (R_FINDER | R_HOLDER | R_COMPETENT | R_BUREAU))
            return true;
        if (kinds[i] == K(LEADING_GROUP_OFFICE))
            return true; /* supervises every case with the bureau (seed 000 §二) */
        if ((r & R_POLICE) && f->referral_made)
            return true;
        for (size_t p = 0; p < f->nparties; p++)
            if (same(orgs[i], f->parties[p]))
                return true;
    }
    return false;
}
