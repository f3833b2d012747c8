/*
 * cs-polkit.h — polkit on the system bus: every key and order method asks the polkit
 * authority whether its caller may take the method's action (docs/architecture.md §6).
 *
 * A handler calls cs_polkit_check() before reading its arguments. The first time, the
 * check sends CheckAuthorization (subject: the caller's system-bus-name) and the handler
 * returns; when polkit answers, the call is queued again for dispatch and the handler runs
 * once more, this time with the answer, which is used once and forgotten. Nothing is cached
 * across calls beyond polkit's own temporary authorisations.
 */
#pragma once

#include <glib.h>
#include <systemd/sd-bus.h>

G_BEGIN_DECLS

#define CS_POLKIT_KEY_LOGIN "org.certseal.key-login"
#define CS_POLKIT_KEY_MANAGE "org.certseal.key-manage"
#define CS_POLKIT_ORDER_CREATE "org.certseal.order-create"
#define CS_POLKIT_ORDER_ACT "org.certseal.order-act"

/* How long polkit may take to answer before the call is refused (µs); with interactive
 * authorisation allowed a person may be typing a password, so longer. */
#define CS_POLKIT_TIMEOUT_USEC (5 * G_USEC_PER_SEC)
#define CS_POLKIT_INTERACTIVE_TIMEOUT_USEC (120 * G_USEC_PER_SEC)

typedef struct _CsPolkit CsPolkit;

/* The action guarding @member of @interface (one of ours), NULL when the method acts on
 * nothing and reveals nothing personal (flow descriptions, blank forms). */
const char *cs_polkit_action_for(const char *interface, const char *member);

/* Ask polkit on @bus (borrowed, outliving the result). */
CsPolkit *cs_polkit_new(sd_bus *bus);
void cs_polkit_free(CsPolkit *polkit);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CsPolkit, cs_polkit_free)

/*
 * May the caller of @m take the action of its method? With @polkit NULL (the session bus)
 * or a method no action guards: 1 at once. Otherwise 0 the first time (the handler returns
 * 1: @m comes back when polkit answered), then 1 when polkit said yes, or negative with
 * @ret_error set to AccessDenied naming the action and the reason.
 */
int cs_polkit_check(CsPolkit *polkit, sd_bus_message *m, sd_bus_error *ret_error);

/* The first statement of a handler: returns from it while polkit is being asked or when
 * polkit refused. */
#define CS_POLKIT_GATE(polkit, m, ret_error)                                                       \
	do {                                                                                       \
		int gate_ = cs_polkit_check((polkit), (m), (ret_error));                           \
		if (gate_ <= 0)                                                                    \
			return gate_ < 0 ? gate_ : 1;                                              \
	} while (0)

G_END_DECLS
