/*
 * routes.c — the HTTP door's commands (routes.h).
 */
#include "routes.h"

#include <string.h>

#include "casebus/v1/intake.pb-c.h"

#define K(x) CASEBUS__V1__COMMAND__KIND_##x

const cb_route_t cb_routes[] = {
    {"/v1/cases", "cases", NULL, NULL, K(REPORT_CASE), 201, NULL,
     "Report a case found by an organisation (案件上报)"},
    {"/v1/cases/{case_id}/transfers", "cases", "transfers", "case_id", K(SEND_TRANSFER), 202,
     "transfer_id", "Transfer a case to the organisation with jurisdiction (移送)"},
    {"/v1/transfers/{transfer_id}/receipt", "transfers", "receipt", "transfer_id",
     K(RECEIVE_TRANSFER), 202, "transfer_id", "Sign for a transfer (签收)"},
    {"/v1/transfers/{transfer_id}/acceptance", "transfers", "acceptance", "transfer_id",
     K(ACCEPT_TRANSFER), 202, "transfer_id", "Accept a transfer (受理)"},
    {"/v1/transfers/{transfer_id}/return", "transfers", "return", "transfer_id", K(RETURN_TRANSFER),
     202, "transfer_id", "Return a transfer (退回)"},
    {"/v1/transfers/{transfer_id}/dispute", "transfers", "dispute", "transfer_id", K(RAISE_DISPUTE),
     202, "dispute_id", "Dispute a transfer (管辖争议)"},
    {"/v1/disputes/{dispute_id}/decision", "disputes", "decision", "dispute_id", K(DECIDE_DISPUTE),
     202, "dispute_id", "Decide a dispute (指定管辖)"},
    {"/v1/cases/{case_id}/assistance-requests", "cases", "assistance-requests", "case_id",
     K(REQUEST_ASSISTANCE), 201, "assistance_id", "Ask for technical help (协助请求)"},
    {"/v1/assistance/{assistance_id}/answer", "assistance", "answer", "assistance_id",
     K(ANSWER_ASSISTANCE), 201, "assistance_id", "Answer a request for help"},
    {"/v1/cases/{case_id}/decision", "cases", "decision", "case_id", K(RECORD_DECISION), 201,
     "decision_id", "Record the decision on a case (处理决定)"},
    {"/v1/cases/{case_id}/feedback", "cases", "feedback", "case_id", K(GIVE_FEEDBACK), 201,
     "decision_id", "Feed a decision back to the department (反馈)"},
    {"/v1/approvals", "approvals", NULL, NULL, K(RECORD_APPROVAL), 201, "approval_id",
     "Record an approval the enforcement side must know of (审批信息推送)"},
    {"/v1/obligations/{obligation_id}/extension-request", "obligations", "extension-request",
     "obligation_id", K(REQUEST_EXTENSION), 202, "obligation_id", "Ask for more time (延期申请)"},
    {"/v1/obligations/{obligation_id}/extension-decision", "obligations", "extension-decision",
     "obligation_id", K(DECIDE_EXTENSION), 202, "obligation_id", "Decide a request for more time"},
    {"/v1/cases/{case_id}/cancellation", "cases", "cancellation", "case_id", K(CANCEL_CASE), 201,
     "case_id", "Cancel a case reported in error"},
    {"/v1/cases/{case_id}/crime-referral", "cases", "crime-referral", "case_id", K(CRIME_STEP), 201,
     "case_id", "Record a step of a suspected crime's referral (Decree 310)"},
    {"/v1/cases/{case_id}/decision-filing", "cases", "decision-filing", "case_id", K(FILE_DECISION),
     201, "decision_id", "File a major decision with the legal office (备案)"},
    {"/v1/joint-operations", "joint-operations", NULL, NULL, K(APPLY_JOINT_OPERATION), 201,
     "operation_id", "Apply for a joint operation (联合执法)"},
    {"/v1/filings", "filings", NULL, NULL, K(RECORD_FILING), 201, "filing_id",
     "Record a periodic filing (case-file catalogue, enforcement data, monthly status)"},
    {"/v1/cases/{case_id}/dispatch", "cases", "dispatch", "case_id", K(DISPATCH_CASE), 202,
     "transfer_id", "Dispatch a case from the command platform (派单)"},
    {"/v1/transfers/{transfer_id}/return-review", "transfers", "return-review", "transfer_id",
     K(REVIEW_RETURN), 202, "transfer_id", "Review a return (退单审核)"},
    {"/v1/supervisions/{supervision_id}/answer", "supervisions", "answer", "supervision_id",
     K(ANSWER_SUPERVISION), 201, "supervision_id", "Answer a 督办 order"},
};
const size_t cb_nroutes = sizeof(cb_routes) / sizeof(cb_routes[0]);

int cb_route_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 79)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == ':'))
            return 0;
    return 1;
}

const cb_route_t *cb_route_match(char segs[][80], size_t n, const char **id)
{
    *id = NULL;
    if ((n != 2 && n != 4) || strcmp(segs[0], "v1") != 0 || (n == 4 && !cb_route_id_ok(segs[2])))
        return NULL;
    for (size_t i = 0; i < cb_nroutes; i++) {
        const cb_route_t *r = &cb_routes[i];
        if (strcmp(segs[1], r->collection) != 0 || (n == 2) != (r->action == NULL) ||
            (n == 4 && strcmp(segs[3], r->action) != 0))
            continue;
        *id = n == 4 ? segs[2] : NULL;
        return r;
    }
    return NULL;
}

const cb_route_t *cb_route_of(int kind)
{
    for (size_t i = 0; i < cb_nroutes; i++)
        if (cb_routes[i].kind == kind)
            return &cb_routes[i];
    return NULL;
}
