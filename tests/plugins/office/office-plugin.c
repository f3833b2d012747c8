/*
 * office-plugin.c — a test flow of kind "officeflow" whose steps wait for the office:
 * draft → confirm (applicant) → unpaid → pay (gateway) → in_review → approve|reject
 * (reviewer) → approved → make (maker) → made → ship (shipper) → shipped → deliver
 * (shipper) → completed; refund (cashier) from in_review.
 *
 * A small flow that lets the office tests drive real orders through real tasks, leases and
 * payment checks without the new flow's materials and codes. It is built into its own
 * directory and loaded only by the tests that configure it.
 */
#include <gmodule.h>

#include "certseal/plugin.h"

CS_PLUGIN_DEFINE_ABI();

static const char *const states[] = {"draft", "unpaid",	 "in_review", "approved", "rejected",
				     "made",  "shipped", "completed", "refunded", NULL};
static const char *const editable_states[] = {"draft", NULL};
static const char *const terminal_states[] = {"completed", "refunded", NULL};

static const CsFieldSpec fields[] = {
    {"vendor", CS_FIELD_VENDOR, CS_SUBJECT_ANY, TRUE, FALSE, NULL, 32},
    {"name", CS_FIELD_NAME, CS_SUBJECT_ANY, FALSE, FALSE, NULL, 50},
};

static const CsResultSpec review_results[] = {{"note", FALSE, TRUE}, {NULL}};
static const CsResultSpec make_results[] = {{"key_serial", TRUE, FALSE}, {NULL}};
static const CsResultSpec ship_results[] = {{"tracking", TRUE, TRUE}, {NULL}};

static const CsTransition transitions[] = {
    {"confirm", "draft", "unpaid", CS_ACTOR_DESKTOP, CS_TRANSITION_NEEDS_FIELDS},
    {"pay", "unpaid", "in_review", CS_ACTOR_GATEWAY, CS_TRANSITION_PAYMENT},
    {"approve", "in_review", "approved", CS_ACTOR_REVIEWER, 0, "review", review_results},
    {"reject", "in_review", "rejected", CS_ACTOR_REVIEWER, 0, "review", review_results},
    {"refund", "in_review", "refunded", CS_ACTOR_CASHIER, CS_TRANSITION_REFUND},
    {"make", "approved", "made", CS_ACTOR_MAKER, 0, "make", make_results},
    {"ship", "made", "shipped", CS_ACTOR_SHIPPER, 0, "ship", ship_results},
    {"deliver", "shipped", "completed", CS_ACTOR_SHIPPER, 0, "deliver"},
};

static const CsPlugin plugin = {
    .kind = "officeflow",
    .summary = "Test flow with office steps",
    .initial_state = "draft",
    .states = states,
    .terminal_states = terminal_states,
    .editable_states = editable_states,
    .transitions = transitions,
    .n_transitions = G_N_ELEMENTS(transitions),
    .fields = fields,
    .n_fields = G_N_ELEMENTS(fields),
};

G_MODULE_EXPORT const CsPlugin *certseal_plugin_get(void);

const CsPlugin *
certseal_plugin_get(void)
{
	return &plugin;
}
