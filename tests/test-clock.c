/*
 * test-clock.c — the business clock: CERTSEAL_TEST_NOW's two syntaxes taken as an offset,
 * honoured in test mode only, a malformed value refused, and time running on from the
 * moved instant.
 */
#include <string.h>

#include "certseal/plugin.h"
#include "cs-clock.h"

#define DAY_US (G_GINT64_CONSTANT(86400) * G_USEC_PER_SEC)

/* What the clock logged ("WARNING …" / "INFO …"): it logs structured, so capture the writer. */
static GPtrArray *logged;

static GLogWriterOutput
capture_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
	for (gsize i = 0; i < n_fields; i++) {
		if (g_strcmp0(fields[i].key, "MESSAGE") == 0)
			g_ptr_array_add(
			    logged, g_strdup_printf(
					"%s %s", (level & G_LOG_LEVEL_WARNING) ? "WARNING" : "INFO",
					(const char *)fields[i].value));
	}
	return G_LOG_WRITER_HANDLED;
}

static gboolean
logged_matching(const char *pattern)
{
	for (guint i = 0; i < logged->len; i++) {
		if (g_pattern_match_simple(pattern, g_ptr_array_index(logged, i)))
			return TRUE;
	}
	return FALSE;
}

static void
test_day_offsets(void)
{
	g_autoptr(GError) error = NULL;
	gint64 off = 1;

	g_assert_true(cs_clock_parse_offset("+300d", 1000, &off, &error));
	g_assert_no_error(error);
	g_assert_cmpint(off, ==, 300 * DAY_US);
	g_assert_true(cs_clock_parse_offset("-30d", 1000, &off, &error));
	g_assert_cmpint(off, ==, -30 * DAY_US);
	g_assert_true(cs_clock_parse_offset(NULL, 1000, &off, &error));
	g_assert_cmpint(off, ==, 0);
}

static void
test_iso_instant(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GDateTime) at = g_date_time_new_utc(2027, 10, 1, 9, 0, 0);
	gint64 real = (g_date_time_to_unix(at) - 3600) * G_USEC_PER_SEC;
	gint64 off = 0;

	g_assert_true(cs_clock_parse_offset("2027-10-01T09:00:00Z", real, &off, &error));
	g_assert_no_error(error);
	g_assert_cmpint(off, ==, G_GINT64_CONSTANT(3600) * G_USEC_PER_SEC);
	/* No zone: UTC. */
	g_assert_true(cs_clock_parse_offset("2027-10-01T09:00:00", real, &off, &error));
	g_assert_cmpint(off, ==, G_GINT64_CONSTANT(3600) * G_USEC_PER_SEC);
	g_assert_true(cs_clock_parse_offset("2027-10-01T17:00:00+08:00", real, &off, &error));
	g_assert_cmpint(off, ==, G_GINT64_CONSTANT(3600) * G_USEC_PER_SEC);
}

static void
test_malformed(void)
{
	const char *bad[] = {"tomorrow", "+30", "30d", "+d", "+3x", "2027-13-01T00:00:00Z"};
	gint64 off = 0;

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		g_assert_false(cs_clock_parse_offset(bad[i], 0, &off, &error));
		g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
		g_assert_nonnull(strstr(error->message, CS_CLOCK_ENV));
	}
	/* Refused at start-up in test mode, so a test never runs on the wrong date. */
	{
		g_autoptr(GError) error = NULL;
		g_assert_false(cs_clock_init(TRUE, "tomorrow", &error));
		g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	}
}

static void
test_test_mode_only(void)
{
	g_autoptr(GError) error = NULL;
	gint64 before, after;

	g_assert_true(cs_clock_init(FALSE, "+300d", &error));
	g_assert_true(logged_matching("WARNING *" CS_CLOCK_ENV "*test_mode is off*"));
	g_assert_cmpint(cs_clock_get_offset(), ==, 0);

	g_assert_true(cs_clock_init(TRUE, "+300d", &error));
	g_assert_no_error(error);
	g_assert_true(logged_matching("INFO test mode: " CS_CLOCK_ENV "=+300d moves *"));
	g_assert_cmpint(cs_clock_get_offset(), ==, 300 * DAY_US);
	/* An offset: the moved clock keeps running with the real one. */
	before = cs_clock_now_us() - g_get_real_time();
	g_usleep(2000);
	after = cs_clock_now_us() - g_get_real_time();
	g_assert_cmpint(ABS(after - before), <, G_USEC_PER_SEC);
	g_assert_cmpint(cs_clock_now(), >=, g_get_real_time() / G_USEC_PER_SEC + 300 * 86400 - 1);

	g_assert_true(cs_clock_init(TRUE, NULL, &error));
	g_assert_cmpint(cs_clock_get_offset(), ==, 0);
}

int
main(int argc, char **argv)
{
	int rc;

	logged = g_ptr_array_new_with_free_func(g_free);
	g_log_set_writer_func(capture_writer, NULL, NULL);
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/clock/test-now/day-offsets", test_day_offsets);
	g_test_add_func("/clock/test-now/iso-instant", test_iso_instant);
	g_test_add_func("/clock/test-now/malformed-refused", test_malformed);
	g_test_add_func("/clock/test-now/test-mode-only", test_test_mode_only);
	rc = g_test_run();
	g_ptr_array_unref(logged);
	return rc;
}
