/*
 * certseal/plugin.h — the flow-plugin API.
 *
 * A flow plugin is a shared object that implements one business flow (new, renew,
 * unlock, reissue, change). It exports exactly three symbols (see plugins/plugin.map):
 *
 *   const int certseal_plugin_abi_major;   equal to CS_PLUGIN_ABI_MAJOR
 *   const int certseal_plugin_abi_minor;   at most CS_PLUGIN_ABI_MINOR
 *   const CsPlugin *certseal_plugin_get (void);
 *
 * The plugin declares everything the flow is made of: its kind and title, its states (and
 * which are terminal, which fall back to which after a restart), its fields and
 * materials, the attributes it shows on D-Bus, and its transitions — each naming the
 * actors allowed to take it, what the engine checks first, the office service whose task
 * asks for it and the results that task gives, and the step's own hooks. The engine
 * enforces the declarations and records every step in the ledger; the hooks do the step's
 * work through the services declared below. A plugin never talks to SQLite, sd-bus or
 * ZeroMQ itself, and the daemon never names a flow's states, actions or services:
 * adding a flow is one plugins/<kind>/ folder (docs/architecture.md, "Adding a flow").
 *
 * Unlike the vendor driver ABI (certseal/driver.h), this API is internal to certseal and
 * may change between releases: plugins are built with the daemon.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CS_PLUGIN_ABI_MAJOR 2
#define CS_PLUGIN_ABI_MINOR 2
/* Major 2: transitions carry their office service, results and step hooks; plugins declare
 * terminal states, restart recoveries, a title, their D-Bus attributes and the labels of
 * their fields and materials; hooks get a CsStep. (Major 1 had one hook per kind of moment
 * and a strcmp chain in every flow.) Minor 1: prepare_order (CreateOrder's preconditions
 * and pre-filled fields, CsCreate) and the key and certificate services a flow working on
 * the applicant's own key needs; a transition may carry a guard of its own
 * (CsTransition.guard); steps may carry secrets (an authorization code, a new PIN) that
 * only the services read; authorization codes, PIN resets with the SO PIN and records
 * about a key across orders. Minor 2: a certificate found by an order query
 * (cs_create_find_certificate), orders pre-filled from an earlier order, a revocation inside
 * the step's transaction (cs_step_revoke_certificate) and key work whose certificate keeps
 * another's end (CsKeyWork.keeps_end_field). Added since, at the end of their structures: fields
 * fixed at CreateOrder (CsFieldSpec.fixed), materials needed only while a hook says so
 * (CsMaterialSpec.needed) and key work for a changed subject (CsKeyWork.changes_subject),
 * for the change flow. */

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

/* Subject types: an organisation is known by its USCC, a person by their resident ID. */
typedef enum {
	CS_SUBJECT_ORG = 1 << 0,    /* "org": 单位 */
	CS_SUBJECT_PERSON = 1 << 1, /* "person": 个人 */
} CsSubjectType;

#define CS_SUBJECT_ANY (CS_SUBJECT_ORG | CS_SUBJECT_PERSON)

const char *cs_subject_type_to_string(CsSubjectType type);
/* 0 when @s is not a subject type. */
CsSubjectType cs_subject_type_from_string(const char *s);
/* The field naming a subject ("org_name" or "name") and the one identifying it ("uscc" or
 * "id_number"): the fields every flow of that subject type uses for them. */
const char *cs_subject_name_field(CsSubjectType type);
const char *cs_subject_number_field(CsSubjectType type);

/* Who may trigger a transition. Office roles are those of dbus/office-protocol.md. */
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

/* The field types the engine knows how to validate (docs/architecture.md, "Input"). */
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
	/* What forms show (Manager.GetFlow): the manual's name of the field, and an English
	 * label saying what goes in it. */
	const char *label_zh;
	const char *label_en;
	/* CS_FIELD_ENUM: one label per choice, in the order of @choices; may be NULL. */
	const char *const *choice_labels_zh;
	const char *const *choice_labels_en;
	/* Set when the order is created (pre-filled by prepare_order) and never changed by
	 * Update: InvalidInput naming the field. */
	gboolean fixed;
} CsFieldSpec;

typedef struct _CsOrder CsOrder;

/* A material (an uploaded scan or photo) the flow asks for. The engine
 * sniffs and bounds the content (PNG, JPEG or PDF); the plugin only names the kinds. */
typedef struct {
	const char *kind;     /* e.g. "business_license"; the AttachMaterial kind */
	guint subject_types;  /* CsSubjectType bits this material applies to */
	gboolean required;    /* listed in Missing until attached */
	const char *label_zh; /* what forms show (Manager.GetFlow) */
	const char *label_en;
	/* May be NULL. When set, the material is also required (listed in Missing, refused by
	 * CS_TRANSITION_NEEDS_MATERIALS) while it returns TRUE for the order: evidence a
	 * change order needs only for what it changes. */
	gboolean (*needed)(CsOrder *order);
} CsMaterialSpec;

typedef enum {
	CS_TRANSITION_NEEDS_FIELDS = 1 << 0,	/* refuse while a required field is missing */
	CS_TRANSITION_NEEDS_MATERIALS = 1 << 1, /* refuse while a required material is missing */
	CS_TRANSITION_SENDS_CODE = 1 << 2,	/* send a one-time SMS code to contact_phone() */
	CS_TRANSITION_NEEDS_CODE = 1 << 3,	/* only with the right code (VerifySmsCode) */
	/* Guards: among transitions of one action from one state, the first whose guard
	 * holds is taken. "Settled": paid, or nothing to pay. "Paid": money was received. */
	CS_TRANSITION_IF_SETTLED = 1 << 4,
	CS_TRANSITION_UNLESS_SETTLED = 1 << 5,
	CS_TRANSITION_IF_PAID = 1 << 6,
	CS_TRANSITION_UNLESS_PAID = 1 << 7,
	/* The step a verified payment notification takes (actor CS_ACTOR_GATEWAY): the order
	 * waits for money where one leaves its state; the applicant calls StartPayment. */
	CS_TRANSITION_PAYMENT = 1 << 8,
	/* The step a cashier's confirmed refund takes (the office's payment.refund). */
	CS_TRANSITION_REFUND = 1 << 9,
} CsTransitionFlags;

typedef struct _CsEngine CsEngine;
/* An order being created: what CreateOrder brought, before the fields are validated. */
typedef struct _CsCreate CsCreate;
/* One step being taken: the order, the transition, who asked and what came with it. */
typedef struct _CsStep CsStep;

/* A key of an office task's result that a step takes as a parameter. */
typedef struct {
	const char *name;  /* e.g. "tracking" */
	gboolean required; /* a result without it is refused, naming result.<name> */
	gboolean shown;	   /* the order's History shows it beside the step ("ship: SF123") */
} CsResultSpec;

typedef gboolean (*CsStepFunc)(CsStep *step, GError **error);
typedef void (*CsStepAfterFunc)(CsStep *step);

typedef struct {
	const char *action; /* the verb, e.g. "confirm" for Order.Confirm() */
	const char *from;   /* state the order must be in */
	const char *to;	    /* state it moves to */
	guint actors;	    /* CsActor bits allowed to trigger it */
	CsTransitionFlags flags;
	/* The office service whose task asks for this step, e.g. "review": while an order is
	 * in @from a task of it is queued for the role in @actors (exactly one office role).
	 * Several transitions of one service from one state: the result's "decision" names
	 * the action. NULL: no task. */
	const char *service;
	/* The result keys the step takes as its parameters, ended by {NULL}; may be NULL. */
	const CsResultSpec *results;
	/* Before the step is recorded: may refuse it (fields the step needs, …). */
	CsStepFunc check;
	/* Inside the ledger transaction that records the step, after the order's new state
	 * and its event are written: the step's work through the services below, so that it
	 * commits with the step or not at all. Returning FALSE rolls the step back. */
	CsStepFunc run;
	/* After the step committed and was announced: start work that outlives it (making
	 * a key). Cannot refuse. */
	CsStepAfterFunc after;
	/* A guard of the flow's own, beside the flags' (may be NULL): among transitions of
	 * one action from one state, one whose guard returns FALSE is passed over. It only
	 * reads the order (its fields and attributes). */
	gboolean (*guard)(CsOrder *order);
} CsTransition;

/* A transient state and the stable one an order in it falls back to after a restart. */
typedef struct {
	const char *transient;
	const char *stable;
} CsRecovery;

/* An order attribute the flow shows as a property of the Order object on D-Bus. Several
 * attributes shown as one property are joined with "; " in the table's order. */
typedef struct {
	const char *name;     /* e.g. "tracking_number" */
	const char *property; /* e.g. "TrackingNumber" */
} CsAttrSpec;

typedef struct {
	const char *kind;		    /* e.g. "new" */
	const char *summary;		    /* one line for logs and `certseal status` */
	const char *title_zh;		    /* the manual's name of the flow, e.g. "新办" */
	const char *initial_state;	    /* the state CreateOrder puts an order in */
	const char *const *states;	    /* NULL-terminated: every state the flow uses */
	const char *const *terminal_states; /* NULL-terminated: where an order ends */
	const char *const *editable_states; /* NULL-terminated: where Update() is allowed */
	const char *const *material_states; /* NULL-terminated: where AttachMaterial is */
	const CsRecovery *recoveries;	    /* ended by {NULL}; may be NULL */
	const CsTransition *transitions;
	guint n_transitions;
	const CsFieldSpec *fields;
	guint n_fields;
	const CsMaterialSpec *materials;
	guint n_materials;
	const CsAttrSpec *attrs; /* ended by {NULL}; may be NULL */
	/* Only a change order may alter a registered subject's identity fields; every other
	 * kind has them pre-filled from the registry and read-only. */
	gboolean may_change_identity;

	/* Hooks, each optional. "return FALSE ⇔ error set" is enforced by the runner. */
	gboolean (*init)(GError **error);
	/* Cross-field rules, run after each field was validated alone. @fields is the
	 * whole a{sv} the order would have. */
	gboolean (*check_fields)(CsSubjectType subject_type, GVariant *fields, GError **error);
	/* The phone one-time codes and notices go to (the handler's), or NULL. */
	const char *(*contact_phone)(CsOrder *order);

	/* ---- minor 1 ---- */
	/* CreateOrder, before the fields are validated: the flow's preconditions (a key
	 * inserted, …), which may refuse, and fields pre-filled (cs_create_* below). */
	gboolean (*prepare_order)(CsCreate *create, GError **error);
} CsPlugin;

/* ---- what a hook may read ------------------------------------------------------------------
 * Strings are owned by the order or the step and live as long as the call. */
const char *cs_order_get_id(CsOrder *order);
const char *cs_order_get_kind(CsOrder *order);
const char *cs_order_get_state(CsOrder *order);
const char *cs_order_get_vendor(CsOrder *order); /* "" until chosen */
CsSubjectType cs_order_get_subject_type(CsOrder *order);
/* The string value of a field, or NULL when unset. */
const char *cs_order_get_field(CsOrder *order, const char *name);
/* The subject's name and number (the fields cs_subject_name_field() and
 * cs_subject_number_field() name), or NULL when unset. */
const char *cs_order_get_subject_name(CsOrder *order);
const char *cs_order_get_subject_number(CsOrder *order);
/* An attribute the flow's steps recorded (review_note, tracking_number, …), or NULL. */
const char *cs_order_get_attr(CsOrder *order, const char *name);

CsOrder *cs_step_get_order(CsStep *step);
const CsTransition *cs_step_get_transition(CsStep *step);
const CsRequest *cs_step_get_request(CsStep *step);
/* A parameter that came with the step (a review's note, a make's key_serial, …), or NULL. */
const char *cs_step_get_param(CsStep *step, const char *name);

/* ---- services a step may call --------------------------------------------------------------
 * Those taking a CsStep and a GError may only be called from a transition's `run` hook:
 * they write in its transaction. Secrets (the certificate password, SO PINs, codes) never
 * pass through a plugin: the services generate, seal and deliver them. */

/* "138****8000": a normalised phone number as messages and properties show it. */
char *cs_mask_phone(const char *normalized);

/* Record an attribute of the order (@value NULL removes it). */
gboolean cs_step_set_attr(CsStep *step, const char *name, const char *value, GError **error);
/* An SMS to @phone with @template_name and @params (a{ss}, may be NULL; floating
 * references are taken), not subject to the resend cooldown (a notice, not a code). With
 * @with_password the order's sealed certificate password rides along (the outbox shows it;
 * nothing else). */
gboolean cs_step_send_notice(CsStep *step,
			     const char *phone,
			     const char *template_name,
			     GVariant *params,
			     gboolean with_password,
			     GError **error);
/* Generate the certificate password (the key's user PIN, digits, of the vendor's PIN
 * length) and seal it in the vault; kept until the key is made. Once per order: later
 * calls keep the first. */
gboolean cs_step_issue_password(CsStep *step, GError **error);
/* Wipe the sealed certificate password once it is no longer needed (the key holds it, or
 * the order ended without a key). */
gboolean cs_step_forget_password(CsStep *step, GError **error);
/* Deliver the password as the memo of a 0.01 CNY transfer (bank service). */
gboolean cs_step_send_password_transfer(CsStep *step,
					const char *account_name,
					const char *bank_name,
					const char *account,
					GError **error);
/* Issue the e-invoice PDF for what was paid and mail it to @email (none when NULL). */
gboolean cs_step_issue_invoice(CsStep *step, const char *email, GError **error);
/* DueBy = the end of the @working_days-th working day from now; 0 = the configured review
 * time of the order's subject type ([review] org_days, person_days). */
gboolean cs_step_set_due_by(CsStep *step, guint working_days, GError **error);
/* Record the subject's identity and contact phone in the registry (on approval). */
gboolean cs_step_register_subject(CsStep *step, GError **error);
/* Queue a cashier task to refund what was paid. */
gboolean cs_step_queue_refund(CsStep *step, GError **error);

/* Key work: putting a new key pair, certificate and e-seal on a UKey for the order. */
typedef struct {
	/* Taken as the system, with params key_serial and certificate_serial, once the key
	 * holds the new certificate and seal; the service records certificate_serial and
	 * progress 100 in the same step. */
	const char *done_action;
	/* Taken as the system, with param reason, when the work fails (the key pulled, the
	 * driver failed, …); the reason is kept in the attribute key_work_error until the next
	 * attempt. A certificate the failed attempt issued is revoked. */
	const char *failed_action;
	/* A blank key: initialise it with a new SO PIN and the order's certificate password
	 * (cs_step_issue_password) before the key pair is generated. */
	gboolean provision;
	/* Minor 1. The applicant's own key, logged in, holding the certificate whose serial
	 * is the order's field @follows_field: a new key pair is generated beside the old one,
	 * the certificate issued follows the old one (its validity carried on; the window
	 * checked as of the order's attribute eligible_at, when set), the new e-seal keeps the
	 * old seal's picture; only once the key holds the new certificate and seal are the old
	 * certificate and key pair deleted, and the old certificate revoked (superseded). No
	 * PIN passes: the key's PIN does not change. */
	const char *follows_field;
	/* Minor 2. A replacement on a blank key (with @provision): the certificate issued runs
	 * from now to the end of the certificate whose serial is the order's field
	 * @keeps_end_field. */
	const char *keeps_end_field;
	/* With @follows_field: the new certificate carries the order's changed subject (a change
	 * order), so its end is the old one's (not carried on), no renewal window applies, the
	 * new e-seal's picture is drawn with the new name (or the order's seal_image), and the
	 * old certificate is revoked affiliationChanged instead of superseded. */
	gboolean changes_subject;
} CsKeyWork;

/* Prepare key work on the key named @key_serial (its serial, or its id): present, of the
 * order's vendor, and blank — or the one an earlier attempt of this order initialised;
 * for a renewal (@work->follows_field) the applicant's own key. With @work->provision its
 * SO PIN is sealed first, in this transaction, so a crash never leaves a key whose SO PIN
 * nobody knows. */
gboolean cs_step_prepare_key_work(CsStep *step,
				  const CsKeyWork *work,
				  const char *key_serial,
				  GError **error);
/* From an `after` hook: do the work prepared above on driver threads; the order then takes
 * work->done_action or work->failed_action. */
void cs_step_start_key_work(CsStep *step, const CsKeyWork *work);
/* From an `after` hook: revoke (cessationOfOperation) the valid certificates issued for
 * this order that no key holds — left by key work the daemon's stop or crash cut short —
 * when the order ends without a key. */
void cs_step_revoke_unused_certificates(CsStep *step);

/* ---- creating an order (prepare_order, minor 1) ------------------------------------------ */
const CsRequest *cs_create_get_request(CsCreate *create);
CsSubjectType cs_create_get_subject_type(CsCreate *create);
/* A string field as CreateOrder brought it (or as pre-filled), or NULL. */
const char *cs_create_get_field(CsCreate *create, const char *name);
/* Pre-fill a field (validated like any other afterwards); replaces what the caller sent. */
void cs_create_set_field(CsCreate *create, const char *name, const char *value);
/* Pre-fill, where not set, the flow's fields the subject registry knows for the subject
 * @id_number of the order's subject type (its identity fields), and @contact_field (may
 * be NULL) with the contact phone the registry holds. For flows whose applicant proved to
 * be the subject (logged in on the subject's key). */
gboolean cs_create_prefill_from_registry(CsCreate *create,
					 const char *id_number,
					 const char *contact_field,
					 GError **error);

/* ---- the applicant's key and its certificate (minor 1) -------------------------------------
 * What the daemon knows of the one key inserted on this host and of the certificate it
 * holds, for flows on a key the applicant already has. */
typedef struct {
	char *key;		  /* the key's id, as CreateOrder's `key` field names it */
	char *serial;		  /* the key's serial */
	char *vendor;		  /* the vendor profile the key belongs to */
	gboolean logged_in;	  /* the user logged in (Key.Login) */
	char *certificate_serial; /* upper-case hex; NULL when the key holds no certificate */
	gint64 not_before, not_after;
	/* From this platform's ledger; issued_here FALSE for a certificate another CA issued
	 * (or one of another vendor's CA) — the fields below are then unset. */
	gboolean issued_here;
	char *status; /* "valid" or "revoked" */
	char *revocation_reason;
	char *subject_type; /* "org" / "person" */
	char *id_number;
	char *subject_name;
	char *order_id; /* the order the certificate was issued for */
} CsKeyCertificate;

void cs_key_certificate_clear(CsKeyCertificate *info);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(CsKeyCertificate, cs_key_certificate_clear)
/* The single key inserted (CS_ERROR_NO_KEY when none, CS_ERROR_MULTIPLE_KEYS when more than
 * one, whatever their vendors) and its certificate. */
gboolean cs_create_inspect_key(CsCreate *create, CsKeyCertificate *info, GError **error);
gboolean cs_step_inspect_key(CsStep *step, CsKeyCertificate *info, GError **error);
/* The inspected key is logged in (AccessDenied, naming Login, otherwise). */
gboolean cs_key_certificate_check_login(const CsKeyCertificate *info, GError **error);
/* The inspected key holds a certificate this platform issued and did not revoke
 * (NotEligible, saying which, otherwise); @verb ends "only its own certificates are … here"
 * ("renewed", "changed"). */
gboolean
cs_key_certificate_check_ours(const CsKeyCertificate *info, const char *verb, GError **error);

/* The business clock (seconds since the epoch; test mode may move it, docs/architecture.md §1.2).
 */
gint64 cs_clock_now(void);
/* The renewal window (fewer than 90 days left, or expired at most 365 days): FALSE with
 * CS_ERROR_NOT_ELIGIBLE naming the dates otherwise. */
gboolean cs_validity_renewal_eligible(gint64 old_not_after, gint64 now, GError **error);
/* ---- a key across orders (docs/architecture.md §1.3)
 * ---------------------------------------------------- The order's `key` field names an inserted
 * Key by its D-Bus object path. */

/* From a check hook: exactly one key is inserted (NoKey, MultipleKeys: the manual's "只插一枚
 * UK"), the one the order's `key` field names when it is set; it is of the order's vendor,
 * was made by this platform (its SO PIN is sealed in the vault: NotEligible otherwise,
 * saying so) and holds a certificate of the order's subject (InvalidInput naming `key`
 * otherwise). */
gboolean cs_step_check_key_made_here(CsStep *step, GError **error);
/* From a run hook: record the key's stable id ("<driver>_<serial>") as the order's
 * attribute @attr, so later steps and later orders can name it. */
gboolean cs_step_record_key(CsStep *step, const char *attr, GError **error);
/* The value the latest order recorded for attribute @name (any order, this one included),
 * or NULL when none did (free it). For records named after a key ("verified.<key id>"). */
char *cs_step_find_record(CsStep *step, const char *name, GError **error);
/* How many steps @action were taken since @since_us (microseconds, real time) by orders
 * whose attribute @attr is @value. */
gboolean cs_step_count_steps(CsStep *step,
			     const char *action,
			     const char *attr,
			     const char *value,
			     gint64 since_us,
			     guint *count,
			     GError **error);

/* ---- the authorization code (授权码, docs/architecture.md §1.3 and §6)
 * ------------------------------------- 8 characters of digits and upper-case letters without
 * look-alikes (no 0 O 1 I), bound to the order and the key of attribute @key_attr, valid for
 * [auth_code] lifetime_s (600), single use, at most [auth_code] max_tries (5) wrong tries; only its
 * keyed hash is kept. */

/* From a run hook: a new code (the order's earlier one is replaced), delivered by SMS to
 * @phone, or when @phone is NULL as the memo of a 0.01 CNY transfer to @account. */
gboolean cs_step_send_auth_code(CsStep *step,
				const char *key_attr,
				const char *phone,
				const char *account_name,
				const char *bank_name,
				const char *account,
				GError **error);
/* From a check hook: the secret "code" that came with the step is the order's open code
 * for that key. A wrong one counts a try in its own transaction (CodeInvalid with the
 * tries left, TooManyAttempts, CodeExpired). The code is not used up. */
gboolean cs_step_check_auth_code(CsStep *step, const char *key_attr, GError **error);
/* From a run hook: the order's open code is used up. */
gboolean cs_step_use_auth_code(CsStep *step, GError **error);

/* ---- resetting a key's user PIN with its SO PIN -----------------------------------------------
 */
typedef struct {
	/* Taken as the system once the key's user PIN is the new one and its tries restored. */
	const char *done_action;
	/* Taken as the system, with param reason, when the reset fails (the key pulled, the
	 * driver failed, the SO PIN locked); the reason is kept in the attribute
	 * key_work_error until the next attempt. */
	const char *failed_action;
} CsPinReset;

/* From a check hook: the secret "new_pin" that came with the step follows the vendor's PIN
 * policy (the profile's [pin] group; InvalidInput naming new_pin). */
gboolean cs_step_check_new_pin(CsStep *step, GError **error);
/* From an `after` hook: reset the user PIN of the key of attribute @key_attr to the step's
 * "new_pin" with the key's SO PIN from the vault (SO login + C_InitPIN, or the vendor's
 * unblock) on driver threads; then the order takes reset->done_action or
 * reset->failed_action. The D-Bus call that asked for the step is answered then: done, or
 * the failure (KeyRemoved, NotEligible for a locked SO PIN, …). */
void cs_step_start_pin_reset(CsStep *step, const char *key_attr, const CsPinReset *reset);

/* ---- a certificate found by an order query (minor 2, docs/architecture.md §1.4, §1.6) ------
 */
/* The certificate @serial (hex, any case) of the order's subject type, as FindCertificates
 * shows it — only when the calling D-Bus connection holds the query grant covering the
 * order it was issued for (NotFound otherwise, whether it exists or not). @info gets the
 * certificate's fields (status valid|expired|revoked; no key fields); clear it. */
gboolean cs_create_find_certificate(CsCreate *create,
				    const char *serial,
				    CsKeyCertificate *info,
				    GError **error);
/* Refuse (NotEligible naming @field and the order) while an open order of this flow has
 * @field equal to @value. */
gboolean cs_create_check_no_open_order(CsCreate *create,
				       const char *field,
				       const char *value,
				       GError **error);
/* Pre-fill, where not set, the flow's fields that order @order_id has (its own or an
 * earlier one's: the certificate a replacement replaces was issued for it), and those it
 * lacks from the orders of the same subject's earlier certificates, newest first (a
 * renewal or a change carries only what it asked for). */
gboolean cs_create_prefill_from_order(CsCreate *create, const char *order_id, GError **error);
/* From a run hook: revoke the certificate @serial of the order's subject with CRL @reason,
 * in the step's transaction (it is revoked if and only if the step commits); the vendor's
 * CRL is written once it committed. A certificate revoked already is left as it is. */
gboolean
cs_step_revoke_certificate(CsStep *step, const char *serial, const char *reason, GError **error);

typedef const CsPlugin *(*CsPluginGetFunc)(void);

#define CS_PLUGIN_ENTRY_SYMBOL "certseal_plugin_get"
#define CS_PLUGIN_ABI_MAJOR_SYMBOL "certseal_plugin_abi_major"
#define CS_PLUGIN_ABI_MINOR_SYMBOL "certseal_plugin_abi_minor"

/* Use once in a plugin to export its version integers. */
#define CS_PLUGIN_DEFINE_ABI()                                                                     \
	G_MODULE_EXPORT const int certseal_plugin_abi_major = CS_PLUGIN_ABI_MAJOR;                 \
	G_MODULE_EXPORT const int certseal_plugin_abi_minor = CS_PLUGIN_ABI_MINOR

G_END_DECLS
