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
#define CS_PLUGIN_ABI_MINOR 1 /* 1: materials, n_materials, material_states */

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
} CsPlugin;

typedef const CsPlugin *(*CsPluginGetFunc)(void);

#define CS_PLUGIN_ENTRY_SYMBOL "certseal_plugin_get"
#define CS_PLUGIN_ABI_MAJOR_SYMBOL "certseal_plugin_abi_major"
#define CS_PLUGIN_ABI_MINOR_SYMBOL "certseal_plugin_abi_minor"

/* Use once in a plugin to export its version integers. */
#define CS_PLUGIN_DEFINE_ABI()                                                                     \
	G_MODULE_EXPORT const int certseal_plugin_abi_major = CS_PLUGIN_ABI_MAJOR;                 \
	G_MODULE_EXPORT const int certseal_plugin_abi_minor = CS_PLUGIN_ABI_MINOR

G_END_DECLS
