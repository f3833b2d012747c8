/*
 * test-validate.c — unit tests of the field validators (daemon/base/cs-validate.c).
 *
 * The vectors come from docs/architecture.md §9. Besides accepting and refusing, every refusal is
 * checked to be CS_ERROR_INVALID_INPUT with the expected reason, and the reason is checked not to
 * repeat the value, because the values are personal data.
 */
#include <string.h>

#include "certseal/plugin.h"
#include "cs-crypto.h"
#include "cs-pin-policy.h"
#include "cs-validate.h"

#define TODAY "2026-11-24"

/* Asserts a refusal with @reason in the message and none of @value in it. */
#define assert_refused(ok, error, reason, value)                                                   \
	G_STMT_START                                                                               \
	{                                                                                          \
		g_assert_false(ok);                                                                \
		g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);                           \
		g_assert_nonnull(strstr((error)->message, reason));                                \
		g_assert_true(message_omits((error)->message, value));                             \
		g_clear_error(&(error));                                                           \
	}                                                                                          \
	G_STMT_END

/* Whether @message leaves out @value (values shorter than 4 could match by chance). */
static gboolean
message_omits(const char *message, const char *value)
{
	return value == NULL || strlen(value) < 4 || strstr(message, value) == NULL;
}

/* A resident ID with the right check character for @first17 (to build boundary cases). */
static char *
resident_id_with_check(const char *first17)
{
	static const guint weights[] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
	guint sum = 0;

	g_assert_cmpuint(strlen(first17), ==, 17);
	for (guint i = 0; i < 17; i++)
		sum += (guint)(first17[i] - '0') * weights[i];
	return g_strdup_printf("%s%c", first17, "10X98765432"[sum % 11]);
}

static void
test_uscc_valid(void)
{
	const char *valid[] = {"91350200776049653A", "91440101MA5CJQ4N59", "913502000728319549"};

	for (guint i = 0; i < G_N_ELEMENTS(valid); i++) {
		g_autoptr(GError) error = NULL;

		g_assert_true(cs_validate_uscc(valid[i], NULL, &error));
		g_assert_no_error(error);
	}
}

static void
test_uscc_bad_check(void)
{
	GError *error = NULL;
	gboolean ok;

	ok = cs_validate_uscc("91350200776049653B", NULL, &error);
	assert_refused(ok, error, "bad check character", "91350200776049653B");
	/* One character changed anywhere is caught. */
	ok = cs_validate_uscc("91350200776049663A", NULL, &error);
	assert_refused(ok, error, "bad check character", "91350200776049663A");
}

static void
test_uscc_bad_format(void)
{
	const char *bad[] = {
	    "91350200776049653a",  /* lowercase is refused, not normalised */
	    "9135020077604965",	   /* too short */
	    "91350200776049653AA", /* too long */
	    "9135020077604965IA",  /* I is not in the charset */
	    "9135020077604965OA",  "9135020077604965SA", "9135020077604965VA",
	    "9135020077604965ZA",  "91350200776049 53A", "",
	};
	GError *error = NULL;
	gboolean ok;

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		ok = cs_validate_uscc(bad[i], NULL, &error);
		assert_refused(ok, error, bad[i][0] == '\0' ? "empty" : "18 characters", bad[i]);
	}
	ok = cs_validate_uscc(NULL, NULL, &error);
	assert_refused(ok, error, "empty", NULL);
}

static void
test_uscc_legacy_only_when_listed(void)
{
	const char *const listed[] = {"91440101MA5CJQ4N50", "91350100M0001TGQXM", NULL};
	const char *const others[] = {"91440101MA5CJQ4N50", NULL};
	const char *const lowercase[] = {"91350100m0001tgqxm", NULL};
	GError *error = NULL;
	gboolean ok;

	ok = cs_validate_uscc("91350100M0001TGQXM", NULL, &error);
	assert_refused(ok, error, "bad check character", "91350100M0001TGQXM");
	ok = cs_validate_uscc("91350100M0001TGQXM", others, &error);
	assert_refused(ok, error, "bad check character", "91350100M0001TGQXM");

	g_assert_true(cs_validate_uscc("91350100M0001TGQXM", listed, &error));
	g_assert_no_error(error);

	/* The list bypasses the check character only, never the format. */
	ok = cs_validate_uscc("91350100m0001tgqxm", lowercase, &error);
	assert_refused(ok, error, "18 characters", "91350100m0001tgqxm");
}

static void
test_resident_id_valid(void)
{
	const char *valid[] = {"11010519491231002X", "110105200002290021", "440524188001010014"};

	for (guint i = 0; i < G_N_ELEMENTS(valid); i++) {
		g_autoptr(GError) error = NULL;

		g_assert_true(cs_validate_resident_id(valid[i], TODAY, &error));
		g_assert_no_error(error);
		/* NULL means the real date today, which is after all of these. */
		g_assert_true(cs_validate_resident_id(valid[i], NULL, &error));
		g_assert_no_error(error);
	}
}

static void
test_resident_id_bad_check(void)
{
	GError *error = NULL;
	gboolean ok;

	ok = cs_validate_resident_id("110105194912310021", TODAY, &error);
	assert_refused(ok, error, "bad check character", "110105194912310021");
}

static void
test_resident_id_lowercase_x_refused(void)
{
	GError *error = NULL;
	gboolean ok;

	ok = cs_validate_resident_id("11010519491231002x", TODAY, &error);
	assert_refused(ok, error, "uppercase", "11010519491231002x");
}

static void
test_resident_id_bad_format(void)
{
	const char *bad[] = {"1101051949123100", "11010519491231002XX", "1101051949123A002X",
			     "11010519491231002Y", " 11010519491231002X"};
	GError *error = NULL;
	gboolean ok;

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		ok = cs_validate_resident_id(bad[i], TODAY, &error);
		assert_refused(ok, error, "17 digits", bad[i]);
	}
	ok = cs_validate_resident_id("", TODAY, &error);
	assert_refused(ok, error, "empty", NULL);
}

static void
test_resident_id_date_must_exist(void)
{
	GError *error = NULL;
	gboolean ok;

	/* Right check character, but 1949 was not a leap year. */
	ok = cs_validate_resident_id("110105194902290029", TODAY, &error);
	g_assert_nonnull(error);
	g_assert_null(strstr(error->message, "1949"));
	assert_refused(ok, error, "does not exist", "110105194902290029");

	/* Month 13 and day 00, with right check characters. */
	{
		g_autofree char *month13 = resident_id_with_check("11010519491301002");
		g_autofree char *day0 = resident_id_with_check("11010519491200002");

		ok = cs_validate_resident_id(month13, TODAY, &error);
		assert_refused(ok, error, "does not exist", month13);
		ok = cs_validate_resident_id(day0, TODAY, &error);
		assert_refused(ok, error, "does not exist", day0);
	}
}

static void
test_resident_id_future_refused(void)
{
	g_autofree char *born_today = resident_id_with_check("11010520261124002");
	g_autofree char *born_tomorrow = resident_id_with_check("11010520261125002");
	GError *error = NULL;
	gboolean ok;

	ok = cs_validate_resident_id("110105209901010020", TODAY, &error);
	assert_refused(ok, error, "future", "110105209901010020");
	ok = cs_validate_resident_id(born_tomorrow, TODAY, &error);
	assert_refused(ok, error, "future", born_tomorrow);

	g_assert_true(cs_validate_resident_id(born_today, TODAY, &error));
	g_assert_no_error(error);
	/* 2000-02-29 exists; the same ID is checked against a @today before it. */
	ok = cs_validate_resident_id("110105200002290021", "2000-02-28", &error);
	assert_refused(ok, error, "future", "110105200002290021");
}

static void
test_resident_id_too_early_refused(void)
{
	g_autofree char *born_1849 = resident_id_with_check("11010518491231002");
	g_autofree char *born_1850 = resident_id_with_check("11010518500101002");
	GError *error = NULL;
	gboolean ok;

	ok = cs_validate_resident_id(born_1849, TODAY, &error);
	assert_refused(ok, error, "early", born_1849);
	g_assert_true(cs_validate_resident_id(born_1850, TODAY, &error));
	g_assert_no_error(error);
}

static void
test_resident_id_bad_today(void)
{
	g_autoptr(GError) error = NULL;

	g_assert_false(cs_validate_resident_id("11010519491231002X", "2026-02-30", &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INTERNAL);
}

static void
test_phone_valid_forms(void)
{
	const char *forms[] = {"13812345678",	    "+8613812345678", "8613812345678",
			       "+86 138 1234 5678", "138-1234-5678",  "+86-138-1234-5678",
			       " 138 1234 5678 "};

	for (guint i = 0; i < G_N_ELEMENTS(forms); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *normalized = NULL;

		g_assert_true(cs_validate_phone(forms[i], &normalized, &error));
		g_assert_no_error(error);
		g_assert_cmpstr(normalized, ==, "13812345678");
	}
	/* Every second digit from 3 to 9 is a mobile prefix. */
	for (char c = '3'; c <= '9'; c++) {
		g_autoptr(GError) error = NULL;
		char number[] = "1X912345678";

		number[1] = c;
		g_assert_true(cs_validate_phone(number, NULL, &error));
		g_assert_no_error(error);
	}
}

static void
test_phone_invalid_refused(void)
{
	const char *bad[] = {"12812345678",	 "10812345678",	    "23812345678",
			     "1381234567",	 "138123456789",    "+1 3812345678",
			     "0086 13812345678", "138 1234 567a",   "++8613812345678",
			     "86+13812345678",	 "+86138123456789", "138.1234.5678"};
	GError *error = NULL;
	gboolean ok;

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autofree char *normalized = NULL;

		ok = cs_validate_phone(bad[i], &normalized, &error);
		g_assert_null(normalized);
		assert_refused(ok, error, "mobile number", bad[i]);
	}
	ok = cs_validate_phone("", NULL, &error);
	assert_refused(ok, error, "empty", NULL);
}

static void
test_phone_mask(void)
{
	g_autofree char *masked = cs_mask_phone("13812345678");
	g_autofree char *short_masked = cs_mask_phone("12345");

	g_assert_cmpstr(masked, ==, "138****5678");
	g_assert_cmpstr(short_masked, ==, "*****");
}

static void
test_bank_card_digits(void)
{
	const char *bad[] = {"41111111111", "41111111111111111111", "4111 1111 1111 1111",
			     "4111-1111-1111-1111", "411111111111111a"};
	GError *error = NULL;
	gboolean ok;

	g_assert_true(cs_validate_bank_card("411111111111", &error));
	g_assert_true(cs_validate_bank_card("4111111111111111111", &error));
	/* Failing Luhn is not a refusal, only a warning for the reviewer. */
	g_assert_true(cs_validate_bank_card("4111111111111112", &error));
	g_assert_no_error(error);
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		ok = cs_validate_bank_card(bad[i], &error);
		assert_refused(ok, error, "12 to 19 digits", bad[i]);
	}
}

static void
test_bank_card_luhn(void)
{
	g_assert_true(cs_luhn_ok("4111111111111111"));
	g_assert_true(cs_luhn_ok("79927398713"));
	g_assert_true(cs_luhn_ok("6011000990139424"));
	g_assert_false(cs_luhn_ok("4111111111111112"));
	g_assert_false(cs_luhn_ok("79927398710"));
	g_assert_false(cs_luhn_ok("4111 1111 1111 1111"));
	g_assert_false(cs_luhn_ok(""));
	g_assert_false(cs_luhn_ok(NULL));
}

static void
test_bank_account(void)
{
	const char *bad[] = {"12345", "1234 5", "12345a7", "1234567890123456789012345678901234X",
			     "123456789012345678901234567890123456"};
	GError *error = NULL;
	gboolean ok;

	g_assert_true(cs_validate_bank_account("123456", &error));
	g_assert_true(cs_validate_bank_account("6222 0212 3456-7890", &error));
	g_assert_no_error(error);
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		ok = cs_validate_bank_account(bad[i], &error);
		assert_refused(ok, error, "", bad[i]);
	}
}

static void
test_email(void)
{
	const char *good[] = {"a@b.cn", "zhang.san+certs@example.com.cn", "张三@例子.中国"};
	const char *bad[] = {
	    "zhangsan.example.cn",  "a@b@c.cn",		 "@example.cn",	   "zhang@",
	    "zhang@localhost",	    "zhang@.cn",	 "zhang@example.", "zhang@exa..cn",
	    "zhang san@example.cn", "zhang@example.cn\n"};
	g_autofree char *too_long = NULL;
	GError *error = NULL;
	gboolean ok;

	for (guint i = 0; i < G_N_ELEMENTS(good); i++) {
		g_assert_true(cs_validate_email(good[i], &error));
		g_assert_no_error(error);
	}
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		ok = cs_validate_email(bad[i], &error);
		assert_refused(ok, error, "", bad[i]);
	}
	{
		g_autofree char *local = g_strnfill(200, 'a');
		g_autofree char *domain = g_strnfill(60, 'b');

		too_long = g_strdup_printf("%s@%s.cn", local, domain);
	}
	ok = cs_validate_email(too_long, &error);
	assert_refused(ok, error, "254", too_long);
}

static void
test_postcode(void)
{
	const char *bad[] = {"35000", "3500000", "35000a", " 350001", ""};
	GError *error = NULL;
	gboolean ok;

	g_assert_true(cs_validate_postcode("350001", &error));
	g_assert_no_error(error);
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		ok = cs_validate_postcode(bad[i], &error);
		assert_refused(ok, error, "6 digits", bad[i]);
	}
}

static void
test_text_control_chars_refused(void)
{
	const char *bad[] = {"厦门\n某某有限公司", "tab\there", "bell\a", "del\x7f", "c1 \xc2\x85"};
	GError *error = NULL;
	gboolean ok;

	g_assert_true(cs_validate_text("厦门某某有限公司 (Xiamen Example Co., Ltd.)", 0, &error));
	g_assert_no_error(error);
	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		ok = cs_validate_text(bad[i], 0, &error);
		assert_refused(ok, error, "control characters", NULL);
	}
}

static void
test_text_invisible_chars_refused(void)
{
	/* U+2028 line separator, U+202E right-to-left override, U+200B zero-width space,
	 * U+E000 private use, U+0378 unassigned. */
	const char *breaks[] = {"厦门\xe2\x80\xa8公司"};
	const char *invisible[] = {"\xe2\x80\xae"
				   "gpj.exe",
				   "王\xe2\x80\x8b五", "\xee\x80\x80", "\xcd\xb8"};
	GError *error = NULL;
	gboolean ok;

	for (guint i = 0; i < G_N_ELEMENTS(breaks); i++) {
		ok = cs_validate_text(breaks[i], 0, &error);
		assert_refused(ok, error, "line breaks", NULL);
	}
	for (guint i = 0; i < G_N_ELEMENTS(invisible); i++) {
		ok = cs_validate_text(invisible[i], 0, &error);
		assert_refused(ok, error, "invisible", NULL);
	}
}

static void
test_text_invalid_utf8_refused(void)
{
	GError *error = NULL;
	gboolean ok;

	ok = cs_validate_text("abc\xff", 0, &error);
	assert_refused(ok, error, "UTF-8", NULL);
	ok = cs_validate_text("\xe5\x8e", 0, &error);
	assert_refused(ok, error, "UTF-8", NULL);
}

static void
test_text_length_counts_characters(void)
{
	g_autoptr(GString) s = g_string_new(NULL);
	GError *error = NULL;
	gboolean ok;

	ok = cs_validate_text("", 0, &error);
	assert_refused(ok, error, "empty", NULL);
	ok = cs_validate_text(NULL, 0, &error);
	assert_refused(ok, error, "empty", NULL);

	/* 256 three-byte characters fit the default limit; one more does not. */
	for (guint i = 0; i < 256; i++)
		g_string_append(s, "章");
	g_assert_true(cs_validate_text(s->str, 0, &error));
	g_assert_no_error(error);
	g_string_append(s, "章");
	ok = cs_validate_text(s->str, 0, &error);
	assert_refused(ok, error, "at most 256 characters", NULL);

	g_assert_true(cs_validate_text("四个汉字", 4, &error));
	g_assert_no_error(error);
	ok = cs_validate_text("五个个汉字", 4, &error);
	assert_refused(ok, error, "at most 4 characters", NULL);
}

/* Names that print as nothing: a certificate would carry a blank subject. */
static void
test_text_blank_refused(void)
{
	static const char *const blank[] = {
	    "\u3000", "\u3000\u3000", "\u3164",	  "\u3164\u3164", "\u034F",
	    "\u2800", "\u0301\u0308", " \u3000 ", "\u115F\u1160", "\uFFA0",
	};
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(blank); i++) {
		g_assert_false(cs_validate_text(blank[i], 0, &error));
		g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
		g_assert_nonnull(strstr(error->message, "visible"));
		g_clear_error(&error);
	}
	/* Marks on a letter and spaces between words stay fine. */
	g_assert_true(cs_validate_text("Zoe\u0308 Li", 0, &error));
	g_assert_true(cs_validate_text("\u5f20\u3000\u4e09", 0, &error));
	g_assert_no_error(error);
}

static void
test_email_invisible_refused(void)
{
	static const char *const bad[] = {
	    "ops\u202E@example.cn", "ops@exa\u2066mple.cn", "o\u200Bps@example.cn",
	    "ops@example.cn\u200F", "o\u3164ps@example.cn", "ops@\uE000.cn",
	};
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_assert_false(cs_validate_email(bad[i], &error));
		g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
		g_clear_error(&error);
	}
	g_assert_true(cs_validate_email("运维@例子.中国", &error));
	g_assert_no_error(error);
}

static void
test_quote_value(void)
{
	g_autofree char *big = g_strnfill(1 << 20, 'a');
	g_autofree char *q_big = cs_quote_value(big);
	g_autofree char *q_ctl = cs_quote_value("\x1b[31mred\nline\u202e\\x");
	g_autofree char *q_bad = cs_quote_value("ab\xff");
	g_autofree char *q_cjk = cs_quote_value("示例公司");
	g_autofree char *m = cs_sanitize_message("name: 'a\x1b[2J' \\ ok", 0);

	g_assert_cmpuint(g_utf8_strlen(q_big, -1), <, CS_QUOTE_MAX_CHARS + 20);
	g_assert_true(g_str_has_prefix(q_big, "aaaa"));
	g_assert_true(g_str_has_suffix(q_big, "… (1048576 bytes)"));
	g_assert_cmpstr(q_ctl, ==, "\\x1b[31mred\\x0aline\\u202e\\\\x");
	g_assert_cmpstr(q_bad, ==, "ab\\xff");
	g_assert_cmpstr(q_cjk, ==, "示例公司");
	g_assert_cmpstr(m, ==, "name: 'a\\x1b[2J' \\ ok");
}

static void
assert_pin_refused(const CsPinPolicy *policy, const char *pin, const char *reason)
{
	g_autoptr(GError) error = NULL;

	g_assert_false(cs_pin_policy_check(policy, "new_pin", pin, &error));
	g_assert_error(error, CS_ERROR, CS_ERROR_INVALID_INPUT);
	g_assert_true(g_str_has_prefix(error->message, "new_pin: "));
	g_assert_nonnull(strstr(error->message, reason));
	if (*pin != '\0')
		g_assert_null(strstr(error->message, pin)); /* the PIN is never echoed */
}

static void
test_pin_policy(void)
{
	CsPinPolicy digits = {.min_length = 6, .max_length = 16, .digits_only = TRUE};
	CsPinPolicy any = {.min_length = 6, .max_length = 8, .digits_only = FALSE};

	g_assert_true(cs_pin_policy_check(&digits, "new_pin", "246810", NULL));
	g_assert_true(cs_pin_policy_check(&any, "new_pin", "abc246", NULL));
	assert_pin_refused(&digits, "24681", "6 to 16 characters");
	assert_pin_refused(&digits, "24681024681024681", "6 to 16 characters");
	assert_pin_refused(&digits, "abc246", "digits only");
	assert_pin_refused(&digits, "888888", "one digit repeated");
	assert_pin_refused(&any, "000000", "one digit repeated");
	assert_pin_refused(&any, "", "6 to 8 characters");
	g_assert_true(cs_pin_policy_check(&any, "new_pin", "aaaaaa", NULL));
}

static void
test_pin_policy_generates_what_it_accepts(void)
{
	CsPinPolicy p = {.min_length = 6, .max_length = 10, .digits_only = TRUE};

	for (guint i = 0; i < 200; i++) {
		g_autoptr(GError) error = NULL;
		char *pin = cs_pin_policy_generate(&p, i % 2 == 0 ? 4 : 12, &error);
		g_assert_no_error(error);
		g_assert_cmpuint(strlen(pin), ==, i % 2 == 0 ? 6 : 10);
		g_assert_true(cs_pin_policy_check(&p, "pin", pin, NULL));
		cs_secret_free(pin);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);

	g_test_add_func("/validate/uscc/valid", test_uscc_valid);
	g_test_add_func("/validate/uscc/bad-check", test_uscc_bad_check);
	g_test_add_func("/validate/uscc/bad-format", test_uscc_bad_format);
	g_test_add_func("/validate/uscc/legacy-only-when-listed",
			test_uscc_legacy_only_when_listed);
	g_test_add_func("/validate/resident-id/valid", test_resident_id_valid);
	g_test_add_func("/validate/resident-id/bad-check", test_resident_id_bad_check);
	g_test_add_func("/validate/resident-id/lowercase-x-refused",
			test_resident_id_lowercase_x_refused);
	g_test_add_func("/validate/resident-id/bad-format", test_resident_id_bad_format);
	g_test_add_func("/validate/resident-id/date-must-exist", test_resident_id_date_must_exist);
	g_test_add_func("/validate/resident-id/future-refused", test_resident_id_future_refused);
	g_test_add_func("/validate/resident-id/too-early-refused",
			test_resident_id_too_early_refused);
	g_test_add_func("/validate/resident-id/bad-today", test_resident_id_bad_today);
	g_test_add_func("/validate/phone/valid-forms", test_phone_valid_forms);
	g_test_add_func("/validate/phone/invalid-refused", test_phone_invalid_refused);
	g_test_add_func("/validate/phone/mask", test_phone_mask);
	g_test_add_func("/validate/bank-card/digits", test_bank_card_digits);
	g_test_add_func("/validate/bank-card/luhn", test_bank_card_luhn);
	g_test_add_func("/validate/bank-account/format", test_bank_account);
	g_test_add_func("/validate/email/format", test_email);
	g_test_add_func("/validate/postcode/format", test_postcode);
	g_test_add_func("/validate/pin/vendor-policy", test_pin_policy);
	g_test_add_func("/validate/pin/generated-follow-the-policy",
			test_pin_policy_generates_what_it_accepts);
	g_test_add_func("/validate/text/control-chars-refused", test_text_control_chars_refused);
	g_test_add_func("/validate/text/invisible-chars-refused",
			test_text_invisible_chars_refused);
	g_test_add_func("/validate/text/invalid-utf8-refused", test_text_invalid_utf8_refused);
	g_test_add_func("/validate/text/blank-or-invisible-refused", test_text_blank_refused);
	g_test_add_func("/validate/email/invisible-refused", test_email_invisible_refused);
	g_test_add_func("/validate/quote/short-and-escaped", test_quote_value);
	g_test_add_func("/validate/text/length-counts-characters",
			test_text_length_counts_characters);
	return g_test_run();
}
