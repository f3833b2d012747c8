/*
 * test-engine.c — the order engine with the real `new` plugin and a real ledger file:
 * filling in an application, the steps the plugin declares, who may take them, the
 * subject registry, and what survives a restart.
 */
#include <glib/gstdio.h>
#include <string.h>

#include "cs-engine.h"
#include "cs-keys.h"
#include "cs-loader.h"

typedef struct {
	char *dir;
	CsConfig *config;
	CsVault *vault;
	CsLedger *ledger;
	CsEngine *engine;
	CsLoadedPlugin *plugin;
	GPtrArray *announced; /* "created ID" / "changed ID STATE" */
} Fixture;

static const CsRequest owner = {.actor = CS_ACTOR_DESKTOP, .uid = 1000};
static const CsRequest stranger = {.actor = CS_ACTOR_DESKTOP, .uid = 1001};
static const CsRequest root = {.actor = CS_ACTOR_DESKTOP, .uid = 0};
static const CsRequest reviewer = {
    .actor = CS_ACTOR_REVIEWER, .user_id = "li", .roles = CS_ACTOR_REVIEWER};

static void
assert_strv_joined(GStrv strv, const char *expected)
{
	g_autofree char *joined = g_strjoinv(",", strv);
	g_assert_cmpstr(joined, ==, expected);
}

static void
on_order(CsEngine *engine, CsOrder *order, CsOrderChange change, gpointer user_data)
{
	Fixture *f = user_data;
	g_ptr_array_add(f->announced, change == CS_ORDER_CREATED
					  ? g_strdup_printf("created %s", cs_order_get_id(order))
					  : g_strdup_printf("changed %s %s", cs_order_get_id(order),
							    cs_order_get_state(order)));
}

static void
open_engine(Fixture *f)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *ledger_path = g_build_filename(f->dir, "ledger.db", NULL);

	f->vault = cs_vault_open(f->dir, &error);
	g_assert_no_error(error);
	f->ledger = cs_ledger_open(ledger_path, f->vault, 1000, &error);
	g_assert_no_error(error);
	f->engine = cs_engine_new(f->config, f->ledger);
	g_assert_true(cs_engine_add_plugin(f->engine, f->plugin->plugin, &error));
	g_assert_no_error(error);
	cs_engine_add_listener(f->engine, on_order, f);
}

static void
close_engine(Fixture *f)
{
	g_clear_pointer(&f->engine, cs_engine_free);
	g_clear_pointer(&f->ledger, cs_ledger_free);
	g_clear_pointer(&f->vault, cs_vault_free);
}

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *plugin_path =
	    g_build_filename(g_getenv("CS_BUILD_DIR"), "plugins", "certseal-plugin-new.so", NULL);
	const char *legacy[] = {"91350100M0001TGQXM", NULL};

	f->dir = g_dir_make_tmp("cs-engine-XXXXXX", &error);
	g_assert_no_error(error);
	f->config = cs_config_load(NULL, &error);
	g_assert_no_error(error);
	g_free(f->config->vendor_dir);
	f->config->vendor_dir =
	    g_build_filename(g_getenv("CS_SOURCE_DIR"), "daemon", "vendors.d", NULL);
	g_assert_true(cs_config_load_vendors(f->config, &error));
	g_assert_no_error(error);
	g_strfreev(f->config->legacy_uscc);
	f->config->legacy_uscc = g_strdupv((char **)legacy);
	f->plugin = cs_loader_load_plugin(plugin_path, TRUE, &error);
	g_assert_no_error(error);
	f->announced = g_ptr_array_new_with_free_func(g_free);
	open_engine(f);
}

static void
remove_tree(const char *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		g_autofree char *p = g_build_filename(dir, name, NULL);
		if (g_file_test(p, G_FILE_TEST_IS_DIR))
			remove_tree(p);
		else
			g_unlink(p);
	}
	g_rmdir(dir);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	close_engine(f);
	cs_loaded_plugin_free(f->plugin);
	cs_config_free(f->config);
	g_ptr_array_unref(f->announced);
	remove_tree(f->dir);
	g_free(f->dir);
}

/* A complete org application; @override replaces or adds "key=value" pairs. */
static GVariant *
org_fields(const char *const *override)
{
	g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);

	g_variant_dict_insert(d, "vendor", "s", "demo-a");
	g_variant_dict_insert(d, "auth_method", "s", "legal_rep_phone");
	g_variant_dict_insert(d, "email", "s", "finance@example.com");
	g_variant_dict_insert(d, "address", "s", "厦门市思明区软件园二期望海路 10 号");
	g_variant_dict_insert(d, "postcode", "s", "361008");
	g_variant_dict_insert(d, "org_name", "s", "厦门示例科技有限公司");
	g_variant_dict_insert(d, "uscc", "s", "91350200776049653A");
	g_variant_dict_insert(d, "legal_rep_name", "s", "王五");
	g_variant_dict_insert(d, "legal_rep_id", "s", "11010519491231002X");
	g_variant_dict_insert(d, "legal_rep_phone", "s", "+86 138-0013-8000");
	g_variant_dict_insert(d, "handler_name", "s", "李四");
	g_variant_dict_insert(d, "handler_id", "s", "110105200002290021");
	g_variant_dict_insert(d, "handler_phone", "s", "13900139000");
	g_variant_dict_insert(d, "handler_auth_method", "s", "handler_phone");
	for (guint i = 0; override != NULL && override[i] != NULL; i++) {
		g_auto(GStrv) kv = g_strsplit(override[i], "=", 2);
		if (kv[1] == NULL)
			g_variant_dict_remove(d, kv[0]);
		else
			g_variant_dict_insert(d, kv[0], "s", kv[1]);
	}
	return g_variant_ref_sink(g_variant_dict_end(d));
}

static CsOrder *
create_org(Fixture *f, const char *const *override, GError **error)
{
	g_autoptr(GVariant) fields = org_fields(override);
	return cs_engine_create_order(f->engine, &owner, "new", "org", fields, error);
}

static void
test_create_draft(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	const char *lower_x[] = {"legal_rep_id=11010519491231002x", NULL};
	CsOrder *order = create_org(f, lower_x, &error);
	g_auto(GStrv) next = NULL;
	g_auto(GStrv) missing = NULL;

	g_assert_no_error(error);
	g_assert_true(g_str_has_prefix(cs_order_get_id(order), "CS"));
	g_assert_cmpuint(strlen(cs_order_get_id(order)), ==, 16);
	g_assert_cmpstr(cs_order_get_state(order), ==, "draft");
	g_assert_cmpstr(cs_order_get_vendor(order), ==, "demo-a");
	/* Stored normalised: +86 and dashes stripped, check letter upper-cased. */
	g_assert_cmpstr(cs_order_get_field(order, "legal_rep_phone"), ==, "13800138000");
	g_assert_cmpstr(cs_order_get_field(order, "legal_rep_id"), ==, "11010519491231002X");
	next = cs_engine_next_actions(f->engine, order);
	assert_strv_joined(next, "Update,Confirm,Cancel");
	missing = cs_engine_missing_fields(f->engine, order);
	g_assert_cmpuint(g_strv_length(missing), ==, 0);
	g_clear_pointer(&missing, g_strfreev);
	/* Complete fields: what remains are the org's required materials. */
	missing = cs_engine_missing(f->engine, order);
	assert_strv_joined(missing, "business_license,handler_id_front,handler_id_back,seal_form");
	g_assert_cmpuint(cs_engine_amount_fen(f->engine, order), ==, 30000);
	g_assert_cmpuint(f->announced->len, ==, 1);
	g_assert_true(g_str_has_prefix(g_ptr_array_index(f->announced, 0), "created CS"));
}

static void
assert_invalid(Fixture *f,
	       const char *kind,
	       const char *subject,
	       const char *const *override,
	       const char *message_prefix)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) fields = org_fields(override);
	g_autoptr(GPtrArray) before = cs_engine_list_order_ids(f->engine, NULL);
	g_autoptr(GPtrArray) after = NULL;
	CsOrder *order = cs_engine_create_order(f->engine, &owner, kind, subject, fields, &error);

	g_assert_null(order);
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	if (!g_str_has_prefix(error->message, message_prefix))
		g_error("expected '%s…', got '%s'", message_prefix, error->message);
	/* Nothing was recorded. */
	after = cs_engine_list_order_ids(f->engine, NULL);
	g_assert_cmpuint(before->len, ==, after->len);
}

static void
test_invalid_input_names_field(Fixture *f, gconstpointer data)
{
	const char *bad_uscc[] = {"uscc=91350200776049653B", NULL};
	const char *bad_id[] = {"legal_rep_id=110105194912310021", NULL};
	const char *no_such_day[] = {"handler_id=110105194902290029", NULL};
	const char *bad_phone[] = {"handler_phone=12345", NULL};
	const char *bad_method[] = {"auth_method=phone", NULL}; /* a person's method */
	const char *control[] = {"org_name=示例\001公司", NULL};
	const char *unknown[] = {"shoe_size=42", NULL};
	const char *bad_vendor[] = {"vendor=acme", NULL};

	assert_invalid(f, "new", "org", bad_uscc, "uscc: ");
	assert_invalid(f, "new", "org", bad_id, "legal_rep_id: ");
	assert_invalid(f, "new", "org", no_such_day, "handler_id: ");
	assert_invalid(f, "new", "org", bad_phone, "handler_phone: ");
	assert_invalid(f, "new", "org", bad_method, "auth_method: must be one of legal_rep_phone");
	assert_invalid(f, "new", "org", control, "org_name: ");
	assert_invalid(f, "new", "org", unknown, "shoe_size: not a field of a new org order");
	assert_invalid(f, "new", "org", bad_vendor, "vendor: no vendor profile named 'acme'");
	assert_invalid(f, "renew2", "org", NULL, "kind: no flow 'renew2' (available: new)");
	assert_invalid(f, "new", "company", NULL, "subject_type: must be 'org' or 'person'");
}

static void
test_non_string_refused(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);
	g_autoptr(GVariant) fields = NULL;

	g_variant_dict_insert(d, "org_name", "i", 42);
	fields = g_variant_ref_sink(g_variant_dict_end(d));
	g_assert_null(cs_engine_create_order(f->engine, &owner, "new", "org", fields, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_cmpstr(error->message, ==, "org_name: must be a string, not 'i'");
}

static void
test_legacy_uscc_only_when_listed(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	const char *legacy[] = {"uscc=91350100M0001TGQXM", NULL};
	CsOrder *order = create_org(f, legacy, &error);

	g_assert_no_error(error);
	g_assert_cmpstr(cs_order_get_field(order, "uscc"), ==, "91350100M0001TGQXM");
	g_clear_pointer(&f->config->legacy_uscc, g_strfreev);
	g_assert_null(create_org(f, legacy, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
}

static void
test_confirm_refused_while_fields_missing(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	const char *partial[] = {"email", "postcode", NULL};
	CsOrder *order = create_org(f, partial, &error);
	g_auto(GStrv) missing = NULL;

	g_assert_no_error(error);
	missing = cs_engine_missing_fields(f->engine, order);
	assert_strv_joined(missing, "email,postcode");
	g_clear_pointer(&missing, g_strfreev);
	missing = cs_engine_missing(f->engine, order);
	assert_strv_joined(missing, "email,postcode,business_license,handler_id_front,"
				    "handler_id_back,seal_form");
	g_assert_false(cs_engine_act(f->engine, &owner, order, "confirm", &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_cmpstr(error->message, ==, "fields: still missing email, postcode");
	g_assert_cmpstr(cs_order_get_state(order), ==, "draft");
}

static void
test_confirm_needs_auth_details(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	const char *transfer[] = {"auth_method=corporate_account", "bank_name=中国工商银行", NULL};
	CsOrder *order = create_org(f, transfer, &error);
	g_autoptr(GVariant) account = NULL;
	g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);

	g_assert_no_error(error);
	g_assert_false(cs_engine_act(f->engine, &owner, order, "confirm", &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_cmpstr(error->message, ==,
			"bank_account: required when auth_method is corporate_account");
	g_clear_error(&error);
	g_variant_dict_insert(d, "bank_account", "s", "4100 0212 0900 1234 567");
	account = g_variant_ref_sink(g_variant_dict_end(d));
	g_assert_true(cs_engine_update_order(f->engine, &owner, order, account, &error));
	g_assert_no_error(error);
	g_assert_true(cs_engine_act(f->engine, &owner, order, "confirm", &error));
	g_assert_no_error(error);
}

static void
test_steps_and_states(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	CsOrder *order = create_org(f, NULL, &error);
	g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);
	g_autoptr(GVariant) change = NULL;
	g_autoptr(GPtrArray) events = NULL;
	g_auto(GStrv) next = NULL;

	g_variant_dict_insert(d, "email", "s", "it@example.com");
	change = g_variant_ref_sink(g_variant_dict_end(d));
	g_assert_true(cs_engine_update_order(f->engine, &owner, order, change, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(cs_order_get_field(order, "email"), ==, "it@example.com");

	g_assert_true(cs_engine_act(f->engine, &owner, order, "confirm", &error));
	g_assert_no_error(error);
	g_assert_cmpstr(cs_order_get_state(order), ==, "confirmed");
	next = cs_engine_next_actions(f->engine, order);
	assert_strv_joined(next, "AttachMaterial,Submit,Cancel");

	/* 返回修改 is over once confirmed. */
	g_assert_false(cs_engine_update_order(f->engine, &owner, order, change, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_WRONG_STATE);
	g_clear_error(&error);
	g_assert_false(cs_engine_act(f->engine, &owner, order, "confirm", &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_WRONG_STATE);
	g_assert_cmpstr(strstr(error->message, "possible only when draft"), !=, NULL);
	g_clear_error(&error);

	g_assert_true(cs_engine_act(f->engine, &owner, order, "cancel", &error));
	g_assert_cmpstr(cs_order_get_state(order), ==, "cancelled");
	g_assert_false(cs_engine_act(f->engine, &owner, order, "cancel", &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_WRONG_STATE);
	g_clear_error(&error);
	g_assert_false(cs_engine_act(f->engine, &owner, order, "fly", &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_WRONG_STATE);
	g_assert_cmpstr(error->message, ==, "a new order has no step 'fly'");
	g_clear_error(&error);
	g_assert_false(cs_engine_act(f->engine, &owner, order, "ship", &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_WRONG_STATE);
	g_assert_cmpstr(strstr(error->message, "is cancelled: 'ship' is possible only when made"),
			!=, NULL);
	g_clear_error(&error);

	/* Each step is one event, with its actor, in order. */
	events = cs_engine_history(f->engine, order, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(events->len, ==, 4);
	{
		const char *kinds[] = {"created", "updated", "confirm", "cancel"};
		const char *to[] = {"draft", "draft", "confirmed", "cancelled"};
		for (guint i = 0; i < 4; i++) {
			CsEventRow *e = g_ptr_array_index(events, i);
			g_assert_cmpstr(e->kind, ==, kinds[i]);
			g_assert_cmpstr(e->to, ==, to[i]);
			g_assert_cmpstr(e->actor, ==, "uid:1000");
			/* Field values never enter the chain, only their names. */
			g_assert_null(strstr(e->data, "it@example.com"));
		}
	}
	g_assert_cmpuint(f->announced->len, ==, 4);
	g_assert_true(g_str_has_suffix(g_ptr_array_index(f->announced, 3), " cancelled"));
}

static void
test_actor_and_owner_checked(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	CsOrder *order = create_org(f, NULL, &error);

	g_assert_false(cs_engine_act(f->engine, &stranger, order, "confirm", &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED);
	g_clear_error(&error);
	g_assert_false(cs_engine_act(f->engine, &reviewer, order, "confirm", &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED);
	{
		g_autofree char *expected =
		    g_strdup_printf("office:li may not confirm order %s", cs_order_get_id(order));
		g_assert_cmpstr(error->message, ==, expected);
	}
	g_clear_error(&error);
	g_assert_cmpstr(cs_order_get_state(order), ==, "draft");
	g_assert_true(cs_engine_act(f->engine, &root, order, "confirm", &error));
	g_assert_no_error(error);
}

static void
test_registry_identity_read_only(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	CsOrder *first = create_org(f, NULL, &error);
	const char *renamed[] = {"org_name=厦门另一家公司", NULL};
	const char *bare[] = {"org_name", "legal_rep_name", "legal_rep_id", NULL};
	CsOrder *second;

	g_assert_no_error(error);
	/* Unknown subject: anything valid goes. */
	g_assert_nonnull(create_org(f, renamed, &error));
	g_assert_no_error(error);

	g_assert_true(cs_engine_record_subject(f->engine, first, &error));
	g_assert_no_error(error);

	g_assert_null(create_org(f, renamed, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_cmpstr(
	    error->message, ==,
	    "org_name: differs from the registered subject; change it through a change order");
	g_clear_error(&error);

	/* The applicant who applied for the subject before gets its identity pre-filled,
	 * read-only as always. */
	{
		CsOrder *again = create_org(f, bare, &error);
		g_assert_no_error(error);
		g_assert_cmpstr(cs_order_get_field(again, "org_name"), ==, "厦门示例科技有限公司");
		g_assert_cmpstr(cs_order_get_field(again, "legal_rep_name"), ==, "王五");
		g_assert_cmpstr(cs_order_get_field(again, "legal_rep_id"), ==,
				"11010519491231002X");
	}

	/* Knowing the USCC is no proof of being the subject: nothing registered is copied
	 * into a stranger's draft, the fields stay missing. */
	{
		g_autoptr(GVariant) fields = org_fields(bare);
		second = cs_engine_create_order(f->engine, &stranger, "new", "org", fields, &error);
	}
	g_assert_no_error(error);
	g_assert_null(cs_order_get_field(second, "org_name"));
	g_assert_null(cs_order_get_field(second, "legal_rep_id"));
	{
		g_auto(GStrv) missing = cs_engine_missing_fields(f->engine, second);
		assert_strv_joined(missing, "org_name,legal_rep_name,legal_rep_id");
	}
	{
		/* Filling them in with the registered values is accepted. */
		g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);
		g_autoptr(GVariant) same = NULL;
		g_variant_dict_insert(d, "org_name", "s", "厦门示例科技有限公司");
		g_variant_dict_insert(d, "legal_rep_name", "s", "王五");
		g_variant_dict_insert(d, "legal_rep_id", "s", "11010519491231002X");
		same = g_variant_ref_sink(g_variant_dict_end(d));
		g_assert_true(cs_engine_update_order(f->engine, &stranger, second, same, &error));
		g_assert_no_error(error);
	}

	/* And cannot be changed later in the draft either. */
	{
		g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);
		g_autoptr(GVariant) change = NULL;
		g_variant_dict_insert(d, "legal_rep_name", "s", "赵六");
		change = g_variant_ref_sink(g_variant_dict_end(d));
		g_assert_false(
		    cs_engine_update_order(f->engine, &stranger, second, change, &error));
		g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
		g_assert_true(g_str_has_prefix(error->message, "legal_rep_name: differs"));
		g_assert_cmpstr(cs_order_get_field(second, "legal_rep_name"), ==, "王五");
	}
}

static void
test_luhn_is_a_warning(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	const char *card[] = {"auth_method=legal_rep_bank_card", "bank_card=6222020200000000001",
			      NULL};
	CsOrder *order = create_org(f, card, &error);
	g_auto(GStrv) warnings = NULL;

	g_assert_no_error(error);
	warnings = cs_engine_warnings(f->engine, order);
	g_assert_cmpuint(g_strv_length(warnings), ==, 1);
	g_assert_true(g_str_has_prefix(warnings[0], "bank_card: fails the Luhn check"));
}

static void
test_restart_keeps_orders(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	CsOrder *order = create_org(f, NULL, &error);
	g_autofree char *id = g_strdup(cs_order_get_id(order));
	g_autoptr(GPtrArray) events = NULL;
	gint64 bad = 0, checked = 0;

	g_assert_true(cs_engine_act(f->engine, &owner, order, "confirm", &error));
	close_engine(f);
	open_engine(f);

	order = cs_engine_get_order(f->engine, id, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(cs_order_get_state(order), ==, "confirmed");
	g_assert_cmpuint(cs_order_get_owner_uid(order), ==, 1000);
	g_assert_cmpstr(cs_order_get_field(order, "org_name"), ==, "厦门示例科技有限公司");
	events = cs_engine_history(f->engine, order, &error);
	g_assert_cmpuint(events->len, ==, 2);
	g_assert_true(cs_ledger_verify(f->ledger, 1, &bad, &checked, &error));
	g_assert_no_error(error);
	g_assert_cmpint(checked, ==, 2);

	g_assert_null(cs_engine_get_order(f->engine, "CS20990101999999", &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_NOT_FOUND);
}

static void
test_transient_states_fall_back(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) empty = g_variant_ref_sink(g_variant_new("a{sv}", NULL));
	g_autofree char *making = NULL;
	g_autofree char *downloading = NULL;
	guint n = 0;
	gint64 now = g_get_real_time();

	/* Orders a crash left mid-way. The flow declares making → approved; "downloading" is
	 * no state of the new flow, so such an order is nobody's to recover and stays. */
	g_assert_true(cs_ledger_begin(f->ledger, &error));
	g_assert_true(cs_ledger_insert_order(f->ledger, "new", "org", "demo-a", "making", 1000,
					     empty, now, &making, &error));
	g_assert_true(cs_ledger_append_event(f->ledger, making, "make", "approved", "making",
					     "office:maker", NULL, now, NULL, &error));
	g_assert_true(cs_ledger_insert_order(f->ledger, "new", "person", "demo-b", "downloading",
					     1000, empty, now, &downloading, &error));
	g_assert_true(cs_ledger_append_event(f->ledger, downloading, "download", "downloadable",
					     "downloading", "uid:1000", NULL, now, NULL, &error));
	g_assert_true(cs_ledger_commit(f->ledger, &error));
	g_assert_no_error(error);

	close_engine(f);
	open_engine(f);
	g_assert_true(cs_engine_recover(f->engine, &n, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(n, ==, 1);
	g_assert_cmpstr(cs_order_get_state(cs_engine_get_order(f->engine, making, NULL)), ==,
			"approved");
	g_assert_cmpstr(cs_order_get_state(cs_engine_get_order(f->engine, downloading, NULL)), ==,
			"downloading");
	{
		g_autoptr(GPtrArray) events = cs_engine_history(
		    f->engine, cs_engine_get_order(f->engine, making, NULL), NULL);
		CsEventRow *last = g_ptr_array_index(events, events->len - 1);
		g_assert_cmpstr(last->kind, ==, "recovered");
		g_assert_cmpstr(last->from, ==, "making");
		g_assert_cmpstr(last->actor, ==, "system");
	}
	/* A second start finds nothing left to recover. */
	g_assert_true(cs_engine_recover(f->engine, &n, &error));
	g_assert_cmpuint(n, ==, 0);
}

static gboolean
attach(Fixture *f,
       const CsRequest *req,
       CsOrder *order,
       const char *kind,
       const char *content,
       GError **error)
{
	g_autofree char *sha = NULL;

	/* The front stores the checked content first; the engine records it. */
	g_assert_true(cs_blobs_put(cs_ledger_get_blobs(f->ledger), (const guint8 *)content,
				   strlen(content), &sha, NULL));
	return cs_engine_attach_material(f->engine, req, order, kind, "scan.png", "image/png", sha,
					 (gint64)strlen(content), error);
}

/* Materials: where, what and by whom; Missing shrinks; the event holds no content. */
static void
test_materials(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	CsOrder *order = create_org(f, NULL, &error);
	g_autoptr(GPtrArray) events = NULL;
	g_autoptr(GPtrArray) listed = NULL;
	g_auto(GStrv) missing = NULL;
	g_auto(GStrv) next = NULL;
	CsEventRow *last;

	g_assert_no_error(error);
	/* Not in a draft. */
	g_assert_false(attach(f, &owner, order, "business_license", "SECRET-CONTENT-1", &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_WRONG_STATE);
	g_clear_error(&error);
	g_assert_true(cs_engine_act(f->engine, &owner, order, "confirm", &error));
	next = cs_engine_next_actions(f->engine, order);
	assert_strv_joined(next, "AttachMaterial,Submit,Cancel");
	/* A kind of the other subject type, an unknown kind: refused naming kind. */
	g_assert_false(attach(f, &owner, order, "id_front", "x", &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_true(g_str_has_prefix(error->message, "kind: "));
	g_clear_error(&error);
	/* Nobody but the owner (or root) and the applicant's front. */
	g_assert_false(attach(f, &stranger, order, "business_license", "x", &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED);
	g_clear_error(&error);
	g_assert_false(attach(f, &reviewer, order, "business_license", "x", &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED);
	g_clear_error(&error);

	g_assert_true(attach(f, &owner, order, "business_license", "SECRET-CONTENT-1", &error));
	g_assert_no_error(error);
	g_assert_true(attach(f, &owner, order, "business_license", "SECRET-CONTENT-2", &error));
	g_assert_true(attach(f, &owner, order, "seal_image", "SECRET-CONTENT-3", &error));
	g_assert_no_error(error);
	missing = cs_engine_missing(f->engine, order);
	assert_strv_joined(missing, "handler_id_front,handler_id_back,seal_form");
	listed = cs_engine_list_materials(f->engine, order, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(listed->len, ==, 2);
	g_assert_cmpstr(((CsMaterialRow *)g_ptr_array_index(listed, 0))->kind, ==,
			"business_license");
	g_assert_cmpint(((CsMaterialRow *)g_ptr_array_index(listed, 0))->size, ==, 16);
	events = cs_engine_history(f->engine, order, &error);
	g_assert_no_error(error);
	last = g_ptr_array_index(events, events->len - 2);
	g_assert_cmpstr(last->kind, ==, "material");
	g_assert_cmpstr(last->actor, ==, "uid:1000");
	g_assert_true(g_str_has_prefix(last->data, "{\"kind\":\"business_license\",\"mime\":"
						   "\"image/png\",\"sha256\":\""));
	for (guint i = 0; i < events->len; i++) {
		CsEventRow *e = g_ptr_array_index(events, i);
		g_assert_null(strstr(e->data, "SECRET-CONTENT"));
	}
	/* Announced each time (create, confirm, 3 materials). */
	g_assert_cmpuint(f->announced->len, ==, 5);
}

/* The renew flow's preconditions at CreateOrder, before anything else: no key, several keys
 * (whatever their vendors), the key not logged in; each its own error, nothing recorded. */
static void
test_renew_preconditions(Fixture *f, gconstpointer data)
{
	g_autofree char *path =
	    g_build_filename(g_getenv("CS_BUILD_DIR"), "plugins", "certseal-plugin-renew.so", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(CsLoadedPlugin) renew = cs_loader_load_plugin(path, TRUE, &error);
	g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);
	g_autoptr(GVariant) fields = NULL;
	g_autoptr(GPtrArray) ids = NULL;
	CsKeys *keys = cs_keys_new();

	g_assert_no_error(error);
	g_assert_true(cs_engine_add_plugin(f->engine, renew->plugin, &error));
	g_variant_dict_insert(d, "email", "s", "ops@example.cn");
	fields = g_variant_ref_sink(g_variant_dict_end(d));
	/* No key manager at all: Unavailable, naming the key. */
	g_assert_null(cs_engine_create_order(f->engine, &owner, "renew", "org", fields, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_UNAVAILABLE);
	g_clear_error(&error);
	cs_engine_set_services(f->engine, f->vault, NULL, keys);
	g_assert_null(cs_engine_create_order(f->engine, &owner, "renew", "org", fields, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_NO_KEY);
	g_clear_error(&error);
	cs_keys_update_for_test(keys, "demo-a", "S1");
	g_assert_null(cs_engine_create_order(f->engine, &owner, "renew", "org", fields, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_ACCESS_DENIED);
	g_assert_nonnull(strstr(error->message, "Login"));
	g_clear_error(&error);
	cs_keys_update_for_test(keys, "demo-b", "S2");
	g_assert_null(cs_engine_create_order(f->engine, &owner, "renew", "org", fields, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_MULTIPLE_KEYS);
	g_clear_error(&error);
	ids = cs_engine_list_order_ids(f->engine, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(ids->len, ==, 0);
	cs_engine_set_services(f->engine, NULL, NULL, NULL);
	cs_keys_free(keys);
	close_engine(f); /* before the plugin it holds goes */
}

/* --- a flow's own guard, and a step carrying secrets ----------------------------------- */

static gboolean
flagged(CsOrder *order)
{
	return g_strcmp0(cs_order_get_field(order, "flag"), "yes") == 0;
}

static gboolean
check_secret(CsStep *step, GError **error)
{
	if (g_strcmp0(cs_step_get_secret(step, "pin"), "246810") == 0)
		return TRUE;
	g_set_error_literal(error, CS_ERROR, CS_ERROR_INVALID_INPUT, "pin: wrong");
	return FALSE;
}

static const char *const guard_states[] = {"start", "flagged", "plain", "done", NULL};
static const char *const guard_terminal[] = {"done", NULL};
static const CsFieldSpec guard_fields[] = {{"flag", CS_FIELD_TEXT, CS_SUBJECT_ANY}};
static const CsTransition guard_transitions[] = {
    {"go", "start", "flagged", CS_ACTOR_DESKTOP, 0, NULL, NULL, NULL, NULL, NULL, flagged},
    {"go", "start", "plain", CS_ACTOR_DESKTOP},
    {"finish", "flagged", "done", CS_ACTOR_DESKTOP, 0, NULL, NULL, check_secret},
};
static const CsPlugin guard_plugin = {
    .kind = "guarded",
    .summary = "a test flow",
    .initial_state = "start",
    .states = guard_states,
    .terminal_states = guard_terminal,
    .transitions = guard_transitions,
    .n_transitions = G_N_ELEMENTS(guard_transitions),
    .fields = guard_fields,
    .n_fields = G_N_ELEMENTS(guard_fields),
};

static void
count_reply(const GError *error, gpointer user_data)
{
	guint *replies = user_data;

	g_assert_no_error(error);
	(*replies)++;
}

static CsOrder *
guarded_order(Fixture *f, const char *flag)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);
	CsOrder *order;

	if (flag != NULL)
		g_variant_dict_insert(d, "flag", "s", flag);
	order = cs_engine_create_order(f->engine, &owner, "guarded", "person",
				       g_variant_dict_end(d), &error);
	g_assert_no_error(error);
	return order;
}

static void
test_guard_and_secrets(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GHashTable) secrets = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GPtrArray) history = NULL;
	CsOrder *plain, *order;
	guint replies = 0;

	g_assert_true(cs_engine_add_plugin(f->engine, &guard_plugin, &error));
	g_assert_no_error(error);
	/* The flow's guard passes over the first "go" unless the order is flagged. */
	plain = guarded_order(f, NULL);
	g_assert_true(cs_engine_act(f->engine, &owner, plain, "go", &error));
	g_assert_cmpstr(cs_order_get_state(plain), ==, "plain");
	order = guarded_order(f, "yes");
	g_assert_true(cs_engine_act(f->engine, &owner, order, "go", &error));
	g_assert_cmpstr(cs_order_get_state(order), ==, "flagged");
	/* A refused step with secrets answers nobody; a taken one answers once. */
	g_hash_table_insert(secrets, "pin", "135790");
	g_assert_false(cs_engine_act_with_secrets(f->engine, &owner, order, "finish", NULL, secrets,
						  count_reply, &replies, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_clear_error(&error);
	g_assert_cmpuint(replies, ==, 0);
	g_hash_table_insert(secrets, "pin", "246810");
	g_assert_true(cs_engine_act_with_secrets(f->engine, &owner, order, "finish", NULL, secrets,
						 count_reply, &replies, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(replies, ==, 1);
	g_assert_cmpstr(cs_order_get_state(order), ==, "done");
	/* The secrets are in no event. */
	history = cs_engine_history(f->engine, order, &error);
	g_assert_no_error(error);
	for (guint i = 0; i < history->len; i++) {
		const CsEventRow *e = g_ptr_array_index(history, i);
		g_assert_null(strstr(e->data, "246810"));
		g_assert_null(strstr(e->data, "135790"));
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
	ADD("/new/org/fill-in-creates-draft", test_create_draft);
	ADD("/new/org/invalid-input-names-the-field", test_invalid_input_names_field);
	ADD("/new/org/non-string-field-refused", test_non_string_refused);
	ADD("/new/org/legacy-uscc-only-when-listed", test_legacy_uscc_only_when_listed);
	ADD("/new/org/confirm-refused-while-fields-missing",
	    test_confirm_refused_while_fields_missing);
	ADD("/new/org/confirm-needs-the-auth-method-details", test_confirm_needs_auth_details);
	ADD("/new/org/update-confirm-cancel", test_steps_and_states);
	ADD("/new/org/only-owner-and-desktop-confirm", test_actor_and_owner_checked);
	ADD("/new/org/bank-card-luhn-is-a-warning", test_luhn_is_a_warning);
	ADD("/new/org/materials", test_materials);
	ADD("/engine/registry/identity-fields-read-only-and-not-disclosed",
	    test_registry_identity_read_only);
	ADD("/engine/restart/orders-and-history-kept", test_restart_keeps_orders);
	ADD("/engine/restart/transient-states-fall-back", test_transient_states_fall_back);
	ADD("/renew/preconditions-refused-each-with-its-error", test_renew_preconditions);
	ADD("/engine/steps/a-flow-guard-and-secrets-never-recorded", test_guard_and_secrets);
	return g_test_run();
}
