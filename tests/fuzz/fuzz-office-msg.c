/*
 * fuzz-office-msg.c — libFuzzer target for the CSO1 message parser (docs/architecture.md §7).
 *
 * The input is cut into frames at each 0x00 0xff pair (at most 8 frames), so the fuzzer
 * explores tags, verbs, missing and extra frames and bodies alike. Whatever the bytes,
 * the parser must return a message or an error — never crash, leak or read out of
 * bounds (ASan and UBSan are on).
 */
#define G_LOG_DOMAIN "fuzz-office-msg"

#include <glib.h>
#include <string.h>

#include "cs-office-msg.h"

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
	GBytes *frames[8];
	guint n = 0;
	size_t start = 0;
	GError *error = NULL;
	CsOfficeMsg *msg;

	for (size_t i = 0; i + 1 < size && n < G_N_ELEMENTS(frames) - 1; i++) {
		if (data[i] == 0x00 && data[i + 1] == 0xff) {
			frames[n++] = g_bytes_new(data + start, i - start);
			start = i + 2;
			i++;
		}
	}
	frames[n++] = g_bytes_new(data + start, size - start);
	msg = cs_office_msg_parse(frames, n, &error);
	if (msg != NULL) {
		char *text = cs_office_body_to_string(msg->body);
		g_free(text);
		cs_office_msg_free(msg);
	} else {
		g_assert(error != NULL);
		g_error_free(error);
	}
	for (guint i = 0; i < n; i++)
		g_bytes_unref(frames[i]);
	return 0;
}
