/*
 * certseal/plugin.h — the flow-plugin API.
 *
 * A flow plugin is a shared object that implements one business flow (new, renew,
 * unlock, reissue, change, query). It exports exactly three symbols (see plugins/plugin.map):
 *
 *   const int certseal_plugin_abi_major;   equal to CS_PLUGIN_ABI_MAJOR
 *   const int certseal_plugin_abi_minor;   at most CS_PLUGIN_ABI_MINOR
 *   const CsPlugin *certseal_plugin_get (void);
 *
 * The plugin declares its kind, the states it uses, the transitions between them with
 * the actors allowed to trigger each, the order fields it accepts, and hooks. The engine
 * enforces the declarations and records every change in the ledger; a plugin never talks
 * to SQLite, sd-bus or ZeroMQ itself.
 *
 * Unlike the vendor driver ABI (certseal/driver.h), this API is internal to certseal and
 * may change between releases: plugins are built with the daemon.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CS_PLUGIN_ABI_MAJOR 1
#define CS_PLUGIN_ABI_MINOR 2
/* Minor 1: materials, n_materials, material_states.
 * Minor 2: transition guards and code flags, in_transition, after_transition, contact_phone,
 *          and the engine services below. */

/* Errors every layer reports; each maps to one org.certseal.Error.* name. */
#define CS_ERROR (cs_error_quark())
GQuark cs_error_quark(void);

typedef enum {
	CS_ERROR_INTERNAL,	    /* org.certseal.Error.Internal */
	CS_ERROR_INVALID_INPUT,	    /* org.certseal.Error.InvalidInput */
	CS_ERROR_NOT_ELIGIBLE,	    /* org.certseal.Error.NotEligible */
	CS_ERROR_WRONG_STATE,	    /* org.certseal.Error.WrongState */
	CS_ERROR_PIN_INCORRECT,	    /* org.certseal.Error.PinIncorrect */
	CS_ERROR_PIN_LOCKED,	    /* org.certseal.Error.PinLocked */
	CS_ERROR_MULTIPLE_KEYS,	    /* org.certseal.Error.MultipleKeys */
	CS_ERROR_KEY_REMOVED,	    /* org.certseal.Error.KeyRemoved */
	CS_ERROR_NO_KEY,	    /* org.certseal.Error.NoKey */
	CS_ERROR_CODE_INVALID,	    /* org.certseal.Error.CodeInvalid */
	CS_ERROR_CODE_EXPIRED,	    /* org.certseal.Error.CodeExpired */
	CS_ERROR_TOO_MANY_ATTEMPTS, /* org.certseal.Error.TooManyAttempts */
	CS_ERROR_RATE_LIMITED,	    /* org.certseal.Error.RateLimited */
	CS_ERROR_NOT_FOUND,	    /* org.certseal.Error.NotFound */
	CS_ERROR_ACCESS_DENIED,	    /* org.certseal.Error.AccessDenied */
	CS_ERROR_UNAVAILABLE,	    /* org.certseal.Error.Unavailable */
	CS_ERROR_LAST
} CsErrorCode;

/* The D-Bus error name of a code, e.g. "org.certseal.Error.WrongState". */
const char *cs_error_code_to_dbus_name(CsErrorCode code);

/* Subject types (DESIGN §1). */
typedef enum {
	CS_SUBJECT_ORG = 1 << 0,    /* "org": 单位 */
	CS_SUBJECT_PERSON = 1 << 1, /* "person": 个人 */
} CsSubjectType;

#define CS_SUBJECT_ANY (CS_SUBJECT_ORG | CS_SUBJECT_PERSON)

const char *cs_subject_type_to_string(CsSubjectType type);
/* 0 when @s is not a subject type. */
CsSubjectType cs_subject_type_from_string(const char *s);

/* Who may trigger a transition. Office roles follow DESIGN §3.4. */
typedef enum {
	CS_ACTOR_DESKTOP = 1 << 0,  /* the D-Bus caller that owns the order */
	CS_ACTOR_REVIEWER = 1 << 1, /* office roles */
	CS_ACTOR_MAKER = 1 << 2,
	CS_ACTOR_SHIPPER = 1 << 3,
	CS_ACTOR_CASHIER = 1 << 4,
	CS_ACTOR_AUDITOR = 1 << 5,
	CS_ACTOR_ADMIN = 1 << 6,   /* may do everything an office role may */
	CS_ACTOR_GATEWAY = 1 << 7, /* a verified gateway event (payment notification, …) */
	CS_ACTOR_SYSTEM = 1 << 8,  /* the daemon itself (timeouts, restart recovery) */
} CsActor;

/*
 * The identity of whoever asked for something, carried from a front into the engine,
 * which checks it and records it in the ledger.
 */
typedef struct {
	CsActor actor;	      /* exactly one bit */
	guint32 uid;	      /* CS_ACTOR_DESKTOP: the caller's uid */
	const char *sender;   /* CS_ACTOR_DESKTOP: the caller's unique bus name, or NULL */
	const char *user_id;  /* office actors: the worker's user id */
	guint roles;	      /* office actors: the CsActor bits the worker holds */
	gboolean interactive; /* room for polkit: the caller allows interactive auth */
} CsRequest;

/* The field types the engine knows how to validate (DESIGN §6, §9). */
typedef enum {
	CS_FIELD_TEXT,	      /* printable UTF-8, no control characters */
	CS_FIELD_NAME,	      /* a person's or organisation's name */
	CS_FIELD_USCC,	      /* GB 32100 unified social credit code */
	CS_FIELD_RESIDENT_ID, /* GB 11643 resident ID number */
	CS_FIELD_PHONE,	      /* mainland mobile number, normalised to 11 digits */
	CS_FIELD_EMAIL,
	CS_FIELD_POSTCODE,     /* 6 digits */
	CS_FIELD_BANK_CARD,    /* digits; a Luhn failure is a warning, not a refusal */
	CS_FIELD_BANK_ACCOUNT, /* digits and dashes */
	CS_FIELD_ENUM,	       /* one of CsFieldSpec.choices */
	CS_FIELD_VENDOR,       /* the id of a loaded vendor profile */
} CsFieldType;

typedef struct {
	const char *name;	    /* key in the order's a{sv} fields */
	CsFieldType type;	    /* all fields travel as D-Bus strings */
	guint subject_types;	    /* CsSubjectType bits this field applies to */
	gboolean required;	    /* must be present before a CS_TRANSITION_NEEDS_FIELDS step */
	gboolean identity;	    /* kept in the subject registry; read-only once known */
	const char *const *choices; /* CS_FIELD_ENUM: NULL-terminated */
	guint max_length;	    /* in characters; 0 = the engine's default (256) */
} CsFieldSpec;

typedef enum {
	CS_TRANSITION_NEEDS_FIELDS = 1 << 0, /* refuse while a required field is missing */
	/* Minor 2. */
	CS_TRANSITION_NEEDS_MATERIALS = 1 << 1, /* refuse while a required material is missing */
	CS_TRANSITION_SENDS_CODE = 1 << 2,	/* send a one-time SMS code to contact_phone() */
	CS_TRANSITION_NEEDS_CODE = 1 << 3,	/* only with the right code (VerifySmsCode) */
	/* Guards: among transitions of one action from one state, the first whose guard
	 * holds is taken. "Settled": paid, or nothing to pay. "Paid": money was received. */
	CS_TRANSITION_IF_SETTLED = 1 << 4,
	CS_TRANSITION_UNLESS_SETTLED = 1 << 5,
	CS_TRANSITION_IF_PAID = 1 << 6,
	CS_TRANSITION_UNLESS_PAID = 1 << 7,
} CsTransitionFlags;

typedef struct {
	const char *action; /* the verb, e.g. "confirm" for Order.Confirm() */
	const char *from;   /* state the order must be in */
	const char *to;	    /* state it moves to */
	guint actors;	    /* CsActor bits allowed to trigger it */
	CsTransitionFlags flags;
} CsTransition;

/* A material (an uploaded scan or photo, DESIGN §1.1) the flow asks for. The engine
 * sniffs and bounds the content (PNG, JPEG or PDF); the plugin only names the kinds. */
typedef struct {
	const char *kind;    /* e.g. "business_license"; the AttachMaterial kind */
	guint subject_types; /* CsSubjectType bits this material applies to */
	gboolean required;   /* listed in Missing until attached */
} CsMaterialSpec;

typedef struct _CsEngine CsEngine;
typedef struct _CsOrder CsOrder;

/* What a plugin may read of an order. Strings are owned by the order. */
const char *cs_order_get_id(CsOrder *order);
const char *cs_order_get_kind(CsOrder *order);
const char *cs_order_get_state(CsOrder *order);
CsSubjectType cs_order_get_subject_type(CsOrder *order);
/* The string value of a field, or NULL when unset. */
const char *cs_order_get_field(CsOrder *order, const char *name);

typedef struct {
	const char *kind;		    /* e.g. "new" */
	const char *summary;		    /* one line for logs and `certseal status` */
	const char *initial_state;	    /* the state CreateOrder puts an order in */
	const char *const *states;	    /* NULL-terminated: every state the flow uses */
	const char *const *editable_states; /* NULL-terminated: where Update() is allowed */
	const CsTransition *transitions;
	guint n_transitions;
	const CsFieldSpec *fields;
	guint n_fields;
	/* Only a change order may alter a registered subject's identity fields (DESIGN §1);
	 * every other kind has them pre-filled from the registry and read-only. */
	gboolean may_change_identity;

	/* Hooks, each optional. "return FALSE ⇔ error set" is enforced by the runner. */
	gboolean (*init)(CsEngine *engine, GError **error);
	/* Cross-field rules, run after each field was validated alone. @fields is the
	 * whole a{sv} the order would have. */
	gboolean (*check_fields)(CsEngine *engine,
				 CsSubjectType subject_type,
				 GVariant *fields,
				 GError **error);
	/* Called inside the engine before a transition is recorded; may refuse it. */
	gboolean (*before_transition)(CsEngine *engine,
				      CsOrder *order,
				      const CsTransition *transition,
				      const CsRequest *request,
				      GError **error);

	/* Minor 1. The loader gives a plugin built against minor 0 a zero-filled copy, so
	 * the daemon never reads past an older plugin's table: it declares no materials. */
	const CsMaterialSpec *materials;
	guint n_materials;
	const char *const *material_states; /* NULL-terminated: where AttachMaterial is allowed */

	/* Minor 2. */
	/* Inside the ledger transaction that records @transition (after the order's new state
	 * and its event are written): the step's work through the engine services below, so
	 * that it commits with the transition or not at all. Returning FALSE rolls it back.
	 * @params: what came with the step (a{sv} of strings: a review's note, a tracking
	 * number, …), never NULL. */
	gboolean (*in_transition)(CsEngine *engine,
				  CsOrder *order,
				  const CsTransition *transition,
				  const CsRequest *request,
				  GVariant *params,
				  GError **error);
	/* After the transition committed and was announced: start work that outlives it
	 * (making a key). Cannot refuse. */
	void (*after_transition)(CsEngine *engine,
				 CsOrder *order,
				 const CsTransition *transition,
				 const CsRequest *request);
	/* The phone one-time codes and notices go to (the handler's), or NULL. */
	const char *(*contact_phone)(CsOrder *order);
} CsPlugin;

/* ---- engine services for plugins (minor 2) ------------------------------------------------
 * Those marked "in transition" may only be called from in_transition; they write in its
 * transaction. Secrets (the certificate password, SO PINs, codes) never pass through a
 * plugin: the engine generates, seals and delivers them. */

/* "138****8000": a normalised phone number as messages and properties show it. */
char *cs_mask_phone(const char *normalized);

/* An attribute of the order, shown on D-Bus (review_note → ReviewNote, tracking_number →
 * TrackingNumber, password_delivery → PasswordDelivery, …); NULL when unset. */
const char *cs_order_get_attr(CsOrder *order, const char *name);
/* In transition. @value NULL removes it. */
gboolean cs_engine_set_attr(
    CsEngine *engine, CsOrder *order, const char *name, const char *value, GError **error);
/* In transition: an SMS to @phone with @template_name and @params (a{ss}, may be NULL),
 * not subject to the resend cooldown (a notice, not a code). With @with_password the
 * order's sealed certificate password rides along (the outbox shows it; nothing else). */
gboolean cs_engine_send_notice(CsEngine *engine,
			       CsOrder *order,
			       const char *phone,
			       const char *template_name,
			       GVariant *params,
			       gboolean with_password,
			       GError **error);
/* In transition: generate the certificate password (the key's user PIN, digits, of the
 * vendor's PIN length) and seal it in the vault; kept until the key is made. Once per
 * order: later calls keep the first. */
gboolean cs_engine_issue_password(CsEngine *engine, CsOrder *order, GError **error);
/* In transition: wipe the sealed certificate password once it is no longer needed (the key
 * holds it, or the order ended without a key). */
gboolean cs_engine_forget_password(CsEngine *engine, CsOrder *order, GError **error);
/* In transition: deliver the password as the memo of a 0.01 CNY transfer (bank service). */
gboolean cs_engine_send_password_transfer(CsEngine *engine,
					  CsOrder *order,
					  const char *account_name,
					  const char *bank_name,
					  const char *account,
					  GError **error);
/* In transition: issue the e-invoice PDF for what was paid and mail it to @email. */
gboolean
cs_engine_issue_invoice(CsEngine *engine, CsOrder *order, const char *email, GError **error);
/* In transition: DueBy = the end of the @working_days-th working day from now; 0 = the
 * configured review time of the order's subject type ([review] org_days, person_days:
 * 5 and 3 working days by default, DESIGN §1.1). */
gboolean cs_engine_set_due_by(CsEngine *engine, CsOrder *order, guint working_days, GError **error);
/* In transition: record the subject's identity in the registry (on approval). */
gboolean cs_engine_register_subject(CsEngine *engine, CsOrder *order, GError **error);
/* In transition: queue a cashier task to refund what was paid. */
gboolean cs_engine_queue_refund(CsEngine *engine, CsOrder *order, GError **error);
/* In transition: prepare making on the key named by @key_serial (present, blank, or the
 * one an earlier making of this order initialised): seal its SO PIN first. */
gboolean
cs_engine_prepare_making(CsEngine *engine, CsOrder *order, const char *key_serial, GError **error);
/* After transition: make the key prepared above on driver threads; the order then takes
 * "made" (done) or "make_failed" (with a reason) as the system. */
void cs_engine_start_making(CsEngine *engine, CsOrder *order);
/* After transition: revoke (cessationOfOperation) the valid certificates issued for this
 * order that no made key holds — left by a making the daemon's stop or crash cut short —
 * when the order ends without a key (refunded). */
void cs_engine_revoke_unused_certificates(CsEngine *engine, CsOrder *order);

typedef const CsPlugin *(*CsPluginGetFunc)(void);

#define CS_PLUGIN_ENTRY_SYMBOL "certseal_plugin_get"
#define CS_PLUGIN_ABI_MAJOR_SYMBOL "certseal_plugin_abi_major"
#define CS_PLUGIN_ABI_MINOR_SYMBOL "certseal_plugin_abi_minor"

/* Use once in a plugin to export its version integers. */
#define CS_PLUGIN_DEFINE_ABI()                                                                     \
	G_MODULE_EXPORT const int certseal_plugin_abi_major = CS_PLUGIN_ABI_MAJOR;                 \
	G_MODULE_EXPORT const int certseal_plugin_abi_minor = CS_PLUGIN_ABI_MINOR

G_END_DECLS
